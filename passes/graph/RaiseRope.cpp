//===- RaiseRope.cpp - x * cos + rotate(x) * sin -> kiln.rope ----------------===//
//
// Exporters spell RoPE as `x * C + R(x) * S` with tables C and S computed
// from the positions (inv_freq times the float positions, or rows gathered
// from a precomputed sin/cos table) and R a rotation of the last axis
// (rotate-half: slices, negation, concatenation; rotate-every-two: strided
// slices, negation, stacking, flattening). Their spellings differ with every
// exporter and model, so both parts are recognised by what they compute:
//
//  * R is evaluated on a probe x with distinct values: it must be exactly
//    rotate-half (neox) or rotate-every-two (gptj);
//  * C and S are evaluated for chosen positions (the integer value the
//    tables are computed or gathered from is bound): they must be
//    cos(pos * f_j) and sin(pos * f_j) with per-channel frequencies laid out
//    as the rotation pairs them. theta is recovered when the frequencies are
//    theta^(-2i/D); any other frequencies (llama3, yarn, linear scaling) are
//    kept as `inv_freq`.
//
//===----------------------------------------------------------------------===//
#include "passes/graph/RaisePatterns.h"
#include "passes/graph/SliceEval.h"

#include "interp/Interpreter.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/PatternMatch.h"

#include <cmath>
#include <numbers>

using namespace mlir;
using namespace kiln;
using kiln::host::DType;
using kiln::host::Tensor;

