//===- DequantWeights.h - weights computed at load from packed ones -*- C++ -*-===//
//
// A GPTQ or AWQ projection's weight as the compiler's kiln-dequant-at-load
// pass names it: not a tensor of the model's files but kiln.dequant of
// several (qweight, scales, qzeros, g_idx). And a float projection that
// `kiln compile --quantize` (kiln-quantize-weights) has the loader round to
// an int8 or int4 grid (packing `rtn`: its stored tensor, `source`, through
// host::quantizeRoundTrip, in the stored [N, K] layout). The engine's
// manifest lists them (`dequant_weights`); the runtime's loader, the
// interpreter and kiln's own tools compute them here, the same way.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_FORMAT_DEQUANTWEIGHTS_H
#define KILN_RUNTIME_FORMAT_DEQUANTWEIGHTS_H

#include "runtime/format/Safetensors.h"
#include "runtime/kernels/host/Tensor.h"

#include <string>
#include <vector>

namespace kiln::format {

struct DequantWeightDesc {
  std::string name;                 // the weight it defines
  std::string qweight, scales;      // stored tensors' names
  std::string zeros, gIdx;          // "" where absent
  std::string source;               // rtn: the float tensor quantized
  int64_t kAxis = 1;                // rtn: the source's input-feature axis ([N, K]: 1)
  std::string packing;              // gptq | gptq_v2 | awq | rtn
  int64_t bits = 0, groupSize = 0;  // as kiln.dequant's
};

/// The description named `name`, or null.
const DequantWeightDesc *findDequantWeight(const std::vector<DequantWeightDesc> &all, const std::string &name);

/// Computes `d` from the tensors of `index` into `out`: `[K, N]` of `dtype`
/// (f32, f16 or bf16), K and N from the stored shapes (rtn: the source's
/// shape). Every part must be
/// there with the dtype and shape the packing implies; errors name the
/// tensor.
Status readDequantWeight(const SafetensorsIndex &index, const DequantWeightDesc &d, host::DType dtype,
                         host::Tensor &out);

} // namespace kiln::format

#endif
