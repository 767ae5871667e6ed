//===- Fuse.cpp - merge projections, form and outline fusion groups -------===//
//
// See Passes.td (Fuse) for the groups and the cost rule. The pass runs per
// function in three steps: merge projections (rewrites), assign ops to groups
// (union-find over a position index, every union checked for convexity),
// outline each group of two or more ops, or of one kernel op, as kiln.fused.
//
//===----------------------------------------------------------------------===//
#include "passes/PassUtils.h"
#include "passes/Passes.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/EquivalenceClasses.h"
#include "llvm/ADT/MapVector.h"

#include <limits>

namespace kiln {
#define GEN_PASS_DEF_FUSE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

constexpr int64_t kToEnd = std::numeric_limits<int64_t>::max();

bool isElementwise(Operation *op) {
  return isa<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp, SigmoidOp,
             SiluOp, ErfOp, SinOp, CosOp, ReluOp, NotOp, GeluOp, AddOp, SubOp, MulOp, DivOp,
             PowOp, MaxOp, MinOp, AndOp, OrOp, CompareOp, WhereOp, CastOp, SwigluOp,
             GegluOp>(op);
}

/// Ops the grouping leaves alone: no kernel, or a group already.
bool isFree(Operation *op) { return !isKernel(op) || isa<FusedOp>(op); }

//===--- Step 1: merge projections ------------------------------------------===//

/// "a.q_proj.weight", "a.k_proj.weight" -> "a.{q_proj,k_proj}.weight".
std::string mergedName(ArrayRef<StringRef> names) {
  size_t pre = names[0].size(), suf = names[0].size();
  for (StringRef n : names.drop_front()) {
    size_t i = 0;
    while (i < pre && i < n.size() && n[i] == names[0][i])
      ++i;
    pre = i;
    size_t j = 0;
    while (j < suf && j < n.size() && n[n.size() - 1 - j] == names[0][names[0].size() - 1 - j])
      ++j;
    suf = j;
  }
  // Cut at separators so the parts read as names.
  while (pre > 0 && names[0][pre - 1] != '.' && names[0][pre - 1] != '_')
    --pre;
  size_t minLen = names[0].size();
  for (StringRef n : names)
    minLen = std::min(minLen, n.size());
  suf = std::min(suf, minLen - pre);
  while (suf > 0 && names[0][names[0].size() - suf] != '.')
    --suf;
  std::string out = names[0].substr(0, pre).str() + "{";
  for (auto [i, n] : llvm::enumerate(names))
    out += (i ? "," : "") + n.substr(pre, n.size() - pre - suf).str();
  return out + "}" + names[0].substr(names[0].size() - suf).str();
}

/// A widening float cast of a weight: f32 compute over bf16 or f16 weights.
bool isWeightCast(Operation *op) {
  auto c = dyn_cast_or_null<CastOp>(op);
  if (!c || !c.getInput().getDefiningOp<WeightOp>())
    return false;
  auto from = dyn_cast<FloatType>(getElementTypeOrSelf(c.getInput().getType()));
  auto to = dyn_cast<FloatType>(getElementTypeOrSelf(c.getType()));
  return from && to && from.getWidth() <= to.getWidth();
}

/// A weight op of `rank` dimensions without sources, read directly or
/// through a weight cast; or null.
WeightOp plainWeight(Value v, int64_t rank) {
  if (isWeightCast(v.getDefiningOp()))
    v = v.getDefiningOp()->getOperand(0);
  auto w = v.getDefiningOp<WeightOp>();
  return w && !w.getSources() && w.getType().getRank() == rank ? w : WeightOp();
}

/// `w`, widened to `like`'s element type when `like` is a weight cast.
Value castLike(OpBuilder &b, Location loc, WeightOp w, Value like) {
  if (!isWeightCast(like.getDefiningOp()))
    return w.getResult();
  return CastOp::create(b, loc, w.getType().clone(getElementTypeOrSelf(like.getType())), w.getResult());
}

/// Every use of a weight cast gets its own copy just before its user, so
/// each consuming kernel reads the narrow weight and widens it as it loads:
/// no kernel writes widened weights.
void weightCastsPerUse(func::FuncOp f) {
  for (CastOp c : llvm::to_vector(f.getOps<CastOp>())) {
    if (!isWeightCast(c))
      continue;
    for (OpOperand &u : llvm::make_early_inc_range(c->getUses())) {
      OpBuilder b(u.getOwner());
      u.set(CastOp::create(b, c.getLoc(), c.getType(), c.getInput()).getResult());
    }
    c.erase();
  }
}

/// matmul(x, W[K, N]) -> matmul(x, W'[N, K] {transpose_b}) with W' stored
/// transposed: GEMV reads each output row's K weights contiguously, and
/// projections of one activation can then merge by rows. A cast between the
/// weight and its matmuls (f32 activations over bf16 weights) is carried
/// over to the transposed weight.
void transposedWeightsToRows(func::FuncOp f) {
  auto isPlainRhs = [](OpOperand &u) {
    auto m = dyn_cast<MatmulOp>(u.getOwner());
    return m && u.getOperandNumber() == 1 && !m.getTransposeB();
  };
  auto feedsMatmuls = [&](OpOperand &u) {
    if (isPlainRhs(u))
      return true;
    auto c = dyn_cast<CastOp>(u.getOwner());
    return c && !c->use_empty() && llvm::all_of(c->getUses(), isPlainRhs);
  };
  SmallVector<WeightOp> weights(f.getOps<WeightOp>());
  for (WeightOp w : weights) {
    if (w.getSources() || w.getTransposed() || w.getType().getRank() != 2 || w->use_empty() ||
        !llvm::all_of(w->getUses(), feedsMatmuls))
      continue;
    OpBuilder b(w);
    RankedTensorType t = w.getType();
    auto rows = WeightOp::create(
        b, w.getLoc(), RankedTensorType::get({t.getDimSize(1), t.getDimSize(0)}, t.getElementType()),
        w.getNameAttr(), nullptr, nullptr, b.getUnitAttr());
    auto rewrite = [&](MatmulOp m, Value rhs) {
      b.setInsertionPoint(m);
      auto nm = MatmulOp::create(b, m.getLoc(), m.getType(), m.getLhs(), rhs, b.getUnitAttr());
      m.getResult().replaceAllUsesWith(nm.getResult());
      m.erase();
    };
    for (Operation *u : llvm::to_vector(w->getUsers())) {
      if (auto m = dyn_cast<MatmulOp>(u)) {
        rewrite(m, rows.getResult());
        continue;
      }
      auto c = cast<CastOp>(u);
      b.setInsertionPoint(c);
      auto ct = cast<RankedTensorType>(c.getType());
      auto nc = CastOp::create(b, c.getLoc(),
                               RankedTensorType::get({t.getDimSize(1), t.getDimSize(0)}, ct.getElementType()),
                               rows.getResult());
      for (Operation *mu : llvm::to_vector(c->getUsers()))
        rewrite(cast<MatmulOp>(mu), nc.getResult());
      c.erase();
    }
    w.erase();
  }
}

WeightOp concatWeights(OpBuilder &b, Location loc, ArrayRef<WeightOp> parts) {
  SmallVector<StringRef> names;
  SmallVector<Attribute> sources;
  SmallVector<int64_t> rows;
  int64_t total = 0;
  for (WeightOp w : llvm::to_vector(parts)) {
    names.push_back(w.getName());
    sources.push_back(w.getNameAttr());
    rows.push_back(w.getType().getDimSize(0));
    total += rows.back();
  }
  WeightOp w0 = parts[0];
  SmallVector<int64_t> shape(w0.getType().getShape());
  shape[0] = total;
  return WeightOp::create(b, loc, RankedTensorType::get(shape, w0.getType().getElementType()),
                          b.getStringAttr(mergedName(names)), b.getArrayAttr(sources),
                          b.getDenseI64ArrayAttr(rows), w0.getTransposedAttr());
}

/// Merges the transposed-weight matmuls reading `x`; returns whether it did.
bool mergeProjectionsOf(Value x) {
  SmallVector<MatmulOp> mms;
  for (Operation *u : x.getUsers())
    if (auto m = dyn_cast<MatmulOp>(u))
      if (m.getLhs() == x && m.getTransposeB() && plainWeight(m.getRhs(), 2))
        mms.push_back(m);
  if (mms.empty())
    return false;
  WeightOp first0 = plainWeight(mms[0].getRhs(), 2);
  llvm::erase_if(mms, [&](MatmulOp m) {
    auto w = cast<RankedTensorType>(m.getRhs().getType());
    auto w0 = cast<RankedTensorType>(mms[0].getRhs().getType());
    WeightOp stored = plainWeight(m.getRhs(), 2);
    return w.getElementType() != w0.getElementType() || w.getDimSize(1) != w0.getDimSize(1) ||
           stored.getType().getElementType() != first0.getType().getElementType() ||
           stored.getTransposed() != first0.getTransposed();
  });
  if (mms.size() < 2)
    return false;
  llvm::sort(mms, [](MatmulOp a, MatmulOp b) { return a->isBeforeInBlock(b); });
  // Biases merge when every projection's only user adds a 1-D weight to it,
  // or every one a 1-D constant (an ONNX export's small initializers).
  SmallVector<AddOp> biases;
  SmallVector<Value> biasValues;
  for (MatmulOp m : mms) {
    AddOp add = m->hasOneUse() ? dyn_cast<AddOp>(*m->getUsers().begin()) : AddOp();
    Value other = add ? (add.getLhs() == m.getResult() ? add.getRhs() : add.getLhs()) : Value();
    auto bt = other ? cast<RankedTensorType>(other.getType()) : RankedTensorType();
    bool stored = other && (plainWeight(other, 1) ||
                            (other.getDefiningOp<ConstantOp>() &&
                             isa<DenseElementsAttr>(other.getDefiningOp<ConstantOp>().getValue()) &&
                             bt.getRank() == 1 && bt.getElementType() == getElementTypeOrSelf(m.getType())));
    if (!stored || add.getType() != m.getType() ||
        bt.getDimSize(bt.getRank() - 1) != cast<RankedTensorType>(m.getRhs().getType()).getDimSize(0))
      break;
    biases.push_back(add);
    biasValues.push_back(other);
  }
  // All weights (merged into one) or all constants (concatenated).
  const bool weightBiases = !biasValues.empty() && plainWeight(biasValues[0], 1);
  if (biases.size() != mms.size() ||
      !llvm::all_of(biasValues, [&](Value v) { return static_cast<bool>(plainWeight(v, 1)) == weightBiases; }))
    biases.clear();

  MatmulOp first = mms.front();
  OpBuilder b(first);
  Location loc = first.getLoc();
  SmallVector<WeightOp> weights;
  for (MatmulOp m : mms)
    weights.push_back(plainWeight(m.getRhs(), 2));
  WeightOp w = concatWeights(b, loc, weights);
  Value merged = MatmulOp::create(b, loc, x, castLike(b, loc, w, first.getRhs()), /*transpose_b=*/true);
  if (!biases.empty() && weightBiases) {
    SmallVector<WeightOp> parts;
    for (Value bv : biasValues)
      parts.push_back(plainWeight(bv, 1));
    WeightOp bias = concatWeights(b, loc, parts);
    merged = AddOp::create(b, loc, merged, castLike(b, loc, bias, biasValues[0]));
  } else if (!biases.empty()) {
    SmallVector<Attribute> values;
    for (Value bv : biasValues) {
      auto attr = cast<DenseElementsAttr>(bv.getDefiningOp<ConstantOp>().getValue());
      llvm::append_range(values, attr.getValues<Attribute>());
    }
    Type et = getElementTypeOrSelf(merged.getType());
    auto type = RankedTensorType::get({static_cast<int64_t>(values.size())}, et);
    Value bias = ConstantOp::create(b, loc, type, DenseElementsAttr::get(type, values));
    merged = AddOp::create(b, loc, merged, bias);
  }
  auto rt = cast<RankedTensorType>(merged.getType());
  int64_t rank = rt.getRank(), offset = 0;
  for (auto [i, m] : llvm::enumerate(mms)) {
    int64_t n = cast<RankedTensorType>(m.getType()).getDimSize(rank - 1);
    SmallVector<int64_t> starts(rank, 0), ends(rank, kToEnd), steps(rank, 1);
    starts[rank - 1] = offset;
    ends[rank - 1] = offset + n;
    offset += n;
    Value part = SliceOp::create(b, loc, merged, starts, ends, steps);
    Operation *old = biases.empty() ? m.getOperation() : biases[i].getOperation();
    old->getResult(0).replaceAllUsesWith(part);
  }
  for (auto [i, m] : llvm::enumerate(mms)) {
    if (!biases.empty())
      biases[i]->erase();
    m->erase();
  }
  return true;
}

void mergeAllProjections(func::FuncOp f) {
  // A merge erases the matmuls it replaces: rescan after each one.
  auto mergeOne = [&]() {
    for (BlockArgument a : f.getArguments())
      if (mergeProjectionsOf(a))
        return true;
    for (Operation &op : f.getBody().front())
      for (Value r : op.getResults())
        if (mergeProjectionsOf(r))
          return true;
    return false;
  };
  while (mergeOne()) {
  }
  // Weights (and their casts) left without users.
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(f.getBody().front())))
    if ((isa<WeightOp>(op) || isWeightCast(&op)) && op.use_empty())
      op.erase();
}

