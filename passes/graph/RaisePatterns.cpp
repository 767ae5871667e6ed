//===- RaisePatterns.cpp - primitive spellings -> composite ops -----------===//
//
// See Passes.td (RaisePatterns) for what is recognised. Each pattern matches
// at the op that produces the composite's result and walks up its operands,
// accepting either operand order where the primitive commutes.
//
//===----------------------------------------------------------------------===//
#include "passes/PassUtils.h"
#include "passes/Passes.h"
#include "passes/graph/RaisePatterns.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <limits>

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

/// `v` is within 1e-3 (relative) of `want`.
bool near(std::optional<double> v, double want) {
  return v && std::fabs(*v - want) <= 1e-3 * std::fabs(want);
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

  /// (x, eps) if `s` is mean(x^2 over the last axis, kept) + eps.
  static std::optional<std::pair<Value, double>> meanSquarePlusEps(Value s) {
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

  /// (x, eps) if `r` is 1/sqrt(mean(x^2 over the last axis, kept) + eps).
  static std::optional<std::pair<Value, double>> inverseRms(Value r) {
    Value s;
    if (auto rs = singleUse<RsqrtOp>(r))
      s = rs.getInput();
    else if (auto rec = singleUse<ReciprocalOp>(r)) {
      if (auto sq = singleUse<SqrtOp>(rec.getInput()))
        s = sq.getInput();
    } else if (auto div = singleUse<DivOp>(r); div && near(scalarConstant(div.getLhs()), 1.0)) {
      if (auto sq = singleUse<SqrtOp>(div.getRhs())) // 1 / sqrt(...)
        s = sq.getInput();
    }
    return meanSquarePlusEps(s);
  }

  /// (x, eps) if `n` is x normalised by its RMS: x * r or r * x with r as
  /// above, or x / sqrt(mean(x^2) + eps).
  static std::optional<std::pair<Value, double>> normalised(Value n) {
    if (auto inner = singleUse<MulOp>(n)) {
      for (auto [x, r] : {std::pair(inner.getLhs(), inner.getRhs()),
                          std::pair(inner.getRhs(), inner.getLhs())})
        if (std::optional<std::pair<Value, double>> found = inverseRms(r); found && found->first == x)
          return found;
    } else if (auto div = singleUse<DivOp>(n)) {
      if (auto sq = singleUse<SqrtOp>(div.getRhs()))
        if (std::optional<std::pair<Value, double>> found = meanSquarePlusEps(sq.getInput());
            found && found->first == div.getLhs())
          return found;
    }
    return std::nullopt;
  }

  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    for (auto [w, n] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())}) {
      auto wt = dyn_cast<RankedTensorType>(w.getType());
      std::optional<std::pair<Value, double>> found = normalised(n);
      if (!found || !wt || wt.getRank() != 1)
        continue;
      Value x = found->first;
      auto xt = dyn_cast<RankedTensorType>(x.getType());
      if (!xt || xt != mul.getType() || xt.getShape().back() != wt.getDimSize(0) ||
          ShapedType::isDynamic(wt.getDimSize(0)))
        continue;
      rewriter.replaceOpWithNewOp<RmsNormOp>(
          mul, xt, x, w, rewriter.getF32FloatAttr(static_cast<float>(found->second)),
          rewriter.getF32FloatAttr(0.0f));
      return success();
    }
    return failure();
  }
};

/// LayerNorm is RMSNorm of the centred input: rms_norm(x - mean(x), w) ->
/// layer_norm(x, w), and layer_norm(x, w) + b -> layer_norm(x, w, b) for a
/// 1-D b of the last axis.
struct RaiseLayerNorm : OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RmsNormOp norm, PatternRewriter &rewriter) const override {
    auto sub = singleUse<SubOp>(norm.getInput());
    if (!sub || norm.getWeightOffset().convertToDouble() != 0.0)
      return failure();
    Value x = sub.getLhs();
    auto mean = sub.getRhs().getDefiningOp<ReduceMeanOp>();
    int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
    if (!mean || mean.getInput() != x || !mean.getKeepDims() ||
        mean.getAxes() != ArrayRef<int64_t>{rank - 1} || x.getType() != norm.getType())
      return failure();
    rewriter.replaceOpWithNewOp<LayerNormOp>(norm, norm.getType(), x, norm.getWeight(), Value(),
                                             norm.getEpsilonAttr());
    return success();
  }
};

struct RaiseLayerNormBias : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AddOp add, PatternRewriter &rewriter) const override {
    for (auto [n, b] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
      auto norm = singleUse<LayerNormOp>(n);
      auto bt = dyn_cast<RankedTensorType>(b.getType());
      if (!norm || norm.getBias() || !bt || bt.getRank() != 1 ||
          bt != cast<RankedTensorType>(norm.getWeight().getType()) || add.getType() != norm.getType())
        continue;
      rewriter.replaceOpWithNewOp<LayerNormOp>(add, norm.getType(), norm.getInput(),
                                               norm.getWeight(), b, norm.getEpsilonAttr());
      return success();
    }
    return failure();
  }
};

