//===- HFGoldenTest.cpp - imported HF models vs transformers goldens ------===//
//
// For each tiny model of test/models/hf (made by make_tiny_models.py on the
// GPU machine): import it with kiln's HF importer (f32 activations, bf16
// weights as stored), evaluate it with the interpreter, and compare with
// transformers' float32 result: last-position logits within 1e-3 of the
// largest logit, and 32 greedy tokens identical (EOS masked, as
// generate(min_new_tokens=32) does).
//
//===----------------------------------------------------------------------===//
#include "frontend/hf/HFImporter.h"
#include "interp/Interpreter.h"
#include "runtime/format/Json.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <fstream>

using kiln::host::DType;
using kiln::host::Tensor;

namespace {

struct Golden {
  std::vector<int64_t> prompt, greedy, eos;
  std::vector<double> lastLogits;
};

kiln::format::JsonValue readJson(const std::string &path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  kiln::format::JsonValue v;
  kiln::Status s = kiln::format::parseJson(text, v);
  EXPECT_TRUE(s.isOk()) << path << ": " << s.message();
  return v;
}

Golden readGolden(const std::string &dir) {
  kiln::format::JsonValue v = readJson(dir + "/golden.json");
  Golden g;
  // generate(min_new_tokens=32) masks the EOS ids until the end: so do we.
  kiln::format::JsonValue config = readJson(dir + "/config.json");
  if (const auto *eos = config.find("eos_token_id")) {
    if (eos->isInteger())
      g.eos.push_back(eos->asInt());
    for (const auto &e : eos->isArray() ? eos->asArray() : std::vector<kiln::format::JsonValue>())
      g.eos.push_back(e.asInt());
  }
  for (const auto &x : v.find("prompt")->asArray())
    g.prompt.push_back(x.asInt());
  for (const auto &x : v.find("greedy_tokens")->asArray())
    g.greedy.push_back(x.asInt());
  for (const auto &x : v.find("last_logits")->asArray())
    g.lastLogits.push_back(x.asNumber());
  return g;
}

class HFGolden : public ::testing::TestWithParam<const char *> {};

} // namespace

TEST_P(HFGolden, LogitsAndGreedyTokensMatchTransformers) {
  std::string dir = std::string(KILN_SOURCE_DIR "/test/models/hf/") + GetParam();
  Golden g = readGolden(dir);
  ASSERT_EQ(g.greedy.size(), 32u);

  mlir::MLIRContext ctx;
  kiln::Status status = kiln::Status::ok();
  kiln::hf::ImportOptions opts;
  opts.computeDType = "f32";
  auto module = kiln::hf::importHFModel(ctx, dir, opts, status);
  ASSERT_TRUE(module) << status.message();
  auto fn = module->lookupSymbol<mlir::func::FuncOp>("forward");
  std::string err;
  auto weights = kiln::interp::safetensorsWeights(dir, err);
  ASSERT_TRUE(mlir::succeeded(weights)) << err;

  // Greedy decoding by re-running the whole sequence: slow, and exactly the
  // model's definition (no cache to get wrong).
  std::vector<int64_t> seq = g.prompt, generated;
  for (size_t step = 0; step < g.greedy.size(); ++step) {
    Tensor ids(DType::I64, {1, static_cast<int64_t>(seq.size())});
    for (size_t i = 0; i < seq.size(); ++i)
      ids.set(static_cast<int64_t>(i), static_cast<double>(seq[i]));
    std::vector<Tensor> out;
    ASSERT_TRUE(mlir::succeeded(kiln::interp::evaluate(fn, {ids}, *weights, out)));
    const Tensor &logits = out[0];
    int64_t V = logits.dim(2), last = (logits.dim(1) - 1) * V;
    if (step == 0) {
      ASSERT_EQ(static_cast<size_t>(V), g.lastLogits.size());
      double worst = 0, scale = 0;
      for (int64_t j = 0; j < V; ++j) {
        worst = std::max(worst, std::fabs(logits.get(last + j) - g.lastLogits[j]));
        scale = std::max(scale, std::fabs(g.lastLogits[j]));
      }
      EXPECT_LT(worst / scale, 1e-3) << "max logit error " << worst << " of " << scale;
      RecordProperty("max_logit_error", std::to_string(worst / scale));
      std::printf("%s: max logit error %.2e of the largest logit\n", GetParam(), worst / scale);
    }
    int64_t best = -1;
    for (int64_t j = 0; j < V; ++j)
      if (std::find(g.eos.begin(), g.eos.end(), j) == g.eos.end() &&
          (best < 0 || logits.get(last + j) > logits.get(last + best)))
        best = j;
    generated.push_back(best);
    seq.push_back(best);
  }
  EXPECT_EQ(generated, g.greedy);
}

INSTANTIATE_TEST_SUITE_P(Tiny, HFGolden,
                         ::testing::Values("llama", "llama31", "mistral", "qwen2", "qwen3",
                                           "gpt2"));