//===--- Step 2: groups ------------------------------------------------------===//

class Grouper {
public:
  Grouper(func::FuncOp f, const kiln::FuseOptions &o) : f_(f), o_(o) {
    step_ = stepShapeOf(f, o.decodeTokens, o.prefillTokens, /*context=*/1);
    unsigned i = 0;
    for (Operation &op : f.getBody().front())
      pos_[&op] = i++;
  }

  void run();
  /// Groups in block order of their last op, with their kinds.
  SmallVector<std::pair<std::string, SmallVector<Operation *>>> groups();

private:
  Operation *leader(Operation *op) { return classes_.getOrInsertLeaderValue(op); }
  bool grouped(Operation *op) { return kind_.count(leader(op)); }
  bool sameGroup(Operation *a, Operation *b) { return leader(a) == leader(b); }
  void start(Operation *op, StringRef kind) {
    classes_.insert(op);
    kind_[leader(op)] = kind.str();
  }
  /// Adds `op` to `anchor`'s group if the group stays convex.
  bool join(Operation *anchor, Operation *op);
  bool convex(Operation *a, Operation *b);

  void matmulGroup(MatmulOp m);
  void absorbEpilogue(Operation *anchor, Value r);
  void kvGroup(KvAppendOp a);
  bool attentionAppendGroup(KvAppendOp a);
  void ropeIntoProjection(KvAppendOp a);
  SmallVector<Operation *> membersOf(Operation *op);
  void absorbProducers(Operation *anchor, Value v);
  bool normPrologueFits(Operation *norm, MatmulOp m);

