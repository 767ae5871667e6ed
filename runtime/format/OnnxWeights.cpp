//===- OnnxWeights.cpp - an ONNX model's initializers, without protobuf ---===//
#include "runtime/format/OnnxWeights.h"

#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::format {

namespace fs = std::filesystem;

namespace {

/// A protobuf message's bytes, read field by field with every length
/// checked against what is left.
class Wire {
public:
  Wire(std::string_view bytes, uint64_t base) : p_(bytes), base_(base) {}
  bool done() const { return at_ >= p_.size(); }
  /// The next field's number and wire type; false on malformed input.
  bool field(uint32_t &number, uint32_t &type) {
    uint64_t key;
    if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
      return false;
    number = static_cast<uint32_t>(key >> 3);
    type = static_cast<uint32_t>(key & 7);
    return true;
  }
  bool varint(uint64_t &v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ >= p_.size())
        return false;
      uint8_t b = static_cast<uint8_t>(p_[at_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80))
        return true;
    }
    return false;
  }
  /// A length-delimited field: its bytes and their offset in the file.
  bool bytes(std::string_view &out, uint64_t &offset) {
    uint64_t n;
    if (!varint(n) || n > p_.size() - at_)
      return false;
    out = p_.substr(at_, n);
    offset = base_ + at_;
    at_ += n;
    return true;
  }
  bool fixed(size_t n, std::string_view &out) {
    if (n > p_.size() - at_)
      return false;
    out = p_.substr(at_, n);
    at_ += n;
    return true;
  }
  bool skip(uint32_t type) {
    uint64_t v;
    std::string_view s;
    switch (type) {
    case 0: return varint(v);
    case 1: return fixed(8, s);
    case 2: return bytes(s, v);
    case 5: return fixed(4, s);
    default: return false; // groups (3, 4) are not used by ONNX
    }
  }

private:
  std::string_view p_;
  uint64_t base_;
  size_t at_ = 0;
};

/// ONNX TensorProto.DataType -> safetensors dtype name and element size.
bool dtypeOf(uint64_t t, std::string &name, size_t &size) {
  switch (t) {
  case 1: name = "F32"; size = 4; return true;
  case 2: name = "U8"; size = 1; return true;
  case 3: name = "I8"; size = 1; return true;
  case 5: name = "I16"; size = 2; return true;
  case 6: name = "I32"; size = 4; return true;
  case 7: name = "I64"; size = 8; return true;
  case 9: name = "BOOL"; size = 1; return true;
  case 10: name = "F16"; size = 2; return true;
  case 11: name = "F64"; size = 8; return true;
  case 16: name = "BF16"; size = 2; return true;
  default: return false;
  }
}

struct RawTensor {
  std::string name;
  uint64_t dataType = 0, location = 0;
  std::vector<int64_t> dims;
  bool haveRaw = false;
  uint64_t rawOffset = 0, rawSize = 0;
  std::string_view packedFixed;  // float_data / double_data, packed
  uint64_t packedOffset = 0;
  size_t fixedWidth = 0;         // 4 or 8 when a typed fixed field was seen
  std::string unpacked;          // fixed values given one by one
  std::vector<uint64_t> varints; // int32_data, int64_data, uint64_data
  std::vector<std::pair<std::string, std::string>> external;
};

Status malformed(const std::string &path, const std::string &where) {
  return Status::error(path + ": not a valid ONNX model (malformed protobuf in " + where + ")");
}

