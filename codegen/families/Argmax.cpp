//===- Argmax.cpp - row argmax ---------------------------------------===//
//
// Argmax over the last axis: cuda/argmax.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

LogicalResult Emitter::emitArgmaxRows(ArgmaxOp am, EmittedKernel &out) {
  int yOut = yieldIndex(am);
  FailureOr<Shape> in = shapeOf(am.getInput());
  if (failed(in))
    return failure();
  int64_t r = static_cast<int64_t>(in->size());
  if (yOut < 0 || yield_->getNumOperands() != 1 || static_cast<int64_t>(am.getAxis()) != r - 1)
    return fail(am, "a standalone argmax must be over the last axis and yielded alone");
  FailureOr<std::string> xf = fn(am.getInput());
  if (failed(xf))
    return failure();
  Shape lead(in->begin(), in->end() - 1);
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "struct S {\n" << decls_;
  os << "  __device__ static __forceinline__ kiln::i64 rows(const kiln::Args &a) { return " << product(lead)
     << "; }\n";
  os << "  __device__ static __forceinline__ kiln::i64 len(const kiln::Args &a) { return " << in->back().str()
     << "; }\n";
  os << "  __device__ static __forceinline__ float x(const kiln::Args &a, kiln::i64 r, kiln::i64 k) {\n    "
     << delinearise("r", lead, "ix0") << "\n    kiln::i64 ix[" << r << "];";
  for (int64_t i = 0; i + 1 < r; ++i)
    os << " ix[" << i << "] = ix0[" << i << "];";
  os << " ix[" << r - 1 << "] = k;\n    float mm0 = 0.0f, mm1 = 0.0f;\n    return " << call(*xf, "ix")
     << ";\n  }\n";
  os << "  __device__ static __forceinline__ void store(const kiln::Args &a, kiln::i64 r, kiln::i64 i) { "
        "kiln::stv("
     << ptr(outputSlot(yOut), elemOf(am), false) << ", r, i); }\n};\n";
  out.family = "argmax";
  out.threads = 128;
  SizeRule g = ruleOf(lead);
  g.divisor = 4;
  out.grid = g;
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                      "kiln::argmaxRows<S>(a); }\n",
                      kernel_.getSymName());
  out.specialisation = globals_ + s;
  return success();
}

} // namespace kiln::codegen::detail
