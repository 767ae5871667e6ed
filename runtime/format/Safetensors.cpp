//===- Safetensors.cpp - safetensors headers, single and sharded ----------===//
#include "runtime/format/Safetensors.h"

#include "runtime/format/Json.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace kiln::format {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20; // as the reference reader

Status readFile(const std::string &path, std::string &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open file");
  out.assign(std::istreambuf_iterator<char>(in), {});
  return Status::ok();
}

/// a * b into `out`, false on overflow.
bool mulOverflow(uint64_t a, uint64_t b, uint64_t &out) {
  return __builtin_mul_overflow(a, b, &out);
}

Status parseTensor(const std::string &path, const std::string &name,
                   const JsonValue &v, uint64_t dataStart, uint64_t dataSize,
                   SafetensorsTensor &t) {
  auto fail = [&](const std::string &m) {
    return Status::error(path + ": tensor '" + name + "': " + m);
  };
  if (!v.isObject())
    return fail("entry is not an object");
  const JsonValue *dtype = v.find("dtype"), *shape = v.find("shape"),
                  *offsets = v.find("data_offsets");
  if (!dtype || !dtype->isString())
    return fail("missing string 'dtype'");
  if (!shape || !shape->isArray())
    return fail("missing array 'shape'");
  if (!offsets || !offsets->isArray() || offsets->asArray().size() != 2)
    return fail("'data_offsets' must be [begin, end]");
  t.name = name;
  t.dtype = dtype->asString();
  t.elementSize = safetensorsDTypeSize(t.dtype);
  if (!t.elementSize)
    return fail("unknown dtype '" + t.dtype + "'");
  uint64_t elements = 1;
  for (const JsonValue &d : shape->asArray()) {
    if (!d.isInteger() || d.asInt() < 0)
      return fail("shape entries must be non-negative integers");
    t.shape.push_back(d.asInt());
    if (mulOverflow(elements, static_cast<uint64_t>(d.asInt()), elements))
      return fail("shape overflows");
  }
  const JsonValue &b = offsets->asArray()[0], &e = offsets->asArray()[1];
  if (!b.isInteger() || !e.isInteger() || b.asInt() < 0 || e.asInt() < b.asInt())
    return fail("data_offsets must be integers with 0 <= begin <= end");
  uint64_t begin = b.asInt(), end = e.asInt(), bytes;
  if (end > dataSize)
    return fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") run past the " + std::to_string(dataSize) + " bytes of data");
  if (mulOverflow(elements, t.elementSize, bytes) || bytes != end - begin)
    return fail("dtype " + t.dtype + " and shape need " + std::to_string(bytes) +
                " bytes, data_offsets give " + std::to_string(end - begin));
  t.offset = dataStart + begin;
  t.size = end - begin;
  t.file = path;
  return Status::ok();
}

} // namespace

size_t safetensorsDTypeSize(const std::string &d) {
  if (d == "F64" || d == "I64" || d == "U64")
    return 8;
  if (d == "F32" || d == "I32" || d == "U32")
    return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16")
    return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2")
    return 1;
  return 0;
}