Status parseTensor(std::string_view bytes, uint64_t base, const std::string &path, RawTensor &t) {
  Wire w(bytes, base);
  while (!w.done()) {
    uint32_t n, type;
    if (!w.field(n, type))
      return malformed(path, "an initializer");
    std::string_view s;
    uint64_t v, off;
    bool ok = true;
    if (n == 1 && type == 0) { // dims, unpacked
      ok = w.varint(v);
      t.dims.push_back(static_cast<int64_t>(v));
    } else if (n == 1 && type == 2) { // dims, packed
      ok = w.bytes(s, off);
      Wire d(s, off);
      while (ok && !d.done()) {
        ok = d.varint(v);
        t.dims.push_back(static_cast<int64_t>(v));
      }
    } else if (n == 2 && type == 0) {
      ok = w.varint(t.dataType);
    } else if ((n == 4 || n == 10) && type == 2) { // float_data / double_data, packed
      ok = w.bytes(t.packedFixed, t.packedOffset);
      t.fixedWidth = n == 4 ? 4 : 8;
    } else if ((n == 4 && type == 5) || (n == 10 && type == 1)) { // one value at a time
      ok = w.fixed(n == 4 ? 4 : 8, s);
      t.unpacked.append(s);
      t.fixedWidth = n == 4 ? 4 : 8;
    } else if ((n == 5 || n == 7 || n == 11) && type == 0) {
      ok = w.varint(v);
      t.varints.push_back(v);
    } else if ((n == 5 || n == 7 || n == 11) && type == 2) {
      ok = w.bytes(s, off);
      Wire d(s, off);
      while (ok && !d.done()) {
        ok = d.varint(v);
        t.varints.push_back(v);
      }
    } else if (n == 8 && type == 2) {
      ok = w.bytes(s, off);
      t.name = std::string(s);
    } else if (n == 9 && type == 2) {
      ok = w.bytes(s, t.rawOffset);
      t.rawSize = s.size();
      t.haveRaw = true;
    } else if (n == 13 && type == 2) { // external_data: StringStringEntryProto
      ok = w.bytes(s, off);
      Wire e(s, off);
      std::string key, value;
      while (ok && !e.done()) {
        uint32_t en, et;
        std::string_view es;
        uint64_t eo;
        ok = e.field(en, et);
        if (ok && (en == 1 || en == 2) && et == 2) {
          ok = e.bytes(es, eo);
          (en == 1 ? key : value) = std::string(es);
        } else if (ok) {
          ok = e.skip(et);
        }
      }
      t.external.emplace_back(key, value);
    } else if (n == 14 && type == 0) {
      ok = w.varint(t.location);
    } else {
      ok = w.skip(type);
    }
    if (!ok)
      return malformed(path, t.name.empty() ? "an initializer" : "initializer '" + t.name + "'");
  }
  return Status::ok();
}

/// A non-negative decimal, or -1.
int64_t count(const std::string &s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoll(s);
}

Status toTensor(const RawTensor &r, const std::string &path, SafetensorsTensor &t) {
  std::string what = path + ": initializer '" + r.name + "'";
  if (r.name.empty())
    return Status::error(path + ": an initializer has no name");
  if (!dtypeOf(r.dataType, t.dtype, t.elementSize))
    return Status::error(what + " has ONNX data type " + std::to_string(r.dataType) +
                         ", which the runtime does not bind");
  t.name = r.name;
  t.file = path;
  uint64_t elements = 1;
  for (int64_t d : r.dims) {
    if (d < 0 || (d > 0 && elements > (uint64_t(1) << 62) / static_cast<uint64_t>(d)))
      return Status::error(what + " has an impossible shape");
    elements *= static_cast<uint64_t>(d);
    t.shape.push_back(d);
  }
  if (elements > (uint64_t(1) << 62) / t.elementSize)
    return Status::error(what + " has an impossible shape");
  t.size = elements * t.elementSize;
  auto sizeError = [&](uint64_t have) {
    return Status::error(what + " holds " + std::to_string(have) + " bytes, its data type and shape need " +
                         std::to_string(t.size));
  };
  if (r.location == 1) { // EXTERNAL
    std::string location;
    int64_t offset = 0, length = -1;
    bool bad = false;
    for (const auto &[k, v] : r.external) {
      if (k == "location") {
        location = v;
      } else if (k == "offset" || k == "length") {
        int64_t c = count(v);
        bad |= c < 0;
        (k == "offset" ? offset : length) = c;
      }
    }
    fs::path loc(location);
    if (location.empty())
      return Status::error(what + ": external data without a location");
    if (loc.is_absolute())
      return Status::error(what + ": external data location '" + location + "' is an absolute path");
    for (const auto &part : loc)
      if (part == "..")
        return Status::error(what + ": external data location '" + location + "' leaves the model's directory");
    if (bad)
      return Status::error(what + ": external data offset or length is not a non-negative integer");
    fs::path file = fs::path(path).parent_path() / loc;
    std::error_code ec;
    uint64_t size = fs::file_size(file, ec);
    if (ec)
      return Status::error(what + ": cannot open its external data " + file.string());
    uint64_t len = length < 0 ? t.size : static_cast<uint64_t>(length);
    if (static_cast<uint64_t>(offset) > size || len > size - static_cast<uint64_t>(offset))
      return Status::error(what + ": external data [" + std::to_string(offset) + ", +" + std::to_string(len) +
                           ") runs past the end of " + file.string());
    if (len != t.size)
      return sizeError(len);
    t.file = file.string();
    t.offset = static_cast<uint64_t>(offset);
    return Status::ok();
  }
  if (r.haveRaw) {
    if (r.rawSize != t.size)
      return sizeError(r.rawSize);
    t.offset = r.rawOffset;
    return Status::ok();
  }
  if (!r.packedFixed.empty() || !r.unpacked.empty()) {
    if (r.fixedWidth != t.elementSize || (r.dataType != 1 && r.dataType != 11))
      return Status::error(what + " gives float_data/double_data for ONNX data type " +
                           std::to_string(r.dataType));
    if (!r.packedFixed.empty() && !r.unpacked.empty())
      return Status::error(what + " mixes packed and unpacked values");
    uint64_t have = r.packedFixed.empty() ? r.unpacked.size() : r.packedFixed.size();
    if (have != t.size)
      return sizeError(have);
    if (!r.packedFixed.empty())
      t.offset = r.packedOffset;
    else
      t.inlineData = r.unpacked;
    return Status::ok();
  }
  // int32_data (INT32, INT16, INT8, UINT8, BOOL, FLOAT16, BFLOAT16 bits),
  // int64_data, uint64_data: decoded to the element width.
  if (r.varints.size() != elements)
    return sizeError(r.varints.size() * t.elementSize);
  t.inlineData.resize(t.size);
  for (size_t i = 0; i < r.varints.size(); ++i) {
    uint64_t v = r.varints[i];
    std::memcpy(t.inlineData.data() + i * t.elementSize, &v, t.elementSize); // little-endian
  }
  return Status::ok();
}

} // namespace