  func::FuncOp f_;
  const kiln::FuseOptions &o_;
  StepShape step_;
  DenseMap<Operation *, unsigned> pos_;
  llvm::EquivalenceClasses<Operation *> classes_;
  DenseMap<Operation *, std::string> kind_; // by leader
  DenseMap<Operation *, int64_t> epilogueOps_; // by leader
};

bool Grouper::convex(Operation *a, Operation *b) {
  // Members of the union, and the span they cover.
  DenseSet<Operation *> members;
  for (Operation *x : {a, b})
    for (Operation *m : membersOf(x))
      members.insert(m);
  unsigned first = std::numeric_limits<unsigned>::max(), last = 0;
  for (Operation *m : members) {
    first = std::min(first, pos_[m]);
    last = std::max(last, pos_[m]);
  }
  // The fused op takes the place of the last member: an outside op inside the
  // span that reads the union would then read values not yet computed.
  for (Operation &op : *a->getBlock()) {
    unsigned p = pos_[&op];
    if (p <= first || members.contains(&op))
      continue;
    if (p >= last)
      break;
    for (Value v : op.getOperands())
      if (Operation *d = v.getDefiningOp(); d && members.contains(d))
        return false;
  }
  return true;
}

bool Grouper::join(Operation *anchor, Operation *op) {
  if (grouped(op) && sameGroup(anchor, op))
    return true;
  if (!classes_.contains(op))
    classes_.insert(op);
  if (!convex(anchor, op))
    return false;
  std::string kind = kind_[leader(anchor)];
  int64_t epi = epilogueOps_[leader(anchor)];
  kind_.erase(leader(op));
  kind_.erase(leader(anchor));
  classes_.unionSets(anchor, op);
  kind_[leader(anchor)] = kind;
  epilogueOps_[leader(anchor)] = epi;
  return true;
}

