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
// diagonal, below -1e4 above) or all zeros. The same holds for the other
// run-time spellings of current exports (torch.onnx's dynamo exporter):
// k^T through reshapes to [B * H, S, D] and back, and transformers'
// where(isnan(p), 0, p) around the probabilities.
//
//===----------------------------------------------------------------------===//
#include "passes/graph/RaisePatterns.h"
#include "passes/graph/SliceEval.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/DenseSet.h"

#include <cmath>
#include <limits>
#include <set>

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

/// transformers' guard around the probabilities, where(isnan(p), 0, p)
/// (IsNaN imported as p != p), peeled to p, its where and compare in
/// `guard`; `v` itself when not guarded. With the causal mask or none every
/// row keeps a finite score, so p has no NaN to replace: the raise checks
/// the mask before it drops the guard.
Value peelNanGuard(Value v, SmallVectorImpl<Operation *> &guard) {
  auto w = v.getDefiningOp<WhereOp>();
  if (!w || w.getType() != w.getOnFalse().getType())
    return v;
  auto c = w.getCondition().getDefiningOp<CompareOp>();
  std::optional<double> zero = scalarOf(w.getOnTrue());
  Value p = w.getOnFalse();
  if (!c || c.getPredicate() != ComparePredicate::ne || c.getLhs() != p || c.getRhs() != p || !zero || *zero != 0)
    return v;
  guard.assign({w.getOperation(), c.getOperation()});
  return p;
}

/// k^T as transpose(k, [0, 1, 3, 2]), or as SDPA's decomposition spells it,
/// reshape(transpose(reshape(k, [B * H, S, D]), [0, 2, 1]), [B, H, D, S])
/// with either reshape's target computed from shapes at run time. The
/// spelled chain is checked by what it computes: evaluated on distinct
/// values of k's shape for several lengths, it must give k's transpose.
bool peelKeyTranspose(Value kt, Value &k) {
  if (isPerm(kt, {0, 1, 3, 2}, k))
    return true;
  Operation *r2 = kt.getDefiningOp();
  if (!r2 || !isa<ReshapeOp, ReshapeToOp>(r2))
    return false;
  Value mid;
  if (!isPerm(r2->getOperand(0), {0, 2, 1}, mid))
    return false;
  Operation *r1 = mid.getDefiningOp();
  if (!r1 || !isa<ReshapeOp, ReshapeToOp>(r1))
    return false;
  Value x = r1->getOperand(0);
  auto xt = cast<RankedTensorType>(x.getType());
  if (xt.getRank() != 4 || !xt.getElementType().isIntOrFloat())
    return false;
  for (auto [length, batch] : {std::pair<int64_t, int64_t>(2, 1), {3, 2}, {7, 1}}) {
    host::Shape dims;
    for (int64_t i = 0; i < 4; ++i)
      dims.push_back(xt.isDynamicDim(i) ? (i == 0 ? batch : length) : xt.getDimSize(i));
    Tensor in(DType::F32, dims);
    for (int64_t i = 0; i < in.numel(); ++i)
      in.set(i, static_cast<double>(i));
    SliceEvaluator ev;
    ev.bind(x, in);
    if (!ev.collect(kt))
      return false;
    FailureOr<Tensor> out = ev.evaluate(kt, length, batch);
    if (failed(out) || out->rank() != 4 || out->dim(0) != dims[0] || out->dim(1) != dims[1] ||
        out->dim(2) != dims[3] || out->dim(3) != dims[2])
      return false;
    for (int64_t b = 0; b < dims[0] * dims[1]; ++b)
      for (int64_t d = 0; d < dims[3]; ++d)
        for (int64_t t = 0; t < dims[2]; ++t)
          if (out->get((b * dims[3] + d) * dims[2] + t) != in.get((b * dims[2] + t) * dims[3] + d))
            return false;
  }
  k = x;
  return true;
}

//===--- The mask, by evaluation ---------------------------------------------===//

/// What a mask computes: nothing (all zeros), or the causal mask, with a
/// sliding window when `window` > 0 (query i sees key j iff
/// i - window < j <= i, kiln.attention's sliding_window).
struct MaskKind {
  bool causal = false;
  int64_t window = 0;
};

/// The lengths past which a window is looked for: a window is a constant of
/// the mask's slice, so the mask is evaluated past each integer constant
/// there too. Constants up to this; a larger one (beyond what evaluating a
/// [t, t] mask affords) leaves the mask unclassified, and the attention is
/// not raised rather than raised without its window.
constexpr int64_t kMaxWindowProbe = 4096;

