//===- Engine.cpp - the engine file container -----------------------------===//
#include "runtime/format/Engine.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace kiln::format {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '\0'};

void put32(std::vector<uint8_t> &b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void put64(std::vector<uint8_t> &b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get32(const std::vector<uint8_t> &b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(b[at + i]) << (8 * i);
  return v;
}
uint64_t get64(const std::vector<uint8_t> &b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}
/// A NUL-padded fixed-size name field; false if it has no NUL or bytes after it.
bool fixedString(const std::vector<uint8_t> &b, size_t at, size_t n, std::string &out) {
  const char *p = reinterpret_cast<const char *>(b.data() + at);
  size_t len = strnlen(p, n);
  if (len == n)
    return false;
  for (size_t i = len; i < n; ++i)
    if (p[i] != 0)
      return false;
  out.assign(p, len);
  return true;
}
size_t alignUp(size_t v) {
  return (v + kEngineSectionAlignment - 1) / kEngineSectionAlignment * kEngineSectionAlignment;
}

} // namespace

uint64_t fnv1a64(const void *data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto *p = static_cast<const uint8_t *>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

const EngineSection *EngineFile::find(std::string_view name) const {
  for (const EngineSection &s : sections)
    if (s.name == name)
      return &s;
  return nullptr;
}

Status EngineWriter::add(std::string name, std::string bytes) {
  if (name.empty() || name.size() > 15)
    return Status::error("engine section name '" + name + "' must have 1 to 15 bytes");
  for (const auto &[n, b] : sections_)
    if (n == name)
      return Status::error("engine section '" + name + "' added twice");
  if (sections_.size() >= kEngineMaxSections)
    return Status::error("too many engine sections");
  sections_.emplace_back(std::move(name), std::move(bytes));
  return Status::ok();
}

std::vector<uint8_t> EngineWriter::serialize() const {
  size_t tableEnd = kEngineHeaderSize + sections_.size() * kEngineSectionEntrySize;
  size_t at = alignUp(tableEnd);
  std::vector<size_t> offsets;
  for (const auto &[n, b] : sections_) {
    offsets.push_back(at);
    at = alignUp(at + b.size());
  }
  std::vector<uint8_t> out(at, 0);
  std::memcpy(out.data(), kMagic, 8);
  put32(out, 8, kEngineFormatVersion);
  put32(out, 12, static_cast<uint32_t>(kEngineHeaderSize));
  put32(out, 16, static_cast<uint32_t>(sections_.size()));
  put32(out, 20, 0);
  put64(out, 24, out.size());
  std::memcpy(out.data() + 40, compilerVersion_.data(), std::min<size_t>(15, compilerVersion_.size()));
  for (size_t i = 0; i < sections_.size(); ++i) {
    const auto &[name, bytes] = sections_[i];
    size_t e = kEngineHeaderSize + i * kEngineSectionEntrySize;
    std::memcpy(out.data() + e, name.data(), name.size());
    put64(out, e + 16, offsets[i]);
    put64(out, e + 24, bytes.size());
    put64(out, e + 32, fnv1a64(bytes.data(), bytes.size()));
    if (!bytes.empty())
      std::memcpy(out.data() + offsets[i], bytes.data(), bytes.size());
  }
  put64(out, 32, fnv1a64(out.data() + kEngineHeaderSize, tableEnd - kEngineHeaderSize));
  return out;
}

Status EngineWriter::write(const std::string &path) const {
  std::vector<uint8_t> bytes = serialize();
  std::ofstream f(path, std::ios::binary);
  if (!f)
    return Status::error(path + ": cannot write the engine");
  f.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return f ? Status::ok() : Status::error(path + ": write failed");
}

Status parseEngine(std::vector<uint8_t> bytes, std::string_view source, EngineFile &out) {
  std::string src(source);
  auto bad = [&](const std::string &why) { return Status::error(src + ": " + why); };
  if (bytes.size() < kEngineHeaderSize || std::memcmp(bytes.data(), kMagic, 8) != 0)
    return bad("not a kiln engine (no KILNENG header)");
  uint32_t version = get32(bytes, 8);
  if (version != kEngineFormatVersion)
    return bad("engine format version " + std::to_string(version) + ", this runtime reads " +
               std::to_string(kEngineFormatVersion) + ": recompile the model with this kiln");
  if (get32(bytes, 12) != kEngineHeaderSize)
    return bad("header size " + std::to_string(get32(bytes, 12)) + ", expected " +
               std::to_string(kEngineHeaderSize));
  uint64_t count = get32(bytes, 16);
  uint64_t fileSize = get64(bytes, 24);
  if (fileSize != bytes.size())
    return bad("the header says " + std::to_string(fileSize) + " bytes but the file has " +
               std::to_string(bytes.size()) + (bytes.size() < fileSize ? " (truncated)" : ""));
  if (count > kEngineMaxSections)
    return bad(std::to_string(count) + " sections is more than " +
               std::to_string(kEngineMaxSections));
  uint64_t tableEnd = kEngineHeaderSize + count * kEngineSectionEntrySize;
  if (tableEnd > bytes.size())
    return bad("the section table runs past the end of the file");
  if (get64(bytes, 32) != fnv1a64(bytes.data() + kEngineHeaderSize, tableEnd - kEngineHeaderSize))
    return bad("the section table is corrupted (checksum mismatch)");
  EngineFile e;
  e.formatVersion = version;
  if (!fixedString(bytes, 40, 16, e.compilerVersion))
    return bad("the compiler version field is not a NUL-padded string");
  for (uint64_t i = 0; i < count; ++i) {
    size_t at = kEngineHeaderSize + i * kEngineSectionEntrySize;
    EngineSection s;
    if (!fixedString(bytes, at, 16, s.name) || s.name.empty())
      return bad("section " + std::to_string(i) + " has no valid name");
    s.offset = get64(bytes, at + 16);
    s.size = get64(bytes, at + 24);
    s.checksum = get64(bytes, at + 32);
    if (s.offset % kEngineSectionAlignment || s.offset < tableEnd || s.offset > bytes.size() ||
        s.size > bytes.size() - s.offset)
      return bad("section '" + s.name + "' [" + std::to_string(s.offset) + ", +" +
                 std::to_string(s.size) + ") is misaligned or outside the file");
    for (const EngineSection &o : e.sections) {
      if (o.name == s.name)
        return bad("section '" + s.name + "' appears twice");
      if (s.size && o.size && s.offset < o.offset + o.size && o.offset < s.offset + s.size)
        return bad("sections '" + o.name + "' and '" + s.name + "' overlap");
    }
    if (fnv1a64(bytes.data() + s.offset, s.size) != s.checksum)
      return bad("section '" + s.name + "' is corrupted (checksum mismatch)");
    e.sections.push_back(std::move(s));
  }
  e.bytes = std::move(bytes);
  out = std::move(e);
  return Status::ok();
}

Status readEngine(const std::string &path, EngineFile &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return Status::error(path + ": cannot open the engine");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parseEngine(std::move(bytes), path, out);
}

} // namespace kiln::format