/// The cost rule for a norm prologue (Passes.td).
bool Grouper::normPrologueFits(Operation *norm, MatmulOp m) {
  // Past the GEMV's rows (kGemvMaxRows) the matmul runs on
  // tensor cores, whose norm prologue normalises each landed k-tile in
  // place between its copy and its MMAs, serialised with both (gemm.cuh):
  // on the H100 the 8B shape's batch-8 QKV took 122 us that way against
  // 50 us at batch 64 with the norm a kernel of its own.
  auto xt = cast<RankedTensorType>(norm->getOperand(0).getType());
  int64_t width = xt.getShape().back();
  if (!ShapedType::isDynamic(width) && width > 0 && stepElements(xt, step_) / width > kGemvMaxRows)
    return false;
  int64_t x = stepBytes(xt, step_);
  int64_t n = cast<RankedTensorType>(m.getType()).getShape().back();
  int64_t tiles = ShapedType::isDynamic(n) ? 1 : (n + 127) / 128;
  double saved = 2.0 * static_cast<double>(x) + static_cast<double>(o_.launchBytes);
  double cost = static_cast<double>(tiles - 1) * static_cast<double>(x) / o_.l2Ratio;
  return saved > cost;
}

void Grouper::matmulGroup(MatmulOp m) {
  start(m, "matmul");
  Operation *norm = m.getLhs().getDefiningOp();
  if (norm && isa<RmsNormOp, LayerNormOp>(norm) && !grouped(norm) && norm->hasOneUse() &&
      normPrologueFits(norm, m))
    join(m, norm);
  absorbEpilogue(m, m.getResult());
}

