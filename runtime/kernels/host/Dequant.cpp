//===- Dequant.cpp - GPTQ and AWQ packed weights to floats ----------------===//
#include "runtime/kernels/host/HostKernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

namespace kiln::host {

namespace {

/// The nibble of an AWQ word holding column c (0-7) of its eight: AutoAWQ
/// packs columns 0 2 4 6 1 3 5 7 into nibbles 0 to 7.
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/// Value `i` (0-based, low bits first; AWQ's order with `awq`) of a packed
/// int32 word.
int64_t unpack(int32_t word, int64_t i, int64_t bits, bool awq) {
  int64_t slot = awq ? kAwqNibble[i] : i;
  return (static_cast<uint32_t>(word) >> (bits * slot)) & ((1u << bits) - 1);
}

/// Runs rows(r0, r1) over [0, R), on every core once there are `values`
/// of 2^20 or more (each row the same whichever thread computes it).
template <class Rows>
void overRows(int64_t R, int64_t values, Rows rows) {
  const int64_t threads = values < (int64_t(1) << 20)
                              ? 1
                              : std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), 32));
  if (threads == 1) {
    rows(0, R);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t step = (R + threads - 1) / threads;
  for (int64_t t = 0; t < threads; ++t)
    if (t * step < R)
      pool.emplace_back(rows, t * step, std::min(R, (t + 1) * step));
  for (std::thread &th : pool)
    th.join();
}

} // namespace

bool parseQuantPacking(const std::string &name, QuantPacking &out) {
  if (name == "gptq")
    out = QuantPacking::Gptq;
  else if (name == "gptq_v2")
    out = QuantPacking::GptqV2;
  else if (name == "awq")
    out = QuantPacking::Awq;
  else
    return false;
  return true;
}

Status dequant(const Tensor &qweight, const Tensor &scales, const Tensor *zeros, const Tensor *gIdx,
               const DequantParams &p, Tensor &out) {
  if (p.bits != 4 && p.bits != 8)
    return Status::error("dequant bits must be 4 or 8, got " + std::to_string(p.bits));
  bool awq = p.packing == QuantPacking::Awq;
  if (awq && p.bits != 4)
    return Status::error("dequant: awq packing holds 4-bit values");
  if (out.rank() != 2)
    return Status::error("dequant result must be [K, N]");
  int64_t K = out.dim(0), N = out.dim(1), per = 32 / p.bits;
  if (p.groupSize != -1 && (p.groupSize <= 0 || K % p.groupSize))
    return Status::error("dequant group_size " + std::to_string(p.groupSize) + " does not divide K = " +
                         std::to_string(K));
  int64_t G = p.groupSize == -1 ? 1 : K / p.groupSize;
  if ((awq ? N : K) % per || (zeros && N % per))
    return Status::error("dequant: the packed dimension is not a multiple of " + std::to_string(per));
  if (qweight.dtype() != DType::I32 || (zeros && zeros->dtype() != DType::I32) || (gIdx && gIdx->dtype() != DType::I32))
    return Status::error("dequant: qweight, zeros and g_idx must be i32");
  KILN_RETURN_IF_ERROR(expectShape(qweight, awq ? Shape{K, N / per} : Shape{K / per, N}, "dequant qweight"));
  KILN_RETURN_IF_ERROR(expectShape(scales, {G, N}, "dequant scales"));
  if (zeros)
    KILN_RETURN_IF_ERROR(expectShape(*zeros, {G, N / per}, "dequant zeros"));
  if (gIdx)
    KILN_RETURN_IF_ERROR(expectShape(*gIdx, {K}, "dequant g_idx"));
  const int32_t *q = qweight.as<int32_t>();
  for (int64_t k = 0; k < K; ++k) {
    int64_t g = gIdx ? gIdx->as<int32_t>()[k] : 0;
    if (gIdx && (g < 0 || g >= G))
      return Status::error("dequant g_idx[" + std::to_string(k) + "] = " + std::to_string(g) +
                           " is not a group (there are " + std::to_string(G) + ")");
  }
  std::vector<float> s = scales.toF32(), w(static_cast<size_t>(K * N));
  // Rows [k0, k1): independent of every other row.
  auto rows = [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      int64_t g = gIdx ? gIdx->as<int32_t>()[k] : (p.groupSize == -1 ? 0 : k / p.groupSize);
      for (int64_t n = 0; n < N; ++n) {
        int64_t v = awq ? unpack(q[k * (N / per) + n / per], n % per, p.bits, true)
                        : unpack(q[(k / per) * N + n], k % per, p.bits, false);
        int64_t z = int64_t(1) << (p.bits - 1);
        if (zeros) {
          z = unpack(zeros->as<int32_t>()[g * (N / per) + n / per], n % per, p.bits, awq);
          if (p.packing == QuantPacking::Gptq)
            z += 1; // stored minus one (AutoGPTQ's checkpoint_format gptq)
        }
        w[static_cast<size_t>(k * N + n)] = static_cast<float>(v - z) * s[static_cast<size_t>(g * N + n)];
      }
    }
  };
  // A model's projections are dequantized when it loads: an 8B model's
  // seven billion values on every core.
  overRows(K, K * N, rows);
  out.fromF32(w);
  return Status::ok();
}

