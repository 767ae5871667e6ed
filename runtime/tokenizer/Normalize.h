//===- Normalize.h - Unicode canonical composition (NFC) --------*- C++ -*-===//
//
// NFC as tokenizers' `NFC` normalizer applies it: canonical decomposition,
// canonical ordering of combining marks, canonical composition (Hangul
// syllables algorithmically). The data come from
// scripts/make_unicode_tables.py (NormalizationTables.inc). Bytes that are
// not valid UTF-8 pass through unchanged.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TOKENIZER_NORMALIZE_H
#define KILN_RUNTIME_TOKENIZER_NORMALIZE_H

#include <string>

namespace kiln::tok {

std::string toNfc(const std::string &utf8);

} // namespace kiln::tok

#endif
