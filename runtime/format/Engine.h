//===- Engine.h - the engine file container ----------------------*- C++ -*-===//
//
// An engine file is a header, a section table and named sections, each
// 256-byte aligned and checksummed (docs/engine-format.md):
//
//   offset 0   header, 64 bytes, little-endian:
//                magic "KILNENG\0", format version (u32), header size (u32),
//                section count (u32), flags (u32), file size (u64),
//                table checksum (u64), compiler version (char[16], NUL-padded),
//                reserved (8 bytes, zero)
//   offset 64  section table: count x 48 bytes:
//                name (char[16], NUL-padded), offset (u64), size (u64),
//                checksum (u64), reserved (8 bytes, zero)
//   then       section bytes, each at a multiple of 256
//
// Checksums are FNV-1a 64 of the bytes. The reader checks everything before
// handing out a section: magic, version, sizes, that every section lies in
// the file without overlapping another, unique names, and every checksum;
// each error names the file and what is wrong. The compiler writes engines
// with EngineWriter; the runtime reads them with readEngine. No MLIR here.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_FORMAT_ENGINE_H
#define KILN_RUNTIME_FORMAT_ENGINE_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::format {

constexpr uint32_t kEngineFormatVersion = 1;
constexpr size_t kEngineHeaderSize = 64;
constexpr size_t kEngineSectionEntrySize = 48;
constexpr size_t kEngineSectionAlignment = 256;
constexpr size_t kEngineMaxSections = 4096;

/// FNV-1a, 64 bits.
uint64_t fnv1a64(const void *data, size_t size);

struct EngineSection {
  std::string name;
  uint64_t offset = 0, size = 0, checksum = 0;
};

/// A verified engine: its bytes and where each section is.
struct EngineFile {
  uint32_t formatVersion = 0;
  std::string compilerVersion;
  std::vector<EngineSection> sections;
  std::vector<uint8_t> bytes;
  /// The section called `name`, or null.
  const EngineSection *find(std::string_view name) const;
  /// The bytes of a section (which must be one of `sections`).
  std::string_view data(const EngineSection &s) const {
    return {reinterpret_cast<const char *>(bytes.data()) + s.offset, static_cast<size_t>(s.size)};
  }
};

class EngineWriter {
public:
  explicit EngineWriter(std::string compilerVersion)
      : compilerVersion_(std::move(compilerVersion)) {}
  /// Adds a section; names are at most 15 bytes and unique.
  Status add(std::string name, std::string bytes);
  /// The whole file.
  std::vector<uint8_t> serialize() const;
  Status write(const std::string &path) const;

private:
  std::string compilerVersion_;
  std::vector<std::pair<std::string, std::string>> sections_;
};

/// Verifies `bytes` as an engine; `source` names it in errors.
Status parseEngine(std::vector<uint8_t> bytes, std::string_view source, EngineFile &out);
/// Reads and verifies the engine file at `path`.
Status readEngine(const std::string &path, EngineFile &out);

} // namespace kiln::format

#endif
