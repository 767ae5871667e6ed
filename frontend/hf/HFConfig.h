//===- HFConfig.h - Hugging Face config.json and model families -*- C++ -*-===//
//
// What kiln needs from a config.json, in both spellings transformers has used
// (4: `rope_theta`, `rope_scaling`, `torch_dtype`; 5: `rope_parameters`,
// `dtype`), and the differences between model families described as data
// (FamilySpec) rather than as one importer per family.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_HF_HFCONFIG_H
#define KILN_FRONTEND_HF_HFCONFIG_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::hf {

/// Where a family's weights live and how its blocks are built. Names use
/// "{i}" for the layer index; an empty name means "the family has none".
struct FamilySpec {
  const char *architecture;   // config.json "architectures"[0]
  bool layerNorm;             // LayerNorm with bias (else RMSNorm)
  bool learnedPositions;      // a position-embedding table (else RoPE)
  bool gatedMlp;              // gate/up/down with SwiGLU (else fc/proj with GELU)
  bool qkvBias;               // biases on q, k, v always (Qwen2)
  bool qkNorm;                // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool conv1d;                // weights stored [in, out] (GPT-2's Conv1D)
  bool slidingWindow;         // honours config "sliding_window" (Mistral)
  const char *embed, *positions, *attnNorm, *q, *k, *v, *qkv, *o, *qNorm, *kNorm,
      *mlpNorm, *gate, *up, *down, *fc, *proj, *finalNorm, *lmHead;
};

/// The families kiln imports.
const std::vector<FamilySpec> &families();

struct RopeConfig {
  std::string type = "default"; // default | linear | llama3 | yarn
  double theta = 10000.0;
  double factor = 1.0;
  double lowFreqFactor = 1.0, highFreqFactor = 4.0;
  int64_t originalMaxPositions = 0;
  double betaFast = 32.0, betaSlow = 1.0;
  std::optional<double> attentionFactor;
  double partialRotaryFactor = 1.0;
};

/// A weight-only quantized checkpoint's `quantization_config`: the
/// projections of the decoder layers are stored packed (GPTQ or AWQ, see
/// kiln.dequant), everything else in floats.
struct QuantConfig {
  std::string method;      // gptq | awq
  std::string packing;     // gptq | gptq_v2 | awq (kiln.dequant's packing)
  int64_t bits = 4;        // 4 or 8 (awq: 4)
  int64_t groupSize = 128; // rows of K per scale; -1: one group for all of K
  bool descAct = false;    // gptq: rows in groups by g_idx (act order)
};

struct ModelConfig {
  const FamilySpec *family = nullptr;
  int64_t hidden = 0, layers = 0, heads = 0, kvHeads = 0, headDim = 0;
  int64_t intermediate = 0, vocab = 0, maxPositions = 0;
  double normEps = 1e-6;
  RopeConfig rope;
  bool tieEmbeddings = false;
  bool attentionBias = false; // q, k, v and o biases (Llama's attention_bias, GPT-2)
  bool mlpBias = false;
  std::optional<int64_t> slidingWindow;
  std::string activation = "silu"; // silu | gelu | gelu_new / gelu_pytorch_tanh
  std::string dtype = "float32";   // bfloat16 | float16 | float32
  std::optional<QuantConfig> quant;
};

/// Parses `path` (a config.json). Errors name the file and the field.
Status parseConfig(const std::string &path, ModelConfig &out);
/// The same from text; `path` only names the source in errors.
Status parseConfigText(const std::string &text, const std::string &path,
                       ModelConfig &out);

} // namespace kiln::hf

#endif
