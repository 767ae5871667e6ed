//===- TransformerOps.cpp - verifiers of kiln's transformer ops -------===//
//
// RoPE and its table, attention, the paged KV cache and fused bodies. Every
// rule a verifier checks here has an `expected-error` case in
// test/lit/ir/kiln/invalid.mlir.
//
//===----------------------------------------------------------------------===//
#include "ir/Kiln/KilnOps.h"
#include "ir/Kiln/KilnOpsDetail.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>
#include <tuple>

using namespace mlir;
using namespace kiln;
using namespace kiln::detail;

/// The frequency attributes kiln.rope and kiln.rope_cos_sin share, for a
/// rotary dim `r` (dynamic when the head dim is).
template <typename RopeLike>
static LogicalResult verifyRopeFrequencies(RopeLike op, int64_t r) {
  if (op.getTheta().convertToDouble() <= 0)
    return op.emitOpError("theta must be positive");
  if (std::optional<ArrayRef<double>> inv = op.getInvFreq()) {
    if (!isDyn(r) && static_cast<int64_t>(inv->size()) * 2 != r)
      return op.emitOpError("inv_freq has ") << inv->size() << " frequencies for a rotary dim of "
                                             << r << " (one per pair)";
    for (double f : *inv)
      if (!(f > 0) || !std::isfinite(f))
        return op.emitOpError("inv_freq must be positive and finite");
  }
  RopeScaling s = op.getScaling();
  if (s != RopeScaling::None && op.getFactor().convertToDouble() <= 0)
    return op.emitOpError("scaling factor must be positive");
  if ((s == RopeScaling::Llama3 || s == RopeScaling::Yarn) &&
      static_cast<int64_t>(op.getOriginalMaxPositions()) <= 0)
    return op.emitOpError(stringifyRopeScaling(s))
           << " scaling needs original_max_positions > 0";
  if (s == RopeScaling::Llama3) {
    double lo = op.getLowFreqFactor().convertToDouble();
    double hi = op.getHighFreqFactor().convertToDouble();
    if (!(lo > 0 && hi > lo))
      return op.emitOpError("llama3 scaling needs 0 < low_freq_factor < high_freq_factor");
  }
  return success();
}

/// A rotation's frequency attributes, read through the getters (so an
/// absent default and its spelled-out value are equal).
template <typename RopeLike> static auto ropeFrequencies(RopeLike op) {
  return std::make_tuple(op.getTheta(), op.getScaling(), op.getFactor(), op.getLowFreqFactor(),
                         op.getHighFreqFactor(), op.getOriginalMaxPositions(), op.getBetaFast(), op.getBetaSlow(),
                         op.getAttentionFactor(), op.getInvFreq());
}

bool kiln::sameRopeFrequencies(Operation *a, Operation *b) {
  auto of = [](Operation *op) -> std::optional<decltype(ropeFrequencies(RopeOp()))> {
    if (auto r = dyn_cast<RopeOp>(op))
      return ropeFrequencies(r);
    if (auto t = dyn_cast<RopeCosSinOp>(op))
      return ropeFrequencies(t);
    return std::nullopt;
  };
  return of(a) && of(a) == of(b);
}

RopeCosSinOp kiln::buildRopeCosSin(OpBuilder &b, RopeOp r, int64_t rotaryDim) {
  return RopeCosSinOp::create(b, r.getLoc(), r.getPositions(), r.getThetaAttr(), b.getI64IntegerAttr(rotaryDim),
                              r.getScalingAttr(), r.getFactorAttr(), r.getLowFreqFactorAttr(),
                              r.getHighFreqFactorAttr(), r.getOriginalMaxPositionsAttr(), r.getBetaFastAttr(),
                              r.getBetaSlowAttr(), r.getAttentionFactorAttr(), r.getInvFreqAttr());
}

