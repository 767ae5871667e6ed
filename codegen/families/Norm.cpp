//===- Norm.cpp - the norm family ------------------------------------===//
//
// A row norm alone: cuda/norm.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

LogicalResult Emitter::emitNorm(Operation *norm, EmittedKernel &out) {
  int yOut = yieldIndex(norm->getResult(0));
  Value x = norm->getOperand(0), gamma = norm->getOperand(1);
  Value beta = isa<LayerNormOp>(norm) ? cast<LayerNormOp>(norm).getBias() : Value();
  if (yOut < 0 || yield_->getNumOperands() != 1)
    return fail(norm, "a norm kernel yields the norm alone");
  auto isArg = [&](Value v) {
    auto arg = dyn_cast_or_null<BlockArgument>(v);
    return arg && arg.getOwner() == body_;
  };
  auto isArgOrConst = [&](Value v) { return isArg(v) || v.getDefiningOp<ConstantOp>(); };
  if (!isArg(x) || !isArgOrConst(gamma) || (beta && !isArgOrConst(beta)))
    return fail(norm, "a norm kernel's input must be a kernel operand, its weights operands or constants");
  FailureOr<Shape> xs = shapeOf(x);
  if (failed(xs) || xs->back().sym)
    return failure();
  int64_t K = xs->back().value;
  Shape lead(xs->begin(), xs->end() - 1);
  float eps = isa<RmsNormOp>(norm) ? cast<RmsNormOp>(norm).getEpsilon().convertToFloat()
                                   : cast<LayerNormOp>(norm).getEpsilon().convertToFloat();
  float offset = isa<RmsNormOp>(norm) ? cast<RmsNormOp>(norm).getWeightOffset().convertToFloat() : 0.0f;
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "struct S {\n  typedef " << cType(elemOf(x)) << " TA;\n";
  os << "  static constexpr kiln::i64 K = " << K << ";\n  static constexpr int NORM = "
     << (isa<RmsNormOp>(norm) ? 1 : 2) << ";\n  static constexpr float EPS = " << fmtFloat(eps) << ";\n";
  os << "  __device__ static __forceinline__ kiln::i64 rows(const kiln::Args &a) { return " << product(lead)
     << "; }\n";
  os << "  __device__ static __forceinline__ float x(const kiln::Args &a, kiln::i64 m, kiln::i64 k) { return "
        "kiln::ldf("
     << ptr(cast<BlockArgument>(x).getArgNumber(), elemOf(x), true) << ", m * K + k); }\n";
  if (failed(vectorLoad(os, gamma, "gamma", offset)) || failed(vectorLoad(os, beta, "beta", 0.0f)))
    return failure();
  os << decls_;
  os << "  __device__ static __forceinline__ void store(const kiln::Args &a, kiln::i64 m, kiln::i64 k, float v) { "
        "kiln::stv("
     << ptr(outputSlot(yOut), elemOf(norm->getResult(0)), false) << ", m * K + k, v); }\n";
  os << "};\n";
  int64_t threads = std::min<int64_t>(512, std::max<int64_t>(32, (K / 4 + 31) / 32 * 32));
  out.family = "norm";
  out.threads = threads;
  out.grid = ruleOf(lead);
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                      "kiln::normRows<S, {0}>(a); }\n",
                      threads, kernel_.getSymName());
  out.specialisation = globals_ + s;
  return success();
}

} // namespace kiln::codegen::detail
