//===- EngineTest.cpp - the engine file container -------------------------===//
#include "runtime/format/Engine.h"

#include <gtest/gtest.h>

#include <random>

using namespace kiln;
using kiln::format::EngineFile;
using kiln::format::EngineWriter;

namespace {

std::vector<uint8_t> sample() {
  EngineWriter w("kiln 0.1");
  std::mt19937 rng(3);
  std::string kernels(1000, '\0');
  for (char &c : kernels)
    c = static_cast<char>(rng());
  EXPECT_TRUE(w.add("manifest", "{\"format\": 1}").isOk());
  EXPECT_TRUE(w.add("kernels", kernels).isOk());
  EXPECT_TRUE(w.add("empty", "").isOk());
  return w.serialize();
}

std::string errorOf(std::vector<uint8_t> bytes) {
  EngineFile e;
  Status s = format::parseEngine(std::move(bytes), "m.engine", e);
  EXPECT_FALSE(s.isOk());
  return s.message();
}

} // namespace

TEST(Engine, RoundTripsSectionsAligned) {
  std::vector<uint8_t> bytes = sample();
  EngineFile e;
  Status s = format::parseEngine(bytes, "m.engine", e);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(e.compilerVersion, "kiln 0.1");
  ASSERT_EQ(e.sections.size(), 3u);
  ASSERT_NE(e.find("manifest"), nullptr);
  EXPECT_EQ(e.data(*e.find("manifest")), "{\"format\": 1}");
  EXPECT_EQ(e.data(*e.find("kernels")).size(), 1000u);
  EXPECT_EQ(e.data(*e.find("empty")).size(), 0u);
  for (const auto &sec : e.sections)
    EXPECT_EQ(sec.offset % format::kEngineSectionAlignment, 0u) << sec.name;
  EXPECT_EQ(e.find("weights"), nullptr);
}

// Every corruption is a clear error naming the file and the problem.
TEST(Engine, CorruptionsAreClearErrors) {
  std::vector<uint8_t> good = sample();
  EngineFile e;
  ASSERT_TRUE(format::parseEngine(good, "m.engine", e).isOk());
  size_t kernelsAt = e.find("kernels")->offset;

  auto flipped = good;
  flipped[kernelsAt + 10] ^= 0x04; // one bit in a kernel binary
  EXPECT_EQ(errorOf(flipped), "m.engine: section 'kernels' is corrupted (checksum mismatch)");

  auto table = good;
  table[format::kEngineHeaderSize + 20] ^= 1; // a section offset
  EXPECT_EQ(errorOf(table), "m.engine: the section table is corrupted (checksum mismatch)");

  auto truncated = good;
  truncated.resize(good.size() - 100);
  EXPECT_NE(errorOf(truncated).find("(truncated)"), std::string::npos);

  auto version = good;
  version[8] = 7;
  EXPECT_EQ(errorOf(version), "m.engine: engine format version 7, this runtime reads 1: "
                              "recompile the model with this kiln");

  auto magic = good;
  magic[0] = 'X';
  EXPECT_EQ(errorOf(magic), "m.engine: not a kiln engine (no KILNENG header)");
  EXPECT_EQ(errorOf({}), "m.engine: not a kiln engine (no KILNENG header)");

  EngineWriter w("kiln");
  EXPECT_FALSE(w.add("a-name-longer-than-15", "").isOk());
  EXPECT_TRUE(w.add("x", "1").isOk());
  EXPECT_FALSE(w.add("x", "2").isOk());
  EXPECT_NE(format::readEngine("/nonexistent/m.engine", e).message().find("cannot open"),
            std::string::npos);
}

// Random single-byte corruptions anywhere are either caught or harmless
// (padding), never a crash or a wrong section.
TEST(Engine, EveryByteFlipIsCaughtOrInPadding) {
  std::vector<uint8_t> good = sample();
  EngineFile ref;
  ASSERT_TRUE(format::parseEngine(good, "m", ref).isOk());
  for (size_t i = 0; i < good.size(); ++i) {
    auto b = good;
    b[i] ^= 0x80;
    EngineFile e;
    if (!format::parseEngine(b, "m", e).isOk())
      continue;
    for (const auto &s : ref.sections)
      ASSERT_EQ(e.data(*e.find(s.name)), ref.data(s)) << "byte " << i;
  }
}

// The fuzzer's seed was written by an independent Python writer of the
// format in docs/engine-format.md: the reader accepts it.
TEST(Engine, ReadsAnEngineWrittenFromTheSpecification) {
  EngineFile e;
  Status s = format::readEngine(KILN_SOURCE_DIR "/test/fuzz/corpus/engine/small.engine", e);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(e.compilerVersion, "kiln 0.1");
  ASSERT_NE(e.find("kernels"), nullptr);
  EXPECT_EQ(e.data(*e.find("kernels")).size(), 200u);
  EXPECT_EQ(static_cast<uint8_t>(e.data(*e.find("kernels"))[199]), 199);
}
