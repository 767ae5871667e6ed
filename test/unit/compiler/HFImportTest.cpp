//===- HFImportTest.cpp - config.json parsing and importer errors ---------===//
#include "frontend/hf/HFImporter.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <fstream>

using kiln::hf::ModelConfig;

namespace {

std::string readText(const std::string &path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

const char *kV4 = R"({
  "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 172,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
  "head_dim": 16, "vocab_size": 512, "rms_norm_eps": 1e-06, "torch_dtype": "bfloat16",
  "rope_theta": 500000.0, "tie_word_embeddings": true, "max_position_embeddings": 256,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                   "high_freq_factor": 4.0, "original_max_position_embeddings": 16}})";

} // namespace

TEST(HFConfig, Transformers4And5SpellingsAgree) {
  ModelConfig v5, v4;
  std::string path = KILN_SOURCE_DIR "/test/models/hf/llama31/config.json";
  ASSERT_TRUE(kiln::hf::parseConfig(path, v5).isOk());
  kiln::Status s = kiln::hf::parseConfigText(kV4, "v4.json", v4);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_STREQ(v5.family->architecture, "LlamaForCausalLM");
  EXPECT_EQ(v4.family, v5.family);
  EXPECT_EQ(v4.hidden, v5.hidden);
  EXPECT_EQ(v4.kvHeads, v5.kvHeads);
  EXPECT_EQ(v4.headDim, v5.headDim);
  EXPECT_EQ(v4.rope.type, "llama3");
  EXPECT_EQ(v5.rope.type, "llama3");
  EXPECT_EQ(v4.rope.theta, v5.rope.theta);
  EXPECT_EQ(v4.rope.factor, v5.rope.factor);
  EXPECT_EQ(v4.rope.originalMaxPositions, v5.rope.originalMaxPositions);
  EXPECT_EQ(v4.dtype, "bfloat16");
  EXPECT_EQ(v5.dtype, "bfloat16");
  EXPECT_TRUE(v4.tieEmbeddings && v5.tieEmbeddings);

  ModelConfig gpt2, mistral;
  ASSERT_TRUE(kiln::hf::parseConfig(KILN_SOURCE_DIR "/test/models/hf/gpt2/config.json", gpt2).isOk());
  EXPECT_TRUE(gpt2.family->learnedPositions);
  EXPECT_EQ(gpt2.intermediate, 4 * 64);
  ASSERT_TRUE(kiln::hf::parseConfig(KILN_SOURCE_DIR "/test/models/hf/mistral/config.json", mistral).isOk());
  ASSERT_TRUE(mistral.slidingWindow.has_value());
  EXPECT_EQ(*mistral.slidingWindow, 8);
}

