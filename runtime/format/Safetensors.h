//===- Safetensors.h - safetensors headers, single and sharded --*- C++ -*-===//
//
// Reads only what describes the tensors: the 8-byte header length and the JSON
// header of each file (an 8B model's graph needs no weight bytes). Every
// offset, size and dtype is checked before anyone may read data: the header
// must lie inside the file, each tensor's [begin, end) inside the data
// region with end - begin = elements x dtype size, and no two tensors may
// overlap. Errors name the file and the tensor.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_FORMAT_SAFETENSORS_H
#define KILN_RUNTIME_FORMAT_SAFETENSORS_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::format {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as in the file: "BF16", "F32", "I64", ...
  size_t elementSize = 0;      // bytes per element
  std::vector<int64_t> shape;
  uint64_t offset = 0;         // absolute byte offset of the data in `file`
  uint64_t size = 0;           // bytes
  std::string file;            // path of the file holding it
  /// The bytes themselves when the file does not hold them contiguously
  /// (ONNX varint-encoded values); then `file` and `offset` are unused.
  std::string inlineData;
};

struct SafetensorsIndex {
  std::vector<SafetensorsTensor> tensors;          // in file order, then name order
  std::map<std::string, std::string> metadata;     // __metadata__ of the files
  std::vector<std::string> files;
  /// The tensor called `name`, or null.
  const SafetensorsTensor *find(const std::string &name) const;
};

/// Bytes per element of a safetensors dtype name; 0 when unknown.
size_t safetensorsDTypeSize(const std::string &dtype);

/// Parses the header of one .safetensors file and appends its tensors.
Status readSafetensorsHeader(const std::string &path, SafetensorsIndex &index);

/// The same on bytes already read: `prefix` holds the start of the file (at
/// least the 8-byte length and the header), `fileSize` its full size. `path`
/// names the file in errors and in the tensors found.
Status parseSafetensorsHeader(std::string_view prefix, uint64_t fileSize,
                              const std::string &path, SafetensorsIndex &index);

/// The tensors of a model directory: `model.safetensors.index.json` (sharded;
/// every shard named there, and every tensor in the shard its weight_map
/// says), else `model.safetensors`, else every `*.safetensors` file in it.
Status readSafetensorsDir(const std::string &dir, SafetensorsIndex &index);

/// Reads one tensor's bytes into `dst` (which holds `t.size` bytes), from
/// its file or its inline data.
Status readTensorData(const SafetensorsTensor &t, void *dst);

} // namespace kiln::format

#endif
