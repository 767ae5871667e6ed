//===- kiln-tokenize.cpp - encode and decode with a tokenizer.json --------===//
//
//   kiln-tokenize TOKENIZER.json TEXTS.json
//
// TEXTS.json is a JSON array of strings. Prints {"ids": [[...], ...],
// "decoded": [...]}: each text's token ids and the decoding of those ids.
// test/tokenizer/check_tokenizers.py compares both with `tokenizers`.
//
//===----------------------------------------------------------------------===//
#include "runtime/format/Json.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {
std::string quote(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}
} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: kiln-tokenize TOKENIZER.json TEXTS.json\n");
    return 2;
  }
  kiln::tok::Tokenizer tok;
  if (kiln::Status s = kiln::tok::Tokenizer::load(argv[1], tok); !s) {
    std::fprintf(stderr, "kiln-tokenize: %s\n", s.message().c_str());
    return 1;
  }
  std::ifstream f(argv[2]);
  std::stringstream ss;
  ss << f.rdbuf();
  kiln::format::JsonValue texts;
  if (!f || !kiln::format::parseJson(ss.str(), texts) || !texts.isArray()) {
    std::fprintf(stderr, "kiln-tokenize: %s is not a JSON array of strings\n", argv[2]);
    return 1;
  }
  std::string ids = "[", decoded = "[";
  for (size_t i = 0; i < texts.asArray().size(); ++i) {
    std::vector<int64_t> out;
    if (kiln::Status s = tok.encode(texts.asArray()[i].asString(), out); !s) {
      std::fprintf(stderr, "kiln-tokenize: text %zu: %s\n", i, s.message().c_str());
      return 1;
    }
    std::string text;
    if (kiln::Status s = tok.decode(out, text); !s) {
      std::fprintf(stderr, "kiln-tokenize: text %zu: %s\n", i, s.message().c_str());
      return 1;
    }
    if (i) {
      ids += ',';
      decoded += ',';
    }
    ids += '[';
    for (size_t k = 0; k < out.size(); ++k) {
      if (k)
        ids += ',';
      ids += std::to_string(out[k]);
    }
    ids += ']';
    decoded += quote(text);
  }
  std::printf("{\"ids\": %s], \"decoded\": %s]}\n", ids.c_str(), decoded.c_str());
  return 0;
}
