//===- InterpreterTest.cpp - the interpreter and the pass oracle ----------===//
#include "interp/Interpreter.h"
#include "interp/Npy.h"
#include "interp/PipelineCheck.h"
#include "ir/Kiln/KilnOps.h"
#include "passes/Passes.h"
#include "passes/exec/BufferLiveness.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

using namespace mlir;
using kiln::host::DType;
using kiln::host::Tensor;

namespace {

class InterpreterTest : public ::testing::Test {
protected:
  InterpreterTest() {
    registry.insert<kiln::KilnDialect, kiln::exec::ExecDialect, func::FuncDialect>();
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    // Keep diagnostics to check their text.
    handler = std::make_unique<ScopedDiagnosticHandler>(&context, [this](Diagnostic &d) {
      diagnostics += d.str() + "\n";
      return success();
    });
  }

  OwningOpRef<ModuleOp> parse(const char *src) {
    OwningOpRef<ModuleOp> m = parseSourceString<ModuleOp>(src, &context);
    EXPECT_TRUE(m) << diagnostics;
    return m;
  }

  func::FuncOp fn(ModuleOp m) { return *m.getOps<func::FuncOp>().begin(); }

  DialectRegistry registry;
  MLIRContext context;
  std::unique_ptr<ScopedDiagnosticHandler> handler;
  std::string diagnostics;
};

const char *kMlp = R"mlir(
func.func @mlp(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %wg = kiln.weight "gate" : tensor<12x8xf32>
  %wu = kiln.weight "up" : tensor<12x8xf32>
  %wd = kiln.weight "down" : tensor<8x12xf32>
  %g = kiln.matmul %x, %wg {transpose_b} : tensor<?x8xf32>, tensor<12x8xf32> -> tensor<?x12xf32>
  %u = kiln.matmul %x, %wu {transpose_b} : tensor<?x8xf32>, tensor<12x8xf32> -> tensor<?x12xf32>
  %s = kiln.silu %g : tensor<?x12xf32>
  %h = kiln.mul %s, %u : tensor<?x12xf32>, tensor<?x12xf32> -> tensor<?x12xf32>
  %d = kiln.matmul %h, %wd {transpose_b} : tensor<?x12xf32>, tensor<8x12xf32> -> tensor<?x8xf32>
  %y = kiln.add %x, %d : tensor<?x8xf32>, tensor<?x8xf32> -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}
)mlir";

} // namespace

TEST_F(InterpreterTest, EvaluatesAnMlpLikeTheKernelsComposed) {
  OwningOpRef<ModuleOp> m = parse(kMlp);
  std::vector<Tensor> in = kiln::interp::randomInputs(fn(*m), 3, 5, 16);
  ASSERT_EQ(in[0].shape(), (kiln::host::Shape{5, 8}));
  kiln::interp::WeightProvider w = kiln::interp::randomWeights(9);
  std::vector<Tensor> out;
  ASSERT_TRUE(succeeded(kiln::interp::evaluate(fn(*m), in, w, out))) << diagnostics;
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (kiln::host::Shape{5, 8}));

  // The same computation written out in double.
  Tensor wg(DType::F32, {12, 8}), wu(DType::F32, {12, 8}), wd(DType::F32, {8, 12});
  ASSERT_TRUE(w("gate", wg).isOk() && w("up", wu).isOk() && w("down", wd).isOk());
  for (int r = 0; r < 5; ++r)
    for (int j = 0; j < 8; ++j) {
      double acc = in[0].get(r * 8 + j);
      for (int i = 0; i < 12; ++i) {
        double g = 0, u = 0;
        for (int k = 0; k < 8; ++k) {
          g += in[0].get(r * 8 + k) * wg.get(i * 8 + k);
          u += in[0].get(r * 8 + k) * wu.get(i * 8 + k);
        }
        acc += g / (1 + std::exp(-g)) * u * wd.get(j * 12 + i);
      }
      EXPECT_NEAR(out[0].get(r * 8 + j), acc, 1e-5 * (1 + std::fabs(acc)));
    }
}

