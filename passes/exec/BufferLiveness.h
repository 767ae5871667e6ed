//===- BufferLiveness.h - live ranges of planned buffers ----------*- C++ -*-===//
//
// Over a lowered function's launches in schedule order: each planned buffer
// (a kiln_exec.alloc before plan-arena, a kiln_exec.buffer_slice after it,
// with its views as aliases) lives from the first launch
// that writes it to the last launch that reads it, or to the end of the step
// when the function returns it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_EXEC_BUFFERLIVENESS_H
#define KILN_PASSES_EXEC_BUFFERLIVENESS_H

#include "ir/Exec/ExecOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <vector>

namespace kiln::exec {

class BufferLiveness {
public:
  struct Interval {
    mlir::Operation *op = nullptr; // the alloc or buffer_slice
    int64_t bytes = 0; // rounded up to the alignment
    int64_t start = 0, end = 0; // launch indices, inclusive
  };

  BufferLiveness(mlir::func::FuncOp func, int64_t alignment = 256);

  /// One interval per alloc, in program order.
  const std::vector<Interval> &intervals() const { return intervals_; }
  int64_t numLaunches() const { return numLaunches_; }
  /// The interval of the buffer `v` is (a view of); null if not planned.
  const Interval *intervalOf(mlir::Value v) const;
  /// Whether two planned buffers are live at a common launch.
  static bool overlap(const Interval &a, const Interval &b) {
    return a.start <= b.end && b.start <= a.end;
  }
  /// Bytes live during launch `i`.
  int64_t liveBytesAt(int64_t i) const;
  /// The most bytes live at once: no placement can use less.
  int64_t lowerBound() const;
  /// All buffers end to end.
  int64_t totalBytes() const;
  /// The alloc or arena slice a value is (a view of), or null.
  static mlir::Operation *root(mlir::Value v);

private:
  std::vector<Interval> intervals_;
  llvm::DenseMap<mlir::Operation *, size_t> index_;
  int64_t numLaunches_ = 0;
};

} // namespace kiln::exec

#endif
