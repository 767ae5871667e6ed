//===- Emitter.h - the kernel emitter's shared machinery --------*- C++ -*-===//
//
// Internal to codegen/: the Emitter class that turns one kiln_exec kernel
// into its `struct S` and skeleton call, and the helpers its families
// share. The shared element-function machinery (shapes, index arithmetic,
// the fused body's ops as device functions) is in Emitter.cpp; each kernel
// family's emitter is in families/ (Matmul, Gemv, Gemm, Attention,
// AttentionDecode, AttentionPrefill, Norm, Argmax, Pointwise), beside its
// device header in cuda/. KernelEmitter.cpp dispatches and emits the host
// program.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_EMITTER_H
#define KILN_CODEGEN_EMITTER_H

#include "codegen/KernelEmitter.h"
#include "runtime/target/Target.h"

#include "interp/HostOpConversion.h"
#include "ir/Exec/ExecOps.h"
#include "ir/Kiln/KilnOps.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <limits>

#include <optional>

namespace kiln::codegen::detail {

using namespace mlir;
using namespace kiln;
namespace ex = kiln::exec;

/// A dimension: a constant or a step size.
struct Dim {
  int64_t value = 0;
  std::optional<Sym> sym;
  std::string str() const {
    if (!sym)
      return std::to_string(value);
    return std::string("(kiln::i64)a.") + symName(*sym);
  }
  bool operator==(const Dim &o) const { return value == o.value && sym == o.sym; }
};
using Shape = SmallVector<Dim, 6>;

inline std::string product(ArrayRef<Dim> dims) {
  if (dims.empty())
    return "1";
  std::string s;
  for (const Dim &d : dims)
    s += (s.empty() ? "" : " * ") + d.str();
  return "(" + s + ")";
}

/// The constant factor and symbols of a product of dims.
inline SizeRule ruleOf(ArrayRef<Dim> dims) {
  SizeRule r;
  for (const Dim &d : dims) {
    if (d.sym)
      r.symbols.push_back(*d.sym);
    else
      r.factor *= d.value;
  }
  return r;
}

/// The largest product of `dims` in a step: a prefill step holds at most
/// maxTokens tokens over all its sequences (batch x tokens), a decode step
/// maxBatch sequences of one token.
inline int64_t maxProduct(ArrayRef<Dim> dims, const EmitOptions &o) {
  bool tokens = llvm::any_of(dims, [](const Dim &d) { return d.sym == Sym::Tokens; });
  int64_t p = 1;
  for (const Dim &d : dims) {
    if (!d.sym)
      p *= d.value;
    else if (*d.sym == Sym::Tokens)
      p *= o.maxTokens;
    else if (*d.sym == Sym::Batch && !tokens)
      p *= o.maxBatch;
  }
  return p;
}

inline std::string cType(Type t) {
  if (t.isBF16()) return "__nv_bfloat16";
  if (t.isF16()) return "__half";
  if (t.isF32()) return "float";
  if (t.isF64()) return "double";
  if (t.isInteger(64)) return "kiln::i64";
  if (t.isInteger(32)) return "int";
  if (t.isInteger(8)) return "signed char";
  if (t.isInteger(1)) return "bool";
  return "";
}
inline Type elemOf(Value v) { return cast<RankedTensorType>(v.getType()).getElementType(); }
inline bool isFloatValue(Value v) { return isa<FloatType>(elemOf(v)); }
/// What an element function of `v` returns.
inline std::string valueType(Value v) { return isFloatValue(v) ? "float" : "kiln::i64"; }

inline std::string fmtFloat(double d) {
  if (std::isnan(d)) return "__int_as_float(0x7fc00000)";
  if (std::isinf(d)) return d > 0 ? "kiln::inf()" : "-kiln::inf()";
  return llvm::formatv("{0:e9}f", d).str();
}
inline std::string fmtDouble(double d) { return llvm::formatv("{0:e17}", d).str(); }

inline int64_t tileInt(ex::KernelOp k, StringRef key, int64_t otherwise) {
  auto a = k.getTile().getAs<IntegerAttr>(key);
  return a ? a.getInt() : otherwise;
}

inline int64_t pow2Floor(int64_t v) {
  int64_t p = 1;
  while (p * 2 <= v)
    p *= 2;
  return p;
}

class Emitter {
public:
  Emitter(ex::KernelOp kernel, ArrayRef<Shape> argShapes, const EmitOptions &options)
      : kernel_(kernel), options_(options), argShapes_(argShapes.begin(), argShapes.end()) {}

