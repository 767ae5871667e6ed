//===- DequantWeights.cpp - weights computed at load from packed ones -----===//
#include "runtime/format/DequantWeights.h"

#include "runtime/kernels/host/HostKernels.h"

namespace kiln::format {

const DequantWeightDesc *findDequantWeight(const std::vector<DequantWeightDesc> &all, const std::string &name) {
  for (const DequantWeightDesc &d : all)
    if (d.name == name)
      return &d;
  return nullptr;
}

namespace {

/// Stored tensor `name` of `index` as a host tensor of its own dtype.
Status readStored(const SafetensorsIndex &index, const std::string &name, const std::string &of, host::Tensor &out) {
  const SafetensorsTensor *t = index.find(name);
  if (!t)
    return Status::error("no tensor '" + name + "', which weight " + of + " is dequantized from");
  host::DType dt;
  if (t->dtype == "I32")
    dt = host::DType::I32;
  else if (t->dtype == "F16")
    dt = host::DType::F16;
  else if (t->dtype == "BF16")
    dt = host::DType::BF16;
  else if (t->dtype == "F32")
    dt = host::DType::F32;
  else
    return Status::error(t->file + ": tensor '" + name + "' is " + t->dtype + ", not a packed weight's I32 or a scale's float");
  out = host::Tensor(dt, host::Shape(t->shape.begin(), t->shape.end()));
  if (out.byteSize() != t->size)
    return Status::error(t->file + ": tensor '" + name + "' holds " + std::to_string(t->size) + " bytes, not its shape's");
  return readTensorData(*t, out.data());
}

} // namespace

Status readDequantWeight(const SafetensorsIndex &index, const DequantWeightDesc &d, host::DType dtype,
                         host::Tensor &out) {
  if (d.packing == "rtn") {
    host::Tensor w;
    KILN_RETURN_IF_ERROR(readStored(index, d.source, d.name, w));
    if (w.rank() != 2)
      return Status::error("weight " + d.name + ": '" + d.source + "' is not 2-D, so not quantized");
    out = host::Tensor(dtype, w.shape());
    return host::quantizeRoundTrip(w, d.bits, d.groupSize, "weight " + d.name, out, static_cast<int>(d.kAxis));
  }
  host::DequantParams p;
  if (!host::parseQuantPacking(d.packing, p.packing))
    return Status::error("weight " + d.name + ": packing '" + d.packing + "' is not gptq, gptq_v2, awq or rtn");
  if (d.bits != 4 && d.bits != 8)
    return Status::error("weight " + d.name + ": " + std::to_string(d.bits) + "-bit values are not 4 or 8");
  p.bits = d.bits;
  p.groupSize = d.groupSize;
  host::Tensor q, s, z, g;
  KILN_RETURN_IF_ERROR(readStored(index, d.qweight, d.name, q));
  KILN_RETURN_IF_ERROR(readStored(index, d.scales, d.name, s));
  if (!d.zeros.empty())
    KILN_RETURN_IF_ERROR(readStored(index, d.zeros, d.name, z));
  if (!d.gIdx.empty())
    KILN_RETURN_IF_ERROR(readStored(index, d.gIdx, d.name, g));
  if (q.rank() != 2 || s.rank() != 2)
    return Status::error("weight " + d.name + ": '" + d.qweight + "' and '" + d.scales + "' must be 2-D");
  const int64_t per = 32 / d.bits;
  const int64_t K = p.packing == host::QuantPacking::Awq ? q.dim(0) : q.dim(0) * per, N = s.dim(1);
  out = host::Tensor(dtype, {K, N});
  return host::dequant(q, s, d.zeros.empty() ? nullptr : &z, d.gIdx.empty() ? nullptr : &g, p, out)
      .withContext("weight " + d.name);
}

} // namespace kiln::format