TEST(HFConfig, FieldsThatChangeTheMathAreComputedOrRefused) {
  std::string base = readText(KILN_SOURCE_DIR "/test/models/hf/llama/config.json");
  auto parse = [&](const std::string &extra, ModelConfig &c) {
    std::string s = base;
    s.insert(s.find('{') + 1, extra);
    return kiln::hf::parseConfigText(s, "llama/config.json", c);
  };
  // A top-level partial_rotary_factor is the rotary part (head_dim 16: 8).
  ModelConfig c;
  ASSERT_TRUE(parse("\"partial_rotary_factor\": 0.5, ", c).isOk());
  EXPECT_EQ(c.rope.partialRotaryFactor, 0.5);
  // Qwen2's sliding window on no layer (max_window_layers past the last), and
  // full attention listed for every layer, are what kiln computes.
  ModelConfig d;
  ASSERT_TRUE(parse("\"use_sliding_window\": true, \"sliding_window\": 64, \"max_window_layers\": 2, "
                    "\"layer_types\": [\"full_attention\", \"full_attention\"], ",
                    d)
                  .isOk());
  EXPECT_FALSE(d.slidingWindow.has_value());
  ModelConfig e;
  ASSERT_TRUE(parse("\"use_sliding_window\": false, \"sliding_window\": 64, \"max_window_layers\": 0, ", e).isOk());
  // Mistral's window on every layer, as layer_types lists it.
  std::string mistral = readText(KILN_SOURCE_DIR "/test/models/hf/mistral/config.json");
  mistral.insert(mistral.find('{') + 1, "\"layer_types\": [\"sliding_attention\", \"sliding_attention\"], ");
  ModelConfig m;
  ASSERT_TRUE(kiln::hf::parseConfigText(mistral, "mistral/config.json", m).isOk());
  mistral.replace(mistral.find("\"sliding_attention\""), 19, "\"full_attention\"");
  EXPECT_NE(kiln::hf::parseConfigText(mistral, "mistral/config.json", m).message().find("'layer_types'[0]"),
            std::string::npos);
  // GPT-2's unscaled or layer-scaled attention scores.
  std::string gpt2 = readText(KILN_SOURCE_DIR "/test/models/hf/gpt2/config.json");
  for (const char *field : {"\"scale_attn_weights\": false, ", "\"scale_attn_by_inverse_layer_idx\": true, "}) {
    std::string t = gpt2;
    t.insert(t.find('{') + 1, field);
    ModelConfig g;
    kiln::Status s = kiln::hf::parseConfigText(t, "gpt2/config.json", g);
    ASSERT_FALSE(s.isOk()) << field;
    EXPECT_NE(s.message().find(std::string(field).substr(1, std::string(field).find('"', 1) - 1)), std::string::npos)
        << s.message();
  }
}

