//===- PipelineCheck.cpp - check that passes preserve numbers -------------===//
#include "interp/PipelineCheck.h"

#include "interp/Interpreter.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using kiln::host::DType;
using kiln::host::Tensor;

namespace kiln::interp {

/// Tolerance widened to the storage dtype of a result.
static double toleranceFor(DType t, double base) {
  switch (t) {
  case DType::BF16: return std::max(base, 1.6e-2);
  case DType::F16: return std::max(base, 2e-3);
  default: return base;
  }
}

/// Compares two results; appends a line to `os` on a mismatch.
static bool sameResult(const Tensor &a, const Tensor &b, double tol,
                       llvm::raw_ostream &os) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) {
    os << "dtype/shape " << host::dtypeName(a.dtype()) << host::shapeToString(a.shape())
       << " became " << host::dtypeName(b.dtype()) << host::shapeToString(b.shape());
    return false;
  }
  double ss = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    ss += a.get(i) * a.get(i);
  double rms = a.numel() ? std::sqrt(ss / a.numel()) : 0;
  double t = toleranceFor(a.dtype(), tol), worst = 0;
  int64_t worstAt = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double x = a.get(i), y = b.get(i);
    double err = std::fabs(x - y) / (std::fabs(x) + rms + 1e-30);
    if (std::isnan(x) != std::isnan(y))
      err = INFINITY;
    if (err > worst) {
      worst = err;
      worstAt = i;
    }
  }
  if (worst > t) {
    os << "element " << worstAt << ": " << a.get(worstAt) << " became "
       << b.get(worstAt) << " (relative error " << worst << " > " << t << ")";
    return false;
  }
  return true;
}

LogicalResult checkTransformPreservesOutputs(
    ModuleOp module, const std::function<LogicalResult(ModuleOp)> &transform,
    const CheckOptions &options, std::string &report) {
  llvm::raw_string_ostream os(report);
  OwningOpRef<ModuleOp> after = module.clone();
  if (failed(transform(*after))) {
    os << "the transformation failed\n";
    return failure();
  }
  bool ok = true;
  int compared = 0;
  for (func::FuncOp before : module.getOps<func::FuncOp>()) {
    if (before.isExternal() || (!options.entry.empty() && before.getName() != options.entry))
      continue;
    auto other = after->lookupSymbol<func::FuncOp>(before.getName());
    if (!other) {
      os << "@" << before.getName() << " disappeared\n";
      ok = false;
      continue;
    }
    for (int trial = 0; trial < options.trials; ++trial) {
      uint64_t seed = options.seed + trial;
      std::vector<Tensor> inputs =
          randomInputs(before, seed, options.dynamicSize, options.intRange);
      WeightProvider weights = randomWeights(seed);
      std::vector<Tensor> want, got;
      if (failed(evaluate(before, inputs, weights, want)) ||
          failed(evaluate(other, inputs, weights, got))) {
        os << "@" << before.getName() << ": evaluation failed\n";
        return failure();
      }
      if (want.size() != got.size()) {
        os << "@" << before.getName() << ": " << want.size() << " results became "
           << got.size() << "\n";
        ok = false;
        continue;
      }
      for (size_t i = 0; i < want.size(); ++i) {
        std::string why;
        llvm::raw_string_ostream w(why);
        if (!sameResult(want[i], got[i], options.tolerance, w)) {
          os << "@" << before.getName() << " result " << i << " (seed " << seed
             << "): " << why << "\n";
          ok = false;
        }
        ++compared;
      }
    }
  }
  if (ok)
    os << "compared " << compared << " results: all agree\n";
  return success(ok && compared > 0);
}

LogicalResult checkPipelinePreservesOutputs(ModuleOp module, llvm::StringRef pipeline,
                                            const CheckOptions &options,
                                            std::string &report) {
  auto transform = [&](ModuleOp m) -> LogicalResult {
    PassManager pm(m.getContext());
    std::string err;
    llvm::raw_string_ostream es(err);
    if (failed(parsePassPipeline(pipeline, pm, es))) {
      report += "bad pipeline: " + err + "\n";
      return failure();
    }
    return pm.run(m);
  };
  return checkTransformPreservesOutputs(module, transform, options, report);
}

} // namespace kiln::interp