/// Collects the factors of a product: `v` itself, or the factors of both
/// operands of a single-use kiln.mul of the same type (so x * 0.5 * y and
/// 0.5 * (x * y) look alike).
void factors(Value v, Type type, bool top, SmallVectorImpl<Value> &out) {
  auto mul = v.getDefiningOp<MulOp>();
  if (mul && (top || mul->hasOneUse()) && mul.getLhs().getType() == type &&
      mul.getRhs().getType() == type) {
    factors(mul.getLhs(), type, false, out);
    factors(mul.getRhs(), type, false, out);
    return;
  }
  if (mul && (top || mul->hasOneUse())) { // a scalar constant factor broadcasts
    for (auto [a, b] : {std::pair(mul.getLhs(), mul.getRhs()), std::pair(mul.getRhs(), mul.getLhs())})
      if (a.getType() == type && scalarConstant(b)) {
        factors(a, type, false, out);
        out.push_back(b);
        return;
      }
  }
  out.push_back(v);
}

/// x * 0.5 * (1 + erf(x / sqrt 2)) -> gelu(x), and
/// x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) -> gelu(x) {tanh}.
struct RaiseGelu : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  /// x, if `v` is x / sqrt(2) or x * (1/sqrt(2)) (either order).
  static Value overSqrt2(Value v) {
    if (auto d = singleUse<DivOp>(v))
      return near(scalarConstant(d.getRhs()), std::sqrt(2.0)) ? d.getLhs() : Value();
    if (auto m = singleUse<MulOp>(v))
      for (auto [a, c] : {std::pair(m.getLhs(), m.getRhs()), std::pair(m.getRhs(), m.getLhs())})
        if (near(scalarConstant(c), 1 / std::sqrt(2.0)))
          return a;
    return {};
  }

  /// x, if `v` is x^3 as pow(x, 3) or x * x * x.
  static Value cubed(Value v) {
    if (auto p = singleUse<PowOp>(v))
      return near(scalarConstant(p.getRhs()), 3.0) ? p.getLhs() : Value();
    SmallVector<Value> f;
    factors(v, v.getType(), true, f);
    return f.size() == 3 && f[0] == f[1] && f[1] == f[2] && v.getDefiningOp<MulOp>() ? f[0]
                                                                                     : Value();
  }

  /// x, if `v` is sqrt(2/pi) * (x + 0.044715 * x^3) in any order.
  static Value tanhArgument(Value v) {
    SmallVector<Value> f;
    factors(v, v.getType(), true, f);
    if (f.size() != 2)
      return {};
    for (auto [c, inner] : {std::pair(f[0], f[1]), std::pair(f[1], f[0])}) {
      auto add = singleUse<AddOp>(inner);
      if (!near(scalarConstant(c), std::sqrt(2 / M_PI)) || !add)
        continue;
      for (auto [x, t] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
        SmallVector<Value> g;
        factors(t, t.getType(), true, g);
        if (g.size() == 2)
          for (auto [k, cube] : {std::pair(g[0], g[1]), std::pair(g[1], g[0])})
            if (near(scalarConstant(k), 0.044715) && cubed(cube) == x)
              return x;
      }
    }
    return {};
  }

  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    Type type = mul.getType();
    SmallVector<Value> f;
    factors(mul.getResult(), type, true, f);
    if (f.size() != 3)
      return failure();
    // One factor is 0.5, one is 1 + erf/tanh(...), the remaining one is x.
    for (int half = 0; half < 3; ++half) {
      if (!near(scalarConstant(f[half]), 0.5))
        continue;
      for (int one = 0; one < 3; ++one) {
        int xi = 3 - half - one;
        if (one == half || xi == half || xi == one)
          continue;
        auto add = singleUse<AddOp>(f[one]);
        if (!add)
          continue;
        for (auto [c, act] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
          if (!near(scalarConstant(c), 1.0))
            continue;
          Value x = f[xi];
          if (auto erf = singleUse<ErfOp>(act); erf && overSqrt2(erf.getInput()) == x) {
            rewriter.replaceOpWithNewOp<GeluOp>(mul, x, false);
            return success();
          }
          if (auto th = singleUse<TanhOp>(act); th && tanhArgument(th.getInput()) == x) {
            rewriter.replaceOpWithNewOp<GeluOp>(mul, x, true);
            return success();
          }
        }
      }
    }
    return failure();
  }
};


