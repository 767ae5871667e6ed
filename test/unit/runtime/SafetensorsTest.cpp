#include "runtime/format/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using kiln::format::SafetensorsIndex;
namespace fs = std::filesystem;

namespace {

/// Writes a safetensors file: 8-byte little-endian length, header, data.
std::string writeFile(const std::string &name, const std::string &header,
                      size_t dataBytes, uint64_t lengthOverride = 0) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  uint64_t n = lengthOverride ? lengthOverride : header.size();
  for (int i = 0; i < 8; ++i)
    out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << std::string(dataBytes, '\x01');
  return path;
}

std::string errorOf(const std::string &path) {
  SafetensorsIndex index;
  kiln::Status s = kiln::format::readSafetensorsHeader(path, index);
  return s.isOk() ? "" : s.message();
}

} // namespace

TEST(Safetensors, ReadsTheTinyLlamaHeaderWithoutItsData) {
  SafetensorsIndex index;
  auto s = kiln::format::readSafetensorsDir(KILN_SOURCE_DIR "/test/models/hf/llama", index);
  ASSERT_TRUE(s.isOk()) << s.message();
  // 2 layers x 9 tensors, embedding, final norm, LM head.
  EXPECT_EQ(index.tensors.size(), 21u);
  const auto *up = index.find("model.layers.1.mlp.up_proj.weight");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->dtype, "BF16");
  EXPECT_EQ(up->shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(up->size, 172u * 64 * 2);
  EXPECT_EQ(index.metadata.at("format"), "pt");
  std::vector<char> bytes(up->size);
  ASSERT_TRUE(kiln::format::readTensorData(*up, bytes.data()).isOk());
}

TEST(Safetensors, MalformedFilesGiveTheirError) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  struct Case {
    const char *name;
    std::string header;
    size_t data;
    uint64_t length;
    const char *error;
  };
  const Case cases[] = {
      {"valid.safetensors", ok, 24, 0, ""},
      {"length_past_end.safetensors", ok, 24, 1ull << 40, "runs past the end of the"},
      {"not_json.safetensors", "{\"a\": ", 0, 0, "header is not valid JSON"},
      {"not_object.safetensors", "[1, 2]", 0, 0, "header is not a JSON object"},
      {"offsets_out_of_range.safetensors", ok, 16, 0, "run past the 16 bytes of data"},
      {"dtype_shape_mismatch.safetensors",
       R"({"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})", 24, 0,
       "need 12 bytes, data_offsets give 24"},
      {"unknown_dtype.safetensors",
       R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}})", 1, 0, "unknown dtype 'Q4'"},
      {"overlap.safetensors",
       R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
       16, 0, "overlap"},
      {"negative_dim.safetensors",
       R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0, 0,
       "shape entries must be non-negative integers"},
      {"reversed_offsets.safetensors",
       R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8, 0,
       "0 <= begin <= end"},
      {"huge_shape.safetensors",
       R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4, 0,
       "shape overflows"},
      {"missing_offsets.safetensors", R"({"a":{"dtype":"F32","shape":[1]}})", 4, 0,
       "'data_offsets' must be [begin, end]"},
  };
  for (const Case &c : cases) {
    std::string err = errorOf(writeFile(c.name, c.header, c.data, c.length));
    if (!*c.error) {
      EXPECT_EQ(err, "") << c.name;
      continue;
    }
    EXPECT_NE(err.find(c.name), std::string::npos) << "error must name the file: " << err;
    EXPECT_NE(err.find(c.error), std::string::npos) << c.name << " -> " << err;
  }
  // A file too short to hold the length.
  std::string tiny = ::testing::TempDir() + "/truncated.safetensors";
  std::ofstream(tiny, std::ios::binary) << "abc";
  EXPECT_NE(errorOf(tiny).find("truncated: 3 bytes"), std::string::npos) << errorOf(tiny);
  EXPECT_NE(errorOf(::testing::TempDir() + "/absent.safetensors").find("cannot open"),
            std::string::npos);
}

TEST(Safetensors, ShardedIndexIsChecked) {
  std::string dir = ::testing::TempDir() + "/sharded";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto shard = [&](const char *name, const char *tensor) {
    std::string h = std::string(R"({")") + tensor +
                    R"(":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})";
    fs::rename(writeFile(name, h, 8), dir + "/" + name);
  };
  shard("model-00001-of-00002.safetensors", "x");
  shard("model-00002-of-00002.safetensors", "y");
  auto withIndex = [&](const std::string &map) {
    std::ofstream(dir + "/model.safetensors.index.json")
        << R"({"metadata": {}, "weight_map": )" << map << "}";
    SafetensorsIndex index;
    kiln::Status s = kiln::format::readSafetensorsDir(dir, index);
    return std::make_pair(s.isOk() ? std::string() : s.message(), index.tensors.size());
  };
  auto [err, n] = withIndex(R"({"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"})");
  EXPECT_EQ(err, "");
  EXPECT_EQ(n, 2u);
  err = withIndex(R"({"x": "model-00001-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"})").first;
  EXPECT_NE(err.find("tensor 'z' is missing from shard"), std::string::npos) << err;
  err = withIndex(R"({"x": "../model-00001-of-00002.safetensors"})").first;
  EXPECT_NE(err.find("is not a plain file name"), std::string::npos) << err;
  err = withIndex(R"({"x": "/etc/passwd"})").first;
  EXPECT_NE(err.find("is not a plain file name"), std::string::npos) << err;
  err = withIndex(R"({"x": "model-00002-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"})").first;
  EXPECT_NE(err.find("tensor 'x' is missing from shard"), std::string::npos) << err;
}