Status quantizeRoundTrip(const Tensor &w, int64_t bits, int64_t groupSize, const std::string &what, Tensor &out,
                         int kAxis) {
  if (bits != 4 && bits != 8)
    return Status::error(what + ": quantization to " + std::to_string(bits) + " bits (4 or 8 are)");
  if (w.rank() != 2 || (w.dtype() != DType::F32 && w.dtype() != DType::F16 && w.dtype() != DType::BF16))
    return Status::error(what + ": only a 2-D f32, f16 or bf16 weight is quantized");
  if (kAxis != 0 && kAxis != 1)
    return Status::error(what + ": the input features' axis must be 0 or 1");
  const int64_t N = w.dim(1 - kAxis), K = w.dim(kAxis);
  const int64_t G = groupSize == -1 ? K : groupSize;
  if (G <= 0 || K % G)
    return Status::error(what + ": a group size of " + std::to_string(groupSize) + " does not divide its " +
                         std::to_string(K) + " input features (--group-size -1 takes each output's whole row)");
  KILN_RETURN_IF_ERROR(expectShape(out, w.shape(), (what + " quantized").c_str()));
  const float maxq = static_cast<float>((1 << bits) - 1);
  // Element k of output n: [N, K] as projections are stored, or [K, N].
  const int64_t kStride = kAxis == 1 ? 1 : N, nStride = kAxis == 1 ? K : 1;
  std::vector<float> x = w.toF32(), y(x.size());
  std::atomic<bool> tooLarge{false};
  overRows(N, N * K, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g0 = 0; g0 < K; g0 += G) {
        const int64_t base = n * nStride + g0 * kStride;
        float lo = 0, hi = 0;
        for (int64_t k = 0; k < G; ++k)
          lo = std::min(lo, x[static_cast<size_t>(base + k * kStride)]),
          hi = std::max(hi, x[static_cast<size_t>(base + k * kStride)]);
        float s = f16ToFloat(floatToF16((hi - lo) / maxq));
        if (std::isinf(s) || std::isnan(s)) {
          tooLarge = true;
          continue;
        }
        if (s == 0)
          s = 1;
        const float z = std::clamp(std::nearbyint(-lo / s), 0.0f, maxq);
        for (int64_t k = 0; k < G; ++k) {
          const size_t i = static_cast<size_t>(base + k * kStride);
          const float q = std::clamp(std::nearbyint(x[i] / s) + z, 0.0f, maxq);
          y[i] = (q - z) * s;
        }
      }
  });
  if (tooLarge)
    return Status::error(what + ": values too large for a quantization scale in f16");
  out.fromF32(y);
  return Status::ok();
}

} // namespace kiln::host
