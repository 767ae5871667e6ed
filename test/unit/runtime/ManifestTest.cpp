//===- ManifestTest.cpp - reading and checking an engine's manifest -------===//
//
// The base manifest is a real one: `kiln compile` of the tiny Llama (its
// config elided), kept as the fuzzer's seed. Each test breaks one thing and
// expects an error that names the field.
//
//===----------------------------------------------------------------------===//
#include "runtime/format/Manifest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace kiln;
using namespace kiln::format;

namespace {

std::string seed() {
  std::ifstream f(std::string(KILN_SOURCE_DIR) + "/test/fuzz/corpus/manifest/tiny_llama.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// An engine holding `manifest` and sections of the sizes the seed's ranges
/// need (or `cubinBytes` of cubin).
EngineFile engineWith(const std::string &manifest, size_t cubinBytes = 400000,
                      const std::string &target = "sm_90a") {
  EngineWriter w("kiln test");
  EXPECT_TRUE(w.add("manifest", manifest).isOk());
  EXPECT_TRUE(w.add("cuda_source", std::string(200000, 'x')).isOk());
  EXPECT_TRUE(w.add("cubin." + target, std::string(cubinBytes, 'c')).isOk());
  EXPECT_TRUE(w.add("ptx." + target, std::string(400000, 'p')).isOk());
  EngineFile e;
  Status s = parseEngine(w.serialize(), "t.engine", e);
  EXPECT_TRUE(s.isOk()) << s.message();
  return e;
}

std::string replaced(std::string s, const std::string &from, const std::string &to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    s.replace(at, from.size(), to);
  return s;
}

std::string errorOf(const EngineFile &e) {
  EngineManifest m;
  Status s = readManifest(e, "t.engine", m);
  EXPECT_FALSE(s.isOk());
  return s.message();
}

} // namespace

TEST(Manifest, ReadsACompiledEngine) {
  EngineManifest m;
  Status s = readManifest(engineWith(seed()), "t.engine", m);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(m.version, kManifestVersion);
  EXPECT_EQ(m.architecture, "LlamaForCausalLM");
  ASSERT_EQ(m.targets, std::vector<std::string>{"sm_90a"});
  EXPECT_EQ(m.kv.layers, 2);
  EXPECT_EQ(m.kv.bytesPerToken, 256);
  EXPECT_EQ(m.kernels.size(), 22u);
  EXPECT_EQ(m.weights.size(), 15u);
  ASSERT_NE(m.function("decode"), nullptr);
  ASSERT_NE(m.function("prefill"), nullptr);
  // Every decode launch is a kernel with a binary for the target.
  for (const LaunchDesc &l : m.function("decode")->launches) {
    const KernelDesc &k = m.kernels[static_cast<size_t>(l.kernel)];
    ASSERT_EQ(k.binaries.size(), 1u);
    EXPECT_GT(k.binaries[0].cubin.size, 0u);
    EXPECT_GE(k.grid.eval(4, 1, 100, 8), 1);
  }
  // The embedding gathers batch x tokens x 64 elements, 256 per block.
  EXPECT_EQ(m.kernels[0].grid.eval(2, 100, 0, 0), (2 * 100 * 64 + 255) / 256);
}

TEST(Manifest, RefusesAnotherVersion) {
  std::string e = errorOf(engineWith(replaced(seed(), "\"kiln_manifest\":1", "\"kiln_manifest\":2")));
  EXPECT_NE(e.find("t.engine: manifest version 2, this kiln reads 1"), std::string::npos) << e;
  EXPECT_NE(e.find("recompile"), std::string::npos) << e;
}

TEST(Manifest, NamesAMissingField) {
  std::string e = errorOf(engineWith(replaced(seed(), "\"kv_cache\":", "\"kv_cachex\":")));
  EXPECT_NE(e.find("'kv_cache' is missing"), std::string::npos) << e;
}

TEST(Manifest, NamesAFieldOfTheWrongType) {
  std::string e = errorOf(engineWith(replaced(seed(), "\"threads\":256", "\"threads\":\"256\"")));
  EXPECT_NE(e.find("kernels[0].threads' must be a number, not a string"), std::string::npos) << e;
}

TEST(Manifest, RefusesABinaryOutsideItsSection) {
  std::string e = errorOf(engineWith(seed(), 1000));
  EXPECT_NE(e.find("cubin' lies outside section 'cubin.sm_90a' (1000 bytes)"), std::string::npos) << e;
}

TEST(Manifest, RefusesALaunchOfAKernelThatIsNot) {
  std::string e = errorOf(engineWith(replaced(seed(), "\"kernel\":0", "\"kernel\":99")));
  EXPECT_NE(e.find("functions[0].launches[0].kernel' is 99, outside [0, 21]"), std::string::npos) << e;
}

TEST(Manifest, RefusesAnArenaRangeBeyondTheArena) {
  std::string e = errorOf(engineWith(replaced(seed(), "{\"arena\":[0,16384]}", "{\"arena\":[65000,16384]}")));
  EXPECT_NE(e.find("functions[0].launches[0].operands[2].arena' lies outside section 'prefill.arena'"),
            std::string::npos)
      << e;
}

TEST(Manifest, RefusesWeightBytesThatDisagreeWithTheShape) {
  std::string e = errorOf(engineWith(replaced(seed(), "\"bytes\":65536", "\"bytes\":65538")));
  EXPECT_NE(e.find("weights[0].bytes' disagrees with its shape and dtype 'bf16'"), std::string::npos) << e;
}

TEST(Manifest, RefusesAnUnknownStepSize) {
  std::string e = errorOf(engineWith(replaced(seed(), "\"symbols\":[\"batch\",\"tokens\"]", "\"symbols\":[\"batch\",\"sequences\"]")));
  EXPECT_NE(e.find("names 'sequences', not a step size"), std::string::npos) << e;
}

namespace {
/// The seed with tensor_maps on kernel 0, the second map given by `second`.
std::string withTensorMaps(const std::string &second) {
  return replaced(seed(), "\"threads\":256",
                  "\"tensor_maps\":[{\"operand\":0,\"rows\":{\"factor\":1,\"symbols\":[\"batch\",\"tokens\"],"
                  "\"divisor\":1,\"max\":0},\"cols\":2048,\"box\":[128,64],\"dtype\":\"bf16\",\"swizzle\":128}," +
                      second + "],\"threads\":256");
}
const std::string kWeightMap = "{\"operand\":1,\"rows\":{\"factor\":16384,\"symbols\":[],\"divisor\":1,\"max\":0},"
                               "\"cols\":2048,\"box\":[128,64],\"dtype\":\"f16\",\"swizzle\":128}";
std::string weightMapWith(const std::string &from, const std::string &to) { return replaced(kWeightMap, from, to); }
} // namespace

TEST(Manifest, ReadsTensorMaps) {
  EngineManifest m;
  Status s = readManifest(engineWith(withTensorMaps(kWeightMap)), "t.engine", m);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(m.kernels[0].tensorMaps.size(), 2u);
  const TensorMapDesc &a = m.kernels[0].tensorMaps[0], &w = m.kernels[0].tensorMaps[1];
  EXPECT_EQ(a.operand, 0);
  EXPECT_EQ(a.rows.eval(3, 700, 0, 0), 2100);
  EXPECT_EQ(a.cols, 2048);
  EXPECT_EQ(a.boxRows, 128);
  EXPECT_EQ(a.boxCols, 64);
  EXPECT_EQ(a.dtype, "bf16");
  EXPECT_EQ(w.operand, 1);
  EXPECT_EQ(w.rows.eval(3, 700, 0, 0), 16384);
  EXPECT_EQ(w.dtype, "f16");
  EXPECT_TRUE(m.kernels[1].tensorMaps.empty());
}

TEST(Manifest, RefusesTensorMapsTmaCannotMove) {
  std::string e = errorOf(engineWith(withTensorMaps(weightMapWith("\"box\":[128,64]", "\"box\":[128,32]"))));
  EXPECT_NE(e.find("kernels[0].tensor_maps[1].box' must be [rows (1 to 256), 64]"), std::string::npos) << e;
  e = errorOf(engineWith(withTensorMaps(weightMapWith("\"box\":[128,64]", "\"box\":[512,64]"))));
  EXPECT_NE(e.find("tensor_maps[1].box' must be"), std::string::npos) << e;
  e = errorOf(engineWith(withTensorMaps(weightMapWith("\"dtype\":\"f16\"", "\"dtype\":\"f32\""))));
  EXPECT_NE(e.find("tensor_maps[1].dtype' is 'f32'; tensor maps are of bf16 or f16"), std::string::npos) << e;
  e = errorOf(engineWith(withTensorMaps(weightMapWith("\"operand\":1", "\"operand\":16"))));
  EXPECT_NE(e.find("tensor_maps[1].operand' is 16, outside [0, 15]"), std::string::npos) << e;
  e = errorOf(engineWith(withTensorMaps(weightMapWith("\"cols\":2048", "\"cols\":2044"))));
  EXPECT_NE(e.find("tensor_maps[1].cols' is 2044: rows must be whole 16-byte pieces"), std::string::npos) << e;
  e = errorOf(engineWith(withTensorMaps(weightMapWith("\"swizzle\":128", "\"swizzle\":64"))));
  EXPECT_NE(e.find("tensor_maps[1].swizzle' is 64"), std::string::npos) << e;
  std::string five = kWeightMap;
  for (int i = 0; i < 3; ++i)
    five += "," + kWeightMap;
  e = errorOf(engineWith(withTensorMaps(five)));
  EXPECT_NE(e.find("kernels[0].tensor_maps' lists 5 maps; kernels take at most 4"), std::string::npos) << e;
}

TEST(Manifest, RefusesMalformedJson) {
  std::string text = seed();
  std::string e = errorOf(engineWith(text.substr(0, text.size() / 2)));
  EXPECT_NE(e.find("t.engine: manifest: line 1, column"), std::string::npos) << e;
}

TEST(Manifest, RefusesBinariesForAnUnlistedTarget) {
  // The engine says sm_80 but its kernels hold sm_90a binaries.
  std::string e = errorOf(engineWith(replaced(seed(), "\"targets\":[\"sm_90a\"]", "\"targets\":[\"sm_80\"]"), 400000,
                                     "sm_80"));
  EXPECT_NE(e.find("kernels[0].binaries.sm_80' is missing"), std::string::npos) << e;
}

TEST(Manifest, SelectsTheTargetAGpuRuns) {
  EngineManifest m;
  m.targets = {"sm_90a", "sm_80"};
  std::string t;
  ASSERT_TRUE(selectTarget(m, "e", "sm_90", t).isOk());
  EXPECT_EQ(t, "sm_90a");
  ASSERT_TRUE(selectTarget(m, "e", "sm_86", t).isOk());
  EXPECT_EQ(t, "sm_80"); // sm_80 cubins run on every 8.x GPU
  ASSERT_TRUE(selectTarget(m, "e", "sm_80", t).isOk());
  EXPECT_EQ(t, "sm_80");
  // sm_90a code runs on 9.0 alone; nothing here runs on a 10.0 GPU.
  m.targets = {"sm_90a"};
  Status s = selectTarget(m, "e", "sm_100", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("e holds kernels for sm_90a, which do not run on this sm_100 GPU: recompile with "
                             "--target sm_100a"),
            std::string::npos)
      << s.message();
  s = selectTarget(m, "e", "sm_80", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("--target sm_80 "), std::string::npos) << s.message();
  EXPECT_FALSE(selectTarget(m, "e", "volta", t).isOk());
}

namespace {
std::string bucketsSeed() {
  std::ifstream f(std::string(KILN_SOURCE_DIR) + "/test/fuzz/corpus/manifest/tiny_llama_b4_buckets.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
EngineFile bucketsEngine(const std::string &manifest) {
  EngineWriter w("kiln test");
  EXPECT_TRUE(w.add("manifest", manifest).isOk());
  EXPECT_TRUE(w.add("cuda_source", std::string(400000, 'x')).isOk());
  EXPECT_TRUE(w.add("cubin.sm_90a", std::string(800000, 'c')).isOk());
  EXPECT_TRUE(w.add("ptx.sm_90a", std::string(1200000, 'p')).isOk());
  EngineFile e;
  Status s = parseEngine(w.serialize(), "t.engine", e);
  EXPECT_TRUE(s.isOk()) << s.message();
  return e;
}
} // namespace

// Decode buckets (the tiny Llama compiled --max-batch 4): decode_b1 and
// decode_b2 beside decode; a step goes to the smallest that holds it. A
// bucket must be named for its batch, below max_batch; only decode
// functions carry a batch.
TEST(Manifest, ReadsDecodeBucketsAndRefusesBadOnes) {
  EngineManifest m;
  Status s = readManifest(bucketsEngine(bucketsSeed()), "t.engine", m);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::vector<std::string> names;
  for (const FunctionDesc *f : m.decodeBuckets())
    names.push_back(f->name + "@" + std::to_string(f->batch));
  EXPECT_EQ(names, (std::vector<std::string>{"decode_b1@1", "decode_b2@2", "decode@4"}));
  EXPECT_EQ(m.decodeFor(2)->name, "decode_b2");
  EXPECT_EQ(m.decodeFor(3)->name, "decode");
  EXPECT_EQ(m.decodeFor(5), nullptr);

  std::string e = errorOf(bucketsEngine(replaced(bucketsSeed(), "\"batch\":2", "\"batch\":3")));
  EXPECT_NE(e.find("'decode_b2' is not named for its batch 3 (decode_b3)"), std::string::npos) << e;
  e = errorOf(bucketsEngine(replaced(replaced(bucketsSeed(), "\"batch\":2", "\"batch\":4"), "\"name\":\"decode_b2\"",
                                     "\"name\":\"decode_b4\"")));
  EXPECT_NE(e.find("batch' is 4, outside [1, 3]"), std::string::npos) << e;
  e = errorOf(bucketsEngine(replaced(bucketsSeed(), "\"name\":\"prefill\"", "\"batch\":1,\"name\":\"prefill\"")));
  EXPECT_NE(e.find("is only for decode functions, not 'prefill'"), std::string::npos) << e;
  e = errorOf(bucketsEngine(replaced(bucketsSeed(), "\"batch\":1,", "")));
  EXPECT_NE(e.find("batch"), std::string::npos) << e;
}

// A launch's own planned bytes and FLOPs (a kernel shared by decode buckets
// moves each bucket's rows): read where given, -1 (the kernel's) where not,
// a negative figure refused by field.
TEST(Manifest, ReadsALaunchsPlannedBytes) {
  const std::string first = "\"launches\":[{\"kernel\":0,\"kv_layer\":0,";
  EngineManifest m;
  Status s = readManifest(
      bucketsEngine(replaced(bucketsSeed(), first, "\"launches\":[{\"bytes\":4096,\"flops\":512,\"kernel\":0,\"kv_layer\":0,")),
      "t.engine", m);
  ASSERT_TRUE(s.isOk()) << s.message();
  const LaunchDesc &l = m.functions[0].launches[0];
  EXPECT_EQ(l.bytes, 4096);
  EXPECT_EQ(l.flops, 512);
  EXPECT_EQ(m.functions[0].launches[1].bytes, -1);
  std::string e = errorOf(bucketsEngine(replaced(bucketsSeed(), first, "\"launches\":[{\"bytes\":-4,\"kernel\":0,\"kv_layer\":0,")));
  EXPECT_NE(e.find("launches[0].bytes' is -4, outside [0, inf]"), std::string::npos) << e;
}

// A GEMM's grid: with `tiles`, its 48 column tiles times the row tiles of
// 64 the step's rows make (a 32-row step still has 48 tiles, not 24).
TEST(Manifest, EvaluatesGridsOfWholeTiles) {
  SizeRuleDesc r;
  r.factor = 48;
  r.divisor = 64;
  r.symbols = {"batch"};
  EXPECT_EQ(r.eval(32, 1, 0, 0), 24);
  r.tiles = true;
  EXPECT_EQ(r.eval(32, 1, 0, 0), 48);
  EXPECT_EQ(r.eval(64, 1, 0, 0), 48);
  EXPECT_EQ(r.eval(65, 1, 0, 0), 96);
  r.max = 60;
  EXPECT_EQ(r.eval(200, 1, 0, 0), 60);
}

// kiln compile --quantize's entries: a float tensor the loader rounds
// (packing rtn, its source, bits, group size, the stored input-feature
// axis); one missing its source, or with another axis or packing, is refused
// by field.
TEST(Manifest, ReadsQuantizeAtLoadEntriesAndRefusesBadOnes) {
  auto with = [](const std::string &entry) {
    return replaced(seed(), "\"weights\":[", "\"dequant_weights\":[" + entry + "],\"weights\":[");
  };
  EngineManifest m;
  Status s = readManifest(engineWith(with(R"({"name":"w.weight","source":"w.weight","packing":"rtn","bits":4,)"
                                          R"("group_size":32,"k_axis":0})")),
                          "t.engine", m);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(m.dequantWeights.size(), 1u);
  EXPECT_EQ(m.dequantWeights[0].source, "w.weight");
  EXPECT_EQ(m.dequantWeights[0].packing, "rtn");
  EXPECT_EQ(m.dequantWeights[0].kAxis, 0);
  EXPECT_EQ(m.dequantWeights[0].groupSize, 32);
  EXPECT_TRUE(m.dequantWeights[0].qweight.empty());
  const std::pair<const char *, const char *> bad[] = {
      {R"({"name":"w.weight","packing":"rtn","bits":4,"group_size":32})", "dequant_weights[0].source"},
      {R"({"name":"w.weight","source":"w.weight","packing":"rtn","bits":4,"group_size":32,"k_axis":2})",
       "dequant_weights[0].k_axis"},
      {R"({"name":"w.weight","source":"w.weight","packing":"rtn","bits":3,"group_size":32})",
       "dequant_weights[0].bits"},
      {R"({"name":"w.weight","source":"w.weight","packing":"nf4","bits":4,"group_size":32})",
       "dequant_weights[0]"},
  };
  for (const auto &[entry, field] : bad) {
    std::string e = errorOf(engineWith(with(entry)));
    EXPECT_NE(e.find(field), std::string::npos) << entry << " -> " << e;
  }
}
