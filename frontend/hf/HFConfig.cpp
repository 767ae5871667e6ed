//===- HFConfig.cpp - Hugging Face config.json and model families ---------===//
#include "frontend/hf/HFConfig.h"

#include "runtime/format/Json.h"

#include <cctype>
#include <cstring>
#include <fstream>

using kiln::format::JsonValue;

namespace kiln::hf {

const std::vector<FamilySpec> &families() {
  // The Llama-style decoders share every weight name.
#define KILN_LLAMA_NAMES                                                        \
  "model.embed_tokens.weight", "", "model.layers.{i}.input_layernorm",         \
      "model.layers.{i}.self_attn.q_proj", "model.layers.{i}.self_attn.k_proj", \
      "model.layers.{i}.self_attn.v_proj", "",                                 \
      "model.layers.{i}.self_attn.o_proj", "model.layers.{i}.self_attn.q_norm", \
      "model.layers.{i}.self_attn.k_norm",                                     \
      "model.layers.{i}.post_attention_layernorm",                             \
      "model.layers.{i}.mlp.gate_proj", "model.layers.{i}.mlp.up_proj",         \
      "model.layers.{i}.mlp.down_proj", "", "", "model.norm", "lm_head.weight"
  static const std::vector<FamilySpec> all = {
      // arch                 LN     learned gated  qkvB   qkN    conv1d window
      {"LlamaForCausalLM",    false, false,  true,  false, false, false, false, KILN_LLAMA_NAMES},
      {"MistralForCausalLM",  false, false,  true,  false, false, false, true,  KILN_LLAMA_NAMES},
      {"Qwen2ForCausalLM",    false, false,  true,  true,  false, false, false, KILN_LLAMA_NAMES},
      {"Qwen3ForCausalLM",    false, false,  true,  false, true,  false, false, KILN_LLAMA_NAMES},
      {"GPT2LMHeadModel",     true,  true,   false, true,  false, true,  false,
       "transformer.wte.weight", "transformer.wpe.weight", "transformer.h.{i}.ln_1",
       "", "", "", "transformer.h.{i}.attn.c_attn", "transformer.h.{i}.attn.c_proj",
       "", "", "transformer.h.{i}.ln_2", "", "", "", "transformer.h.{i}.mlp.c_fc",
       "transformer.h.{i}.mlp.c_proj", "transformer.ln_f", ""},
  };
#undef KILN_LLAMA_NAMES
  return all;
}

namespace {

/// Reads fields of one JSON object, remembering the first error.
class Fields {
public:
  Fields(const JsonValue &obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  const JsonValue *get(const char *key) const {
    const JsonValue *v = obj_.find(key);
    return v && !v->isNull() ? v : nullptr;
  }
  void integer(const char *key, int64_t &out, bool required = true) {
    const JsonValue *v = get(key);
    if (!v) {
      if (required)
        fail(std::string("missing integer '") + key + "'");
      return;
    }
    if (!v->isInteger() || v->asInt() < 0)
      return fail(std::string("'") + key + "' must be a non-negative integer");
    out = v->asInt();
  }
  void number(const char *key, double &out) {
    if (const JsonValue *v = get(key)) {
      if (!v->isNumber())
        return fail(std::string("'") + key + "' must be a number");
      out = v->asNumber();
    }
  }
  void boolean(const char *key, bool &out) {
    if (const JsonValue *v = get(key)) {
      if (!v->isBool())
        return fail(std::string("'") + key + "' must be true or false");
      out = v->asBool();
    }
  }
  void string(const char *key, std::string &out) {
    if (const JsonValue *v = get(key)) {
      if (!v->isString())
        return fail(std::string("'") + key + "' must be a string");
      out = v->asString();
    }
  }
  void fail(const std::string &m) {
    if (status_)
      status_ = Status::error(where_ + ": " + m);
  }
  /// Keeps `s` (an error of a nested object, already located) if none yet.
  void adopt(const Status &s) {
    if (status_ && !s)
      status_ = s;
  }
  const Status &status() const { return status_; }

private:
  const JsonValue &obj_;
  std::string where_;
  Status status_ = Status::ok();
};

void parseRope(Fields &f, const JsonValue &r, const std::string &where, RopeConfig &rope) {
  Fields rf(r, where);
  // transformers 5's per-layer-type parameters ({"full_attention": {...},
  // "sliding_attention": {...}}): not one rotation for every layer.
  for (const auto &[key, v] : r.asObject())
    if (v.isObject()) {
      rf.fail("'" + key + "': rope parameters per layer type are not supported");
      f.adopt(rf.status());
      return;
    }
  rf.string("rope_type", rope.type);
  if (rope.type == "default" && r.find("type")) // transformers 4's older key
    rf.string("type", rope.type);
  rf.number("rope_theta", rope.theta);
  rf.number("factor", rope.factor);
  rf.number("low_freq_factor", rope.lowFreqFactor);
  rf.number("high_freq_factor", rope.highFreqFactor);
  rf.integer("original_max_position_embeddings", rope.originalMaxPositions, false);
  rf.number("beta_fast", rope.betaFast);
  rf.number("beta_slow", rope.betaSlow);
  rf.number("partial_rotary_factor", rope.partialRotaryFactor);
  if (const JsonValue *a = rf.get("attention_factor")) {
    if (a->isNumber())
      rope.attentionFactor = a->asNumber();
    else
      rf.fail("'attention_factor' must be a number");
  }
  f.adopt(rf.status());
}

/// `quantization_config`: GPTQ (AutoGPTQ / GPTQModel / transformers'
/// GPTQConfig) and AWQ (AutoAWQ's GEMM packing). Fields that change the
/// stored values or their meaning are read or refused by name; the rest
/// (calibration settings, kernel choices) do not change the weights.
void parseQuant(Fields &f, const JsonValue &q, const std::string &where, QuantConfig &out) {
  Fields qf(q, where);
  auto done = [&] { f.adopt(qf.status()); };
  qf.string("quant_method", out.method);
  if (out.method != "gptq" && out.method != "awq") {
    qf.fail(out.method.empty() ? "'quant_method' is missing (kiln reads gptq and awq)"
                               : "'quant_method' '" + out.method + "' is not supported (kiln reads gptq and awq)");
    return done();
  }
  int64_t bits = 0;
  qf.integer("bits", bits, false);
  qf.integer("w_bit", bits, false); // AutoAWQ's own spelling
  if (!bits && qf.status())
    qf.fail("missing integer 'bits'");
  if (!qf.status())
    return done();
  out.bits = bits;
  if (const JsonValue *g = qf.get("group_size") ? qf.get("group_size") : qf.get("q_group_size")) {
    if (!g->isInteger() || (g->asInt() != -1 && g->asInt() <= 0))
      qf.fail("'group_size' must be -1 (one group) or a positive integer");
    else
      out.groupSize = g->asInt();
  }
  if (out.method == "gptq") {
    if (bits != 4 && bits != 8)
      qf.fail("'bits' " + std::to_string(bits) + " is not supported for gptq (kiln reads 4 and 8)");
    qf.boolean("desc_act", out.descAct);
    out.packing = "gptq";
    qf.string("checkpoint_format", out.packing);
    if (out.packing != "gptq" && out.packing != "gptq_v2")
      qf.fail("'checkpoint_format' '" + out.packing + "' is not supported (kiln reads gptq and gptq_v2)");
    bool marlin = false, lmHead = false;
    qf.boolean("is_marlin_format", marlin);
    if (marlin)
      qf.fail("'is_marlin_format': true (Marlin's repacked weights) is not supported");
    qf.boolean("lm_head", lmHead);
    if (lmHead)
      qf.fail("'lm_head': true (a quantized LM head) is not supported");
  } else {
    if (bits != 4)
      qf.fail("'bits' " + std::to_string(bits) + " is not supported for awq (kiln reads 4)");
    out.packing = "awq";
    std::string version = "gemm", backend = "autoawq";
    qf.string("version", version);
    for (char &ch : version)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (version != "gemm")
      qf.fail("'version' '" + version + "' is not supported (kiln reads awq's gemm packing)");
    bool zeroPoint = true;
    qf.boolean("zero_point", zeroPoint);
    if (!zeroPoint)
      qf.fail("'zero_point': false is not supported (kiln reads awq with zero points)");
    qf.string("backend", backend);
    if (backend != "autoawq")
      qf.fail("'backend' '" + backend + "' is not supported (kiln reads autoawq's packing)");
  }
  done();
}

} // namespace

Status parseConfigText(const std::string &text, const std::string &path,
                       ModelConfig &c) {
  JsonValue root;
  if (Status s = format::parseJson(text, root); !s)
    return s.withContext(path);
  if (!root.isObject())
    return Status::error(path + ": not a JSON object");
  Fields f(root, path);
  const JsonValue *archs = f.get("architectures");
  if (!archs || !archs->isArray() || archs->asArray().empty() ||
      !archs->asArray()[0].isString())
    return Status::error(path + ": missing 'architectures' (a list of names)");
  const std::string &arch = archs->asArray()[0].asString();
  for (const FamilySpec &fam : families())
    if (arch == fam.architecture)
      c.family = &fam;
  if (!c.family) {
    std::string known;
    for (const FamilySpec &fam : families())
      known += std::string(known.empty() ? "" : ", ") + fam.architecture;
    return Status::error(path + ": architecture '" + arch +
                         "' is not supported (kiln imports " + known + ")");
  }

  if (c.family->learnedPositions) { // GPT-2 spells everything its own way
    f.integer("n_embd", c.hidden);
    f.integer("n_layer", c.layers);
    f.integer("n_head", c.heads);
    f.integer("vocab_size", c.vocab);
    f.integer("n_positions", c.maxPositions);
    c.kvHeads = c.heads;
    c.intermediate = 4 * c.hidden;
    f.integer("n_inner", c.intermediate, false);
    c.normEps = 1e-5;
    f.number("layer_norm_epsilon", c.normEps);
    c.activation = "gelu_new";
    f.string("activation_function", c.activation);
    c.tieEmbeddings = true;
    c.attentionBias = c.mlpBias = true;
    // Fields that change GPT-2's attention, refused unless at the values
    // kiln computes (reorder_and_upcast_attn only moves the f32 upcast,
    // which kiln's attention does throughout).
    bool scaleWeights = true, byLayer = false;
    f.boolean("scale_attn_weights", scaleWeights);
    f.boolean("scale_attn_by_inverse_layer_idx", byLayer);
    if (f.status() && !scaleWeights)
      f.fail("'scale_attn_weights': false (unscaled attention scores) is not supported");
    if (f.status() && byLayer)
      f.fail("'scale_attn_by_inverse_layer_idx': true (scores divided by the layer number) is not supported");
  } else {
    f.integer("hidden_size", c.hidden);
    f.integer("num_hidden_layers", c.layers);
    f.integer("num_attention_heads", c.heads);
    c.kvHeads = c.heads;
    f.integer("num_key_value_heads", c.kvHeads, false);
    f.integer("intermediate_size", c.intermediate);
    f.integer("vocab_size", c.vocab);
    f.integer("max_position_embeddings", c.maxPositions, false);
    f.number("rms_norm_eps", c.normEps);
    f.string("hidden_act", c.activation);
    f.boolean("attention_bias", c.attentionBias);
    f.boolean("mlp_bias", c.mlpBias);
    // transformers 4: rope_theta and rope_scaling; 5: rope_parameters.
    f.number("rope_theta", c.rope.theta);
    if (const JsonValue *r = f.get("rope_scaling"); r && r->isObject())
      parseRope(f, *r, path + ": rope_scaling", c.rope);
    if (const JsonValue *r = f.get("rope_parameters"); r && r->isObject())
      parseRope(f, *r, path + ": rope_parameters", c.rope);
    // A top-level partial_rotary_factor (transformers 4 reads it there;
    // transformers 5 moves it into rope_parameters): the rotary part of
    // each head. Given both ways, they must agree.
    if (const JsonValue *top = f.get("partial_rotary_factor")) {
      bool inDict = false;
      for (const char *k : {"rope_scaling", "rope_parameters"})
        if (const JsonValue *r = f.get(k); r && r->isObject() && r->find("partial_rotary_factor") &&
                                           !r->find("partial_rotary_factor")->isNull())
          inDict = true;
      double v = c.rope.partialRotaryFactor;
      f.number("partial_rotary_factor", v);
      if (f.status() && inDict && v != c.rope.partialRotaryFactor)
        f.fail("'partial_rotary_factor' " + std::to_string(v) + " disagrees with the rope parameters' " +
               std::to_string(c.rope.partialRotaryFactor));
      (void)top;
      c.rope.partialRotaryFactor = v;
    }
    if (c.family->slidingWindow) {
      int64_t w = 0;
      f.integer("sliding_window", w, false);
      if (w > 0)
        c.slidingWindow = w;
    } else {
      // Qwen2/Qwen3 (and Llama configs that carry the fields): a sliding
      // window on the layers from max_window_layers on, which kiln does not
      // compute; refused unless no layer would use it.
      bool use = false;
      int64_t w = 0, from = 0;
      f.boolean("use_sliding_window", use);
      f.integer("sliding_window", w, false);
      f.integer("max_window_layers", from, false);
      int64_t layers = 0;
      f.integer("num_hidden_layers", layers, false);
      if (f.status() && use && w > 0 && from < layers)
        f.fail("'use_sliding_window': true (a " + std::to_string(w) + "-token window on layers " +
               std::to_string(from) + " to " + std::to_string(layers - 1) +
               ", from 'max_window_layers') is not supported for " + arch);
    }
  }
  // transformers 5's per-layer attention kinds: each must be what kiln
  // computes for every layer (a sliding window where the family has one
  // and the config sets it, full attention otherwise).
  if (const JsonValue *lt = f.get("layer_types")) {
    const char *want = c.slidingWindow ? "sliding_attention" : "full_attention";
    if (!lt->isArray()) {
      f.fail("'layer_types' must be a list of strings");
    } else {
      for (size_t i = 0; i < lt->asArray().size() && f.status(); ++i) {
        const JsonValue &t = lt->asArray()[i];
        if (!t.isString())
          f.fail("'layer_types' must be a list of strings");
        else if (t.asString() != want)
          f.fail("'layer_types'[" + std::to_string(i) + "] is '" + t.asString() + "': kiln computes '" + want +
                 "' on every layer of this " + arch + " config");
      }
    }
  }
  f.boolean("tie_word_embeddings", c.tieEmbeddings);
  f.string("torch_dtype", c.dtype); // transformers 4
  f.string("dtype", c.dtype);       // transformers 5
  if (const JsonValue *q = f.get("quantization_config")) {
    if (!q->isObject()) {
      f.fail("'quantization_config' must be an object");
    } else {
      c.quant.emplace();
      parseQuant(f, *q, path + ": quantization_config", *c.quant);
    }
  }
  if (!f.status())
    return f.status();
  c.headDim = c.heads ? c.hidden / c.heads : 0;
  f.integer("head_dim", c.headDim, false);
  if (!f.status())
    return f.status();

  auto bad = [&](const std::string &m) { return Status::error(path + ": " + m); };
  if (c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 || c.vocab <= 0 || c.intermediate <= 0)
    return bad("hidden size, layers, heads, vocab and intermediate size must be positive");
  if (c.kvHeads <= 0 || c.heads % c.kvHeads)
    return bad("num_attention_heads " + std::to_string(c.heads) +
               " is not a multiple of num_key_value_heads " + std::to_string(c.kvHeads));
  if (c.headDim <= 0 || (!c.family->learnedPositions && c.headDim % 2))
    return bad("head_dim " + std::to_string(c.headDim) + " must be positive and even");
  if (!c.family->learnedPositions) {
    // The rotary part, as transformers sizes it: int(head_dim * factor).
    const double f = c.rope.partialRotaryFactor;
    const int64_t rotary = static_cast<int64_t>(static_cast<double>(c.headDim) * f);
    if (!(f > 0 && f <= 1) || rotary <= 0 || rotary % 2)
      return bad("partial_rotary_factor " + std::to_string(f) + " gives a rotary part of " + std::to_string(rotary) +
                 " of head_dim " + std::to_string(c.headDim) + ": it must be a positive even size");
  }
  if (c.rope.type != "default" && c.rope.type != "linear" && c.rope.type != "llama3" &&
      c.rope.type != "yarn")
    return bad("rope type '" + c.rope.type + "' is not supported");
  if (c.dtype != "bfloat16" && c.dtype != "float16" && c.dtype != "float32")
    return bad("dtype '" + c.dtype + "' is not supported");
  if (c.activation != "silu" && c.activation != "gelu" && c.activation != "gelu_new" &&
      c.activation != "gelu_pytorch_tanh")
    return bad("activation '" + c.activation + "' is not supported");
  return Status::ok();
}

Status parseConfig(const std::string &path, ModelConfig &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open file");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return parseConfigText(text, path, out);
}

} // namespace kiln::hf
