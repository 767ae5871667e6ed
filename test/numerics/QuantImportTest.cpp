//===- QuantImportTest.cpp - GPTQ/AWQ checkpoints vs their dequantised references ===//
//
// For each tiny quantised checkpoint make_quant_models.py writes (every
// packing, 4 and 8 bits, groups of 32/64/128/-1, act order, symmetric or
// not) and its reference (the same model, each projection's weight
// dequantised by the script's own numpy reader and stored float32):
//
// - tensor by tensor: the weight the loader computes from the packed parts
//   (format::readDequantWeight, what the runtime binds) is the reference's,
//   bit for bit;
// - the imported model (a kiln.dequant per projection, f32 activations)
//   evaluated by the interpreter gives the reference's logits, and its
//   greedy tokens.
//
// And for kiln compile --quantize, the loader's rounding of rtn-float's
// projections against the rounded references (QuantizeAtLoad).
//
// The known-answer tests of the unpacking and the rounding themselves are
// DequantTest.cpp's.
//
//===----------------------------------------------------------------------===//
#include "frontend/hf/HFImporter.h"
#include "interp/Interpreter.h"
#include "ir/Kiln/KilnOps.h"
#include "runtime/format/DequantWeights.h"
#include "runtime/format/Safetensors.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using kiln::host::DType;
using kiln::host::Tensor;

namespace {

const std::vector<int64_t> kPrompt = {1, 17, 300, 42, 7, 511, 128, 64, 3, 99, 250, 12, 480, 33, 5, 200};

class QuantModel : public ::testing::TestWithParam<const char *> {
protected:
  std::string dir() const { return std::string(KILN_QUANT_MODELS) + "/" + GetParam(); }
};

mlir::OwningOpRef<mlir::ModuleOp> import(mlir::MLIRContext &ctx, const std::string &dir) {
  kiln::Status status = kiln::Status::ok();
  kiln::hf::ImportOptions opts;
  opts.computeDType = "f32";
  auto m = kiln::hf::importHFModel(ctx, dir, opts, status);
  EXPECT_TRUE(m) << status.message();
  return m;
}

std::string nameOf(mlir::Value v) {
  auto w = v ? v.getDefiningOp<kiln::WeightOp>() : kiln::WeightOp();
  return w ? w.getName().str() : "";
}

} // namespace

TEST_P(QuantModel, LoaderDequantizesEachProjectionAsTheReference) {
  mlir::MLIRContext ctx;
  auto module = import(ctx, dir());
  ASSERT_TRUE(module);
  kiln::format::SafetensorsIndex quant, ref;
  ASSERT_TRUE(kiln::format::readSafetensorsDir(dir(), quant).isOk());
  ASSERT_TRUE(kiln::format::readSafetensorsDir(dir() + "-ref", ref).isOk());
  int projections = 0;
  module->walk([&](kiln::DequantOp d) {
    kiln::format::DequantWeightDesc desc;
    desc.qweight = nameOf(d.getQweight());
    desc.scales = nameOf(d.getScales());
    desc.zeros = nameOf(d.getZeros());
    desc.gIdx = nameOf(d.getGIdx());
    desc.packing = kiln::stringifyQuantPacking(d.getPacking()).str();
    desc.bits = static_cast<int64_t>(d.getBits());
    desc.groupSize = static_cast<int64_t>(d.getGroupSize());
    ASSERT_TRUE(desc.qweight.size() > 8 && desc.qweight.ends_with(".qweight")) << desc.qweight;
    desc.name = desc.qweight.substr(0, desc.qweight.size() - 8) + ".weight";
    Tensor got;
    kiln::Status s = kiln::format::readDequantWeight(quant, desc, DType::F32, got);
    ASSERT_TRUE(s.isOk()) << s.message();
    const kiln::format::SafetensorsTensor *t = ref.find(desc.name);
    ASSERT_TRUE(t) << desc.name;
    ASSERT_EQ(t->dtype, "F32");
    ASSERT_EQ(got.rank(), 2);
    ASSERT_EQ(t->shape, (std::vector<int64_t>{got.dim(1), got.dim(0)})) << desc.name; // stored [N, K]
    std::vector<float> want(static_cast<size_t>(got.numel()));
    ASSERT_TRUE(kiln::format::readTensorData(*t, reinterpret_cast<char *>(want.data())).isOk());
    const int64_t K = got.dim(0), N = got.dim(1);
    int64_t differ = 0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        float g = got.as<float>()[k * N + n], w = want[static_cast<size_t>(n * K + k)];
        differ += std::memcmp(&g, &w, sizeof g) != 0;
      }
    EXPECT_EQ(differ, 0) << desc.name << ": " << differ << " of " << K * N << " values differ";
    ++projections;
  });
  EXPECT_EQ(projections, 14); // seven projections in each of two layers
}

