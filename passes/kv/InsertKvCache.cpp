//===- InsertKvCache.cpp - prefill/decode entry points over a paged cache -===//
//
// See Passes.td (InsertKvCache). The full-sequence function is cloned twice;
// in each clone the sequence positions become an argument and every
// attention becomes kv_append + paged_attention on layer l of one cache
// value threaded through the layers in program order.
//
//===----------------------------------------------------------------------===//
#include "passes/PassUtils.h"
#include "passes/Passes.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_INSERTKVCACHE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

/// What every layer's cache slice looks like.
struct CacheShape {
  int64_t layers = 0, kvHeads = 0, headDim = 0;
  Type dtype;
};

/// Checks that each attention is causal self-attention whose keys and values
/// share one shape across layers, and derives the cache shape.
FailureOr<CacheShape> cacheShapeOf(ArrayRef<AttentionOp> attentions) {
  CacheShape c;
  for (AttentionOp a : attentions) {
    auto k = cast<RankedTensorType>(a.getKey().getType());
    auto v = cast<RankedTensorType>(a.getValue().getType());
    if (!a.getCausal())
      return a.emitOpError("is not causal: a KV cache needs causal self-attention"),
             failure();
    if (k != v)
      return a.emitOpError("keys ") << k << " and values " << v
                                    << " differ in shape: the paged cache stores both alike",
             failure();
    int64_t h = k.getDimSize(2), d = k.getDimSize(3);
    if (ShapedType::isDynamic(h) || ShapedType::isDynamic(d))
      return a.emitOpError("needs static kv heads and head dim for the cache, got ") << k,
             failure();
    if (c.layers && (h != c.kvHeads || d != c.headDim || k.getElementType() != c.dtype))
      return a.emitOpError("keys ") << k << " differ from the first layer's ("
                                    << c.kvHeads << " heads of " << c.headDim << ", "
                                    << c.dtype << "): one cache needs one shape",
             failure();
    c.kvHeads = h;
    c.headDim = d;
    c.dtype = k.getElementType();
    ++c.layers;
  }
  return c;
}

/// Replaces the sequence positions `reshape(arange(input_ids, axis 1), [1,
/// -1])` with `positions`.
LogicalResult replacePositions(Value inputIds, Value positions) {
  SmallVector<ArangeOp> aranges;
  for (Operation *user : inputIds.getUsers())
    if (auto a = dyn_cast<ArangeOp>(user))
      aranges.push_back(a);
  for (ArangeOp a : aranges) {
    if (a.getAxis() != 1)
      return a.emitOpError("ranges over axis ") << a.getAxis()
                                                << " of input_ids; only sequence positions "
                                                   "(axis 1) can come from the cache",
             failure();
    for (Operation *user : llvm::make_early_inc_range(a->getUsers())) {
      auto r = dyn_cast<ReshapeOp>(user);
      if (!r || r.getShape() != ArrayRef<int64_t>{1, -1})
        return user->emitOpError("uses the sequence positions other than as [1, T] "
                                 "positions, which a KV cache cannot provide"),
               failure();
      r.getResult().replaceAllUsesWith(positions);
      r.erase();
    }
    a.erase();
  }
  return success();
}

/// A key or value operand that is `concat(past, new)` along the sequence,
/// with `past` an argument of the function: token-major `[B, S, H, D]`
/// concatenated on axis 1, or head-major `[B, H, S, D]` on axis 2 and
/// transposed to token-major.
struct PastConcat {
  ConcatOp concat;
  bool headMajor;

  /// The new tokens' keys or values, token-major.
  Value newTokens(OpBuilder &b, Location loc) const {
    ConcatOp c = concat;
    Value n = c.getOperand(1);
    return headMajor ? TransposeOp::create(b, loc, n, ArrayRef<int64_t>{0, 2, 1, 3}).getResult()
                     : n;
  }
};

std::optional<PastConcat> pastConcatOf(Value v, Block &body) {
  bool headMajor = false;
  if (auto t = v.getDefiningOp<TransposeOp>();
      t && t.getPermutation() == ArrayRef<int64_t>{0, 2, 1, 3}) {
    v = t.getInput();
    headMajor = true;
  }
  auto c = v.getDefiningOp<ConcatOp>();
  if (!c || c.getNumOperands() != 2 ||
      c.getAxis() != static_cast<uint64_t>(headMajor ? 2 : 1))
    return std::nullopt;
  auto past = dyn_cast<BlockArgument>(c.getOperand(0));
  if (!past || past.getOwner() != &body || past.getArgNumber() < 2)
    return std::nullopt;
  return PastConcat{c, headMajor};
}