namespace {

// Within the smallest precomputed table an exporter could gather from.
constexpr int64_t kProbePositions[] = {0, 1, 3, 8, 13};
constexpr int64_t kNumPositions = 5;

/// The rotation R computes on the last axis, if it is one of RoPE's.
std::optional<RopeStyle> rotationStyle(Value x, Value r) {
  auto xt = cast<RankedTensorType>(x.getType());
  int64_t d = xt.getShape().back();
  host::Shape shape;
  for (int64_t s : xt.getShape())
    shape.push_back(ShapedType::isDynamic(s) ? 1 : s);
  Tensor probe(DType::F32, shape);
  for (int64_t i = 0; i < probe.numel(); ++i)
    probe.set(i, static_cast<double>(i % d + 1) + 100.0 * static_cast<double>(i / d));
  SliceEvaluator ev;
  ev.bind(x, probe);
  if (!ev.collect(r))
    return std::nullopt;
  FailureOr<Tensor> got = ev.evaluate(r, 1);
  if (failed(got) || got->shape() != probe.shape())
    return std::nullopt;
  bool neox = true, gptj = true;
  for (int64_t row = 0; row < probe.numel() / d; ++row)
    for (int64_t j = 0; j < d; ++j) {
      auto at = [&](int64_t k) { return probe.get(row * d + k); };
      double g = got->get(row * d + j);
      neox &= g == (j < d / 2 ? -at(j + d / 2) : at(j - d / 2));
      gptj &= g == (j % 2 == 0 ? -at(j + 1) : at(j - 1));
    }
  if (neox)
    return RopeStyle::Neox;
  if (gptj)
    return RopeStyle::GptJ;
  return std::nullopt;
}

/// The integer value the tables are computed from: the input of a cast to
/// float, or the indices of a gather from a constant table.
Value positionsOf(Value table) {
  SmallVector<Value> work{table};
  DenseSet<Value> seen;
  while (!work.empty() && seen.size() < 200) {
    Value v = work.pop_back_val();
    if (!seen.insert(v).second)
      continue;
    Operation *d = v.getDefiningOp();
    if (!d)
      continue;
    if (auto c = dyn_cast<CastOp>(d); c && isa<IntegerType>(
                                              cast<RankedTensorType>(c.getInput().getType())
                                                  .getElementType()))
      return c.getInput();
    if (auto g = dyn_cast<GatherOp>(d); g && g.getData().getDefiningOp<ConstantOp>())
      return g.getIndices();
    for (Value o : d->getOperands())
      work.push_back(o);
  }
  return {};
}

struct Tables {
  RopeStyle style;
  std::vector<double> freq; // per pair
  bool headMajor;           // tables vary along axis 2 of a [B, H, T, D] x
};

/// Reads C and S for the probe positions; checks they are cos/sin of
/// pos * f_j with f laid out for `style`.
std::optional<Tables> readTables(Value x, Value c, Value s, Value pos, RopeStyle style) {
  auto pt = cast<RankedTensorType>(pos.getType());
  host::Shape pshape;
  int64_t dynamic = 0;
  for (int64_t d : pt.getShape()) {
    dynamic += ShapedType::isDynamic(d);
    pshape.push_back(ShapedType::isDynamic(d) ? kNumPositions : d);
  }
  if (dynamic != 1 || host::numElements(pshape) != kNumPositions)
    return std::nullopt;
  FailureOr<DType> pdt = interp::tensorDType(pt);
  if (failed(pdt))
    return std::nullopt;
  Tensor probe(*pdt, pshape);
  for (int64_t i = 0; i < kNumPositions; ++i)
    probe.setInt(i, kProbePositions[i]);
  SliceEvaluator ev;
  ev.bind(pos, probe);
  if (!ev.collect(c) || !ev.collect(s))
    return std::nullopt;
  FailureOr<Tensor> ct = ev.evaluate(c, kNumPositions), st = ev.evaluate(s, kNumPositions);
  auto xt = cast<RankedTensorType>(x.getType());
  int64_t d = xt.getShape().back();
  if (failed(ct) || failed(st) || ct->shape() != st->shape() ||
      ct->numel() != kNumPositions * d || ct->rank() > 4 || ct->shape().back() != d)
    return std::nullopt;
  // The axis the positions run along, right-aligned against x's rank 4.
  int64_t posAxis = -1;
  for (int64_t i = 0; i < ct->rank(); ++i)
    if (ct->dim(i) == kNumPositions)
      posAxis = i + (4 - ct->rank());
  if (posAxis != 1 && posAxis != 2)
    return std::nullopt;
  double tol = host::isFloat(ct->dtype()) && host::dtypeSize(ct->dtype()) == 2 ? 2e-2 : 1e-4;
  // pos 0: cos 1, sin 0 (a magnitude other than 1, yarn's, is not raised).
  for (int64_t j = 0; j < d; ++j)
    if (std::fabs(ct->get(j) - 1) > tol || std::fabs(st->get(j)) > tol)
      return std::nullopt;
  // Frequencies from pos 1, refined at the last position (unwrapping 2 pi).
  const double twoPi = 2 * std::numbers::pi;
  int64_t last = kProbePositions[kNumPositions - 1];
  std::vector<double> f(d);
  for (int64_t j = 0; j < d; ++j) {
    double f1 = std::atan2(st->get(d + j), ct->get(d + j));
    double a = std::atan2(st->get((kNumPositions - 1) * d + j), ct->get((kNumPositions - 1) * d + j));
    double k = std::round((f1 * last - a) / twoPi);
    f[j] = (a + k * twoPi) / last;
    if (!(f[j] > 0))
      return std::nullopt;
  }
  for (int64_t p = 0; p < kNumPositions; ++p)
    for (int64_t j = 0; j < d; ++j) {
      double ang = kProbePositions[p] * f[j];
      if (std::fabs(ct->get(p * d + j) - std::cos(ang)) > tol ||
          std::fabs(st->get(p * d + j) - std::sin(ang)) > tol)
        return std::nullopt;
    }
  Tables t{style, {}, posAxis == 2};
  for (int64_t i = 0; i < d / 2; ++i) {
    int64_t a = style == RopeStyle::Neox ? i : 2 * i, b = style == RopeStyle::Neox ? i + d / 2 : 2 * i + 1;
    if (std::fabs(f[a] - f[b]) > 1e-6 * f[a] + 1e-9)
      return std::nullopt;
    t.freq.push_back(f[a]);
  }
  return t;
}

/// theta when freq[i] = theta^(-2i/D) (within 1e-4), else nullopt.
std::optional<double> thetaOf(ArrayRef<double> freq) {
  int64_t d = 2 * static_cast<int64_t>(freq.size());
  if (freq.size() < 2 || std::fabs(freq[0] - 1) > 1e-5)
    return std::nullopt;
  double theta = std::pow(freq[1], -d / 2.0);
  for (size_t i = 0; i < freq.size(); ++i)
    if (std::fabs(freq[i] - std::pow(theta, -2.0 * i / d)) > 1e-4 * freq[i])
      return std::nullopt;
  double rounded = std::round(theta);
  return std::fabs(rounded - theta) < 1e-3 * theta ? rounded : theta;
}

struct RaiseRope : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add, PatternRewriter &rewriter) const override {
    auto type = dyn_cast<RankedTensorType>(add.getType());
    if (!type || type.getRank() != 4 || ShapedType::isDynamic(type.getShape().back()) ||
        type.getShape().back() % 2 || !isa<FloatType>(type.getElementType()))
      return failure();
    for (auto [a, b] : {std::pair(add.getLhs(), add.getRhs()), std::pair(add.getRhs(), add.getLhs())}) {
      auto m1 = a.getDefiningOp<MulOp>(), m2 = b.getDefiningOp<MulOp>();
      if (!m1 || !m2)
        continue;
      for (auto [x, c] : {std::pair(m1.getLhs(), m1.getRhs()), std::pair(m1.getRhs(), m1.getLhs())})
        for (auto [r, s] : {std::pair(m2.getLhs(), m2.getRhs()), std::pair(m2.getRhs(), m2.getLhs())}) {
          if (x.getType() != type || r.getType() != type || c == x || s == x)
            continue;
          std::optional<RopeStyle> style = rotationStyle(x, r);
          if (!style)
            continue;
          Value pos = positionsOf(c);
          if (!pos || positionsOf(s) != pos)
            continue;
          std::optional<Tables> t = readTables(x, c, s, pos, *style);
          if (!t)
            continue;
          rewrite(add, x, pos, *t, rewriter);
          return success();
        }
    }
    return failure();
  }

  static void rewrite(AddOp add, Value x, Value pos, const Tables &t, PatternRewriter &rewriter) {
    Location loc = add.getLoc();
    static constexpr int64_t kSwap[] = {0, 2, 1, 3};
    // positions [B or 1, T].
    auto pt = cast<RankedTensorType>(pos.getType());
    if (pt.getRank() != 2)
      pos = ReshapeOp::create(rewriter, loc, pos, ArrayRef<int64_t>{1, -1});
    Value in = t.headMajor ? TransposeOp::create(rewriter, loc, x, ArrayRef<int64_t>(kSwap)).getResult() : x;
    std::optional<double> theta = thetaOf(t.freq);
    Value rope = RopeOp::create(
        rewriter, loc, in.getType(), in, pos, /*cos_sin=*/Value(), RopeStyleAttr::get(rewriter.getContext(), t.style),
        rewriter.getF64FloatAttr(theta.value_or(std::pow(t.freq[1], -static_cast<double>(t.freq.size())))),
        IntegerAttr(), RopeScalingAttr::get(rewriter.getContext(), RopeScaling::None),
        rewriter.getF64FloatAttr(1.0), rewriter.getF64FloatAttr(1.0), rewriter.getF64FloatAttr(4.0),
        rewriter.getI64IntegerAttr(0), rewriter.getF64FloatAttr(32.0), rewriter.getF64FloatAttr(1.0),
        FloatAttr(), theta ? DenseF64ArrayAttr() : rewriter.getDenseF64ArrayAttr(t.freq));
    if (t.headMajor)
      rewriter.replaceOpWithNewOp<TransposeOp>(add, rope, ArrayRef<int64_t>(kSwap));
    else
      rewriter.replaceOp(add, rope);
  }
};

} // namespace

void kiln::populateRaiseRopePatterns(RewritePatternSet &patterns) {
  patterns.add<RaiseRope>(patterns.getContext());
}
