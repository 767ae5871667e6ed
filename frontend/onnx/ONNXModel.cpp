//===- ONNXModel.cpp - reading .onnx files (no MLIR) ----------------------===//
#include "frontend/onnx/ONNXModel.h"

#include <onnx/defs/schema.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using kiln::host::DType;
using kiln::host::Shape;
using kiln::host::Tensor;
namespace fs = std::filesystem;

namespace kiln::onnx_frontend {


Status nodeError(const std::string &path, const onnx::NodeProto &n, const std::string &m) {
  return Status::error(path + ": node '" + n.name() + "' (" + n.op_type() + "): " + m);
}

Status loadModel(const std::string &path, onnx::ModelProto &model) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open file");
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  return parseModel(bytes, path, model);
}

Status parseModel(std::string_view bytes, const std::string &path, onnx::ModelProto &model) {
  if (bytes.size() > (size_t(1) << 31) ||
      !model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return Status::error(path + ": not a valid ONNX model (protobuf parse failed)");
  if (!model.has_graph())
    return Status::error(path + ": the model has no graph");
  int64_t opset = -1;
  onnx::OperatorSetIdProto *defaultSet = nullptr;
  for (auto &o : *model.mutable_opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      opset = o.version(), defaultSet = &o;
  // 13 to the newest the onnx package defines (1.23: 28). From 22 on the
  // operators kiln imports changed only in the types they allow (and Range's
  // stash_type, checked where it is read).
  if (opset > 28 || opset < 1)
    return Status::error(path + ": default-domain opset " + std::to_string(opset) +
                         " is not supported (kiln imports opsets 13 to 28)");
  if (opset < 13) {
    // An older model whose every operator is defined in its opset as in 13
    // (ONNX's own schemas say so) is imported as an opset-13 model; one
    // using an operator that changed since is refused, naming it.
    std::string changed;
    std::vector<const onnx::GraphProto *> graphs{&model.graph()};
    while (!graphs.empty() && changed.empty()) {
      const onnx::GraphProto *g = graphs.back();
      graphs.pop_back();
      for (const onnx::NodeProto &n : g->node()) {
        for (const onnx::AttributeProto &a : n.attribute()) {
          if (a.has_g())
            graphs.push_back(&a.g());
          for (const onnx::GraphProto &sub : a.graphs())
            graphs.push_back(&sub);
        }
        if (!n.domain().empty() && n.domain() != "ai.onnx")
          continue;
        const onnx::OpSchema *then = onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(opset), "");
        const onnx::OpSchema *at13 = onnx::OpSchemaRegistry::Schema(n.op_type(), 13, "");
        if (!then || !at13 || then->SinceVersion() != at13->SinceVersion()) {
          changed = n.op_type() + (then && at13 ? " (its opset-" + std::to_string(opset) + " form is version " +
                                                      std::to_string(then->SinceVersion()) + ", opset 13's " +
                                                      std::to_string(at13->SinceVersion()) + ")"
                                                : std::string(" (not defined there)"));
          break;
        }
      }
    }
    if (!changed.empty())
      return Status::error(path + ": default-domain opset " + std::to_string(opset) +
                           " is not supported for " + changed +
                           "; kiln imports opsets 13 to 28, and older ones whose operators are as in 13");
    defaultSet->set_version(13);
  }
  return Status::ok();
}

int64_t defaultOpset(const onnx::ModelProto &m) {
  for (const auto &o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      return o.version();
  return 0;
}

bool dtypeOfOnnx(int t, DType &dt) {
  switch (t) {
  case onnx::TensorProto::FLOAT: dt = DType::F32; return true;
  case onnx::TensorProto::FLOAT16: dt = DType::F16; return true;
  case onnx::TensorProto::BFLOAT16: dt = DType::BF16; return true;
  case onnx::TensorProto::DOUBLE: dt = DType::F64; return true;
  case onnx::TensorProto::INT64: dt = DType::I64; return true;
  case onnx::TensorProto::INT32: dt = DType::I32; return true;
  case onnx::TensorProto::INT8: dt = DType::I8; return true;
  case onnx::TensorProto::BOOL: dt = DType::Bool; return true;
  default: return false;
  }
}

/// The bytes of an external-data tensor, read from beside the model. The
/// location must be a relative path inside the model's directory.
/// A non-negative decimal, or -2 when it is not one (stoll would throw).
static int64_t parseCount(const std::string &s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return -2;
  return std::stoll(s);
}

static Status readExternal(const onnx::TensorProto &t, const std::string &modelPath,
                           uint64_t bytes, const Shape &shape, DType dt, Tensor &out,
                           bool readData) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto &kv : t.external_data()) {
    if (kv.key() == "location")
      location = kv.value();
    else if (kv.key() == "offset")
      offset = parseCount(kv.value());
    else if (kv.key() == "length")
      length = parseCount(kv.value());
  }
  std::string what = modelPath + ": initializer '" + t.name() + "'";
  fs::path loc(location);
  if (location.empty())
    return Status::error(what + ": external data without a location");
  if (loc.is_absolute())
    return Status::error(what + ": external data location '" + location +
                         "' is an absolute path");
  for (const auto &part : loc)
    if (part == "..")
      return Status::error(what + ": external data location '" + location +
                           "' leaves the model's directory");
  fs::path file = fs::path(modelPath).parent_path() / loc;
  std::error_code ec;
  uint64_t size = fs::file_size(file, ec);
  if (ec)
    return Status::error(what + ": cannot open external data " + file.string());
  if (length < 0)
    length = static_cast<int64_t>(bytes);
  if (offset < 0 || length < 0 ||
      static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > size)
    return Status::error(what + ": external data [" + std::to_string(offset) + ", " +
                         std::to_string(offset + length) + ") runs past the end of " +
                         file.string());
  if (static_cast<uint64_t>(length) != bytes)
    return Status::error(what + ": external data has " + std::to_string(length) +
                         " bytes, its dtype and shape need " + std::to_string(bytes));
  if (!readData)
    return Status::ok();
  out = Tensor(dt, shape);
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  if (!in.read(static_cast<char *>(out.data()), length))
    return Status::error(what + ": cannot read external data " + file.string());
  return Status::ok();
}