void Grouper::absorbEpilogue(Operation *anchor, Value r) {
  auto shapeOf = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
  while (true) {
    // A reduction over the output (greedy decoding's argmax) rides along.
    for (Operation *u : r.getUsers())
      if (auto a = dyn_cast<ArgmaxOp>(u); a && !grouped(a) &&
          a.getAxis() == static_cast<uint64_t>(shapeOf(r).size() - 1))
        join(anchor, a);
    SmallVector<Operation *> rest;
    for (Operation *u : r.getUsers())
      if (!classes_.contains(u) || !sameGroup(anchor, u))
        if (!isa<func::ReturnOp>(u))
          rest.push_back(u);
    Operation *next = nullptr;
    SmallVector<Operation *> views;
    if (rest.size() == 1 && isElementwise(rest[0])) {
      next = rest[0];
    } else if (!rest.empty() && llvm::all_of(rest, [](Operation *u) {
                 return isa<SliceOp, ReshapeOp>(u) && u->hasOneUse();
               })) {
      // Slices of a merged output that meet again in one op (SwiGLU's halves).
      Operation *meet = *rest[0]->getUsers().begin();
      if (isElementwise(meet) && llvm::all_of(rest, [&](Operation *u) {
            return *u->getUsers().begin() == meet;
          })) {
        next = meet;
        views = rest;
      }
    }
    if (!next || grouped(next) || epilogueOps_[leader(anchor)] >= o_.maxEpilogueOps)
      return;
    // The epilogue keeps the output's shape (no broadcast to a larger one).
    Value in = views.empty() ? r : views[0]->getResult(0);
    if (next->getNumResults() != 1 || shapeOf(next->getResult(0)) != shapeOf(in))
      return;
    // Join in block order: a later slice joining first would leave an earlier
    // one inside the span.
    llvm::sort(views, [&](Operation *a, Operation *b) { return pos_[a] < pos_[b]; });
    for (Operation *v : views)
      if (!join(anchor, v))
        return;
    if (!join(anchor, next))
      return;
    ++epilogueOps_[leader(anchor)];
    r = next->getResult(0);
  }
}