TEST(HFConfig, BadConfigsNameTheFileAndTheField) {
  std::string base = readText(KILN_SOURCE_DIR "/test/models/hf/llama/config.json");
  auto with = [&](const std::string &from, const std::string &to) {
    std::string s = base;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return at == std::string::npos ? s : s.replace(at, from.size(), to);
  };
  // A partial rotary factor at the top and another in the rope parameters.
  std::string twoFactors = with("\"hidden_size\"", "\"partial_rotary_factor\": 0.25, \"hidden_size\"");
  twoFactors.replace(twoFactors.find("\"rope_type\": \"default\""), 23,
                     "\"rope_type\": \"default\", \"partial_rotary_factor\": 0.5");
  const std::pair<std::string, const char *> cases[] = {
      {"{\"architectures\": ", "line 1, column 19: unexpected end of input"},
      {with("\"LlamaForCausalLM\"", "\"FooForCausalLM\""),
       "architecture 'FooForCausalLM' is not supported (kiln imports LlamaForCausalLM"},
      {with("\"architectures\"", "\"archs\""), "missing 'architectures'"},
      {with("\"hidden_size\"", "\"hidden\""), "missing integer 'hidden_size'"},
      {with("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"),
       "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
      {with("\"num_hidden_layers\": 2", "\"num_hidden_layers\": -2"),
       "'num_hidden_layers' must be a non-negative integer"},
      {with("\"rope_type\": \"default\"", "\"rope_type\": \"dynamic\""),
       "rope type 'dynamic' is not supported"},
      {with("\"rope_theta\": 500000.0", "\"rope_theta\": \"big\""),
       "rope_parameters: 'rope_theta' must be a number"},
      {with("\"dtype\": \"bfloat16\"", "\"dtype\": \"int8\""), "dtype 'int8' is not supported"},
      {with("\"hidden_act\": \"silu\"", "\"hidden_act\": \"relu2\""),
       "activation 'relu2' is not supported"},
      {with("\"head_dim\": 16", "\"head_dim\": 15"), "head_dim 15 must be positive and even"},
      // Fields that change the math, refused where kiln does not compute them.
      {with("\"hidden_size\"", "\"use_sliding_window\": true, \"sliding_window\": 64, \"max_window_layers\": 1, "
                              "\"hidden_size\""),
       "'use_sliding_window': true (a 64-token window on layers 1 to 1"},
      {with("\"hidden_size\"", "\"layer_types\": [\"full_attention\", \"sliding_attention\"], \"hidden_size\""),
       "'layer_types'[1] is 'sliding_attention': kiln computes 'full_attention'"},
      {with("\"hidden_size\"", "\"partial_rotary_factor\": 0.1, \"hidden_size\""),
       "partial_rotary_factor 0.100000 gives a rotary part of 1 of head_dim 16"},
      {twoFactors, "'partial_rotary_factor' 0.250000 disagrees with the rope parameters' 0.500000"},
      {with("\"rope_type\": \"default\"", "\"sliding_attention\": {\"rope_type\": \"default\"}"),
       "rope_parameters: 'sliding_attention': rope parameters per layer type are not supported"},
  };
  for (const auto &[text, want] : cases) {
    ModelConfig c;
    kiln::Status s = kiln::hf::parseConfigText(text, "bad/config.json", c);
    ASSERT_FALSE(s.isOk()) << want;
    EXPECT_NE(s.message().find("bad/config.json"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
  }
}

TEST(HFImport, MissingOrMisshapenTensorsAreErrors) {
  std::string dir = KILN_SOURCE_DIR "/test/models/hf/qwen2";
  ModelConfig config;
  ASSERT_TRUE(kiln::hf::parseConfig(dir + "/config.json", config).isOk());
  kiln::format::SafetensorsIndex good;
  ASSERT_TRUE(kiln::format::readSafetensorsDir(dir, good).isOk());
  mlir::MLIRContext ctx;
  auto importWith = [&](kiln::format::SafetensorsIndex index) {
    kiln::Status s = kiln::Status::ok();
    auto m = kiln::hf::importHFModel(ctx, config, index, "qwen2", {}, s);
    EXPECT_EQ(static_cast<bool>(m), s.isOk());
    return s.isOk() ? std::string() : s.message();
  };
  EXPECT_EQ(importWith(good), "");

  auto missing = good;
  std::erase_if(missing.tensors, [](auto &t) { return t.name == "model.layers.1.self_attn.k_proj.bias"; });
  EXPECT_NE(importWith(missing).find("missing tensor 'model.layers.1.self_attn.k_proj.bias' "
                                     "(Qwen2ForCausalLM needs it)"),
            std::string::npos);

  auto misshapen = good;
  for (auto &t : misshapen.tensors)
    if (t.name == "model.layers.0.mlp.up_proj.weight")
      t.shape = {64, 172};
  EXPECT_NE(importWith(misshapen).find("tensor 'model.layers.0.mlp.up_proj.weight' has shape "
                                       "[64x172], the config implies [172x64]"),
            std::string::npos)
      << importWith(misshapen);

  auto wrongType = good;
  for (auto &t : wrongType.tensors)
    if (t.name == "model.norm.weight")
      t.dtype = "I8";
  EXPECT_NE(importWith(wrongType).find("has dtype I8, kiln imports BF16/F16/F32"), std::string::npos);
}

TEST(HFImport, GraphHasDynamicBatchAndTokensAndNamedWeights) {
  mlir::MLIRContext ctx;
  kiln::Status s = kiln::Status::ok();
  auto m = kiln::hf::importHFModel(ctx, KILN_SOURCE_DIR "/test/models/hf/gpt2", {}, s);
  ASSERT_TRUE(m) << s.message();
  auto fn = m->lookupSymbol<mlir::func::FuncOp>("forward");
  auto in = mlir::cast<mlir::RankedTensorType>(fn.getArgumentTypes()[0]);
  EXPECT_TRUE(in.isDynamicDim(0) && in.isDynamicDim(1));
  int weights = 0, gelus = 0, layerNorms = 0;
  m->walk([&](mlir::Operation *op) {
    weights += mlir::isa<kiln::WeightOp>(op);
    gelus += mlir::isa<kiln::GeluOp>(op);
    layerNorms += mlir::isa<kiln::LayerNormOp>(op);
  });
  EXPECT_EQ(weights, 2 + 2 * 12 + 2); // wte, wpe; 12 per layer; ln_f weight, bias
  EXPECT_EQ(gelus, 2);
  EXPECT_EQ(layerNorms, 5);
}

TEST(HFConfig, QuantizationConfigIsReadOrRefusedByField) {
  std::string base = readText(KILN_SOURCE_DIR "/test/models/hf/llama/config.json");
  auto with = [&](const std::string &q) {
    std::string s = base;
    return s.replace(s.find("\"hidden_size\""), 13, "\"quantization_config\": " + q + ", \"hidden_size\"");
  };
  ModelConfig c;
  ASSERT_TRUE(kiln::hf::parseConfigText(with(R"({"quant_method": "gptq", "bits": 8, "group_size": -1,
      "desc_act": true, "sym": false, "checkpoint_format": "gptq_v2", "damp_percent": 0.01})"), "q.json", c)
                  .isOk());
  ASSERT_TRUE(c.quant.has_value());
  EXPECT_EQ(c.quant->method, "gptq");
  EXPECT_EQ(c.quant->packing, "gptq_v2");
  EXPECT_EQ(c.quant->bits, 8);
  EXPECT_EQ(c.quant->groupSize, -1);
  EXPECT_TRUE(c.quant->descAct);
  ModelConfig a;
  ASSERT_TRUE(kiln::hf::parseConfigText(with(R"({"quant_method": "awq", "bits": 4, "group_size": 64,
      "zero_point": true, "version": "GEMM", "modules_to_not_convert": null})"), "a.json", a).isOk());
  EXPECT_EQ(a.quant->packing, "awq");
  EXPECT_EQ(a.quant->groupSize, 64);
  ModelConfig plain;
  ASSERT_TRUE(kiln::hf::parseConfigText(base, "p.json", plain).isOk());
  EXPECT_FALSE(plain.quant.has_value());

  const std::pair<std::string, const char *> cases[] = {
      {with(R"({"quant_method": "bitsandbytes", "load_in_4bit": true})"),
       "quantization_config: 'quant_method' 'bitsandbytes' is not supported (kiln reads gptq and awq)"},
      {with(R"({"bits": 4})"), "quantization_config: 'quant_method' is missing"},
      {with(R"({"quant_method": "gptq", "bits": 3, "group_size": 128})"),
       "quantization_config: 'bits' 3 is not supported for gptq (kiln reads 4 and 8)"},
      {with(R"({"quant_method": "gptq", "bits": 4, "group_size": 0})"),
       "quantization_config: 'group_size' must be -1 (one group) or a positive integer"},
      {with(R"({"quant_method": "gptq", "bits": 4, "checkpoint_format": "marlin"})"),
       "'checkpoint_format' 'marlin' is not supported (kiln reads gptq and gptq_v2)"},
      {with(R"({"quant_method": "gptq", "bits": 4, "lm_head": true})"), "'lm_head': true (a quantized LM head)"},
      {with(R"({"quant_method": "gptq", "bits": 4, "is_marlin_format": true})"), "'is_marlin_format': true"},
      {with(R"({"quant_method": "awq", "bits": 8, "group_size": 128})"),
       "'bits' 8 is not supported for awq (kiln reads 4)"},
      {with(R"({"quant_method": "awq", "bits": 4, "version": "gemv"})"),
       "'version' 'gemv' is not supported (kiln reads awq's gemm packing)"},
      {with(R"({"quant_method": "awq", "bits": 4, "zero_point": false})"), "'zero_point': false is not supported"},
      {with(R"({"quant_method": "awq", "bits": 4, "backend": "llm-awq"})"), "'backend' 'llm-awq' is not supported"},
      {with("[4]"), "'quantization_config' must be an object"},
  };
  for (const auto &[text, want] : cases) {
    ModelConfig bad;
    kiln::Status s = kiln::hf::parseConfigText(text, "bad/config.json", bad);
    ASSERT_FALSE(s.isOk()) << want;
    EXPECT_NE(s.message().find("bad/config.json"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
  }
}

TEST(HFImport, QuantizedProjectionsNeedTheirPackedPartsInShape) {
  // The tiny Llama's config with a GPTQ quantization_config, over packed
  // tensors described by header only (the importer reads no data).
  std::string dir = KILN_SOURCE_DIR "/test/models/hf/llama";
  ModelConfig config;
  ASSERT_TRUE(kiln::hf::parseConfig(dir + "/config.json", config).isOk());
  kiln::format::SafetensorsIndex floats;
  ASSERT_TRUE(kiln::format::readSafetensorsDir(dir, floats).isOk());
  config.quant = kiln::hf::QuantConfig{"gptq", "gptq", 4, 32, false};
  // hidden 64, intermediate 172 (not a multiple of 8: the gate and up
  // projections' outputs cannot pack).
  auto packed = [&](bool withGIdx, int64_t group = 32) {
    kiln::format::SafetensorsIndex idx;
    for (const auto &t : floats.tensors) {
      const std::string &n = t.name;
      if (n.size() < 7 || n.compare(n.size() - 7, 7, ".weight") || n.find("proj") == std::string::npos) {
        idx.tensors.push_back(t);
        continue;
      }
      std::string p = n.substr(0, n.size() - 7);
      int64_t N = t.shape[0], K = t.shape[1], G = group == -1 ? 1 : (K + group - 1) / group;
      auto add = [&](const std::string &name, const char *dtype, std::vector<int64_t> shape) {
        kiln::format::SafetensorsTensor s = t;
        s.name = name;
        s.dtype = dtype;
        s.shape = std::move(shape);
        idx.tensors.push_back(s);
      };
      add(p + ".qweight", "I32", {K / 8, N});
      add(p + ".qzeros", "I32", {G, N / 8});
      add(p + ".scales", "F16", {G, N});
      if (withGIdx)
        add(p + ".g_idx", "I32", {K});
    }
    return idx;
  };
  mlir::MLIRContext ctx;
  auto importWith = [&](const kiln::format::SafetensorsIndex &index) {
    kiln::Status s = kiln::Status::ok();
    auto m = kiln::hf::importHFModel(ctx, config, index, "llama-gptq", {}, s);
    EXPECT_EQ(static_cast<bool>(m), s.isOk());
    return s.isOk() ? std::string() : s.message();
  };
  config.quant->groupSize = 48;
  EXPECT_NE(importWith(packed(true, 48)).find("model.layers.0.self_attn.q_proj: quantization_config group_size 48 "
                                              "does not divide its 64 inputs"),
            std::string::npos)
      << importWith(packed(true, 48));
  config.quant->groupSize = 32;
  EXPECT_NE(importWith(packed(true)).find("model.layers.0.mlp.gate_proj: 4-bit values pack 8 to a word, which does "
                                          "not divide its 172 outputs"),
            std::string::npos)
      << importWith(packed(true));
  config.intermediate = 192; // the packed parts are 172 wide: no longer the config's
  EXPECT_NE(importWith(packed(true)).find("tensor 'model.layers.0.mlp.gate_proj.qweight' has shape [8x172], the "
                                          "config and quantization_config imply [8x192]"),
            std::string::npos)
      << importWith(packed(true));
  config.intermediate = 172;
  config.quant->groupSize = -1;
  config.quant->descAct = true;
  EXPECT_NE(importWith(packed(false, -1)).find("missing tensor 'model.layers.0.self_attn.q_proj.g_idx' "
                                           "(quantization_config desc_act: true orders rows by it)"),
            std::string::npos)
      << importWith(packed(false, -1));
}
