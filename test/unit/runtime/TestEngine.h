//===- TestEngine.h - the tiny Llama's real manifest in an engine file -----===//
//
// The manifest `kiln compile` wrote for the tiny Llama (the fuzzer's seeds:
// batch 1, max_seq 128, pages of 16, host programs included; and the same
// compiled --max-batch 4, tiny_llama_b4.json, whose memory plan holds four
// decode rows), optionally edited, in an engine file with stand-in CUDA
// sections. The host device runs it for real from its host programs; a
// recording device records it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_UNIT_RUNTIME_TESTENGINE_H
#define KILN_TEST_UNIT_RUNTIME_TESTENGINE_H

#include "runtime/format/Engine.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace kiln::test {

inline const std::string kTinyLlama = std::string(KILN_SOURCE_DIR) + "/test/models/hf/llama";

/// Writes the engine to a temp path named after `name`; every `edit` (when
/// not empty) is replaced by `with` in the manifest first. `fixture`: the
/// manifest's file in test/fuzz/corpus/manifest.
inline std::string writeTinyLlamaEngine(const std::string &name, const std::string &edit = "",
                                        const std::string &with = "",
                                        const std::string &fixture = "tiny_llama.json") {
  std::ifstream f(std::string(KILN_SOURCE_DIR) + "/test/fuzz/corpus/manifest/" + fixture);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string manifest = ss.str();
  if (!edit.empty()) {
    EXPECT_NE(manifest.find(edit), std::string::npos) << edit;
    for (size_t at = manifest.find(edit); at != std::string::npos; at = manifest.find(edit, at + with.size()))
      manifest.replace(at, edit.size(), with);
  }
  format::EngineWriter w("kiln test");
  EXPECT_TRUE(w.add("manifest", manifest).isOk());
  EXPECT_TRUE(w.add("cuda_source", std::string(400000, 'x')).isOk());
  EXPECT_TRUE(w.add("cubin.sm_90a", std::string(800000, 'c')).isOk());
  EXPECT_TRUE(w.add("ptx.sm_90a", std::string(1200000, 'p')).isOk());
  std::string path = ::testing::TempDir() + "/" + name + ".engine";
  EXPECT_TRUE(w.write(path).isOk());
  return path;
}

} // namespace kiln::test

#endif
