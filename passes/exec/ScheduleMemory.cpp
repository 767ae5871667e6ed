//===- ScheduleMemory.cpp - reorder launches to lower the live peak -------===//
//
// See Passes.td (ScheduleMemory).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"
#include "passes/exec/BufferLiveness.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_SCHEDULEMEMORY
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::exec;

namespace {

struct Access {
  llvm::SmallDenseSet<Value> reads, writes; // root values
};

Value rootValue(Value v) {
  while (auto view = v.getDefiningOp<ViewOp>())
    v = view.getSource();
  return v;
}

Access accessOf(LaunchOp l) {
  Access a;
  int64_t n = static_cast<int64_t>(l.getBuffers().size());
  int64_t outs = static_cast<int64_t>(l.getNumOutputs());
  for (int64_t i = 0; i < n; ++i)
    (i >= n - outs ? a.writes : a.reads).insert(rootValue(l.getBuffers()[i]));
  return a;
}

bool intersects(const llvm::SmallDenseSet<Value> &a, const llvm::SmallDenseSet<Value> &b) {
  for (Value v : a)
    if (b.contains(v))
      return true;
  return false;
}

int64_t bytesOf(Value v) {
  auto a = v.getDefiningOp<AllocOp>();
  return a ? tensorBytes(a.getType().getView()) : 0; // only planned buffers count
}

void schedule(func::FuncOp f) {
  Block &body = f.getBody().front();
  SmallVector<LaunchOp> launches(f.getOps<LaunchOp>());
  if (launches.size() < 2)
    return;
  size_t n = launches.size();
  std::vector<Access> acc;
  for (LaunchOp l : launches)
    acc.push_back(accessOf(l));
  // Dependencies: j after i when they conflict.
  std::vector<std::vector<size_t>> preds(n);
  for (size_t j = 0; j < n; ++j)
    for (size_t i = 0; i < j; ++i)
      if (intersects(acc[i].writes, acc[j].reads) || intersects(acc[i].reads, acc[j].writes) ||
          intersects(acc[i].writes, acc[j].writes))
        preds[j].push_back(i);
  // Readers left per buffer; returned buffers never die.
  llvm::DenseMap<Value, int64_t> readersLeft;
  for (const Access &a : acc)
    for (Value v : a.reads)
      ++readersLeft[v];
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (Value v : ret.getOperands())
    readersLeft[rootValue(v)] += 1 << 20;

  std::vector<bool> done(n, false);
  std::vector<size_t> order;
  while (order.size() < n) {
    size_t best = n;
    int64_t bestDelta = 0;
    for (size_t j = 0; j < n; ++j) {
      if (done[j] || llvm::any_of(preds[j], [&](size_t i) { return !done[i]; }))
        continue;
      int64_t delta = 0;
      for (Value v : acc[j].writes)
        if (!acc[j].reads.contains(v))
          delta += bytesOf(v);
      for (Value v : acc[j].reads)
        if (readersLeft.lookup(v) == 1)
          delta -= bytesOf(v);
      if (best == n || delta < bestDelta) {
        best = j;
        bestDelta = delta;
      }
    }
    done[best] = true;
    order.push_back(best);
    for (Value v : acc[best].reads)
      --readersLeft[v];
  }
  // Keep the new order only if it lowers the peak.
  int64_t before = BufferLiveness(f).lowerBound();
  // Declarations first, then launches in the new order, then the return.
  SmallVector<Operation *> decls;
  for (Operation &op : body.without_terminator())
    if (!isa<LaunchOp>(op))
      decls.push_back(&op);
  SmallVector<Operation *> original;
  for (Operation &op : body.without_terminator())
    original.push_back(&op);
  for (Operation *d : decls)
    d->moveBefore(ret);
  for (size_t i : order)
    launches[i]->moveBefore(ret);
  if (BufferLiveness(f).lowerBound() >= before)
    for (Operation *op : original) // not better: restore the original order
      op->moveBefore(ret);
}

struct ScheduleMemoryPass : kiln::impl::ScheduleMemoryBase<ScheduleMemoryPass> {
  void runOnOperation() override {
    for (func::FuncOp f : getOperation().getOps<func::FuncOp>())
      if (!f.isExternal() && !f.getBody().empty())
        schedule(f);
  }
};

} // namespace
