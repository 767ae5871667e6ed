//===- HostKernels.h - reference kernels for every op family ----*- C++ -*-===//
//
// One function per op family. Each takes its inputs and a caller-allocated
// output of the right dtype and shape, checks shapes (returning a Status, never
// aborting), and computes with f32 accumulation whatever the storage dtype.
// These are the contract the CUDA kernels are checked against, the host
// device's kernels, and what the IR interpreter calls.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_KERNELS_HOST_HOSTKERNELS_H
#define KILN_RUNTIME_KERNELS_HOST_HOSTKERNELS_H

#include "runtime/kernels/host/Tensor.h"

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace kiln::host {

//===--- Broadcasting -----------------------------------------------------===//

/// numpy broadcasting of two shapes; an error when they are incompatible.
Status broadcastShapes(const Shape &a, const Shape &b, Shape &out);

//===--- Matmul -------------------------------------------------------------===//

/// numpy matmul: a[..., M, K] x b[..., K, N] (or b[..., N, K] when transposeB)
/// with broadcast batch dimensions; rank-1 operands are promoted as in numpy.
Status matmul(const Tensor &a, const Tensor &b, bool transposeB, Tensor &out);

//===--- Elementwise --------------------------------------------------------===//

enum class UnaryOp {
  Neg, Abs, Exp, Log, Sqrt, Rsqrt, Reciprocal, Tanh, Sigmoid, Silu, Gelu,
  GeluTanh, Erf, Sin, Cos, Relu, Not
};
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Max, Min, And, Or };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

float applyUnary(UnaryOp op, float x);
Status unary(UnaryOp op, const Tensor &x, Tensor &out);
/// Broadcasting binary op; integer dtypes compute exactly in int64.
Status binary(BinaryOp op, const Tensor &a, const Tensor &b, Tensor &out);
/// Broadcasting comparison producing a Bool tensor.
Status compare(CompareOp op, const Tensor &a, const Tensor &b, Tensor &out);
/// out = cond ? a : b, all three broadcast.
Status where(const Tensor &cond, const Tensor &a, const Tensor &b, Tensor &out);
/// Converts between any two dtypes (float to int truncates toward zero).
Status cast(const Tensor &x, Tensor &out);
/// silu(gate) * up and gelu(gate) * up, elementwise over equal shapes.
Status swiglu(const Tensor &gate, const Tensor &up, Tensor &out);
Status geglu(const Tensor &gate, const Tensor &up, bool tanhApprox, Tensor &out);

//===--- Reductions ---------------------------------------------------------===//

enum class ReduceOp { Sum, Mean, Max, Min };
/// Reduces over `axes` (non-negative, any order); keepDims keeps them as 1.
Status reduce(ReduceOp op, const Tensor &x, const std::vector<int64_t> &axes,
              bool keepDims, Tensor &out);
/// Index of the largest element along `axis` (the first on ties), as I64.
Status argmax(const Tensor &x, int64_t axis, bool keepDims, Tensor &out);
Status softmax(const Tensor &x, int64_t axis, Tensor &out);
/// Running sum along `axis`; `exclusive` leaves each element out of its own
/// sum, `reverse` sums from the end. Integers are summed exactly.
Status cumsum(const Tensor &x, int64_t axis, bool exclusive, bool reverse, Tensor &out);

//===--- Normalisation ------------------------------------------------------===//

/// x * rsqrt(mean(x^2) + eps) * (weight + weightOffset), over the last axis.
Status rmsNorm(const Tensor &x, const Tensor &weight, float eps,
               float weightOffset, Tensor &out);
/// (x - mean) * rsqrt(var + eps) * weight + bias, over the last axis.
Status layerNorm(const Tensor &x, const Tensor &weight, const Tensor *bias,
                 float eps, Tensor &out);

//===--- Rotary position embedding -------------------------------------------===//

enum class RopeStyle { Neox, GptJ }; // rotate-half pairs (i, i+d/2) / (2i, 2i+1)
enum class RopeScaling { None, Linear, Llama3, Yarn };

struct RopeParams {
  RopeStyle style = RopeStyle::Neox;
  double theta = 10000.0;
  int64_t rotaryDim = 0; // 0: the whole head dim
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;
  double lowFreqFactor = 1.0;      // llama3
  double highFreqFactor = 4.0;     // llama3
  int64_t originalMaxPositions = 0; // llama3, yarn
  double betaFast = 32.0;          // yarn
  double betaSlow = 1.0;           // yarn
  std::optional<double> attentionFactor; // yarn; default 0.1 ln(factor) + 1
  std::vector<double> invFreq;     // explicit rotary_dim/2 frequencies: replace theta, scaling
};