/// Pulls single-use slices, reshapes and per-head norms producing `v` into
/// `anchor`'s group.
void Grouper::absorbProducers(Operation *anchor, Value v) {
  Operation *d = v.getDefiningOp();
  if (!d || grouped(d) || !d->hasOneUse() || !isa<SliceOp, ReshapeOp, RmsNormOp, RopeOp>(d))
    return;
  if (!join(anchor, d))
    return;
  absorbProducers(anchor, d->getOperand(0));
}

void Grouper::kvGroup(KvAppendOp a) {
  bool rope = a.getKey().getDefiningOp<RopeOp>() != nullptr;
  start(a, rope ? "rope_kv_append" : "kv_append");
  absorbProducers(a, a.getKey());
  absorbProducers(a, a.getValue());
  // The queries' RoPE (same positions) joins; attention reads them after.
  for (Operation *u : a.getResult().getUsers())
    if (auto p = dyn_cast<PagedAttentionOp>(u))
      if (auto r = p.getQuery().getDefiningOp<RopeOp>(); r && !grouped(r) && r->hasOneUse())
        absorbProducers(a, p.getQuery());
}

/// In decode (one token per sequence), the append of a layer's key and value
/// with their RoPE, and the queries' RoPE, join that layer's attention: the
/// kernel appends before it reads the cache. Not with several tokens per
/// sequence, whose later queries would read keys other blocks append; nor
/// with per-head norms before RoPE (Qwen3), which the attention would
/// recompute for every element it loads.
bool Grouper::attentionAppendGroup(KvAppendOp a) {
  auto oneToken = [](Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    return t.getRank() >= 2 && t.getDimSize(1) == 1;
  };
  auto normed = [](Value v) {
    for (Operation *d = v.getDefiningOp(); d && isa<RopeOp, ReshapeOp, SliceOp, RmsNormOp, LayerNormOp>(d);
         d = d->getOperand(0).getDefiningOp())
      if (isa<RmsNormOp, LayerNormOp>(d))
        return true;
    return false;
  };
  if (!o_.appendInAttention || !step_.decode || !oneToken(a.getKey()) || normed(a.getKey()))
    return false;
  PagedAttentionOp p;
  for (Operation *u : a.getResult().getUsers())
    if (auto pa = dyn_cast<PagedAttentionOp>(u); pa && pa.getLayer() == a.getLayer())
      p = p ? PagedAttentionOp() : pa;
  if (!p || p.getPositions() != a.getPositions() || !oneToken(p.getQuery()) || normed(p.getQuery()) ||
      grouped(p))
    return false;
  start(p, "paged_attention");
  if (!join(p, a))
    return false;
  absorbProducers(p, a.getKey());
  absorbProducers(p, a.getValue());
  absorbProducers(p, p.getQuery());
  return true;
}

SmallVector<Operation *> Grouper::membersOf(Operation *op) {
  SmallVector<Operation *> out;
  for (auto it = classes_.findLeader(op); it != classes_.member_end(); ++it)
    out.push_back(*it);
  return out;
}

