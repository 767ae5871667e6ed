//===- LowerToExec.cpp - fused graph -> kernels, launches and buffers -----===//
//
// See Passes.td (LowerToExec). Each function is rebuilt over buffers: its
// arguments become runtime-bound buffers, weights become weight slots, each
// kiln.fused group a launch of a kernel (identical groups share one kernel),
// each result an alloc sized for the largest step, reshapes views.
//
//===----------------------------------------------------------------------===//
#include "passes/PassUtils.h"
#include "passes/Passes.h"

#include "ir/Exec/ExecOps.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_LOWERTOEXEC
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
namespace ex = kiln::exec;

namespace {

ex::BufferType bufferOf(Type t) { return ex::BufferType::get(t.getContext(), cast<RankedTensorType>(t)); }

/// The static shape a step's tensor takes at its largest: dynamic batch and
/// token dimensions from `step` -- a step's rows (batch x tokens) as one
/// sequence of `step.tokens`, a tensor of one row per sequence (no token
/// dimension: the last token's hidden state, context lengths) for
/// `sequences` of them; any other dynamic dimension is an error.
FailureOr<RankedTensorType> plannedType(Type t, const StepShape &step, int64_t sequences) {
  auto rt = cast<RankedTensorType>(t);
  const bool rows = rt.getRank() > 1 && ShapedType::isDynamic(rt.getDimSize(1));
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rt.getRank(); ++i) {
    int64_t d = rt.getDimSize(i);
    if (ShapedType::isDynamic(d)) {
      if (i > 1)
        return failure();
      d = i == 1 ? step.tokens : rows ? step.batch : std::max(step.batch, sequences);
    }
    shape.push_back(d);
  }
  return RankedTensorType::get(shape, rt.getElementType());
}

ex::WeightLayout layoutOf(WeightOp w) {
  if (w.getSources())
    return w.getTransposed() ? ex::WeightLayout::TransposeConcatRows : ex::WeightLayout::ConcatRows;
  return w.getTransposed() ? ex::WeightLayout::Transpose : ex::WeightLayout::Identity;
}

int64_t intIn(DictionaryAttr d, StringRef key, int64_t otherwise) {
  auto a = d ? d.getAs<IntegerAttr>(key) : IntegerAttr();
  return a ? a.getInt() : otherwise;
}

/// The input a result of `op` may overwrite: the result is an elementwise
/// op of that input alone (a residual or bias add, an activation), of the
/// same type, that input feeds nothing else in the group and is passed to
/// it once, and the group is the input's last reader (a buffer some kernel
/// made, not returned). Each element is then read before it is written, by
/// the same thread.
std::optional<unsigned> inPlaceInput(FusedOp op, unsigned result,
                                     const llvm::SmallDenseSet<unsigned> &used) {
  Block &body = op.getBody().front();
  auto yield = cast<YieldOp>(body.getTerminator());
  Operation *def = yield.getValues()[result].getDefiningOp();
  if (!def || !isa<AddOp, SubOp, MulOp, SiluOp, GeluOp, SwigluOp>(def))
    return std::nullopt;
  for (Value operand : def->getOperands()) {
    auto arg = dyn_cast<BlockArgument>(operand);
    if (!arg || arg.getOwner() != &body || used.contains(arg.getArgNumber()) ||
        arg.getType() != yield.getValues()[result].getType() || !arg.hasOneUse())
      continue;
    Value outer = op.getInputs()[arg.getArgNumber()];
    // Passed once: another argument reading the same bytes (say, the
    // matmul's own input) would see them overwritten by other threads.
    if (!outer.getDefiningOp<FusedOp>() || llvm::count(op.getInputs(), outer) != 1)
      continue;
    bool last = llvm::all_of(outer.getUsers(), [&](Operation *u) {
      return u == op.getOperation() || (!isa<func::ReturnOp>(u) && u->isBeforeInBlock(op));
    });
    if (last)
      return arg.getArgNumber();
  }
  return std::nullopt;
}

class Lowering {
public:
  Lowering(ModuleOp m, const StepShape &decode, const StepShape &prefill)
      : module_(m), decode_(decode), prefill_(prefill) {}

  LogicalResult lower(func::FuncOp f);

private:
  FailureOr<FlatSymbolRefAttr> kernelFor(FusedOp op, StringRef prefix, int64_t &kvLayer);

  ModuleOp module_;
  StepShape decode_, prefill_;
  SmallVector<ex::KernelOp> kernels_;
};

