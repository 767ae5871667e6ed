//===- OnnxWeightsTest.cpp - ONNX initializers without protobuf -----------===//
//
// The committed torch.onnx export of the tiny Llama must give the same
// weights as its Hugging Face safetensors (bf16, exported as f32); hand-built
// protobuf covers each encoding of tensor data and each error.
//
//===----------------------------------------------------------------------===//
#include "runtime/format/OnnxWeights.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace kiln;
using namespace kiln::format;

namespace {

std::string varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    s += static_cast<char>(b | (v ? 0x80 : 0));
  } while (v);
  return s;
}
std::string num(uint32_t field, uint64_t v) { return varint(field << 3) + varint(v); }
std::string len(uint32_t field, const std::string &bytes) {
  return varint((field << 3) | 2) + varint(bytes.size()) + bytes;
}
std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.begin(), s.size());
  return s;
}
/// A ModelProto holding a graph of these TensorProtos (initializers).
std::string model(std::initializer_list<std::string> tensors) {
  std::string graph = len(1, "ignored node bytes"); // field 1: node (skipped)
  for (const std::string &t : tensors)
    graph += len(5, t);
  return num(1, 8) + len(7, graph); // ir_version, graph
}
std::string tensor(const std::string &name, uint64_t dtype, std::initializer_list<uint64_t> dims,
                   const std::string &data) {
  std::string t;
  for (uint64_t d : dims)
    t += num(1, d);
  return t + num(2, dtype) + len(8, name) + data;
}

Status parse(const std::string &bytes, SafetensorsIndex &index, const std::string &path = "m.onnx") {
  return parseOnnxInitializers(bytes, path, index);
}

std::vector<char> bytesOf(const SafetensorsTensor &t) {
  std::vector<char> v(t.size);
  EXPECT_TRUE(readTensorData(t, v.data()).isOk());
  return v;
}

} // namespace

TEST(OnnxWeights, TheTinyLlamaExportHoldsTheSafetensorsWeights) {
  SafetensorsIndex onnx, st;
  Status s = readWeightIndex(std::string(KILN_SOURCE_DIR) + "/test/models/onnx/llama_plain.onnx", onnx);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_TRUE(readWeightIndex(std::string(KILN_SOURCE_DIR) + "/test/models/hf/llama", st).isOk());
  EXPECT_EQ(onnx.tensors.size(), 45u);
  const SafetensorsTensor *a = onnx.find("m.model.embed_tokens.weight"), *b = st.find("model.embed_tokens.weight");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{512, 64}));
  std::vector<char> x = bytesOf(*a), y = bytesOf(*b);
  ASSERT_EQ(x.size(), 2 * y.size());
  for (size_t i = 0; i < y.size() / 2; ++i) {
    uint16_t h;
    std::memcpy(&h, &y[2 * i], 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    ASSERT_EQ(std::memcmp(&u, &x[4 * i], 4), 0) << "element " << i;
  }
}