/// In decode (one token per sequence), a layer's `rope_kv_append` group
/// joins the QKV projection it slices: the GEMV computes the two columns
/// each rotation mixes side by side, rotates them in its epilogue and
/// stores the queries and the cache (codegen's RoPE pairs), saving a
/// launch per layer. Only when the group is nothing but slices of that
/// projection, reshapes, RoPE over whole heads in one style and the
/// append (not with Qwen3's per-head norms, which need the whole head),
/// and when the projection has no gated halves, no argmax and no other
/// reader.
void Grouper::ropeIntoProjection(KvAppendOp a) {
  auto keyType = cast<RankedTensorType>(a.getKey().getType());
  if (!step_.decode || !grouped(a) || kind_[leader(a)] != "rope_kv_append" || keyType.getRank() != 4 ||
      keyType.getDimSize(1) != 1)
    return;
  SmallVector<Operation *> group = membersOf(a);
  Value src;
  std::optional<RopeStyle> style;
  for (Operation *op : group) {
    if (auto sl = dyn_cast<SliceOp>(op)) {
      if (src && sl.getInput() != src)
        return;
      src = sl.getInput();
    } else if (auto r = dyn_cast<RopeOp>(op)) {
      int64_t d = cast<RankedTensorType>(r.getType()).getDimSize(3);
      if ((r.getRotaryDim() && static_cast<int64_t>(*r.getRotaryDim()) != d) || (style && *style != r.getStyle()))
        return;
      style = r.getStyle();
    } else if (!isa<ReshapeOp, KvAppendOp>(op)) {
      return;
    }
  }
  Operation *proj = src ? src.getDefiningOp() : nullptr;
  if (!style || !proj || !grouped(proj) || kind_[leader(proj)] != "matmul" ||
      llvm::any_of(src.getUsers(), [&](Operation *u) { return !sameGroup(u, a); }) ||
      llvm::any_of(membersOf(proj), [](Operation *op) { return isa<SliceOp, ArgmaxOp>(op); }))
    return;
  join(proj, a);
}

void Grouper::run() {
  Block &body = f_.getBody().front();
  for (Operation &op : body)
    if (auto a = dyn_cast<KvAppendOp>(op); a && !attentionAppendGroup(a))
      kvGroup(a);
  for (Operation &op : body)
    if (auto p = dyn_cast<PagedAttentionOp>(op)) {
      if (grouped(p)) // with its layer's append
        continue;
      start(p, "paged_attention");
      absorbProducers(p, p.getQuery());
    }
  for (Operation &op : body)
    if (auto m = dyn_cast<MatmulOp>(op); m && !grouped(m))
      matmulGroup(m);
  for (Operation &op : body)
    if (auto a = dyn_cast<KvAppendOp>(op))
      ropeIntoProjection(a);
  for (Operation &op : body) {
    if (grouped(&op) || isFree(&op) || isWeightCast(&op)) // weight casts: below
      continue;
    if (isElementwise(&op)) {
      // Chains: join an elementwise producer's group whose value is used once.
      Operation *prod = nullptr;
      for (Value v : op.getOperands())
        if (Operation *d = v.getDefiningOp();
            d && v.hasOneUse() && grouped(d) &&
            (kind_[leader(d)] == "elementwise" || kind_[leader(d)] == "embedding"))
          prod = d;
      if (prod && join(prod, &op))
        continue;
      start(&op, "elementwise");
      continue;
    }
    StringRef kind = op.getName().stripDialect();
    if (isa<GatherOp>(op) && plainWeight(op.getOperand(0), 2))
      kind = "embedding";
    else if (isa<RmsNormOp, LayerNormOp>(op))
      kind = "norm";
    start(&op, kind);
  }
  // A weight cast (one use, weightCastsPerUse) joins its user's kernel.
  for (Operation &op : body)
    if (isWeightCast(&op) && !grouped(&op)) {
      Operation *user = op.hasOneUse() ? *op.getUsers().begin() : nullptr;
      if (!user || !grouped(user) || !join(user, &op))
        start(&op, "elementwise");
    }
}