  LogicalResult emit(EmittedKernel &out);

private:
  // Shapes.
  FailureOr<Shape> shapeOf(Value v);
  LogicalResult fail(Operation *op, const Twine &why) {
    op->emitError("codegen (") << kernel_.getSymName() << "): " << why;
    return failure();
  }

  // Element functions.
  FailureOr<std::string> fn(Value v);
  FailureOr<std::string> fnBody(Value v, const Shape &shape, std::string &body);
  std::string call(const std::string &f, const std::string &ix) {
    return f + "(a, " + ix + ", mm0, mm1)";
  }
  /// Writes `jx` = the index into `operand` (broadcast to `result` rank,
  /// numpy alignment) of the result index `ix`.
  LogicalResult broadcastIndex(Value operand, const Shape &result, std::string &code,
                               const std::string &jx);
  std::string delinearise(const std::string &lin, const Shape &shape, const std::string &ix);
  std::string linearise(const std::string &ix, const Shape &shape);

  // Families.
  LogicalResult emitMatmul(MatmulOp mm, EmittedKernel &out); // families/Matmul.cpp
  /// A GEMM's operands as its TMA maps see them: A's and W's buffer slots,
  /// W's rows, whether they are in item order (plain, or gated halves
  /// n + j * N; not RoPE pairs), the 16-bit element type, and whether
  /// the product's dtype is A's (then shared memory can hold products
  /// exactly: gemmWs's epilogue warpgroup).
  struct GemmOperands {
    unsigned aSlot, wSlot;
    int64_t wRows;
    bool itemOrder;
    std::string dtype;
    bool stageable = false;
    bool argmax = false; // the epilogue folds an argmax (every tile's block takes part: no split-K)
  };
  /// The launch of a matmul kernel (struct S written): the tensor-core
  /// GEMM (families/Gemm.cpp) or the GEMV (families/Gemv.cpp).
  /// plain: no norm prologue and no argmax (the warp-specialised kernel
  /// takes those).
  void gemmSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t K, int64_t N, int gate, bool plain,
                    const Shape &lead, const GemmOperands &operands);
  void gemvSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t K, int64_t N, int gate, int64_t mc, Type ta,
                    Type tw);
  /// Decode's QKV projection with its RoPE and KV append: each output item
  /// is a pair of columns the rotation mixes (d and d + D/2 of a head, or 2i
  /// and 2i + 1); `epi` stores queries and the cache. Sets `pairOffset_`.
  LogicalResult pairedEpilogue(MatmulOp mm, int64_t nmm, Shape &lead, std::string &row, std::string &epi);
  LogicalResult emitAttention(PagedAttentionOp pa, EmittedKernel &out); // families/Attention.cpp
  /// The launch of an attention kernel: decode (families/AttentionDecode.cpp)
  /// or prefill (families/AttentionPrefill.cpp).
  void attentionDecodeSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t H, int64_t hkv, int64_t D,
                               int64_t splits, int64_t chunk, int64_t maxRows, Type cacheType, bool tableRope,
                               bool queriesInCacheType);
  void attentionPrefillSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t H, int64_t hkv, int64_t D,
                                Type cacheType);
  LogicalResult emitNorm(Operation *norm, EmittedKernel &out);           // families/Norm.cpp
  LogicalResult emitArgmaxRows(ArgmaxOp am, EmittedKernel &out);         // families/Argmax.cpp
  LogicalResult emitPointwise(EmittedKernel &out);                       // families/Pointwise.cpp
  /// A rope's inverse frequencies as a device table `fn(i)`, its rotated
  /// dims and the cos/sin magnitude.
  struct RopeTable {
    std::string fn;
    int64_t rotaryDim = 0;
    double magnitude = 1.0;
    bool neox = true;
  };
  /// Of a kiln.rope or kiln.rope_cos_sin.
  FailureOr<RopeTable> ropeTable(Operation *r, int64_t D);
  /// Code declaring `float c, s`: the cosine and sine of position `pos`
  /// times frequency `i` of table `t` (in double, one range reduction for
  /// both), scaled by its magnitude -- every RoPE rotation's angle.
  std::string ropeAngle(const RopeTable &t, const std::string &pos, const std::string &i);
  /// The same `float c, s` for rotation `r`: loaded from its cos_sin table
  /// where it reads one (at positions index `px`, an i64[2] in scope, and
  /// frequency `i`), else ropeAngle.
  FailureOr<std::string> ropeCosSin(RopeOp r, const RopeTable &t, const std::string &pos, const std::string &px,
                                    const std::string &i);
  /// For a RoPE of whole heads in the neox style (rotated dims d and
  /// d + D/2 share one angle): code that, with `ix` an index of the first
  /// half (ix[3] < D/2) in scope, declares jx (its partner) and y0, y1 (the
  /// rotated values at ix and jx) from one sincos, the values the element
  /// function computes. failure() (no diagnostic) for any other rotation.
  FailureOr<std::string> ropePair(RopeOp r);
  /// Code finding `at`, the key of (ix[0], pos, ix[2], ix[3]) in the cache
  /// of kernel slot `slot` (returns when the page is unmapped), then storing
  /// each (offset from `at`, value): a value's offset is kvValue(kv).
  std::string kvStore(KvAppendOp kv, unsigned slot, ArrayRef<std::pair<std::string, std::string>> stores);
  /// From a key to its value within a page of the cache.
  std::string kvValue(KvAppendOp kv);
  LogicalResult emitHostProgram(EmittedKernel &out);
  /// `name(a, k)`: element k of a 1-D operand or constant (+ `add`), or 0.
  LogicalResult vectorLoad(llvm::raw_ostream &os, Value v, const std::string &name, float add);

  /// The buffer slot of a kernel result (outputs follow the inputs).
  unsigned outputSlot(unsigned result) { return body_->getNumArguments() + result; }
  std::string ptr(unsigned slot, Type elem, bool isConst) {
    return llvm::formatv("static_cast<{0}{1} *>(a.p[{2}])", isConst ? "const " : "",
                         cType(elem), slot)
        .str();
  }
  /// The result index of `v` in the yield, or -1.
  int yieldIndex(Value v) {
    for (auto [i, y] : llvm::enumerate(yield_->getOperands()))
      if (y == v)
        return static_cast<int>(i);
    return -1;
  }

  ex::KernelOp kernel_;
  const EmitOptions &options_;
  SmallVector<Shape> argShapes_;
  FusedOp fused_;
  Block *body_ = nullptr;
  Operation *yield_ = nullptr;
  DenseMap<Value, Shape> shapes_;
  DenseMap<Value, std::string> fns_;
  DenseMap<Value, int> mmSlot_; // matmul-derived values -> 0 (mm0), 1 (mm1), 2 (by column: pairs)
  int64_t pairOffset_ = 0;      // slot 2: column c is mm0 when c % (2 * offset) < offset
  DenseMap<Operation *, RopeTable> ropeTables_;
  Value matmul_;
  std::string decls_; // element functions and tables, in definition order
  /// Constant tables, at namespace scope before `struct S`: a table local
  /// to a function would be rebuilt in local memory at every call.
  std::string globals_;
  int counter_ = 0;
};

} // namespace kiln::codegen::detail

#endif