Status parseOnnxInitializers(std::string_view file, const std::string &path, SafetensorsIndex &index) {
  Wire model(file, 0);
  bool sawGraph = false;
  while (!model.done()) {
    uint32_t n, type;
    if (!model.field(n, type))
      return malformed(path, "the model");
    if (n != 7 || type != 2) {
      if (!model.skip(type))
        return malformed(path, "the model");
      continue;
    }
    sawGraph = true;
    std::string_view graph;
    uint64_t graphOffset;
    if (!model.bytes(graph, graphOffset))
      return malformed(path, "the graph");
    Wire g(graph, graphOffset);
    while (!g.done()) {
      uint32_t gn, gt;
      if (!g.field(gn, gt))
        return malformed(path, "the graph");
      if (gn == 15 && gt == 2)
        return Status::error(path + ": sparse initializers are not supported");
      if (gn != 5 || gt != 2) {
        if (!g.skip(gt))
          return malformed(path, "the graph");
        continue;
      }
      std::string_view tensor;
      uint64_t tensorOffset;
      if (!g.bytes(tensor, tensorOffset))
        return malformed(path, "an initializer");
      RawTensor r;
      KILN_RETURN_IF_ERROR(parseTensor(tensor, tensorOffset, path, r));
      SafetensorsTensor t;
      KILN_RETURN_IF_ERROR(toTensor(r, path, t));
      if (index.find(t.name))
        return Status::error(path + ": initializer '" + t.name + "' appears twice");
      index.tensors.push_back(std::move(t));
    }
  }
  if (!sawGraph)
    return Status::error(path + ": not an ONNX model (no graph)");
  index.files.push_back(path);
  return Status::ok();
}

Status readOnnxInitializers(const std::string &path, SafetensorsIndex &index) {
  // Mapped, not read: raw data stays in the page cache until bound.
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return Status::error(path + ": cannot open file");
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return Status::error(path + ": not an ONNX model (empty or unreadable)");
  }
  size_t size = static_cast<size_t>(st.st_size);
  void *p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED)
    return Status::error(path + ": cannot map file");
  Status s = parseOnnxInitializers(std::string_view(static_cast<const char *>(p), size), path, index);
  ::munmap(p, size);
  return s;
}

Status readWeightIndex(const std::string &model, SafetensorsIndex &index) {
  std::error_code ec;
  if (fs::is_regular_file(model, ec) && fs::path(model).extension() == ".onnx")
    return readOnnxInitializers(model, index);
  return readSafetensorsDir(model, index);
}

} // namespace kiln::format
