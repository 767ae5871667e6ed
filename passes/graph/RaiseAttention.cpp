//===- RaiseAttention.cpp - scaled dot-product attention -> kiln.attention -===//
//
// Exporters write attention head-major ([B, H, T, D]) as
//
//   o = softmax(q k^T * scale + mask) v,   then transpose(o) to token-major,
//
// with GQA's key/value repetition spelled reshape -> expand -> reshape, the
// scale on the scores or split over q and k, and the mask computed from the
// sequence length by shape ops (transformers builds it in dozens of ops).
// Matching the mask's construction op by op would break with every
// exporter version, so the mask is checked by what it computes: its backward
// slice may read the inputs only through their shapes, and evaluated for
// several lengths it must be exactly the causal mask (0 on and below the
// diagonal, below -1e4 above) or all zeros.
//
//===----------------------------------------------------------------------===//
#include "passes/graph/RaisePatterns.h"
#include "passes/graph/SliceEval.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/DenseSet.h"

#include <cmath>

using namespace mlir;
using namespace kiln;
using kiln::host::DType;
using kiln::host::Tensor;

namespace {

std::optional<double> scalarOf(Value v) {
  auto c = v.getDefiningOp<ConstantOp>();
  auto attr = c ? dyn_cast<DenseElementsAttr>(c.getValue()) : DenseElementsAttr();
  if (!attr || attr.getNumElements() != 1 || !isa<FloatType>(attr.getElementType()))
    return std::nullopt;
  return (*attr.getValues<APFloat>().begin()).convertToDouble();
}

bool isPerm(Value v, ArrayRef<int64_t> perm, Value &input) {
  auto t = v.getDefiningOp<TransposeOp>();
  if (!t || t.getPermutation() != perm)
    return false;
  input = t.getInput();
  return true;
}

/// `v` multiplied (or divided) by a scalar constant: the other factor and the
/// scalar; otherwise `v` and 1.
std::pair<Value, double> peelScale(Value v) {
  if (auto m = v.getDefiningOp<MulOp>())
    for (auto [x, c] : {std::pair(m.getLhs(), m.getRhs()), std::pair(m.getRhs(), m.getLhs())})
      if (std::optional<double> s = scalarOf(c); s && x.getType() == m.getType())
        return {x, *s};
  if (auto d = v.getDefiningOp<DivOp>())
    if (std::optional<double> s = scalarOf(d.getRhs());
        s && *s != 0 && d.getLhs().getType() == d.getType())
      return {d.getLhs(), 1.0 / *s};
  return {v, 1.0};
}

/// GQA's repetition of kv heads, reshape(expand(reshape(x, [B, Hkv, 1, S, D]),
/// ...), [B, Hkv * n, S, D]), peeled to x; `v` itself when not repeated.
Value peelRepeat(Value v) {
  auto r2 = v.getDefiningOp<ReshapeOp>();
  if (!r2)
    return v;
  Operation *e = r2.getInput().getDefiningOp();
  if (!e || !isa<ExpandOp, BroadcastToOp>(e))
    return v;
  auto r1 = e->getOperand(0).getDefiningOp<ReshapeOp>();
  if (!r1)
    return v;
  auto x = cast<RankedTensorType>(r1.getInput().getType());
  auto mid = cast<RankedTensorType>(r1.getType());
  auto out = cast<RankedTensorType>(r2.getType());
  if (x.getRank() != 4 || mid.getRank() != 5 || out.getRank() != 4 || mid.getDimSize(2) != 1 ||
      mid.getDimSize(1) != x.getDimSize(1) || mid.getDimSize(4) != x.getDimSize(3) ||
      out.getDimSize(3) != x.getDimSize(3))
    return v;
  int64_t hkv = x.getDimSize(1), hq = out.getDimSize(1);
  if (ShapedType::isDynamic(hkv) || ShapedType::isDynamic(hq) || hq % hkv)
    return v;
  return r1.getInput();
}

//===--- The mask, by evaluation ---------------------------------------------===//

enum class MaskKind { Causal, None };

/// Whether `m` (broadcastable to [.., t, t]) is the causal mask or all zeros.
std::optional<MaskKind> classify(const Tensor &m, int64_t t) {
  if (m.rank() < 2 || m.dim(m.rank() - 1) != t || m.dim(m.rank() - 2) != t ||
      m.numel() != t * t || !host::isFloat(m.dtype()))
    return std::nullopt;
  bool causal = true, zero = true;
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < t; ++j) {
      double x = m.get(i * t + j);
      bool masked = x < -1e4;
      if (!(x == 0 || masked))
        return std::nullopt;
      causal &= masked == (j > i);
      zero &= !masked;
    }
  if (causal && t > 1)
    return MaskKind::Causal;
  if (zero)
    return MaskKind::None;
  return std::nullopt;
}