TEST_F(InterpreterTest, PipelineCheckAcceptsCanonicalizeAndCatchesAWrongRewrite) {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  OwningOpRef<ModuleOp> m = parse(kMlp);
  kiln::interp::CheckOptions opts;
  std::string report;
  EXPECT_TRUE(succeeded(kiln::interp::checkPipelinePreservesOutputs(
      *m, "builtin.module(canonicalize,cse)", opts, report)))
      << report;
  EXPECT_NE(report.find("all agree"), std::string::npos) << report;

  // A "pass" that swaps silu for sigmoid changes the numbers: the oracle says so.
  auto wrong = [](ModuleOp mod) {
    mod.walk([](kiln::SiluOp op) {
      OpBuilder b(op);
      auto s = kiln::SigmoidOp::create(b, op.getLoc(), op.getInput());
      op.replaceAllUsesWith(s.getResult());
      op.erase();
    });
    return success();
  };
  report.clear();
  EXPECT_TRUE(failed(kiln::interp::checkTransformPreservesOutputs(*m, wrong, opts, report)));
  EXPECT_NE(report.find("@mlp result 0"), std::string::npos) << report;
}

TEST_F(InterpreterTest, RuntimeShapeContradictionIsALocatedError) {
  OwningOpRef<ModuleOp> m = parse(R"mlir(
func.func @f(%x: tensor<?xf32>) -> tensor<2x4xf32> {
  %y = kiln.reshape %x {shape = array<i64: 2, 4>} : tensor<?xf32> -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
)mlir");
  std::vector<Tensor> in = {Tensor(DType::F32, {7})}, out;
  EXPECT_TRUE(failed(kiln::interp::evaluate(fn(*m), in, kiln::interp::randomWeights(0), out)));
  EXPECT_NE(diagnostics.find("reshape changes the element count from 7 to 8"), std::string::npos)
      << diagnostics;
}

TEST_F(InterpreterTest, BadInputsAndKernelErrorsAreDiagnosed) {
  OwningOpRef<ModuleOp> m = parse(R"mlir(
func.func @f(%t: tensor<4x3xf32>, %i: tensor<2xi64>) -> tensor<2x3xf32> {
  %y = kiln.gather %t[%i] {axis = 0 : i64} : tensor<4x3xf32>, tensor<2xi64> -> tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
)mlir");
  std::vector<Tensor> out;
  auto w = kiln::interp::randomWeights(0);
  std::vector<Tensor> one = {Tensor(DType::F32, {4, 3})};
  EXPECT_TRUE(failed(kiln::interp::evaluate(fn(*m), one, w, out)));
  EXPECT_NE(diagnostics.find("expected 2 inputs, got 1"), std::string::npos) << diagnostics;

  std::vector<Tensor> wrongShape = {Tensor(DType::F32, {5, 3}), Tensor(DType::I64, {2})};
  EXPECT_TRUE(failed(kiln::interp::evaluate(fn(*m), wrongShape, w, out)));
  EXPECT_NE(diagnostics.find("input 0 is f32[5x3]"), std::string::npos) << diagnostics;

  Tensor ids(DType::I64, {2});
  ids.set(0, 1);
  ids.set(1, 9); // out of range for 4 rows
  std::vector<Tensor> bad = {Tensor(DType::F32, {4, 3}), ids};
  EXPECT_TRUE(failed(kiln::interp::evaluate(fn(*m), bad, w, out)));
  EXPECT_NE(diagnostics.find("gather index 9 out of range"), std::string::npos) << diagnostics;
}

TEST_F(InterpreterTest, FusedRegionsEvaluateTheirBody) {
  OwningOpRef<ModuleOp> m = parse(R"mlir(
func.func @f(%x: tensor<3x5xf32>, %y: tensor<5xf32>) -> tensor<3x5xf32> {
  %r = kiln.fused "elementwise" (%x, %y) : (tensor<3x5xf32>, tensor<5xf32>) -> tensor<3x5xf32> {
  ^bb0(%a: tensor<3x5xf32>, %b: tensor<5xf32>):
    %s = kiln.sub %a, %b : tensor<3x5xf32>, tensor<5xf32> -> tensor<3x5xf32>
    %e = kiln.exp %s : tensor<3x5xf32>
    kiln.yield %e : tensor<3x5xf32>
  }
  return %r : tensor<3x5xf32>
}
)mlir");
  std::vector<Tensor> in = kiln::interp::randomInputs(fn(*m), 1, 1, 1), out;
  ASSERT_TRUE(succeeded(kiln::interp::evaluate(fn(*m), in, kiln::interp::randomWeights(0), out)))
      << diagnostics;
  for (int i = 0; i < 15; ++i)
    EXPECT_NEAR(out[0].get(i), std::exp(in[0].get(i) - in[1].get(i % 5)), 1e-6);
}

TEST(Npy, RoundTripsAndRejectsMalformedFiles) {
  std::string dir = ::testing::TempDir();
  Tensor t(DType::I64, {2, 3});
  for (int i = 0; i < 6; ++i)
    t.set(i, 100 - 37 * i);
  ASSERT_TRUE(kiln::interp::writeNpy(dir + "/t.npy", t).isOk());
  Tensor back;
  ASSERT_TRUE(kiln::interp::readNpy(dir + "/t.npy", back).isOk());
  EXPECT_EQ(back.shape(), t.shape());
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(back.get(i), t.get(i));

  // Truncate the data: the error names the file and what is missing.
  std::ifstream in(dir + "/t.npy", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir + "/short.npy", std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  kiln::host::Status s = kiln::interp::readNpy(dir + "/short.npy", back);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("short.npy: truncated data"), std::string::npos) << s.message();

  std::ofstream(dir + "/bad.npy", std::ios::binary) << "not numpy at all";
  s = kiln::interp::readNpy(dir + "/bad.npy", back);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("bad magic"), std::string::npos);

  s = kiln::interp::readNpy(dir + "/missing.npy", back);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("missing.npy: cannot open"), std::string::npos);
}