SmallVector<std::pair<std::string, SmallVector<Operation *>>> Grouper::groups() {
  SmallVector<std::pair<std::string, SmallVector<Operation *>>> out;
  DenseMap<Operation *, size_t> index;
  for (Operation &op : f_.getBody().front()) {
    if (!classes_.contains(&op) || !kind_.count(leader(&op)))
      continue;
    auto [it, fresh] = index.try_emplace(leader(&op), out.size());
    if (fresh)
      out.push_back({kind_[leader(&op)], {}});
    out[it->second].second.push_back(&op);
  }
  // Outline in order of each group's last op.
  llvm::sort(out, [&](const auto &a, const auto &b) {
    return pos_[a.second.back()] < pos_[b.second.back()];
  });
  return out;
}

//===--- Step 3: outline ------------------------------------------------------===//

void outline(StringRef kind, ArrayRef<Operation *> ops) {
  DenseSet<Operation *> members(ops.begin(), ops.end());
  Operation *last = ops.back();
  MLIRContext *ctx = last->getContext();
  llvm::MapVector<Value, unsigned> inputs;
  SmallVector<Operation *> constants;
  for (Operation *op : ops)
    for (Value v : op->getOperands()) {
      Operation *d = v.getDefiningOp();
      if (d && members.contains(d))
        continue;
      if (d && isa<ConstantOp>(d)) {
        if (!llvm::is_contained(constants, d))
          constants.push_back(d);
        continue;
      }
      inputs.insert({v, inputs.size()});
    }
  SmallVector<Value> outputs;
  for (Operation *op : ops)
    for (Value r : op->getResults())
      if (llvm::any_of(r.getUsers(), [&](Operation *u) { return !members.contains(u); }))
        outputs.push_back(r);

  OpBuilder b(last);
  SmallVector<Value> inputValues;
  SmallVector<Type> inputTypes;
  SmallVector<Location> inputLocs;
  for (auto &[v, i] : inputs) {
    inputValues.push_back(v);
    inputTypes.push_back(v.getType());
    inputLocs.push_back(v.getLoc());
  }
  SmallVector<Type> resultTypes;
  for (Value v : outputs)
    resultTypes.push_back(v.getType());
  auto fused = FusedOp::create(b, last->getLoc(), resultTypes, b.getStringAttr(kind), inputValues);
  Block *body = b.createBlock(&fused.getBody(), {}, inputTypes, inputLocs);
  IRMapping map;
  for (auto [v, arg] : llvm::zip(inputValues, body->getArguments()))
    map.map(v, arg);
  b.setInsertionPointToStart(body);
  for (Operation *c : constants)
    b.clone(*c, map);
  for (Operation *op : ops)
    b.clone(*op, map);
  SmallVector<Value> yielded;
  for (Value v : outputs)
    yielded.push_back(map.lookup(v));
  YieldOp::create(b, last->getLoc(), yielded);
  for (auto [v, r] : llvm::zip(outputs, fused.getResults()))
    v.replaceUsesWithIf(r, [&](OpOperand &use) { return !members.contains(use.getOwner()); });
  for (Operation *op : llvm::reverse(ops))
    op->erase();
  for (Operation *c : constants)
    if (c->use_empty())
      c->erase();
  (void)ctx;
}

struct FusePass : kiln::impl::FuseBase<FusePass> {
  using FuseBase::FuseBase;

  void runOnOperation() override {
    for (func::FuncOp f : getOperation().getOps<func::FuncOp>()) {
      if (f.isExternal() || f.getNumArguments() == 0)
        continue;
      if (mergeProjections)
        transposedWeightsToRows(f);
      weightCastsPerUse(f);
      if (mergeProjections)
        mergeAllProjections(f);
      kiln::FuseOptions opts{decodeTokens,   prefillTokens,    launchBytes,      l2Ratio,
                             maxEpilogueOps, mergeProjections, appendInAttention};
      Grouper g(f, opts);
      g.run();
      for (auto &[kind, ops] : g.groups())
        outline(kind, ops);
    }
  }
};

} // namespace