/// The mask's kind over lengths 1, 2, 3 and 7; nullopt if it is anything
/// else or cannot be evaluated from shapes alone.
std::optional<MaskKind> maskKind(Value mask) {
  SliceEvaluator ev;
  if (!ev.collect(mask))
    return std::nullopt;
  std::optional<MaskKind> kind;
  for (int64_t t : {2, 3, 7}) {
    FailureOr<Tensor> m = ev.evaluate(mask, t);
    if (failed(m))
      return std::nullopt;
    std::optional<MaskKind> k = classify(*m, t);
    if (!k || (kind && *k != *kind))
      return std::nullopt;
    kind = k;
  }
  return kind;
}

/// transpose(softmax(q k^T * s + mask) v, [0, 2, 1, 3]) -> attention.
struct RaiseAttention : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(TransposeOp root, PatternRewriter &rewriter) const override {
    static constexpr int64_t kSwapHeads[] = {0, 2, 1, 3};
    if (root.getPermutation() != ArrayRef<int64_t>(kSwapHeads))
      return failure();
    auto pv = root.getInput().getDefiningOp<MatmulOp>();
    if (!pv || pv.getTransposeB() || !pv->hasOneUse())
      return failure();
    auto sm = pv.getLhs().getDefiningOp<SoftmaxOp>();
    if (!sm || !sm->hasOneUse() || (static_cast<int64_t>(sm.getAxis()) != 3 && static_cast<int64_t>(sm.getAxis()) != -1))
      return failure();
    // Scores: (q k^T) * scale, optionally + mask (either order).
    Value scores = sm.getInput(), mask;
    if (auto add = scores.getDefiningOp<AddOp>(); add && add->hasOneUse()) {
      for (auto [s, m] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())})
        if (s.getType() == add.getType() && (s.getDefiningOp<MatmulOp>() || s.getDefiningOp<MulOp>() ||
                                             s.getDefiningOp<DivOp>())) {
          scores = s;
          mask = m;
          break;
        }
      if (!mask)
        return failure();
    }
    auto [qk, scale] = peelScale(scores);
    auto mm = qk.getDefiningOp<MatmulOp>();
    if (!mm)
      return failure();
    // q and k^T, each possibly pre-scaled (SDPA's decomposition scales both
    // by sqrt(scale)).
    auto [q, qs] = peelScale(mm.getLhs());
    Value kRepT = mm.getRhs(), kRep;
    double ks = 1.0;
    if (mm.getTransposeB()) {
      kRep = kRepT;
    } else {
      auto [kt, s] = peelScale(kRepT);
      ks = s;
      if (!isPerm(kt, {0, 1, 3, 2}, kRep))
        return failure();
      std::tie(kRep, s) = peelScale(kRep);
      ks *= s;
    }
    Value k = peelRepeat(kRep), v = peelRepeat(pv.getRhs());
    auto qt = cast<RankedTensorType>(q.getType());
    auto kt = cast<RankedTensorType>(k.getType());
    auto vt = cast<RankedTensorType>(v.getType());
    if (qt.getRank() != 4 || kt.getRank() != 4 || vt.getRank() != 4 ||
        qt.getElementType() != kt.getElementType() || kt.getElementType() != vt.getElementType())
      return failure();
    bool causal = false;
    if (mask) {
      std::optional<MaskKind> kind = maskKind(mask);
      if (!kind)
        return failure();
      causal = *kind == MaskKind::Causal;
    }
    // Token-major operands (the transposes cancel with the exporter's).
    Location loc = root.getLoc();
    auto toTokens = [&](Value x) {
      return TransposeOp::create(rewriter, loc, x, ArrayRef<int64_t>(kSwapHeads)).getResult();
    };
    Value qT = toTokens(q), kT = toTokens(k), vT = toTokens(v);
    double s = scale * qs * ks;
    int64_t d = qt.getDimSize(3);
    FloatAttr scaleAttr;
    if (ShapedType::isDynamic(d) || std::fabs(s * std::sqrt(static_cast<double>(d)) - 1.0) > 1e-6)
      scaleAttr = rewriter.getF64FloatAttr(s);
    rewriter.replaceOpWithNewOp<AttentionOp>(
        root, root.getType(), qT, kT, vT, causal ? rewriter.getUnitAttr() : UnitAttr(), scaleAttr,
        IntegerAttr(), FloatAttr());
    return success();
  }
};

} // namespace

void kiln::populateRaiseAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseAttention>(patterns.getContext());
}