/// A TensorProto's values (inline raw or typed fields, or external data).
Status readTensor(const onnx::TensorProto &t, const std::string &modelPath, Tensor &out,
                  bool readData) {
  std::string what = modelPath + ": tensor '" + t.name() + "'";
  DType dt;
  if (!dtypeOfOnnx(t.data_type(), dt))
    return Status::error(what + ": data type " + std::to_string(t.data_type()) +
                         " is not supported");
  // Sizes are checked against the data actually present before anything is
  // allocated: a hostile shape must not become a huge allocation.
  Shape shape;
  uint64_t count = 1, bytes = 0;
  for (int64_t d : t.dims()) {
    if (d < 0)
      return Status::error(what + ": negative dimension");
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count))
      return Status::error(what + ": shape overflows");
    shape.push_back(d);
  }
  if (__builtin_mul_overflow(count, host::dtypeSize(dt), &bytes))
    return Status::error(what + ": shape overflows");
  int64_t n = static_cast<int64_t>(count);
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    if (bytes > (uint64_t(1) << 40))
      return Status::error(what + ": " + std::to_string(bytes) + " bytes is implausible");
    return readExternal(t, modelPath, bytes, shape, dt, out, readData);
  }
  int64_t typed = t.float_data_size() + t.double_data_size() + t.int64_data_size() +
                  t.int32_data_size();
  if (t.has_raw_data() ? t.raw_data().size() != bytes : typed != n)
    return Status::error(what + ": has " +
                         (t.has_raw_data() ? std::to_string(t.raw_data().size()) + " bytes"
                                           : std::to_string(typed) + " values") +
                         " for " + std::to_string(n) + " elements of " + host::dtypeName(dt));
  if (!readData)
    return Status::ok();
  out = Tensor(dt, shape);

  if (t.has_raw_data()) { // its size was checked above
    if (out.byteSize()) // (an empty tensor has no buffer to copy into)
      std::memcpy(out.data(), t.raw_data().data(), out.byteSize());
    return Status::ok();
  }
  auto expect = [&](int64_t have) -> Status {
    if (have != n)
      return Status::error(what + ": has " + std::to_string(have) + " values for " +
                           std::to_string(n) + " elements");
    return Status::ok();
  };
  switch (t.data_type()) {
  case onnx::TensorProto::FLOAT:
    KILN_RETURN_IF_ERROR(expect(t.float_data_size()));
    for (int64_t i = 0; i < n; ++i)
      out.set(i, t.float_data(i));
    break;
  case onnx::TensorProto::DOUBLE:
    KILN_RETURN_IF_ERROR(expect(t.double_data_size()));
    for (int64_t i = 0; i < n; ++i)
      out.set(i, t.double_data(i));
    break;
  case onnx::TensorProto::INT64:
    KILN_RETURN_IF_ERROR(expect(t.int64_data_size()));
    for (int64_t i = 0; i < n; ++i)
      out.as<int64_t>()[i] = t.int64_data(i);
    break;
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16:
    KILN_RETURN_IF_ERROR(expect(t.int32_data_size()));
    for (int64_t i = 0; i < n; ++i)
      out.as<uint16_t>()[i] = static_cast<uint16_t>(t.int32_data(i));
    break;
  default: // INT32, INT8, BOOL
    KILN_RETURN_IF_ERROR(expect(t.int32_data_size()));
    for (int64_t i = 0; i < n; ++i)
      out.set(i, t.int32_data(i));
  }
  return Status::ok();
}

Status sortNodes(const onnx::GraphProto &graph_, const std::string &path,
                 std::vector<const onnx::NodeProto *> &order) {
  auto error = [&](const onnx::NodeProto &n, const std::string &m) {
    return nodeError(path, n, m);
  };
  std::set<std::string> defined;
  for (const auto &i : graph_.input())
    defined.insert(i.name());
  for (const auto &i : graph_.initializer())
    defined.insert(i.name());
  std::map<std::string, const onnx::NodeProto *> producer;
  for (const auto &n : graph_.node())
    for (const auto &o : n.output())
      if (!o.empty())
        producer[o] = &n;
  for (const auto &n : graph_.node())
    for (const auto &in : n.input())
      if (!in.empty() && !defined.count(in) && !producer.count(in))
        return error(n, "reads '" + in + "', which no node, graph input or initializer defines");
  // Kahn's algorithm, keeping the file's order among ready nodes.
  std::vector<const onnx::NodeProto *> pending;
  for (const auto &n : graph_.node())
    pending.push_back(&n);
  while (!pending.empty()) {
    std::vector<const onnx::NodeProto *> rest;
    for (const onnx::NodeProto *n : pending) {
      bool ready = true;
      for (const auto &in : n->input())
        ready &= in.empty() || defined.count(in);
      if (ready) {
        order.push_back(n);
        for (const auto &o : n->output())
          defined.insert(o);
      } else {
        rest.push_back(n);
      }
    }
    if (rest.size() == pending.size())
      return error(*rest.front(), "the graph has a cycle through this node");
    pending.swap(rest);
  }
  return Status::ok();
}


} // namespace kiln::onnx_frontend