/// The mask `m` evaluated at `length` ([.., T, S]: T = length queries, the
/// last T of S = length or 2 x length positions -- an export with past keys,
/// whose past takes the length too -- as kiln.attention's causal reads them)
/// classified: all zeros, or causal -- query i sees keys up to i + S - T --
/// where a row whose first visible key j0 > 0 shows a window of
/// i + S - T - j0 + 1 (every such row must show the same one); `window` stays
/// 0 when no row shows it. A mask broadcast over the queries or the keys is
/// known only when all zeros. nullopt: anything else.
std::optional<MaskKind> classify(const Tensor &m, int64_t length) {
  if (m.rank() < 2 || !host::isFloat(m.dtype()))
    return std::nullopt;
  const int64_t t = m.dim(m.rank() - 2), s = m.dim(m.rank() - 1);
  if (m.numel() != t * s)
    return std::nullopt;
  if (t != length || (s != length && s != 2 * length)) {
    for (int64_t i = 0; i < m.numel(); ++i)
      if (m.get(i) != 0)
        return std::nullopt;
    return MaskKind{};
  }
  bool zero = true;
  MaskKind k{true, 0};
  for (int64_t i = 0; i < t; ++i) {
    const int64_t q = i + s - t; // the query's position
    int64_t first = -1;          // the row's first visible key
    for (int64_t j = 0; j < s; ++j) {
      double x = m.get(i * s + j);
      bool masked = x < -1e4;
      if (!(x == 0 || masked))
        return std::nullopt;
      zero &= !masked;
      if (!masked && first < 0)
        first = j;
      // Visible keys: first .. q, one run ending on the query's position.
      if (masked != (j > q || first < 0 || j < first))
        k.causal = false;
    }
    if (first < 0)
      k.causal = false;
    else if (first > 0 && k.causal) {
      if (k.window && k.window != q - first + 1)
        k.causal = false;
      k.window = q - first + 1;
    }
  }
  if (k.causal && s > 1)
    return k;
  if (zero)
    return MaskKind{};
  return std::nullopt;
}

/// The mask's kind over lengths 2, 3 and 7 and past each integer constant
/// of its slice (where a window would show); nullopt if it is anything else,
/// differs between lengths, or cannot be evaluated from shapes alone.
std::optional<MaskKind> maskKind(Value mask) {
  SliceEvaluator ev;
  if (!ev.collect(mask))
    return std::nullopt;
  std::set<int64_t> lengths = {2, 3, 7};
  for (Value c : ev.constants()) {
    auto attr = dyn_cast<DenseElementsAttr>(c.getDefiningOp<ConstantOp>().getValue());
    if (!attr || !attr.getElementType().isInteger() || attr.getElementType().isInteger(1) ||
        attr.getNumElements() != 1)
      continue;
    int64_t v = (*attr.getValues<APInt>().begin()).getSExtValue();
    // INT64_MIN/MAX are a slice's open ends, not a size.
    if (v <= 2 || v == std::numeric_limits<int64_t>::max() || v == std::numeric_limits<int64_t>::min())
      continue;
    if (v > kMaxWindowProbe)
      return std::nullopt;
    lengths.insert(v + 2); // a window of v - 1, v or v + 1 shows from row v + 1 on
  }
  std::optional<MaskKind> kind;
  int64_t unwindowed = 0; // the longest length that showed no window
  for (int64_t t : lengths) { // increasing
    FailureOr<Tensor> m = ev.evaluate(mask, t);
    if (failed(m))
      return std::nullopt;
    std::optional<MaskKind> k = classify(*m, t);
    if (!k || (kind && k->causal != kind->causal))
      return std::nullopt;
    // One window for every length: shorter lengths than it show none,
    // longer ones show it.
    if (k->window) {
      if ((kind && kind->window && kind->window != k->window) || unwindowed > k->window)
        return std::nullopt;
      kind = k;
    } else {
      if (kind && kind->window)
        return std::nullopt;
      unwindowed = t;
      if (!kind)
        kind = k;
    }
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
    SmallVector<Operation *, 2> guard;
    auto sm = peelNanGuard(pv.getLhs(), guard).getDefiningOp<SoftmaxOp>();
    if (!sm || (static_cast<int64_t>(sm.getAxis()) != 3 && static_cast<int64_t>(sm.getAxis()) != -1))
      return failure();
    // The probabilities feed the product alone, or its guard alone.
    for (Operation *u : sm->getUsers())
      if (u != pv && !llvm::is_contained(guard, u))
        return failure();
    if (!llvm::all_of(guard, [](Operation *g) { return g->hasOneUse(); }))
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
      if (!peelKeyTranspose(kt, kRep))
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
    MaskKind kind;
    if (mask) {
      // Every layer adds the same mask: classified once (it outlives the
      // raise of every attention that reads it).
      auto [it, fresh] = masks_.try_emplace(mask);
      if (fresh)
        it->second = maskKind(mask);
      std::optional<MaskKind> k = it->second;
      if (!k)
        return failure();
      kind = *k;
    }
    bool causal = kind.causal;
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
    // The result's type is what attention infers from q, k and v, which may
    // know more than the exporter's transpose said (a batch of 1): the pass
    // refines its users' types after.
    auto att = AttentionOp::create(rewriter, loc, qT, kT, vT, causal ? rewriter.getUnitAttr() : UnitAttr(),
                                   scaleAttr,
                                   kind.window ? rewriter.getI64IntegerAttr(kind.window) : IntegerAttr(),
                                   FloatAttr());
    rewriter.replaceOp(root, att.getResult());
    return success();
  }

private:
  mutable llvm::DenseMap<Value, std::optional<MaskKind>> masks_;
};

} // namespace

void kiln::populateRaiseAttentionPatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseAttention>(patterns.getContext());
}