/// The rotary_dim/2 inverse frequencies after scaling (Hugging Face's rules).
std::vector<double> ropeInvFreq(const RopeParams &p, int64_t rotaryDim);
/// The factor cos and sin are multiplied by (yarn's attention factor, else 1).
double ropeMagnitude(const RopeParams &p);
/// x[B, T, H, D] rotated by positions[B, T] or [1, T] (integer dtype); with
/// `cosSin` (ropeCosSin of the same positions and parameters), its angles
/// are read there.
Status rope(const Tensor &x, const Tensor &positions, const RopeParams &p,
            Tensor &out, const Tensor *cosSin = nullptr);
/// out[P, T, rotaryDim / 2, 2] (f32): the cosine and sine of each position
/// of positions[P, T] times each frequency, times the magnitude -- the
/// angle in double, rounded once to f32, as rope computes them.
Status ropeCosSin(const Tensor &positions, const RopeParams &p, Tensor &out);

//===--- Weight-only quantization --------------------------------------------===//

enum class QuantPacking { Gptq, GptqV2, Awq }; // kiln.dequant's packings
struct DequantParams {
  QuantPacking packing = QuantPacking::Gptq;
  int64_t bits = 4;
  int64_t groupSize = 128; // -1: one group for all of K
};
/// The packing called `name` (kiln.dequant's spelling: gptq, gptq_v2, awq);
/// false for any other.
bool parseQuantPacking(const std::string &name, QuantPacking &out);
/// out[K, N] from packed qweight (i32), scales [G, N], optional packed zeros
/// [G, N * bits / 32] (i32) and g_idx [K] (i32): (q - z) * scale, as
/// kiln.dequant defines it. Shapes, packings and g_idx's range are checked.
Status dequant(const Tensor &qweight, const Tensor &scales, const Tensor *zeros, const Tensor *gIdx,
               const DequantParams &p, Tensor &out);
/// `kiln compile --quantize`: w [N, K] (a float projection as stored, one
/// row an output) rounded to nearest on the grid a gptq_v2 checkpoint of
/// `bits` bits (4 or 8) and groups of `groupSize` along K (-1: all of K)
/// would hold -- per row and group, lo = min(w, 0), hi = max(w, 0), an f16
/// scale s = (hi - lo) / (2^bits - 1) (1 where that is 0), the zero point
/// z = clamp(round(-lo / s), 0, 2^bits - 1) and q = clamp(round(w / s) + z,
/// 0, 2^bits - 1), all in f32, halves to even -- then given back as
/// (q - z) * s in out's dtype and w's shape. With kAxis 0, w is [K, N]
/// (GPT-2's Conv1D weights). `what` names the weight in errors (a group size
/// that does not divide K, a scale past f16's range).
Status quantizeRoundTrip(const Tensor &w, int64_t bits, int64_t groupSize, const std::string &what, Tensor &out,
                         int kAxis = 1);

//===--- Attention ------------------------------------------------------------===//

struct AttentionParams {
  bool causal = true;
  std::optional<double> scale;        // default 1/sqrt(head dim)
  std::optional<int64_t> slidingWindow; // keys with qpos - kpos < window
  std::optional<double> softcap;      // s = c * tanh(s / c) before the mask
};

/// q[B, T, Hq, D], k[B, S, Hkv, D], v[B, S, Hkv, Dv] -> out[B, T, Hq, Dv].
/// GQA maps query head h to kv head h / (Hq / Hkv). With causal masking the
/// queries are the last T of the S positions: query i sees key j iff
/// j <= i + S - T.
Status attention(const Tensor &q, const Tensor &k, const Tensor &v,
                 const AttentionParams &p, Tensor &out);

/// The paged KV cache `cache[L, P, 2, page, Hkv, D]`: token `pos` of sequence
/// `b` lives in page `blockTables[b, pos / page]` at offset `pos % page`.
/// kvAppend copies `cache` to `out` (unless they alias) and writes
/// key/value[B, T, Hkv, D] of layer `layer` at `positions[B, T]`; negative
/// positions are padding.
Status kvAppend(const Tensor &cache, const Tensor &key, const Tensor &value,
                const Tensor &blockTables, const Tensor &positions, int64_t layer,
                Tensor &out);
/// q[B, T, Hq, D] over the first `contextLens[b]` cached tokens of layer
/// `layer`; the causal mask uses `positions[b, t]`; padding rows are zero.
Status pagedAttention(const Tensor &q, const Tensor &cache, const Tensor &blockTables,
                      const Tensor &contextLens, const Tensor &positions, int64_t layer,
                      const AttentionParams &p, Tensor &out);