const SafetensorsTensor *SafetensorsIndex::find(const std::string &name) const {
  for (const SafetensorsTensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

Status readSafetensorsHeader(const std::string &path, SafetensorsIndex &index) {
  std::error_code ec;
  uint64_t fileSize = fs::file_size(path, ec);
  if (ec)
    return Status::error(path + ": cannot open file (" + ec.message() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open file");
  // Read the length, then exactly the header it announces (if it is sane).
  std::string prefix(std::min<uint64_t>(fileSize, 8), '\0');
  if (!in.read(prefix.data(), static_cast<std::streamsize>(prefix.size())))
    return Status::error(path + ": cannot read the header length");
  if (prefix.size() == 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = (n << 8) | static_cast<unsigned char>(prefix[i]);
    if (n <= fileSize - 8 && n <= kMaxHeaderBytes) {
      prefix.resize(8 + n);
      if (!in.read(prefix.data() + 8, static_cast<std::streamsize>(n)))
        return Status::error(path + ": cannot read the header");
    }
  }
  return parseSafetensorsHeader(prefix, fileSize, path, index);
}

Status parseSafetensorsHeader(std::string_view prefix, uint64_t fileSize,
                              const std::string &path, SafetensorsIndex &index) {
  if (fileSize < 8 || prefix.size() < 8)
    return Status::error(path + ": truncated: " + std::to_string(fileSize) +
                         " bytes, too short for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(prefix[i]);
  if (n > fileSize - 8)
    return Status::error(path + ": header length " + std::to_string(n) +
                         " runs past the end of the " + std::to_string(fileSize) +
                         "-byte file");
  if (n > kMaxHeaderBytes)
    return Status::error(path + ": header length " + std::to_string(n) +
                         " exceeds the 100 MiB limit");
  if (prefix.size() < 8 + n)
    return Status::error(path + ": cannot read the header");
  std::string_view header = prefix.substr(8, n);
  JsonValue root;
  if (Status s = parseJson(header, root); !s)
    return s.withContext(path + ": header is not valid JSON");
  if (!root.isObject())
    return Status::error(path + ": header is not a JSON object");

  uint64_t dataStart = 8 + n, dataSize = fileSize - dataStart;
  std::vector<SafetensorsTensor> found;
  for (const auto &[name, v] : root.asObject()) {
    if (name == "__metadata__") {
      if (!v.isObject())
        return Status::error(path + ": __metadata__ is not an object");
      for (const auto &[k, mv] : v.asObject()) {
        if (!mv.isString())
          return Status::error(path + ": __metadata__ value '" + k + "' is not a string");
        index.metadata[k] = mv.asString();
      }
      continue;
    }
    SafetensorsTensor t;
    KILN_RETURN_IF_ERROR(parseTensor(path, name, v, dataStart, dataSize, t));
    found.push_back(std::move(t));
  }
  // No two tensors may share bytes.
  std::vector<const SafetensorsTensor *> byOffset;
  for (const SafetensorsTensor &t : found)
    if (t.size)
      byOffset.push_back(&t);
  std::sort(byOffset.begin(), byOffset.end(),
            [](auto *a, auto *b) { return a->offset < b->offset; });
  for (size_t i = 1; i < byOffset.size(); ++i)
    if (byOffset[i]->offset < byOffset[i - 1]->offset + byOffset[i - 1]->size)
      return Status::error(path + ": tensors '" + byOffset[i - 1]->name + "' and '" +
                           byOffset[i]->name + "' overlap");
  for (SafetensorsTensor &t : found) {
    if (index.find(t.name))
      return Status::error(path + ": tensor '" + t.name + "' appears in two files");
    index.tensors.push_back(std::move(t));
  }
  index.files.push_back(path);
  return Status::ok();
}

Status readSafetensorsDir(const std::string &dir, SafetensorsIndex &index) {
  fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    return Status::error(dir + ": not a directory");
  fs::path indexPath = root / "model.safetensors.index.json";
  if (fs::exists(indexPath, ec)) {
    std::string text;
    KILN_RETURN_IF_ERROR(readFile(indexPath.string(), text));
    JsonValue v;
    if (Status s = parseJson(text, v); !s)
      return s.withContext(indexPath.string());
    const JsonValue *map = v.find("weight_map");
    if (!map || !map->isObject())
      return Status::error(indexPath.string() + ": missing object 'weight_map'");
    std::set<std::string> shards;
    for (const auto &[name, file] : map->asObject()) {
      if (!file.isString())
        return Status::error(indexPath.string() + ": weight_map['" + name +
                             "'] is not a file name");
      const std::string &f = file.asString();
      // Shards live beside the index: no paths, no way out of the directory.
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
          f == "." || f == "..")
        return Status::error(indexPath.string() + ": shard name '" + f +
                             "' is not a plain file name");
      shards.insert(f);
    }
    for (const std::string &f : shards)
      KILN_RETURN_IF_ERROR(readSafetensorsHeader((root / f).string(), index));
    for (const auto &[name, file] : map->asObject()) {
      const SafetensorsTensor *t = index.find(name);
      if (!t)
        return Status::error(indexPath.string() + ": tensor '" + name +
                             "' is missing from shard " + file.asString());
      if (fs::path(t->file).filename() != file.asString())
        return Status::error(indexPath.string() + ": tensor '" + name + "' is in " +
                             t->file + ", the index says " + file.asString());
    }
    return Status::ok();
  }
  fs::path single = root / "model.safetensors";
  if (fs::exists(single, ec))
    return readSafetensorsHeader(single.string(), index);
  std::vector<std::string> files;
  for (const auto &e : fs::directory_iterator(root, ec))
    if (e.path().extension() == ".safetensors")
      files.push_back(e.path().string());
  if (files.empty())
    return Status::error(dir + ": no model.safetensors, no index, no *.safetensors");
  std::sort(files.begin(), files.end());
  for (const std::string &f : files)
    KILN_RETURN_IF_ERROR(readSafetensorsHeader(f, index));
  return Status::ok();
}

Status readTensorData(const SafetensorsTensor &t, void *dst) {
  if (!t.inlineData.empty() || t.size == 0) {
    if (t.inlineData.size() != t.size)
      return Status::error(t.file + ": tensor '" + t.name + "' holds " + std::to_string(t.inlineData.size()) +
                           " bytes, not " + std::to_string(t.size));
    if (t.size)
      std::memcpy(dst, t.inlineData.data(), t.size);
    return Status::ok();
  }
  std::ifstream in(t.file, std::ios::binary);
  if (!in)
    return Status::error(t.file + ": cannot open file");
  in.seekg(static_cast<std::streamoff>(t.offset));
  if (!in.read(static_cast<char *>(dst), static_cast<std::streamsize>(t.size)))
    return Status::error(t.file + ": cannot read tensor '" + t.name + "'");
  return Status::ok();
}

} // namespace kiln::format