/// The KV layer a group's cache ops address, which the kernel body then
/// names as layer 0 (the launch carries it), or failure when they differ.
FailureOr<int64_t> takeKvLayer(Operation *root) {
  std::optional<int64_t> layer;
  bool mixed = false;
  root->walk([&](Operation *o) {
    if (!isa<KvAppendOp, PagedAttentionOp>(o))
      return;
    int64_t l = o->getAttrOfType<IntegerAttr>("layer").getInt();
    mixed |= layer && *layer != l;
    layer = l;
  });
  if (mixed)
    return failure();
  if (layer)
    root->walk([&](Operation *o) {
      if (isa<KvAppendOp, PagedAttentionOp>(o))
        o->setAttr("layer", IntegerAttr::get(IntegerType::get(o->getContext(), 64), 0));
    });
  return layer.value_or(0);
}

/// A kernel computing what `op` computes: an existing one if identical
/// (same family, tiling and body, the KV layer aside), else a new one at the
/// end of the module. `kvLayer` is the layer the launch must pass.
FailureOr<FlatSymbolRefAttr> Lowering::kernelFor(FusedOp op, StringRef prefix, int64_t &kvLayer) {
  OpBuilder b(module_.getContext());
  b.setInsertionPointToEnd(module_.getBody());
  auto tile = op->getAttrOfType<DictionaryAttr>("kiln.tile");
  auto cost = op->getAttrOfType<DictionaryAttr>("kiln.cost");
  StringRef family = tile && tile.getAs<StringAttr>("family")
                         ? tile.getAs<StringAttr>("family").getValue()
                         : StringRef("fused");
  if (!llvm::is_contained(ex::kernelFamilies(), family))
    family = "fused";
  SmallVector<NamedAttribute> params;
  if (tile)
    for (NamedAttribute a : tile)
      if (a.getName() != "family")
        params.push_back(a);
  std::string name = (prefix + "_" + std::to_string(kernels_.size()) + "_" + op.getKind()).str();
  auto k = ex::KernelOp::create(b, op.getLoc(), b.getStringAttr(name), b.getStringAttr(family),
                                b.getDictionaryAttr({}), b.getDictionaryAttr(params),
                                b.getI64IntegerAttr(intIn(cost, "flops", 0)),
                                b.getI64IntegerAttr(intIn(cost, "bytes", 0)));
  Block *body = b.createBlock(&k.getBody());
  IRMapping map;
  for (Value in : op.getInputs())
    map.map(in, body->addArgument(in.getType(), in.getLoc()));
  b.setInsertionPointToStart(body);
  Operation *clone = b.clone(*op, map);
  clone->removeAttr("kiln.tile");
  clone->removeAttr("kiln.cost");
  FailureOr<int64_t> layer = takeKvLayer(clone);
  if (failed(layer)) {
    k.erase();
    return op.emitOpError("addresses more than one KV-cache layer"), failure();
  }
  kvLayer = *layer;
  // The grid is the launch's (a decode bucket's batch sets it); the kernel
  // is the same at any.
  auto sansGrid = [](DictionaryAttr t) {
    SmallVector<NamedAttribute> kept;
    for (NamedAttribute a : t)
      if (a.getName() != "grid")
        kept.push_back(a);
    return kept;
  };
  for (ex::KernelOp other : kernels_) {
    if (other.getFamily() != k.getFamily() || sansGrid(other.getTile()) != sansGrid(k.getTile()))
      continue;
    if (OperationEquivalence::isRegionEquivalentTo(&other.getBody(), &k.getBody(),
                                                   OperationEquivalence::IgnoreLocations)) {
      k.erase();
      return FlatSymbolRefAttr::get(other.getSymNameAttr());
    }
  }
  kernels_.push_back(k);
  return FlatSymbolRefAttr::get(k.getSymNameAttr());
}