//===--- Data movement ------------------------------------------------------===//

/// ONNX Gather: out = data.shape[:axis] + indices.shape + data.shape[axis+1:].
/// Negative indices count from the end; out-of-range ones are an error.
Status gather(const Tensor &data, const Tensor &indices, int64_t axis,
              Tensor &out);
/// ONNX GatherND with batch_dims 0: indices[..., K] pick data[i0, ..., iK-1, ...];
/// out = indices.shape[:-1] + data.shape[K:]. Negative indices count from the end.
Status gatherNd(const Tensor &data, const Tensor &indices, Tensor &out);
Status transpose(const Tensor &x, const std::vector<int64_t> &perm, Tensor &out);
Status concat(const std::vector<const Tensor *> &xs, int64_t axis, Tensor &out);
/// Strided slice along every axis: start, step (non-zero) and the out shape.
Status slice(const Tensor &x, const std::vector<int64_t> &starts,
             const std::vector<int64_t> &steps, Tensor &out);
/// Broadcasts x to out's shape (numpy rules).
Status broadcastTo(const Tensor &x, Tensor &out);

//===--- Sampling -----------------------------------------------------------===//

/// A small, seeded, portable generator (xoshiro256**), the same on every
/// platform so a seed reproduces a generation anywhere.
class Rng {
public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();

private:
  uint64_t s_[4];
};

struct SamplingParams {
  float temperature = 0.0f; // <= 0: greedy
  int64_t topK = 0;         // 0: all
  float topP = 1.0f;        // 1: all
  float minP = 0.0f;        // drop tokens below min_p times the most likely one's probability; 0: none
  /// Penalties on the logits before any of the above (applyPenalties):
  /// repetition (> 0; 1: none) on every token of the prompt and the
  /// output, frequency and presence (in [-2, 2]; 0: none) on the output's.
  float repetitionPenalty = 1.0f;
  float frequencyPenalty = 0.0f;
  float presencePenalty = 0.0f;
  bool penalised() const { return repetitionPenalty != 1.0f || frequencyPenalty != 0.0f || presencePenalty != 0.0f; }
};

/// Refuses parameters out of range, naming the one: top_p in (0, 1],
/// min_p in [0, 1], top_k >= 0, repetition_penalty > 0, frequency and
/// presence penalties in [-2, 2].
Status checkSamplingParams(const SamplingParams &p);
/// The penalties of `p` on a row of `n` logits, in place: each token id in
/// `seen` (the prompt and the output) has its logit divided by the
/// repetition penalty where positive, multiplied where not (CTRL's rule,
/// as transformers and vLLM apply it); then each id in `output` loses
/// frequency_penalty times its count there, and presence_penalty once
/// (OpenAI's rule). Ids outside [0, n) are ignored.
void applyPenalties(float *logits, int64_t n, const SamplingParams &p, const int64_t *seen, size_t numSeen,
                    const int64_t *output, size_t numOutput);

/// Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as
/// easy as 1, 2, 3", SC'11): four 32-bit words that depend only on the
/// counter and the key, so a draw needs no state and no order.
void philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);
/// A uniform in [0, 1) (53 bits) for (seed, position): Philox keyed by the
/// seed at counter (position, 0). A request's sampled tokens then depend
/// on its seed and the positions they are drawn for, never on what else
/// runs, in which order, or whether it was preempted and resumed.
double counterUniform(uint64_t seed, uint64_t position);

/// Samples one token id from a row of logits. Greedy returns the argmax
/// (the first on ties). Errors on an empty row or NaN logits.
Status sampleToken(const float *logits, int64_t n, const SamplingParams &p,
                   Rng &rng, int64_t &token);
/// The same with the uniform given (drawn by the caller, e.g. counterUniform).
Status sampleTokenWith(const float *logits, int64_t n, const SamplingParams &p, double u, int64_t &token);
/// The log-softmax (in double) of a row of `n` logits at `token`, and the
/// `topN` most likely tokens' (most first, ties to the lower id) in `top`.
float logprobOf(const float *logits, int64_t n, int64_t token, int64_t topN,
                std::vector<std::pair<int64_t, float>> &top);
/// The probabilities sampleToken draws from (after temperature, top-k, top-p).
Status samplingDistribution(const float *logits, int64_t n,
                            const SamplingParams &p, std::vector<double> &probs);

} // namespace kiln::host

#endif