/// reshape(matmul(reshape(x, [-1, K]), W) + b..., [B, -1, N]) ->
/// matmul(x', W) + b... with x' = x as [B, T, K]: a projection over the
/// batch's tokens flattened to rows and back (torch's Conv1D/addmm, GPT-2's
/// every projection), kept in tokens. Exact: x is [B, T, ...] with B static
/// and the rows B x T in order, so the final reshape's -1 is T. Later passes
/// (the KV cache's decode step, the memory plan's rows of a step) see the
/// batch and token dimensions they expect.
struct KeepTokensThroughMatmul : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ReshapeOp r2, PatternRewriter &rewriter) const override {
    auto out = cast<RankedTensorType>(r2.getType());
    if (out.getRank() != 3 || out.isDynamicDim(0) || !out.isDynamicDim(1) || out.isDynamicDim(2))
      return failure();
    // Bias adds between the product and the reshape (a 1-D operand of N).
    SmallVector<std::pair<AddOp, Value>> biases;
    Value v = r2.getInput();
    while (auto add = v.getDefiningOp<AddOp>()) {
      if (!add->hasOneUse())
        return failure();
      Value bias;
      for (auto [a, b] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())})
        if (auto bt = cast<RankedTensorType>(b.getType()); bt.getRank() == 1 && bt.getDimSize(0) == out.getDimSize(2) &&
                                                           a.getType() == add.getType()) {
          bias = b;
          v = a;
          break;
        }
      if (!bias)
        return failure();
      biases.push_back({add, bias});
    }
    auto m = v.getDefiningOp<MatmulOp>();
    if (!m || !m->hasOneUse())
      return failure();
    auto r1 = m.getLhs().getDefiningOp<ReshapeOp>();
    if (!r1 || !r1->hasOneUse() || cast<RankedTensorType>(r1.getType()).getRank() != 2)
      return failure();
    Value x = r1.getInput();
    auto xt = cast<RankedTensorType>(x.getType());
    int64_t k = cast<RankedTensorType>(r1.getType()).getDimSize(1);
    if (xt.getRank() < 3 || xt.getDimSize(0) != out.getDimSize(0) || !xt.isDynamicDim(1) || ShapedType::isDynamic(k))
      return failure();
    int64_t inner = 1;
    for (int64_t i = 2; i < xt.getRank(); ++i)
      inner = xt.isDynamicDim(i) ? ShapedType::kDynamic : inner * xt.getDimSize(i);
    auto mt = cast<RankedTensorType>(m.getType());
    if (inner != k || mt.getDimSize(1) != out.getDimSize(2) || mt.getElementType() != out.getElementType())
      return failure();
    Location loc = r2.getLoc();
    Value rows = xt.getRank() == 3 ? x
                                   : ReshapeOp::create(rewriter, loc, x, ArrayRef<int64_t>{out.getDimSize(0), -1, k})
                                         .getResult();
    Value y = MatmulOp::create(rewriter, m.getLoc(), rows, m.getRhs(), m.getTransposeBAttr()).getResult();
    for (auto it = biases.rbegin(); it != biases.rend(); ++it)
      y = AddOp::create(rewriter, it->first.getLoc(), y, it->second).getResult();
    rewriter.replaceOp(r2, y);
    return success();
  }
};

/// matmul(x, transpose(w, [1, 0])) -> matmul(x, w, transpose_b): a tied
/// embedding read as the LM head (the export transposes the shared table).
struct FoldTransposedRhs : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MatmulOp m, PatternRewriter &rewriter) const override {
    auto t = m.getRhs().getDefiningOp<TransposeOp>();
    if (m.getTransposeB() || !t || t.getPermutation() != ArrayRef<int64_t>{1, 0})
      return failure();
    rewriter.replaceOpWithNewOp<MatmulOp>(m, m.getType(), m.getLhs(), t.getInput(), rewriter.getUnitAttr());
    return success();
  }
};

/// range(0, shape_of(x)[a], 1) -> arange(x, axis a): the sequence positions
/// as exporters compute them, in the form insert-kv-cache replaces.
struct RaiseArange : OpRewritePattern<RangeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RangeOp range, PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(range.getType());
    if (!type.getElementType().isInteger(64) || !near(scalarConstant(range.getStart()), 0.0) ||
        scalarConstant(range.getDelta()) != std::optional<double>(1.0))
      return failure();
    // limit = reshape(slice(shape_of(x), [a, a + 1]), []) or slice alone.
    Value limit = range.getLimit();
    if (auto r = limit.getDefiningOp<ReshapeOp>())
      limit = r.getInput();
    auto slice = limit.getDefiningOp<SliceOp>();
    auto shape = slice ? slice.getInput().getDefiningOp<ShapeOfOp>() : ShapeOfOp();
    if (!shape || slice.getStarts().size() != 1 || slice.getSteps()[0] != 1 ||
        slice.getEnds()[0] != slice.getStarts()[0] + 1)
      return failure();
    int64_t axis = slice.getStarts()[0];
    auto x = cast<RankedTensorType>(shape.getInput().getType());
    if (axis < 0 || axis >= x.getRank())
      return failure();
    rewriter.replaceOpWithNewOp<ArangeOp>(range, type, shape.getInput(),
                                          rewriter.getI64IntegerAttr(axis));
    return success();
  }
};

struct RaisePatternsPass : kiln::impl::RaisePatternsBase<RaisePatternsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RaiseSilu, RaiseSwiglu, RaiseRmsNorm, RaiseLayerNorm, RaiseLayerNormBias, RaiseGelu,
                 RaiseArange, KeepTokensThroughMatmul, FoldTransposedRhs>(&getContext());
    populateRaiseAttentionPatterns(patterns);
    populateRaiseRopePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // A composite's result may be more static than what it replaced.
    for (auto f : getOperation().getOps<func::FuncOp>())
      if (failed(refineTypes(f)))
        return signalPassFailure();
  }
};

} // namespace
