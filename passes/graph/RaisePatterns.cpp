//===- RaisePatterns.cpp - primitive spellings -> composite ops -----------===//
//
// See Passes.td (RaisePatterns) for what is recognised. Each pattern matches
// at the op that produces the composite's result and walks up its operands,
// accepting either operand order where the primitive commutes.
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_RAISEPATTERNS
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The value of a one-element constant, if `v` is one.
std::optional<double> scalarConstant(Value v) {
  auto c = v.getDefiningOp<ConstantOp>();
  auto attr = c ? dyn_cast<DenseElementsAttr>(c.getValue()) : DenseElementsAttr();
  if (!attr || attr.getNumElements() != 1)
    return std::nullopt;
  if (isa<FloatType>(attr.getElementType()))
    return (*attr.getValues<APFloat>().begin()).convertToDouble();
  return static_cast<double>((*attr.getValues<APInt>().begin()).getSExtValue());
}

/// The op defining `v` if it is an OpT whose only use is the matched chain.
template <typename OpT> OpT singleUse(Value v) {
  auto op = v.getDefiningOp<OpT>();
  return op && op->hasOneUse() ? op : OpT();
}

/// x * sigmoid(x) -> silu(x).
struct RaiseSilu : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    for (auto [x, s] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())}) {
      auto sig = singleUse<SigmoidOp>(s);
      if (!sig || sig.getInput() != x || x.getType() != mul.getType())
        continue;
      rewriter.replaceOpWithNewOp<SiluOp>(mul, x);
      return success();
    }
    return failure();
  }
};

/// silu(g) * u -> swiglu(g, u), for g and u of the result's type.
struct RaiseSwiglu : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    for (auto [a, u] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())}) {
      auto silu = singleUse<SiluOp>(a);
      if (!silu || silu.getInput().getType() != mul.getType() || u.getType() != mul.getType())
        continue;
      rewriter.replaceOpWithNewOp<SwigluOp>(mul, silu.getInput(), u);
      return success();
    }
    return failure();
  }
};

/// w * (x * rsqrt(mean(x^2, -1) + eps)) -> rms_norm(x, w).
struct RaiseRmsNorm : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  /// x, if `p` is x^2 spelled pow(x, 2) or x * x.
  static Value squared(Value p) {
    if (auto pow = singleUse<PowOp>(p)) {
      std::optional<double> e = scalarConstant(pow.getRhs());
      return e && *e == 2.0 ? pow.getLhs() : Value();
    }
    if (auto m = singleUse<MulOp>(p))
      return m.getLhs() == m.getRhs() ? m.getLhs() : Value();
    return {};
  }

  /// (x, eps) if `r` is 1/sqrt(mean(x^2 over the last axis, kept) + eps).
  static std::optional<std::pair<Value, double>> inverseRms(Value r) {
    Value s;
    if (auto rs = singleUse<RsqrtOp>(r))
      s = rs.getInput();
    else if (auto rec = singleUse<ReciprocalOp>(r))
      if (auto sq = singleUse<SqrtOp>(rec.getInput()))
        s = sq.getInput();
    auto add = s ? singleUse<AddOp>(s) : AddOp();
    if (!add)
      return std::nullopt;
    for (auto [m, e] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
      auto mean = singleUse<ReduceMeanOp>(m);
      std::optional<double> eps = scalarConstant(e);
      if (!mean || !eps || !mean.getKeepDims())
        continue;
      int64_t rank = cast<RankedTensorType>(mean.getInput().getType()).getRank();
      if (mean.getAxes() != ArrayRef<int64_t>{rank - 1})
        continue;
      if (Value x = squared(mean.getInput()))
        return std::pair(x, *eps);
    }
    return std::nullopt;
  }

  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    for (auto [w, n] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())}) {
      auto inner = singleUse<MulOp>(n);
      auto wt = dyn_cast<RankedTensorType>(w.getType());
      if (!inner || !wt || wt.getRank() != 1)
        continue;
      for (auto [x, r] : {std::pair(inner.getLhs(), inner.getRhs()),
                          std::pair(inner.getRhs(), inner.getLhs())}) {
        std::optional<std::pair<Value, double>> found = inverseRms(r);
        auto xt = dyn_cast<RankedTensorType>(x.getType());
        if (!found || found->first != x || !xt || xt != mul.getType() ||
            xt.getShape().back() != wt.getDimSize(0) || ShapedType::isDynamic(wt.getDimSize(0)))
          continue;
        rewriter.replaceOpWithNewOp<RmsNormOp>(
            mul, xt, x, w, rewriter.getF32FloatAttr(static_cast<float>(found->second)),
            rewriter.getF32FloatAttr(0.0f));
        return success();
      }
    }
    return failure();
  }
};

struct RaisePatternsPass : kiln::impl::RaisePatternsBase<RaisePatternsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseSilu, RaiseSwiglu, RaiseRmsNorm>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