/// Turns the clone `f` into an entry point over the paged cache.
LogicalResult buildEntry(func::FuncOp f, const CacheShape &c, int64_t pageSize,
                         bool decode, bool lastLogits) {
  MLIRContext *ctx = f.getContext();
  Block &body = f.getBody().front();
  OpBuilder b(ctx);
  Location loc = f.getLoc();
  Type i64 = b.getI64Type(), i32 = b.getI32Type();
  int64_t tokens = decode ? 1 : kDyn;

  Value ids = body.getArgument(0);
  auto idsType = dyn_cast<RankedTensorType>(ids.getType());
  if (!idsType || idsType.getRank() != 2 || !idsType.getElementType().isInteger(64))
    return f.emitOpError("first argument must be input_ids tensor<?x?xi64>, got ")
               << ids.getType(),
           failure();
  // Explicit past: (input_ids, position_ids, past_key_0, past_value_0, ...).
  unsigned oldArgs = body.getNumArguments();
  bool explicitPast = oldArgs > 1;
  if (explicitPast) {
    auto pt = dyn_cast<RankedTensorType>(body.getArgument(1).getType());
    if (!pt || pt.getRank() != 2 || !pt.getElementType().isInteger(64))
      return f.emitOpError("second argument must be position_ids tensor<?x?xi64> (then the "
                           "past keys and values), got ")
                 << body.getArgument(1).getType(),
             failure();
  }
  ids.setType(RankedTensorType::get({idsType.getDimSize(0), tokens}, i64));

  // The positions' rows are input_ids' (an export that fixed its batch at 1
  // takes one sequence's positions).
  auto posType = RankedTensorType::get({idsType.getDimSize(0), tokens}, i64);
  Value positions = body.addArgument(posType, loc);
  Value blockTables = body.addArgument(RankedTensorType::get({kDyn, kDyn}, i32), loc);
  Value contextLens = body.addArgument(RankedTensorType::get({kDyn}, i32), loc);
  auto cacheType = RankedTensorType::get(
      {c.layers, kDyn, 2, pageSize, c.kvHeads, c.headDim}, c.dtype);
  Value cache = body.addArgument(cacheType, loc);

  if (explicitPast)
    body.getArgument(1).replaceAllUsesWith(positions);
  else if (failed(replacePositions(ids, positions)))
    return failure();

  SmallVector<AttentionOp> attentions(f.getOps<AttentionOp>());
  DenseSet<Value> presents;
  int64_t layer = 0;
  for (AttentionOp a : attentions) {
    b.setInsertionPoint(a);
    IntegerAttr l = b.getI64IntegerAttr(layer++);
    Value key = a.getKey(), value = a.getValue();
    if (explicitPast) {
      // concat(past, new) becomes the append of new; the concatenation, the
      // present output, goes away with the past input.
      std::optional<PastConcat> pk = pastConcatOf(key, body), pv = pastConcatOf(value, body);
      if (!pk || !pv)
        return a.emitOpError("keys and values must be a past input concatenated with the new "
                             "tokens' (along the sequence) to become a paged cache"),
               failure();
      key = pk->newTokens(b, a.getLoc());
      value = pv->newTokens(b, a.getLoc());
      presents.insert(pk->concat);
      presents.insert(pv->concat);
    }
    cache = KvAppendOp::create(b, a.getLoc(), cacheType, cache, key, value, blockTables,
                               positions, l);
    Value out = PagedAttentionOp::create(b, a.getLoc(), a.getQuery().getType(), a.getQuery(),
                                         cache, blockTables, contextLens, positions, l,
                                         a.getCausalAttr(), a.getScaleAttr(),
                                         a.getSlidingWindowAttr(), a.getSoftcapAttr());
    a.getResult().replaceAllUsesWith(out);
    a.erase();
  }
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  SmallVector<Value> results;
  for (Value r : ret.getOperands())
    if (!presents.contains(r))
      results.push_back(r);
  results.push_back(cache);
  b.setInsertionPoint(ret);
  // Greedy decoding's next token at every position: argmax over the vocabulary.
  auto logits = dyn_cast<RankedTensorType>(results[0].getType());
  if (!logits || logits.getRank() != 3 || !isa<FloatType>(logits.getElementType()))
    return f.emitOpError("must return logits [batch, tokens, vocab] first, got ")
               << results[0].getType(),
           failure();
  if (!decode && lastLogits) {
    // The LM head on each sequence's last token only: the one with the
    // largest position (padding is -1).
    auto head = results[0].getDefiningOp<MatmulOp>();
    if (!head)
      return f.emitOpError("prefill-logits=last needs the logits to come from a matmul (the LM "
                           "head); use prefill-logits=all"),
             failure();
    b.setInsertionPoint(head);
    Location hl = head.getLoc();
    auto f32pos = CastOp::create(b, hl, RankedTensorType::get({kDyn, kDyn}, b.getF32Type()),
                                 positions);
    Value last = ArgmaxOp::create(b, hl, f32pos, /*axis=*/1, /*keep_dims=*/true);
    Value seq = ArangeOp::create(b, hl, positions, /*axis=*/0);
    Value seq3 = ReshapeOp::create(b, hl, seq, ArrayRef<int64_t>{-1, 1, 1});
    Value last3 = ReshapeOp::create(b, hl, last, ArrayRef<int64_t>{-1, 1, 1});
    Value tuples = ConcatOp::create(b, hl, ValueRange{seq3, last3}, /*axis=*/2);
    Value rows = GatherNdOp::create(b, hl, head.getLhs(), tuples);
    results[0] = MatmulOp::create(b, hl, rows, head.getRhs(), head.getTransposeB());
  }
  b.setInsertionPoint(ret);
  results.push_back(ArgmaxOp::create(b, ret.getLoc(), results[0], /*axis=*/2,
                                     /*keep_dims=*/false));
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();

  // What fed only the presents or the full-sequence logits is dead.
  for (Operation *op = body.getTerminator()->getPrevNode(); op;) {
    Operation *prev = op->getPrevNode();
    if (op->use_empty() && isMemoryEffectFree(op))
      op->erase();
    op = prev;
  }
  if (explicitPast) {
    // Then the past inputs must be.
    llvm::BitVector dead(body.getNumArguments());
    for (unsigned i = 1; i < oldArgs; ++i) {
      if (!body.getArgument(i).use_empty())
        return f.emitOpError("past input ")
                   << i << " is used other than by its concatenation with the new tokens",
               failure();
      dead.set(i);
    }
    body.eraseArguments(dead);
  }
  SmallVector<DictionaryAttr> argAttrs;
  for (StringRef name : {"input_ids", "positions", "block_tables", "context_lens", "kv_cache"})
    argAttrs.push_back(b.getDictionaryAttr(b.getNamedAttr("kiln.name", b.getStringAttr(name))));
  f.setFunctionType(FunctionType::get(ctx, body.getArgumentTypes(), TypeRange(results)));
  f.setAllArgAttrs(argAttrs);
  f.setAllResultAttrs(SmallVector<DictionaryAttr>(results.size(), DictionaryAttr::get(ctx)));
  return refineTypes(f);
}