namespace {

// Two layers of rope + GQA attention with a residual MLP-free body.
const char *kTwoLayerForward = R"mlir(
func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %r = kiln.arange %ids {axis = 1 : i64} : tensor<?x?xi64> -> tensor<?xi64>
  %pos = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %wq = kiln.weight "wq" : tensor<64x64xf32>
  %wk = kiln.weight "wk" : tensor<32x64xf32>
  %wv = kiln.weight "wv" : tensor<32x64xf32>
  %q = kiln.matmul %x, %wq {transpose_b} : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %v = kiln.matmul %x, %wv {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x4x16xf32>, tensor<1x?xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x2x16xf32>, tensor<1x?xi64>
  %a = kiln.attention %qr, %kr, %v4 {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %a3 = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  %h = kiln.add %x, %a3 : tensor<?x?x64xf32>, tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %k2 = kiln.matmul %h, %wk {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %k24 = kiln.reshape %k2 {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %h4 = kiln.reshape %h {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %b = kiln.attention %h4, %k24, %k24 {causal, sliding_window = 6 : i64} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %b3 = kiln.reshape %b {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  return %b3 : tensor<?x?x64xf32>
}
)mlir";

} // namespace

TEST_F(InterpreterTest, KvCacheCheckAcceptsTheInsertedCacheAndCatchesPlantedBugs) {
  kiln::registerKilnPasses();
  OwningOpRef<ModuleOp> m = parse(kTwoLayerForward);
  kiln::interp::KvCheckOptions opts;
  std::string report;
  auto insert = [&](ModuleOp mod) {
    std::string err;
    return kiln::interp::runPipeline(mod, "builtin.module(kiln-insert-kv-cache{page-size=4 prefill-logits=all})",
                                     err);
  };
  auto weights = kiln::interp::randomWeights(3);
  EXPECT_TRUE(succeeded(kiln::interp::checkKvCacheMatchesForward(*m, insert, weights, opts, report)))
      << report;
  EXPECT_NE(report.find("66 logit rows agree"), std::string::npos) << report;

  // Layer 1 attending over layer 0's keys.
  auto wrongLayer = [&](ModuleOp mod) {
    if (failed(insert(mod)))
      return failure();
    mod.walk([](kiln::PagedAttentionOp op) {
      op.setLayer(0);
    });
    return success();
  };
  report.clear();
  EXPECT_TRUE(failed(kiln::interp::checkKvCacheMatchesForward(*m, wrongLayer, weights, opts, report)));
  EXPECT_NE(report.find("prefill: sequence"), std::string::npos) << report;

  // Decode forgetting the sliding window sees keys the full forward does not.
  auto noWindow = [&](ModuleOp mod) {
    if (failed(insert(mod)))
      return failure();
    mod.lookupSymbol<func::FuncOp>("decode").walk(
        [](kiln::PagedAttentionOp op) { op.removeSlidingWindowAttr(); });
    return success();
  };
  report.clear();
  EXPECT_TRUE(failed(kiln::interp::checkKvCacheMatchesForward(*m, noWindow, weights, opts, report)));
  EXPECT_EQ(report.find("prefill:"), std::string::npos) << report;
  EXPECT_NE(report.find("decode: sequence"), std::string::npos) << report;
}

// The whole compilation, lowered and arena-planned, runs on the exec
// interpreter's byte arenas and matches the full forward; a plan that puts
// two live buffers on the same bytes does not.
TEST_F(InterpreterTest, KvCacheCheckRunsThePlannedProgramAndCatchesAnOverlappingPlan) {
  kiln::registerKilnPasses();
  OwningOpRef<ModuleOp> m = parse(kTwoLayerForward);
  const char *pipeline =
      "builtin.module(kiln-insert-kv-cache{page-size=4 prefill-logits=all},kiln-fuse,"
      "kiln-choose-tiling,kiln-lower-to-exec{max-batch=3 max-tokens=11},kiln-plan-arena)";
  auto compile = [&](ModuleOp mod) {
    std::string err;
    return kiln::interp::runPipeline(mod, pipeline, err);
  };
  kiln::interp::KvCheckOptions opts;
  std::string report;
  auto weights = kiln::interp::randomWeights(5);
  EXPECT_TRUE(succeeded(kiln::interp::checkKvCacheMatchesForward(*m, compile, weights, opts, report)))
      << report;
  EXPECT_NE(report.find("66 logit rows agree"), std::string::npos) << report;

  auto overlap = [&](ModuleOp mod) {
    if (failed(compile(mod)))
      return failure();
    auto decode = mod.lookupSymbol<func::FuncOp>("decode");
    kiln::exec::BufferLiveness live(decode);
    const auto &ivs = live.intervals();
    for (size_t i = 0; i < ivs.size(); ++i)
      for (size_t j = i + 1; j < ivs.size(); ++j) {
        auto a = cast<kiln::exec::BufferSliceOp>(ivs[i].op);
        auto b = cast<kiln::exec::BufferSliceOp>(ivs[j].op);
        if (kiln::exec::BufferLiveness::overlap(ivs[i], ivs[j]) && a.getOffset() != b.getOffset() &&
            a.getSize() == b.getSize()) {
          b.setOffset(a.getOffset());
          return success();
        }
      }
    return failure();
  };
  report.clear();
  EXPECT_TRUE(failed(kiln::interp::checkKvCacheMatchesForward(*m, overlap, weights, opts, report)));
  EXPECT_NE(report.find("decode: sequence"), std::string::npos) << report;
}
