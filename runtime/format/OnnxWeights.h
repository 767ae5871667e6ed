//===- OnnxWeights.h - an ONNX model's initializers, without protobuf -*- C++ -*-===//
//
// The runtime binds an ONNX model's weights by initializer name, as it binds
// safetensors. It reads the ModelProto's protobuf wire format itself (the
// runtime links no protobuf): graph.initializer entries with their name,
// dims, data type, and data, raw or typed inline or external beside the
// model (a relative location inside the model's directory). Raw and packed
// fixed-width data are read in place from the file; varint-encoded values
// (int32_data, int64_data, uint64_data) and unpacked floats are decoded.
// Every length, offset and size is checked against the file; errors name
// the file and the initializer.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_FORMAT_ONNXWEIGHTS_H
#define KILN_RUNTIME_FORMAT_ONNXWEIGHTS_H

#include "runtime/format/Safetensors.h"

namespace kiln::format {

/// Appends the initializers of the ONNX file at `path` to `index`, as
/// tensors with safetensors dtype names ("F32", "BF16", "I64", ...).
Status readOnnxInitializers(const std::string &path, SafetensorsIndex &index);

/// The same on the file's bytes; external data is looked up beside `path`.
Status parseOnnxInitializers(std::string_view file, const std::string &path, SafetensorsIndex &index);

/// The weights of a model: an .onnx file's initializers, or a directory's
/// safetensors (readSafetensorsDir).
Status readWeightIndex(const std::string &model, SafetensorsIndex &index);

} // namespace kiln::format

#endif