struct InsertKvCachePass : kiln::impl::InsertKvCacheBase<InsertKvCachePass> {
  using InsertKvCacheBase::InsertKvCacheBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto forward = module.lookupSymbol<func::FuncOp>(entry);
    if (!forward || forward.isExternal()) {
      module.emitError("kiln-insert-kv-cache: no function @") << entry << " with a body";
      return signalPassFailure();
    }
    if (prefillLogits != "last" && prefillLogits != "all") {
      module.emitError("kiln-insert-kv-cache: prefill-logits must be last or all, got ")
          << prefillLogits;
      return signalPassFailure();
    }
    if (pageSize <= 0 || (pageSize & (pageSize - 1))) {
      module.emitError("kiln-insert-kv-cache: page-size must be a power of two, got ")
          << static_cast<int64_t>(pageSize);
      return signalPassFailure();
    }
    SmallVector<AttentionOp> attentions(forward.getOps<AttentionOp>());
    if (attentions.empty()) {
      forward.emitOpError("has no kiln.attention to put a KV cache under");
      return signalPassFailure();
    }
    FailureOr<CacheShape> shape = cacheShapeOf(attentions);
    if (failed(shape))
      return signalPassFailure();
    for (StringRef name : {"prefill", "decode"}) {
      if (module.lookupSymbol(name)) {
        module.emitError("kiln-insert-kv-cache: @") << name << " already exists";
        return signalPassFailure();
      }
      func::FuncOp f = forward.clone();
      f.setName(name);
      module.insert(forward->getIterator(), f);
      if (failed(buildEntry(f, *shape, pageSize, name == "decode", prefillLogits == "last")))
        return signalPassFailure();
    }
    forward.erase();
  }
};

} // namespace