LogicalResult Lowering::lower(func::FuncOp f) {
  StepShape step = stepShapeOf(f, decode_.batch, prefill_.tokens, 0);
  MLIRContext *ctx = f.getContext();
  OpBuilder b(ctx);
  b.setInsertionPoint(f);
  Block &old = f.getBody().front();

  SmallVector<Type> argTypes;
  for (Type t : f.getArgumentTypes())
    argTypes.push_back(bufferOf(t));
  auto nf = func::FuncOp::create(b, f.getLoc(), (f.getName() + ".exec").str(),
                                 FunctionType::get(ctx, argTypes, {}));
  if (ArrayAttr args = f.getAllArgAttrs())
    nf.setArgAttrsAttr(args);
  if (Attribute batch = f->getAttr(kDecodeBatchAttr))
    nf->setAttr(kDecodeBatchAttr, batch);
  // Buffers of one row per sequence: a decode bucket's own batch; prefill's
  // as many sequences as decode's largest step.
  const int64_t sequences = step.decode ? step.batch : decode_.batch;
  Block *body = nf.addEntryBlock();
  b.setInsertionPointToStart(body);
  DenseMap<Value, Value> buf;
  for (auto [o, n] : llvm::zip(old.getArguments(), body->getArguments()))
    buf[o] = n;

  for (Operation &op : old) {
    if (auto w = dyn_cast<WeightOp>(op)) {
      buf[w] = ex::WeightSlotOp::create(b, w.getLoc(), bufferOf(w.getType()), w.getNameAttr(),
                                        layoutOf(w), w.getSourcesAttr(), w.getSourceRowsAttr());
    } else if (isa<ConstantOp>(op)) {
      if (!op.use_empty())
        return op.emitOpError("is used outside a kernel: run kiln-fuse before lowering"),
               failure();
    } else if (auto r = dyn_cast<ReshapeOp>(op)) {
      FailureOr<RankedTensorType> t = plannedType(r.getType(), step, sequences);
      if (failed(t))
        return r.emitOpError("has a dynamic dimension beyond batch and tokens"), failure();
      buf[r] = ex::ViewOp::create(b, r.getLoc(), bufferOf(*t), buf.lookup(r.getInput()));
    } else if (auto fused = dyn_cast<FusedOp>(op)) {
      int64_t kvLayer = 0;
      FailureOr<FlatSymbolRefAttr> kernel = kernelFor(fused, f.getName(), kvLayer);
      if (failed(kernel))
        return failure();
      SmallVector<Value> operands;
      llvm::SmallDenseSet<unsigned> used; // inputs already written in place
      for (Value in : fused.getInputs())
        operands.push_back(buf.lookup(in));
      for (Value r : fused.getResults()) {
        // A result of an input's type that the kernel appends to (the KV
        // cache) is written in place.
        Value inPlace;
        if (cast<RankedTensorType>(r.getType()).getRank() == 6)
          for (Value in : fused.getInputs())
            if (in.getType() == r.getType())
              inPlace = buf.lookup(in);
        if (!inPlace)
          if (std::optional<unsigned> i = inPlaceInput(fused, cast<OpResult>(r).getResultNumber(), used)) {
            inPlace = buf.lookup(fused.getInputs()[*i]);
            used.insert(*i);
          }
        if (!inPlace) {
          FailureOr<RankedTensorType> t = plannedType(r.getType(), step, sequences);
          if (failed(t))
            return fused.emitOpError("result ") << r.getType()
                                                << " has a dynamic dimension beyond batch and "
                                                   "tokens",
                   failure();
          inPlace = ex::AllocOp::create(b, fused.getLoc(), bufferOf(*t));
        }
        buf[r] = inPlace;
        operands.push_back(inPlace);
      }
      auto tile = fused->getAttrOfType<DictionaryAttr>("kiln.tile");
      int64_t grid = std::max<int64_t>(1, intIn(tile, "grid", 1));
      int64_t threads = std::min<int64_t>(1024, std::max<int64_t>(32, intIn(tile, "threads", 128)));
      auto launch = ex::LaunchOp::create(b, fused.getLoc(), *kernel, operands,
                                         b.getDenseI64ArrayAttr({grid, 1, 1}),
                                         b.getDenseI64ArrayAttr({threads, 1, 1}),
                                         b.getI64IntegerAttr(intIn(tile, "smem", 0)),
                                         b.getI64IntegerAttr(fused.getNumResults()),
                                         b.getI64IntegerAttr(kvLayer));
      // The launch's own planned bytes and FLOPs: a kernel that serves
      // several decode buckets (the attention, the norms) moves each
      // bucket's rows, not the first bucket's (kiln-run --profile).
      if (auto cost = fused->getAttrOfType<DictionaryAttr>("kiln.cost")) {
        launch->setAttr("kiln.bytes", b.getI64IntegerAttr(intIn(cost, "bytes", 0)));
        launch->setAttr("kiln.flops", b.getI64IntegerAttr(intIn(cost, "flops", 0)));
      }
    } else if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      SmallVector<Value> results;
      for (Value v : ret.getOperands())
        results.push_back(buf.lookup(v));
      func::ReturnOp::create(b, ret.getLoc(), results);
      nf.setFunctionType(FunctionType::get(ctx, argTypes, TypeRange(results)));
    } else {
      return op.emitOpError("runs as a kernel but is not in a kiln.fused group: run kiln-fuse "
                            "before lowering"),
             failure();
    }
    for (Value r : op.getResults())
      if (!buf.lookup(r) && !r.use_empty() && !isa<ConstantOp>(op))
        return op.emitOpError("has a result lowering could not place"), failure();
  }
  StringAttr name = f.getNameAttr();
  f.erase();
  nf.setName(name);
  return success();
}

struct LowerToExecPass : kiln::impl::LowerToExecBase<LowerToExecPass> {
  using LowerToExecBase::LowerToExecBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    StepShape decode, prefill;
    decode.batch = maxBatch;
    prefill.tokens = maxTokens;
    Lowering lowering(m, decode, prefill);
    for (func::FuncOp f : llvm::to_vector(m.getOps<func::FuncOp>()))
      if (!f.isExternal() && failed(lowering.lower(f)))
        return signalPassFailure();
  }
};

} // namespace