LogicalResult RopeOp::verify() {
  auto x = cast<RankedTensorType>(getInput().getType());
  auto pos = cast<RankedTensorType>(getPositions().getType());
  if (x.getRank() != 4)
    return emitOpError("input must be [batch, tokens, heads, head_dim], got ") << x;
  if (pos.getRank() != 2)
    return emitOpError("positions must be [batch, tokens], got ") << pos;
  // positions[1, T] applies to every sequence of the batch.
  for (int64_t i = 0; i < 2; ++i)
    if (!(i == 0 && pos.getDimSize(0) == 1) &&
        failed(mergeDims(x.getDimSize(i), pos.getDimSize(i))))
      return emitOpError("positions ") << pos << " do not match the input's "
                                       << (i ? "tokens" : "batch");
  int64_t d = x.getDimSize(3), r = d;
  if (std::optional<uint64_t> rd = getRotaryDim()) {
    r = static_cast<int64_t>(*rd);
    if (r <= 0 || r % 2)
      return emitOpError("rotary_dim must be positive and even, got ") << r;
    if (!isDyn(d) && r > d)
      return emitOpError("rotary_dim ") << r << " exceeds the head dim " << d;
  } else if (!isDyn(d) && d % 2) {
    return emitOpError("head dim ") << d << " must be even";
  }
  if (failed(verifyRopeFrequencies(*this, r)))
    return failure();
  if (Value cs = getCosSin()) {
    // The table of these positions and frequencies: its shape here, its
    // attributes where it is a kiln.rope_cos_sin op.
    auto t = cast<RankedTensorType>(cs.getType());
    if (t.getRank() != 4 || failed(mergeDims(t.getDimSize(0), pos.getDimSize(0))) ||
        failed(mergeDims(t.getDimSize(1), pos.getDimSize(1))) ||
        (!isDyn(r) && failed(mergeDims(t.getDimSize(2), r / 2))) || t.getDimSize(3) != 2)
      return emitOpError("cos_sin ") << t << " is not the table of positions " << pos << " for a rotary dim of "
                                     << r;
    if (auto table = cs.getDefiningOp<RopeCosSinOp>()) {
      if (table.getPositions() != getPositions())
        return emitOpError("cos_sin is the table of other positions");
      if (!sameRopeFrequencies(*this, table))
        return emitOpError("cos_sin has other frequencies than the rotation");
    }
  }
  return success();
}

LogicalResult RopeCosSinOp::verify() {
  auto pos = cast<RankedTensorType>(getPositions().getType());
  if (pos.getRank() != 2)
    return emitOpError("positions must be [batch, tokens], got ") << pos;
  int64_t r = static_cast<int64_t>(getRotaryDim());
  if (r <= 0 || r % 2)
    return emitOpError("rotary_dim must be positive and even, got ") << r;
  return verifyRopeFrequencies(*this, r);
}

LogicalResult RopeCosSinOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location>, Adaptor adaptor,
                                             SmallVectorImpl<Type> &inferred) {
  RankedTensorType pos = rankedType(adaptor.getPositions());
  if (!pos || pos.getRank() != 2)
    return failure();
  int64_t half = static_cast<int64_t>(adaptor.getRotaryDim()) / 2;
  inferred.push_back(RankedTensorType::get({pos.getDimSize(0), pos.getDimSize(1), half, 2}, Float32Type::get(ctx)));
  return success();
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  RankedTensorType q = rankedType(adaptor.getQuery());
  RankedTensorType k = rankedType(adaptor.getKey());
  RankedTensorType v = rankedType(adaptor.getValue());
  if (!q || !k || !v)
    return emitOptionalError(loc, "expected ranked tensor operands");
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4)
    return emitOptionalError(loc, "attention operands must be [batch, seq, heads, head_dim]");
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType())
    return emitOptionalError(loc, "query, key and value must share an element type");
  auto mustMatch = [&](int64_t a, int64_t b, const char *what) -> LogicalResult {
    if (failed(mergeDims(a, b)))
      return emitOptionalError(loc, what, " differ: ", dimStr(a), " and ", dimStr(b));
    return success();
  };
  if (failed(mustMatch(q.getDimSize(0), k.getDimSize(0), "query and key batch sizes")) ||
      failed(mustMatch(k.getDimSize(0), v.getDimSize(0), "key and value batch sizes")) ||
      failed(mustMatch(k.getDimSize(1), v.getDimSize(1), "key and value lengths")) ||
      failed(mustMatch(k.getDimSize(2), v.getDimSize(2), "key and value head counts")) ||
      failed(mustMatch(q.getDimSize(3), k.getDimSize(3), "query and key head dims")))
    return failure();
  int64_t hq = q.getDimSize(2), hkv = k.getDimSize(2);
  if (!isDyn(hq) && !isDyn(hkv) && (hkv == 0 || hq % hkv))
    return emitOptionalError(loc, "query heads ", hq,
                             " must be a multiple of key/value heads ", hkv);
  inferred.push_back(RankedTensorType::get(
      {q.getDimSize(0), q.getDimSize(1), hq, v.getDimSize(3)}, q.getElementType()));
  return success();
}

/// The attributes attention and paged_attention share.
template <typename OpT> static LogicalResult verifyAttentionAttrs(OpT op) {
  if (std::optional<APFloat> s = op.getScale(); s && s->convertToDouble() <= 0)
    return op.emitOpError("scale must be positive");
  if (std::optional<APFloat> c = op.getSoftcap(); c && c->convertToDouble() <= 0)
    return op.emitOpError("softcap must be positive");
  if (std::optional<uint64_t> w = op.getSlidingWindow(); w && static_cast<int64_t>(*w) <= 0)
    return op.emitOpError("sliding_window must be positive");
  return success();
}