TEST_P(QuantModel, ImportedModelGivesTheReferenceLogitsAndTokens) {
  mlir::MLIRContext ctx;
  auto qm = import(ctx, dir()), rm = import(ctx, dir() + "-ref");
  ASSERT_TRUE(qm && rm);
  std::string err;
  auto qw = kiln::interp::safetensorsWeights(dir(), err);
  ASSERT_TRUE(mlir::succeeded(qw)) << err;
  auto rw = kiln::interp::safetensorsWeights(dir() + "-ref", err);
  ASSERT_TRUE(mlir::succeeded(rw)) << err;
  auto qf = qm->lookupSymbol<mlir::func::FuncOp>("forward"), rf = rm->lookupSymbol<mlir::func::FuncOp>("forward");
  std::vector<int64_t> seq = kPrompt;
  for (int step = 0; step < 8; ++step) {
    Tensor ids(DType::I64, {1, static_cast<int64_t>(seq.size())});
    for (size_t i = 0; i < seq.size(); ++i)
      ids.set(static_cast<int64_t>(i), static_cast<double>(seq[i]));
    std::vector<Tensor> qo, ro;
    ASSERT_TRUE(mlir::succeeded(kiln::interp::evaluate(qf, {ids}, *qw, qo)));
    ASSERT_TRUE(mlir::succeeded(kiln::interp::evaluate(rf, {ids}, *rw, ro)));
    const int64_t V = qo[0].dim(2), last = (qo[0].dim(1) - 1) * V;
    double worst = 0, scale = 0;
    int64_t best = 0, refBest = 0;
    for (int64_t j = 0; j < V; ++j) {
      double q = qo[0].get(last + j), r = ro[0].get(last + j);
      worst = std::max(worst, std::fabs(q - r));
      scale = std::max(scale, std::fabs(r));
      if (q > qo[0].get(last + best))
        best = j;
      if (r > ro[0].get(last + refBest))
        refBest = j;
    }
    // The same f32 weights through the same ops: equal up to the order a
    // matmul over [K, N] and one over [N, K] sum in.
    EXPECT_LE(worst, 1e-5 * scale) << "step " << step;
    ASSERT_EQ(best, refBest) << "step " << step;
    seq.push_back(best);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, QuantModel,
                         ::testing::Values("gptq-4bit-g32-sym", "gptq-4bit-g64-actorder", "gptq-4bit-perchannel",
                                           "gptq-8bit-g128-v2", "gptq-8bit-g32-actorder-sym", "awq-4bit-g64",
                                           "awq-4bit-g128"),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                           std::string s = i.param;
                           for (char &c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return s;
                         });

// kiln compile --quantize: the loader's round-to-nearest of each float
// projection of rtn-float (format::readDequantWeight of an rtn entry, what
// the runtime binds) is make_quant_models.py's rtn_round_trip, bit for bit,
// in both stored layouts ([N, K] as nn.Linear stores it, and [K, N]); the
// embeddings and norms are not touched.
struct RtnCase {
  const char *ref;
  int64_t bits, groupSize;
  bool lmHead;
};

void PrintTo(const RtnCase &c, std::ostream *os) { *os << c.ref; }

class QuantizeAtLoad : public ::testing::TestWithParam<RtnCase> {};

TEST_P(QuantizeAtLoad, LoaderRoundsEachProjectionAsTheReference) {
  const RtnCase c = GetParam();
  const std::string models = KILN_QUANT_MODELS;
  kiln::format::SafetensorsIndex flt, ref;
  ASSERT_TRUE(kiln::format::readSafetensorsDir(models + "/rtn-float", flt).isOk());
  ASSERT_TRUE(kiln::format::readSafetensorsDir(models + "/" + c.ref, ref).isOk());
  int rounded = 0;
  for (const kiln::format::SafetensorsTensor &t : ref.tensors) {
    const std::string &name = t.name;
    const bool projection = name.find("_proj.weight") != std::string::npos || (c.lmHead && name == "lm_head.weight");
    if (!projection) {
      EXPECT_NE(t.dtype, "F32") << name << " should be the float model's own";
      continue;
    }
    ASSERT_EQ(t.dtype, "F32") << name;
    std::vector<float> want(static_cast<size_t>(t.shape[0] * t.shape[1]));
    ASSERT_TRUE(kiln::format::readTensorData(t, reinterpret_cast<char *>(want.data())).isOk());
    kiln::format::DequantWeightDesc desc;
    desc.name = desc.source = name;
    desc.packing = "rtn";
    desc.bits = c.bits;
    desc.groupSize = c.groupSize;
    Tensor got;
    kiln::Status s = kiln::format::readDequantWeight(flt, desc, DType::F32, got);
    ASSERT_TRUE(s.isOk()) << s.message();
    ASSERT_EQ(got.shape(), (kiln::host::Shape{t.shape[0], t.shape[1]})) << name;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << name;
    // The same weight stored [K, N] (k_axis 0) rounds to the same values.
    Tensor src;
    {
      const kiln::format::SafetensorsTensor *f = flt.find(name);
      ASSERT_TRUE(f);
      src = Tensor(DType::BF16, {f->shape[0], f->shape[1]});
      ASSERT_TRUE(kiln::format::readTensorData(*f, src.data()).isOk());
    }
    const int64_t N = t.shape[0], K = t.shape[1];
    Tensor srcT(DType::BF16, {K, N}), gotT(DType::F32, {K, N});
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        std::memcpy(static_cast<char *>(srcT.data()) + 2 * (k * N + n), static_cast<char *>(src.data()) + 2 * (n * K + k),
                    2);
    ASSERT_TRUE(kiln::host::quantizeRoundTrip(srcT, c.bits, c.groupSize, name, gotT, 0).isOk());
    int64_t differ = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        differ += gotT.as<float>()[k * N + n] != want[static_cast<size_t>(n * K + k)];
    EXPECT_EQ(differ, 0) << name << " stored [K, N]";
    ++rounded;
  }
  EXPECT_EQ(rounded, 14 + (c.lmHead ? 1 : 0));
}

INSTANTIATE_TEST_SUITE_P(Tiny, QuantizeAtLoad,
                         ::testing::Values(RtnCase{"rtn-int4-g32-ref", 4, 32, false},
                                           RtnCase{"rtn-int8-g64-ref", 8, 64, false},
                                           RtnCase{"rtn-int4-perrow-lmhead-ref", 4, -1, true}),
                         [](const ::testing::TestParamInfo<RtnCase> &i) {
                           std::string s = std::string(i.param.ref).substr(4);
                           for (char &c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c)))
                               c = '_';
                           return s;
                         });
