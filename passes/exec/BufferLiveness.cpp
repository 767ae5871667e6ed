//===- BufferLiveness.cpp - live ranges of planned buffers ----------------===//
#include "passes/exec/BufferLiveness.h"

using namespace mlir;

namespace kiln::exec {

Operation *BufferLiveness::root(Value v) {
  while (auto view = v.getDefiningOp<ViewOp>())
    v = view.getSource();
  Operation *d = v.getDefiningOp();
  return d && isa<AllocOp, BufferSliceOp>(d) ? d : nullptr;
}

BufferLiveness::BufferLiveness(func::FuncOp func, int64_t alignment) {
  for (Operation &op : func.getBody().front()) {
    int64_t bytes;
    if (auto a = dyn_cast<AllocOp>(op))
      bytes = tensorBytes(a.getType().getView());
    else if (auto s = dyn_cast<BufferSliceOp>(op))
      bytes = static_cast<int64_t>(s.getSize());
    else
      continue;
    bytes = (bytes + alignment - 1) / alignment * alignment;
    index_[&op] = intervals_.size();
    intervals_.push_back({&op, bytes, -1, -1});
  }
  auto touch = [&](Value v, int64_t i, bool write) {
    Operation *a = root(v);
    if (!a)
      return;
    Interval &iv = intervals_[index_.lookup(a)];
    if (iv.start < 0 && write)
      iv.start = i;
    if (iv.start < 0) // read before any write: live from the step's start
      iv.start = 0;
    iv.end = std::max(iv.end, i);
  };
  for (Operation &op : func.getBody().front()) {
    if (auto l = dyn_cast<LaunchOp>(op)) {
      int64_t outs = static_cast<int64_t>(l.getNumOutputs());
      int64_t n = static_cast<int64_t>(l.getBuffers().size());
      for (int64_t k = 0; k < n; ++k)
        touch(l.getBuffers()[k], numLaunches_, k >= n - outs);
      ++numLaunches_;
    } else if (auto r = dyn_cast<func::ReturnOp>(op)) {
      for (Value v : r.getOperands())
        touch(v, numLaunches_, false); // read by the runtime after the step
    }
  }
  for (Interval &iv : intervals_)
    if (iv.start < 0) // never used: occupies nothing but a moment
      iv.start = iv.end = 0;
}

const BufferLiveness::Interval *BufferLiveness::intervalOf(Value v) const {
  Operation *a = root(v);
  if (!a)
    return nullptr;
  auto it = index_.find(a);
  return it == index_.end() ? nullptr : &intervals_[it->second];
}

int64_t BufferLiveness::liveBytesAt(int64_t i) const {
  int64_t sum = 0;
  for (const Interval &iv : intervals_)
    if (iv.start <= i && i <= iv.end)
      sum += iv.bytes;
  return sum;
}

int64_t BufferLiveness::lowerBound() const {
  int64_t best = 0;
  for (int64_t i = 0; i <= numLaunches_; ++i)
    best = std::max(best, liveBytesAt(i));
  return best;
}

int64_t BufferLiveness::totalBytes() const {
  int64_t sum = 0;
  for (const Interval &iv : intervals_)
    sum += iv.bytes;
  return sum;
}

} // namespace kiln::exec