LogicalResult AttentionOp::verify() {
  if (failed(verifyAttentionAttrs(*this)))
    return failure();
  int64_t t = getQuery().getType().getDimSize(1), s = getKey().getType().getDimSize(1);
  if (getCausal() && !isDyn(t) && !isDyn(s) && t > s)
    return emitOpError("causal attention has more queries (")
           << t << ") than keys (" << s << ")";
  return success();
}

/// Checks the paged cache operand shared by kv_append and paged_attention:
/// `cache[L, P, 2, page, Hkv, D]` with `layer < L`, and `tokens[B, T, H, D]`
/// (keys/values or queries) against it. `sameHeads` requires H == Hkv (keys),
/// otherwise H must be a multiple of Hkv (queries).
static LogicalResult verifyPagedCache(Operation *op, RankedTensorType cache,
                                      uint64_t layer, RankedTensorType tokens,
                                      bool sameHeads, RankedTensorType blockTables,
                                      RankedTensorType positions) {
  if (cache.getRank() != 6)
    return op->emitOpError("cache must be [layers, pages, 2, page_size, kv_heads, head_dim], got ")
           << cache;
  if (cache.getDimSize(2) != 2)
    return op->emitOpError("cache dimension 2 must be 2 (K and V), got ")
           << dimStr(cache.getDimSize(2));
  int64_t page = cache.getDimSize(3);
  if (isDyn(page) || page <= 0 || (page & (page - 1)))
    return op->emitOpError("page size must be a static power of two, got ") << dimStr(page);
  int64_t layers = cache.getDimSize(0);
  if (isDyn(layers) || static_cast<int64_t>(layer) >= layers)
    return op->emitOpError("layer ") << static_cast<int64_t>(layer)
                                      << " is out of range for a cache of "
                                      << dimStr(layers) << " layers";
  if (tokens.getRank() != 4)
    return op->emitOpError("tokens must be [batch, tokens, heads, head_dim], got ") << tokens;
  if (tokens.getElementType() != cache.getElementType())
    return op->emitOpError("element type ") << tokens.getElementType()
                                            << " differs from the cache's "
                                            << cache.getElementType();
  if (failed(mergeDims(tokens.getDimSize(3), cache.getDimSize(5))))
    return op->emitOpError("head dim ") << dimStr(tokens.getDimSize(3))
                                        << " differs from the cache's "
                                        << dimStr(cache.getDimSize(5));
  int64_t h = tokens.getDimSize(2), hkv = cache.getDimSize(4);
  if (sameHeads ? failed(mergeDims(h, hkv))
                : (!isDyn(h) && !isDyn(hkv) && (hkv == 0 || h % hkv)))
    return op->emitOpError(sameHeads ? "kv heads " : "query heads ")
           << dimStr(h) << (sameHeads ? " differ from" : " are not a multiple of")
           << " the cache's " << dimStr(hkv);
  if (blockTables.getRank() != 2 ||
      failed(mergeDims(blockTables.getDimSize(0), tokens.getDimSize(0))))
    return op->emitOpError("block tables must be [batch, pages per sequence], got ")
           << blockTables;
  if (positions.getRank() != 2 ||
      failed(mergeDims(positions.getDimSize(0), tokens.getDimSize(0))) ||
      failed(mergeDims(positions.getDimSize(1), tokens.getDimSize(1))))
    return op->emitOpError("positions must be [batch, tokens] of the tokens ")
           << tokens << ", got " << positions;
  return success();
}

LogicalResult KvAppendOp::verify() {
  return verifyPagedCache(*this, getCache().getType(), getLayer(), getKey().getType(),
                          /*sameHeads=*/true, getBlockTables().getType(),
                          getPositions().getType());
}

LogicalResult PagedAttentionOp::verify() {
  if (failed(verifyAttentionAttrs(*this)))
    return failure();
  RankedTensorType ctx = getContextLens().getType();
  if (ctx.getRank() != 1 || failed(mergeDims(ctx.getDimSize(0), getQuery().getType().getDimSize(0))))
    return emitOpError("context lengths must be [batch], got ") << ctx;
  return verifyPagedCache(*this, getCache().getType(), getLayer(), getQuery().getType(),
                          /*sameHeads=*/false, getBlockTables().getType(),
                          getPositions().getType());
}

LogicalResult FusedOp::verify() {
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError("body has ") << body.getNumArguments()
                                    << " arguments for " << getInputs().size()
                                    << " inputs";
  for (auto [arg, in] : llvm::zip(body.getArguments(), getInputs()))
    if (arg.getType() != in.getType())
      return emitOpError("body argument type ") << arg.getType()
                                                << " differs from input type "
                                                << in.getType();
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("yielded types do not match the result types");
  return success();
}