TEST(OnnxWeights, ReadsEveryEncodingOfTensorData) {
  std::string dir = ::testing::TempDir() + "/onnxw";
  std::filesystem::create_directories(dir + "/data");
  {
    std::ofstream f(dir + "/data/w.bin", std::ios::binary);
    f << "xxxx" << floats({5.0f, 6.0f});
  }
  std::string unpackedFloats;
  for (float v : {3.0f, 4.0f}) {
    std::string b(4, '\0');
    std::memcpy(b.data(), &v, 4);
    unpackedFloats += varint((4 << 3) | 5) + b;
  }
  std::string external = num(14, 1) + len(13, len(1, "location") + len(2, "data/w.bin")) +
                         len(13, len(1, "offset") + len(2, "4")) + len(13, len(1, "length") + len(2, "8"));
  std::string m = model({
      tensor("raw", 1, {2}, len(9, floats({1.0f, 2.0f}))),
      tensor("packed", 1, {2}, len(4, floats({7.0f, 8.0f}))),
      tensor("unpacked", 1, {2}, unpackedFloats),
      tensor("i64", 7, {3}, len(7, varint(1) + varint(300) + varint(uint64_t(-2)))),
      tensor("i32", 6, {2}, num(5, 9) + num(5, 70000)),
      tensor("ext", 1, {2}, external),
      tensor("scalar", 1, {}, len(9, floats({9.5f}))),
  });
  SafetensorsIndex index;
  Status s = parse(m, index, dir + "/m.onnx");
  ASSERT_TRUE(s.isOk()) << s.message();
  auto f32 = [&](const char *name) {
    const SafetensorsTensor *t = index.find(name);
    EXPECT_TRUE(t) << name;
    std::vector<char> v = t ? bytesOf(*t) : std::vector<char>();
    std::vector<float> out(v.size() / 4);
    std::memcpy(out.data(), v.data(), v.size());
    return out;
  };
  // Raw and packed data are read from the model's bytes, which this test
  // did not write to a file: check where they point instead.
  const SafetensorsTensor *raw = index.find("raw");
  ASSERT_TRUE(raw);
  float r[2];
  std::memcpy(r, m.data() + raw->offset, 8);
  EXPECT_EQ(r[0], 1.0f);
  EXPECT_EQ(r[1], 2.0f);
  const SafetensorsTensor *packed = index.find("packed");
  std::memcpy(r, m.data() + packed->offset, 8);
  EXPECT_EQ(r[1], 8.0f);
  EXPECT_EQ(f32("unpacked"), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(f32("ext"), (std::vector<float>{5.0f, 6.0f}));
  std::vector<char> i64 = bytesOf(*index.find("i64"));
  int64_t iv[3];
  std::memcpy(iv, i64.data(), 24);
  EXPECT_EQ(iv[0], 1);
  EXPECT_EQ(iv[1], 300);
  EXPECT_EQ(iv[2], -2);
  std::vector<char> i32 = bytesOf(*index.find("i32"));
  int32_t jv[2];
  std::memcpy(jv, i32.data(), 8);
  EXPECT_EQ(jv[1], 70000);
  EXPECT_EQ(index.find("scalar")->size, 4u);
  EXPECT_TRUE(index.find("scalar")->shape.empty());
}

TEST(OnnxWeights, NamesTheFileAndTheInitializerInErrors) {
  auto error = [](const std::string &bytes) {
    SafetensorsIndex index;
    Status s = parse(bytes, index);
    EXPECT_FALSE(s.isOk());
    return s.message();
  };
  std::string good = tensor("w", 1, {2}, len(9, floats({1.0f, 2.0f})));
  EXPECT_NE(error(model({tensor("w", 1, {3}, len(9, floats({1.0f, 2.0f})))}))
                .find("m.onnx: initializer 'w' holds 8 bytes, its data type and shape need 12"),
            std::string::npos);
  EXPECT_NE(error(model({tensor("w", 8, {1}, len(9, "abcd"))})).find("initializer 'w' has ONNX data type 8"),
            std::string::npos);
  EXPECT_NE(error(model({good, good})).find("initializer 'w' appears twice"), std::string::npos);
  std::string m = model({good});
  EXPECT_NE(error(m.substr(0, m.size() - 3)).find("m.onnx: not a valid ONNX model (malformed protobuf"),
            std::string::npos);
  EXPECT_NE(error(num(1, 8)).find("m.onnx: not an ONNX model (no graph)"), std::string::npos);
  EXPECT_NE(error(num(1, 8) + len(7, len(15, "sparse"))).find("sparse initializers are not supported"),
            std::string::npos);
  auto ext = [&](const std::string &where, const std::string &offset) {
    std::string e = num(14, 1) + len(13, len(1, "location") + len(2, where));
    if (!offset.empty())
      e += len(13, len(1, "offset") + len(2, offset));
    return error(model({tensor("w", 1, {2}, e)}));
  };
  EXPECT_NE(ext("../secret.bin", "").find("external data location '../secret.bin' leaves the model's directory"),
            std::string::npos);
  EXPECT_NE(ext("/etc/passwd", "").find("is an absolute path"), std::string::npos);
  EXPECT_NE(ext("missing.bin", "").find("cannot open its external data"), std::string::npos);
  EXPECT_NE(ext("w.bin", "-3").find("not a non-negative integer"), std::string::npos);
  EXPECT_NE(error(model({tensor("w", 1, {uint64_t(1) << 40, uint64_t(1) << 40}, "")})).find("impossible shape"),
            std::string::npos);
}
