//===- KernelEmitter.cpp - kiln_exec kernels -> CUDA C++ ------------------===//
//
// See KernelEmitter.h and docs/codegen.md. The generated part of a kernel
// is a `struct S` whose members the skeleton calls: shapes as constexpr,
// pointers into `Args::p`, and element functions. Body values that are read
// per element become `__device__` functions of an index (`v3(a, ix, mm0,
// mm1)`): they load block arguments with their strides, follow broadcasts,
// slices, reshapes, gathers and concatenations by index arithmetic, and round
// each op's result to its dtype as the host interpreter stores it. `mm0` and
// `mm1` carry a matmul's accumulators into its epilogue.
//
//===----------------------------------------------------------------------===//
#include "codegen/KernelEmitter.h"

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

using namespace mlir;
using namespace kiln;
namespace ex = kiln::exec;

namespace kiln::codegen {

extern const char *const kDeviceLibrary; // DeviceLibrary.cpp, generated

const std::string &deviceLibrary() {
  static const std::string lib = kDeviceLibrary;
  return lib;
}

std::string kernelSource(const std::string &specialisation) {
  return deviceLibrary() + "\n" + specialisation;
}

const char *symName(Sym s) {
  switch (s) {
  case Sym::Batch: return "batch";
  case Sym::Tokens: return "tokens";
  case Sym::Pages: return "pages";
  case Sym::MaxBlocks: return "max_blocks";
  }
  return "?";
}

namespace {

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

std::string product(ArrayRef<Dim> dims) {
  if (dims.empty())
    return "1";
  std::string s;
  for (const Dim &d : dims)
    s += (s.empty() ? "" : " * ") + d.str();
  return "(" + s + ")";
}

/// The constant factor and symbols of a product of dims.
SizeRule ruleOf(ArrayRef<Dim> dims) {
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
int64_t maxProduct(ArrayRef<Dim> dims, const EmitOptions &o) {
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

std::string cType(Type t) {
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
Type elemOf(Value v) { return cast<RankedTensorType>(v.getType()).getElementType(); }
bool isFloatValue(Value v) { return isa<FloatType>(elemOf(v)); }
/// What an element function of `v` returns.
std::string valueType(Value v) { return isFloatValue(v) ? "float" : "kiln::i64"; }

std::string fmtFloat(double d) {
  if (std::isnan(d)) return "__int_as_float(0x7fc00000)";
  if (std::isinf(d)) return d > 0 ? "kiln::inf()" : "-kiln::inf()";
  return llvm::formatv("{0:e9}f", d).str();
}
std::string fmtDouble(double d) { return llvm::formatv("{0:e17}", d).str(); }

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
  LogicalResult emitMatmul(MatmulOp mm, EmittedKernel &out);
  /// Decode's QKV projection with its RoPE and KV append: each output item
  /// is a pair of columns the rotation mixes (d and d + D/2 of a head, or 2i
  /// and 2i + 1); `epi` stores queries and the cache. Sets `pairOffset_`.
  LogicalResult pairedEpilogue(MatmulOp mm, int64_t nmm, Shape &lead, std::string &row, std::string &epi);
  LogicalResult emitAttention(PagedAttentionOp pa, EmittedKernel &out);
  LogicalResult emitNorm(Operation *norm, EmittedKernel &out);
  LogicalResult emitArgmaxRows(ArgmaxOp am, EmittedKernel &out);
  LogicalResult emitPointwise(EmittedKernel &out);
  /// A rope's inverse frequencies as a device table `fn(i)`, its rotated
  /// dims and the cos/sin magnitude.
  struct RopeTable {
    std::string fn;
    int64_t rotaryDim = 0;
    double magnitude = 1.0;
    bool neox = true;
  };
  FailureOr<RopeTable> ropeTable(RopeOp r, int64_t D);
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

//===--- shapes ----------------------------------------------------------===//

FailureOr<Shape> Emitter::shapeOf(Value v) {
  if (auto it = shapes_.find(v); it != shapes_.end())
    return it->second;
  auto rt = cast<RankedTensorType>(v.getType());
  Shape s;
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (arg.getOwner() == body_) {
      s = argShapes_[arg.getArgNumber()];
    } else {
      // An argument of the kiln.fused body: the kernel operand it stands for.
      s = argShapes_[arg.getArgNumber()];
    }
    shapes_[v] = s;
    return s;
  }
  Operation *op = v.getDefiningOp();
  auto same = [&](Value o) -> FailureOr<Shape> { return shapeOf(o); };
  FailureOr<Shape> r = failure();
  // Static dimensions come from the type; dynamic ones from the operands.
  auto fromType = [&](llvm::function_ref<std::optional<Dim>(int64_t)> dynamicDim) -> FailureOr<Shape> {
    Shape out;
    for (int64_t i = 0; i < rt.getRank(); ++i) {
      if (!rt.isDynamicDim(i)) {
        out.push_back(Dim{rt.getDimSize(i), std::nullopt});
        continue;
      }
      std::optional<Dim> d = dynamicDim(i);
      if (!d)
        return failure();
      out.push_back(*d);
    }
    return out;
  };
  if (rt.hasStaticShape()) {
    Shape out;
    for (int64_t d : rt.getShape())
      out.push_back(Dim{d, std::nullopt});
    r = out;
  } else if (isa<MatmulOp>(op)) {
    FailureOr<Shape> a = shapeOf(op->getOperand(0));
    if (failed(a))
      return failure();
    r = fromType([&](int64_t i) -> std::optional<Dim> {
      return i < static_cast<int64_t>(a->size()) - 1 ? std::optional<Dim>((*a)[i]) : std::nullopt;
    });
  } else if (auto g = dyn_cast<GatherOp>(op)) {
    FailureOr<Shape> d = shapeOf(g.getData()), ix = shapeOf(g.getIndices());
    if (failed(d) || failed(ix) || g.getAxis() != 0)
      return failure();
    Shape out = *ix;
    out.append(d->begin() + 1, d->end());
    r = out;
  } else if (auto g = dyn_cast<GatherNdOp>(op)) {
    FailureOr<Shape> d = shapeOf(g.getData()), ix = shapeOf(g.getIndices());
    if (failed(d) || failed(ix) || ix->back().sym)
      return failure();
    Shape out(ix->begin(), ix->end() - 1);
    out.append(d->begin() + ix->back().value, d->end());
    r = out;
  } else if (auto ar = dyn_cast<ArangeOp>(op)) {
    FailureOr<Shape> ref = shapeOf(ar.getReference());
    if (failed(ref))
      return failure();
    r = Shape{(*ref)[ar.getAxis()]};
  } else if (auto am = dyn_cast<ArgmaxOp>(op)) {
    FailureOr<Shape> in = shapeOf(am.getInput());
    if (failed(in))
      return failure();
    Shape out;
    for (auto [i, d] : llvm::enumerate(*in)) {
      if (static_cast<int64_t>(i) != static_cast<int64_t>(am.getAxis()))
        out.push_back(d);
      else if (am.getKeepDims())
        out.push_back(Dim{1, std::nullopt});
    }
    r = out;
  } else if (auto c = dyn_cast<ConcatOp>(op)) {
    FailureOr<Shape> first = shapeOf(c.getInputs().front());
    if (failed(first))
      return failure();
    r = fromType([&](int64_t i) -> std::optional<Dim> {
      return i == static_cast<int64_t>(c.getAxis()) ? std::nullopt : std::optional<Dim>((*first)[i]);
    });
  } else if (auto rs = dyn_cast<ReshapeOp>(op)) {
    FailureOr<Shape> in = shapeOf(rs.getInput());
    if (failed(in))
      return failure();
    ArrayRef<int64_t> spec = rs.getShape();
    // A -1 entry is inferred: it carries the input's one step size when the
    // other sizes match up (an exporter's [1, -1, heads, dim] view).
    int64_t inStatic = 1, outStatic = 1;
    SmallVector<Dim> inSyms;
    for (const Dim &d : *in) {
      if (d.sym)
        inSyms.push_back(d);
      else
        inStatic *= d.value;
    }
    for (auto [i, d] : llvm::enumerate(spec)) {
      if (d > 0)
        outStatic *= d;
      else if (d == 0 && i < in->size())
        outStatic *= (*in)[i].sym ? 1 : (*in)[i].value;
    }
    r = fromType([&](int64_t i) -> std::optional<Dim> {
      if (i < static_cast<int64_t>(spec.size()) && spec[i] == 0 && i < static_cast<int64_t>(in->size()))
        return (*in)[i];
      bool copiesSym = llvm::any_of(llvm::enumerate(spec), [&](auto e) {
        return e.value() == 0 && e.index() < in->size() && (*in)[e.index()].sym;
      });
      if (i < static_cast<int64_t>(spec.size()) && spec[i] == -1 && inSyms.size() == 1 && !copiesSym &&
          inStatic == outStatic)
        return inSyms.front();
      return std::nullopt;
    });
  } else if (auto sl = dyn_cast<SliceOp>(op)) {
    FailureOr<Shape> in = shapeOf(sl.getInput());
    if (failed(in))
      return failure();
    r = fromType([&](int64_t i) -> std::optional<Dim> {
      // A dynamic dimension survives a slice only when taken whole.
      if (sl.getStarts()[i] == 0 && sl.getSteps()[i] == 1 &&
          sl.getEnds()[i] == std::numeric_limits<int64_t>::max())
        return (*in)[i];
      return std::nullopt;
    });
  } else if (op->getNumOperands() > 0) {
    // Elementwise, broadcasting, and ops whose result has their first
    // operand's shape (norms, rope, activations, casts, kv_append,
    // paged_attention): a dynamic dim comes from the operand aligned with it
    // that has it dynamic.
    SmallVector<Shape> ins;
    for (Value o : op->getOperands()) {
      FailureOr<Shape> s = same(o);
      if (failed(s))
        return failure();
      ins.push_back(*s);
    }
    r = fromType([&](int64_t i) -> std::optional<Dim> {
      for (const Shape &s : ins) {
        int64_t j = i - (rt.getRank() - static_cast<int64_t>(s.size()));
        if (j >= 0 && s[j].sym)
          return s[j];
      }
      return std::nullopt;
    });
  }
  if (failed(r)) {
    op->emitError("codegen (") << kernel_.getSymName()
                               << "): cannot bind the dynamic dimensions of " << v.getType();
    return failure();
  }
  shapes_[v] = *r;
  return r;
}

std::string Emitter::delinearise(const std::string &lin, const Shape &shape, const std::string &ix) {
  std::string s = "kiln::i64 " + ix + "[" + std::to_string(std::max<size_t>(1, shape.size())) +
                  "]; { kiln::i64 rem = " + lin + ";";
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    if (i == 0)
      s += " " + ix + "[0] = rem;";
    else
      s += llvm::formatv(" {0}[{1}] = rem % {2}; rem /= {2};", ix, i, shape[i].str()).str();
  }
  if (shape.empty())
    s += " " + ix + "[0] = 0;";
  return s + " }";
}

std::string Emitter::linearise(const std::string &ix, const Shape &shape) {
  if (shape.empty())
    return "0";
  std::string s = ix + "[0]";
  for (size_t i = 1; i < shape.size(); ++i)
    s = "(" + s + ") * " + shape[i].str() + " + " + ix + "[" + std::to_string(i) + "]";
  return s;
}

LogicalResult Emitter::broadcastIndex(Value operand, const Shape &result, std::string &code,
                                      const std::string &jx) {
  FailureOr<Shape> s = shapeOf(operand);
  if (failed(s))
    return failure();
  int64_t off = static_cast<int64_t>(result.size()) - static_cast<int64_t>(s->size());
  code += "kiln::i64 " + jx + "[" + std::to_string(std::max<size_t>(1, s->size())) + "];";
  if (s->empty())
    code += " " + jx + "[0] = 0;";
  for (int64_t i = 0; i < static_cast<int64_t>(s->size()); ++i) {
    bool one = !(*s)[i].sym && (*s)[i].value == 1 && !((!result[i + off].sym) && result[i + off].value == 1);
    code += llvm::formatv(" {0}[{1}] = {2};", jx, i, one ? "0" : "ix[" + std::to_string(i + off) + "]").str();
  }
  code += "\n";
  return success();
}

//===--- element functions ------------------------------------------------===//

FailureOr<std::string> Emitter::fn(Value v) {
  if (auto it = fns_.find(v); it != fns_.end())
    return it->second;
  FailureOr<Shape> shape = shapeOf(v);
  if (failed(shape))
    return failure();
  std::string body;
  if (failed(fnBody(v, *shape, body)))
    return failure();
  std::string name = "v" + std::to_string(counter_++);
  decls_ += llvm::formatv("  __device__ static __forceinline__ {0} {1}(const kiln::Args &a, const "
                          "kiln::i64 *ix, float mm0, float mm1) {{\n{2}  }\n",
                          valueType(v), name, body)
                .str();
  fns_[v] = name;
  return name;
}

FailureOr<std::string> Emitter::fnBody(Value v, const Shape &shape, std::string &b) {
  Type elem = elemOf(v);
  std::string rounded = isFloatValue(v) && !elem.isF32() && !elem.isF64()
                            ? "kiln::roundTo<" + cType(elem) + ">"
                            : "";
  auto ret = [&](const std::string &expr) {
    b += "    return " + (rounded.empty() ? expr : rounded + "(" + expr + ")") + ";\n";
  };
  if (auto it = mmSlot_.find(v); it != mmSlot_.end()) {
    if (it->second == 2)
      ret(llvm::formatv("(ix[{0}] % {1} < {2} ? mm0 : mm1)", shape.size() - 1, 2 * pairOffset_, pairOffset_)
              .str());
    else
      ret(it->second ? "mm1" : "mm0");
    return std::string();
  }
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    std::string load = isFloatValue(v) ? "kiln::ldf" : "kiln::ldi";
    b += "    return " + load + "(" + ptr(arg.getArgNumber(), elem, true) + ", " +
         linearise("ix", shape) + ");\n";
    return std::string();
  }
  Operation *op = v.getDefiningOp();
  auto operandFn = [&](Value o) { return fn(o); };
  auto fail = [&](const Twine &why) -> FailureOr<std::string> {
    if (failed(this->fail(op, why)))
      return failure();
    return failure();
  };

  if (auto c = dyn_cast<ConstantOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!dense)
      return fail("constant is not dense");
    if (dense.isSplat()) {
      if (isFloatValue(v))
        ret(fmtFloat(dense.getSplatValue<APFloat>().convertToDouble()));
      else
        ret(std::to_string(dense.getSplatValue<APInt>().getSExtValue()) + "LL");
      return std::string();
    }
    if (dense.getNumElements() > 4096)
      return fail("a constant of more than 4096 elements is inside a kernel");
    std::string table = "t" + std::to_string(counter_++), items;
    if (isFloatValue(v)) {
      for (APFloat f : dense.getValues<APFloat>())
        items += fmtFloat(f.convertToDouble()) + ",";
      globals_ += "__device__ const float kiln_" + table + "[] = {" + items + "};\n";
      decls_ += "  static __device__ __forceinline__ float " + table + "(kiln::i64 i) { return kiln_" + table +
                "[i]; }\n";
    } else {
      for (APInt i : dense.getValues<APInt>())
        items += std::to_string(i.getSExtValue()) + "LL,";
      globals_ += "__device__ const kiln::i64 kiln_" + table + "[] = {" + items + "};\n";
      decls_ += "  static __device__ __forceinline__ kiln::i64 " + table + "(kiln::i64 i) { return kiln_" + table +
                "[i]; }\n";
    }
    b += "    return " + table + "(" + linearise("ix", shape) + ");\n";
    return std::string();
  }

  // Unary elementwise.
  auto unary = [&](const std::string &f) -> FailureOr<std::string> {
    FailureOr<std::string> x = operandFn(op->getOperand(0));
    if (failed(x))
      return failure();
    std::string code;
    if (failed(broadcastIndex(op->getOperand(0), shape, code, "jx")))
      return failure();
    b += "    " + code;
    ret(llvm::formatv(f.c_str(), call(*x, "jx")).str());
    return std::string();
  };
  if (isa<NegOp>(op)) return unary("-({0})");
  if (isa<AbsOp>(op)) return isFloatValue(v) ? unary("fabsf({0})") : unary("llabs({0})");
  if (isa<ExpOp>(op)) return unary("expf({0})");
  if (isa<LogOp>(op)) return unary("logf({0})");
  if (isa<SqrtOp>(op)) return unary("sqrtf({0})");
  if (isa<RsqrtOp>(op)) return unary("rsqrtf({0})");
  if (isa<ReciprocalOp>(op)) return unary("(1.0f / ({0}))");
  if (isa<TanhOp>(op)) return unary("tanhf({0})");
  if (isa<SigmoidOp>(op)) return unary("kiln::sigmoid({0})");
  if (isa<SiluOp>(op)) return unary("kiln::silu({0})");
  if (isa<ErfOp>(op)) return unary("erff({0})");
  if (isa<SinOp>(op)) return unary("sinf({0})");
  if (isa<CosOp>(op)) return unary("cosf({0})");
  if (isa<ReluOp>(op)) return unary("fmaxf({0}, 0.0f)");
  if (isa<NotOp>(op)) return unary("(({0}) ? 0 : 1)");
  if (auto g = dyn_cast<GeluOp>(op))
    return unary(g.getTanhApproximation() ? "kiln::geluTanh({0})" : "kiln::gelu({0})");
  if (auto c = dyn_cast<CastOp>(op)) {
    bool from = isFloatValue(c.getInput()), to = isFloatValue(v);
    if (from && !to) {
      // Float to integer truncates toward zero, as the host does.
      return unary("static_cast<kiln::i64>({0})");
    }
    if (!from && to)
      return unary("static_cast<float>({0})");
    if (!to && elemOf(v).isInteger(1))
      return unary("(({0}) != 0)");
    return unary("{0}");
  }

  // Binary elementwise with broadcasting.
  auto binary = [&](const std::string &f) -> FailureOr<std::string> {
    FailureOr<std::string> x = operandFn(op->getOperand(0)), y = operandFn(op->getOperand(1));
    if (failed(x) || failed(y))
      return failure();
    std::string code;
    if (failed(broadcastIndex(op->getOperand(0), shape, code, "jx")) ||
        failed(broadcastIndex(op->getOperand(1), shape, code, "kx")))
      return failure();
    b += "    " + code;
    ret(llvm::formatv(f.c_str(), call(*x, "jx"), call(*y, "kx")).str());
    return std::string();
  };
  bool fl = op->getNumOperands() > 0 && isFloatValue(op->getOperand(0));
  if (isa<AddOp>(op)) return binary("({0} + {1})");
  if (isa<SubOp>(op)) return binary("({0} - {1})");
  if (isa<MulOp>(op)) return binary("({0} * {1})");
  if (isa<DivOp>(op)) return binary(fl ? "({0} / {1})" : "(({1}) != 0 ? ({0}) / ({1}) : 0)");
  if (isa<PowOp>(op)) return binary("powf({0}, {1})");
  if (isa<MaxOp>(op)) return binary(fl ? "fmaxf({0}, {1})" : "max({0}, {1})");
  if (isa<MinOp>(op)) return binary(fl ? "fminf({0}, {1})" : "min({0}, {1})");
  if (isa<AndOp>(op)) return binary("(({0}) && ({1}))");
  if (isa<OrOp>(op)) return binary("(({0}) || ({1}))");
  if (isa<SwigluOp>(op)) return binary("(kiln::silu({0}) * {1})");
  if (auto g = dyn_cast<GegluOp>(op))
    return binary(g.getTanhApproximation() ? "(kiln::geluTanh({0}) * {1})" : "(kiln::gelu({0}) * {1})");
  if (auto c = dyn_cast<CompareOp>(op)) {
    const char *sym = nullptr;
    switch (c.getPredicate()) {
    case ComparePredicate::eq: sym = "=="; break;
    case ComparePredicate::ne: sym = "!="; break;
    case ComparePredicate::lt: sym = "<"; break;
    case ComparePredicate::le: sym = "<="; break;
    case ComparePredicate::gt: sym = ">"; break;
    case ComparePredicate::ge: sym = ">="; break;
    }
    return binary(std::string("(({0}) ") + sym + " ({1}) ? 1 : 0)");
  }
  if (auto w = dyn_cast<WhereOp>(op)) {
    FailureOr<std::string> c = operandFn(w.getCondition()), t = operandFn(w.getOnTrue()),
                           f = operandFn(w.getOnFalse());
    if (failed(c) || failed(t) || failed(f))
      return failure();
    std::string code;
    if (failed(broadcastIndex(w.getCondition(), shape, code, "cx")) ||
        failed(broadcastIndex(w.getOnTrue(), shape, code, "jx")) ||
        failed(broadcastIndex(w.getOnFalse(), shape, code, "kx")))
      return failure();
    b += "    " + code;
    ret("(" + call(*c, "cx") + " ? " + call(*t, "jx") + " : " + call(*f, "kx") + ")");
    return std::string();
  }

  // Movement.
  if (auto sl = dyn_cast<SliceOp>(op)) {
    FailureOr<std::string> x = operandFn(sl.getInput());
    FailureOr<Shape> in = shapeOf(sl.getInput());
    if (failed(x) || failed(in))
      return failure();
    b += "    kiln::i64 jx[" + std::to_string(shape.size()) + "];";
    for (size_t i = 0; i < shape.size(); ++i) {
      int64_t start = sl.getStarts()[i], step = sl.getSteps()[i];
      if (start < 0 || step < 1)
        return fail("a slice with a negative start or step is not supported");
      b += llvm::formatv(" jx[{0}] = {1} + ix[{0}] * {2};", i, start, step).str();
    }
    b += "\n";
    ret(call(*x, "jx"));
    return std::string();
  }
  if (auto rs = dyn_cast<ReshapeOp>(op)) {
    FailureOr<std::string> x = operandFn(rs.getInput());
    FailureOr<Shape> in = shapeOf(rs.getInput());
    if (failed(x) || failed(in))
      return failure();
    b += "    " + delinearise(linearise("ix", shape), *in, "jx") + "\n";
    ret(call(*x, "jx"));
    return std::string();
  }
  if (auto c = dyn_cast<ConcatOp>(op)) {
    int64_t axis = c.getAxis(), at = 0;
    b += "    kiln::i64 jx[" + std::to_string(shape.size()) + "];";
    for (size_t i = 0; i < shape.size(); ++i)
      b += llvm::formatv(" jx[{0}] = ix[{0}];", i).str();
    b += "\n";
    for (Value in : c.getInputs()) {
      FailureOr<std::string> x = operandFn(in);
      FailureOr<Shape> s = shapeOf(in);
      if (failed(x) || failed(s) || (*s)[axis].sym)
        return fail("concat along a dynamic axis is not supported");
      int64_t len = (*s)[axis].value;
      b += llvm::formatv("    if (ix[{0}] < {1}) {{ jx[{0}] = ix[{0}] - {2}; return {3}; }\n", axis,
                         at + len, at, call(*x, "jx"))
               .str();
      at += len;
    }
    b += "    return 0;\n";
    return std::string();
  }
  if (auto g = dyn_cast<GatherOp>(op)) {
    FailureOr<std::string> d = operandFn(g.getData()), ixf = operandFn(g.getIndices());
    FailureOr<Shape> ds = shapeOf(g.getData()), is = shapeOf(g.getIndices());
    if (failed(d) || failed(ixf) || failed(ds) || failed(is))
      return failure();
    size_t ir = is->size();
    b += "    kiln::i64 kx[" + std::to_string(std::max<size_t>(1, ir)) + "];";
    for (size_t i = 0; i < ir; ++i)
      b += llvm::formatv(" kx[{0}] = ix[{0}];", i).str();
    b += "\n    kiln::i64 jx[" + std::to_string(ds->size()) + "];\n";
    b += "    jx[0] = " + call(*ixf, "kx") + "; if (jx[0] < 0) jx[0] += " + (*ds)[0].str() + ";\n";
    b += "    if (jx[0] < 0 || jx[0] >= " + (*ds)[0].str() + ") return 0;\n";
    for (size_t i = 1; i < ds->size(); ++i)
      b += llvm::formatv("    jx[{0}] = ix[{1}];\n", i, ir + i - 1).str();
    ret(call(*d, "jx"));
    return std::string();
  }
  if (auto g = dyn_cast<GatherNdOp>(op)) {
    FailureOr<std::string> d = operandFn(g.getData()), ixf = operandFn(g.getIndices());
    FailureOr<Shape> ds = shapeOf(g.getData()), is = shapeOf(g.getIndices());
    if (failed(d) || failed(ixf) || failed(ds) || failed(is))
      return failure();
    size_t ir = is->size(), k = static_cast<size_t>(is->back().value);
    b += "    kiln::i64 kx[" + std::to_string(ir) + "];";
    for (size_t i = 0; i + 1 < ir; ++i)
      b += llvm::formatv(" kx[{0}] = ix[{0}];", i).str();
    b += "\n    kiln::i64 jx[" + std::to_string(ds->size()) + "];\n";
    for (size_t j = 0; j < k; ++j)
      b += llvm::formatv("    kx[{0}] = {1}; jx[{1}] = {2}; if (jx[{1}] < 0) jx[{1}] += {3};\n", ir - 1, j,
                         call(*ixf, "kx"), (*ds)[j].str())
               .str();
    for (size_t i = k; i < ds->size(); ++i)
      b += llvm::formatv("    jx[{0}] = ix[{1}];\n", i, ir - 1 + i - k).str();
    ret(call(*d, "jx"));
    return std::string();
  }
  if (auto ar = dyn_cast<ArangeOp>(op)) {
    ret("(ix[0] + " + std::to_string(ar.getStart()) + "LL)");
    return std::string();
  }

  // Row ops over the last axis, recomputed per element (pointwise kernels
  // only hold small ones, such as Qwen3's per-head q/k norms).
  if (isa<RmsNormOp, LayerNormOp>(op)) {
    Value x = op->getOperand(0), w = op->getOperand(1);
    Value bias = isa<LayerNormOp>(op) ? cast<LayerNormOp>(op).getBias() : Value();
    FailureOr<std::string> xf = operandFn(x), wf = operandFn(w);
    if (failed(xf) || failed(wf))
      return failure();
    std::string bf;
    if (bias) {
      FailureOr<std::string> f = operandFn(bias);
      if (failed(f))
        return failure();
      bf = *f;
    }
    size_t r = shape.size();
    if (shape.back().sym)
      return fail("a norm over a dynamic axis is not supported");
    int64_t d = shape.back().value;
    float eps = isa<RmsNormOp>(op) ? cast<RmsNormOp>(op).getEpsilon().convertToFloat()
                                   : cast<LayerNormOp>(op).getEpsilon().convertToFloat();
    float offset = isa<RmsNormOp>(op) ? cast<RmsNormOp>(op).getWeightOffset().convertToFloat() : 0.0f;
    b += "    kiln::i64 jx[" + std::to_string(r) + "];";
    for (size_t i = 0; i < r; ++i)
      b += llvm::formatv(" jx[{0}] = ix[{0}];", i).str();
    b += "\n    float mean = 0.0f, ss = 0.0f;\n";
    if (isa<LayerNormOp>(op))
      b += llvm::formatv("    for (kiln::i64 k = 0; k < {0}; ++k) {{ jx[{1}] = k; mean += {2}; }\n    "
                         "mean /= {0}.0f;\n",
                         d, r - 1, call(*xf, "jx"))
               .str();
    b += llvm::formatv("    for (kiln::i64 k = 0; k < {0}; ++k) {{ jx[{1}] = k; float t = {2} - mean; ss "
                       "+= t * t; }\n",
                       d, r - 1, call(*xf, "jx"))
             .str();
    b += llvm::formatv("    float inv = 1.0f / sqrtf(ss / {0}.0f + {1});\n    kiln::i64 wx[1] = {{ix[{2}]};\n",
                       d, fmtFloat(eps), r - 1)
             .str();
    std::string expr = "(" + call(*xf, "ix") + " - mean) * inv * (" + call(*wf, "wx") + " + " +
                       fmtFloat(offset) + ")";
    if (bias)
      expr += " + " + call(bf, "wx");
    ret(expr);
    return std::string();
  }
  if (auto r = dyn_cast<RopeOp>(op)) {
    FailureOr<std::string> xf = operandFn(r.getInput()), pf = operandFn(r.getPositions());
    FailureOr<Shape> ps = shapeOf(r.getPositions());
    if (failed(xf) || failed(pf) || failed(ps) || shape.size() != 4 || shape[3].sym)
      return fail("rope needs [batch, tokens, heads, static head_dim]");
    FailureOr<RopeTable> rt = ropeTable(r, shape[3].value);
    if (failed(rt))
      return failure();
    std::string table = rt->fn;
    double mag = rt->magnitude;
    int64_t rd = rt->rotaryDim;
    bool shared = !(*ps)[0].sym && (*ps)[0].value == 1 && !(shape[0].sym == std::nullopt && shape[0].value == 1);
    int64_t half = rd / 2;
    bool neox = rt->neox;
    b += llvm::formatv("    kiln::i64 d = ix[3];\n"
                       "    if (d >= {0}) return {1};\n"
                       "    kiln::i64 px[2] = {{{2}, ix[1]};\n"
                       "    double pos = static_cast<double>({3});\n",
                       rd, call(*xf, "ix"), shared ? "0" : "ix[0]", call(*pf, "px"))
             .str();
    if (neox)
      b += llvm::formatv("    kiln::i64 i = d < {0} ? d : d - {0}, partner = d < {0} ? d + {0} : d - {0};\n"
                         "    float sign = d < {0} ? -1.0f : 1.0f;\n",
                         half)
               .str();
    else
      b += "    kiln::i64 i = d / 2, partner = d ^ 1;\n    float sign = (d & 1) ? 1.0f : -1.0f;\n";
    b += llvm::formatv("    double ang = pos * {0}(i);\n"
                       "    float c = static_cast<float>(cos(ang) * {1}), s = static_cast<float>(sin(ang) * {1});\n"
                       "    kiln::i64 jx[4] = {{ix[0], ix[1], ix[2], partner};\n",
                       table, fmtDouble(mag))
             .str();
    ret(call(*xf, "ix") + " * c + sign * " + call(*xf, "jx") + " * s");
    return std::string();
  }
  return fail("op '" + op->getName().getStringRef() + "' cannot be evaluated per element");
}

FailureOr<Emitter::RopeTable> Emitter::ropeTable(RopeOp r, int64_t D) {
  if (auto it = ropeTables_.find(r); it != ropeTables_.end())
    return it->second;
  // The parameters as the host kernels read them (one conversion from the IR).
  host::HostOp h;
  host::RopeParams p;
  if (Status s = interp::toHostOp(r, h); !s)
    return fail(r, s.message());
  if (Status s = host::ropeParams(h, p); !s)
    return fail(r, s.message());
  RopeTable t;
  t.rotaryDim = p.rotaryDim ? p.rotaryDim : D;
  t.magnitude = host::ropeMagnitude(p);
  t.neox = p.style == host::RopeStyle::Neox;
  std::string items;
  for (double f : host::ropeInvFreq(p, t.rotaryDim))
    items += fmtDouble(f) + ",";
  t.fn = "t" + std::to_string(counter_++);
  globals_ += "__device__ const double kiln_" + t.fn + "[] = {" + items + "};\n";
  decls_ += "  static __device__ __forceinline__ double " + t.fn + "(kiln::i64 i) { return kiln_" + t.fn +
            "[i]; }\n";
  ropeTables_[r] = t;
  return t;
}

std::string Emitter::kvStore(KvAppendOp kv, unsigned slot, ArrayRef<std::pair<std::string, std::string>> stores) {
  auto ct = cast<RankedTensorType>(kv.getCache().getType());
  std::string s =
      llvm::formatv("    kiln::i64 at = kiln::cacheIndex<{0}, {1}, {2}>(a, static_cast<const int *>(a.p[{3}]), "
                    "ix[0], pos, 0, ix[2], ix[3]);\n"
                    "    if (at < 0) return;\n"
                    "    {4} *cache = static_cast<{4} *>(a.p[{5}]);\n",
                    ct.getDimSize(3), ct.getDimSize(4), ct.getDimSize(5),
                    cast<BlockArgument>(kv.getBlockTables()).getArgNumber(), cType(ct.getElementType()), slot)
          .str();
  for (const auto &[offset, value] : stores)
    s += "    kiln::stv(cache, at" + (offset == "0" ? "" : " + " + offset) + ", " + value + ");\n";
  return s;
}

std::string Emitter::kvValue(KvAppendOp kv) {
  auto ct = cast<RankedTensorType>(kv.getCache().getType());
  return llvm::formatv("{0}LL * {1} * {2}", ct.getDimSize(3), ct.getDimSize(4), ct.getDimSize(5)).str();
}

//===--- families --------------------------------------------------------===//

LogicalResult Emitter::vectorLoad(llvm::raw_ostream &os, Value v, const std::string &name, float add) {
  std::string plus = add != 0.0f ? " + " + fmtFloat(add) : "";
  if (!v) {
    os << "  __device__ static __forceinline__ float " << name << "(const kiln::Args &, kiln::i64) { return 0.0f; }\n";
    return success();
  }
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    os << "  __device__ static __forceinline__ float " << name << "(const kiln::Args &a, kiln::i64 k) { return kiln::ldf("
       << ptr(arg.getArgNumber(), elemOf(v), true) << ", k)" << plus << "; }\n";
    return success();
  }
  FailureOr<std::string> f = fn(v);
  if (failed(f))
    return failure();
  os << "  __device__ static __forceinline__ float " << name
     << "(const kiln::Args &a, kiln::i64 k) { kiln::i64 ix[1] = {k}; float mm0 = 0.0f, mm1 = 0.0f; return "
     << call(*f, "ix") << plus << "; }\n";
  return success();
}

/// Threads, rows-per-block and such from the tile, with a default.
int64_t tileInt(ex::KernelOp k, StringRef key, int64_t otherwise) {
  auto a = k.getTile().getAs<IntegerAttr>(key);
  return a ? a.getInt() : otherwise;
}

int64_t pow2Floor(int64_t v) {
  int64_t p = 1;
  while (p * 2 <= v)
    p *= 2;
  return p;
}

LogicalResult Emitter::emitMatmul(MatmulOp mm, EmittedKernel &out) {
  matmul_ = mm;
  if (!mm.getTransposeB())
    return fail(mm, "matmul kernels take the weight as [N, K] (transpose_b)");
  // A widening cast of an operand (f32 compute over bf16 weights) is the
  // load itself: every element is read as float.
  auto narrow = [&](Value v) -> Value {
    auto c = v ? v.getDefiningOp<CastOp>() : CastOp();
    auto arg = c ? dyn_cast<BlockArgument>(c.getInput()) : BlockArgument();
    if (!arg || arg.getOwner() != body_)
      return v;
    auto from = dyn_cast<FloatType>(elemOf(arg)), to = dyn_cast<FloatType>(elemOf(v));
    return from && to && from.getWidth() <= to.getWidth() ? Value(arg) : v;
  };
  auto wArg = dyn_cast<BlockArgument>(narrow(mm.getRhs()));
  if (!wArg || wArg.getOwner() != body_)
    return fail(mm, "the matmul's weight must be a kernel operand");
  auto wType = cast<RankedTensorType>(wArg.getType());
  if (!wType.hasStaticShape() || wType.getRank() != 2)
    return fail(mm, "the matmul's weight must be a static [N, K] matrix");
  int64_t nmm = wType.getDimSize(0), K = wType.getDimSize(1);

  // Prologue: A is an operand or a norm of one.
  Value a = mm.getLhs();
  Operation *norm = a.getDefiningOp();
  int normKind = 0;
  Value x = a, gamma, beta;
  float eps = 0.0f, offset = 0.0f;
  if (auto r = dyn_cast_or_null<RmsNormOp>(norm)) {
    normKind = 1, x = r.getInput(), gamma = narrow(r.getWeight()), eps = r.getEpsilon().convertToFloat();
    offset = r.getWeightOffset().convertToFloat();
  } else if (auto l = dyn_cast_or_null<LayerNormOp>(norm)) {
    normKind = 2, x = l.getInput(), gamma = narrow(l.getWeight()), beta = narrow(l.getBias()),
    eps = l.getEpsilon().convertToFloat();
  }
  auto isArg = [&](Value v) {
    auto arg = dyn_cast_or_null<BlockArgument>(v);
    return arg && arg.getOwner() == body_;
  };
  // A norm's weight and bias: kernel operands, or constants (an ONNX
  // export's small initializers).
  auto isArgOrConst = [&](Value v) { return isArg(v) || v.getDefiningOp<ConstantOp>(); };
  if (!isArg(x) || (gamma && !isArgOrConst(gamma)) || (beta && !isArgOrConst(beta)))
    return fail(mm, "the matmul's input must be a kernel operand or a norm of one");

  // Epilogue: RoPE pairs (decode's QKV projection with its RoPE and KV
  // append), or the yielded value that is the matmul's result through
  // elementwise ops (or gated halves), and an optional argmax of it.
  bool ropePairs = llvm::any_of(body_->without_terminator(),
                                [](Operation &op) { return isa<RopeOp, KvAppendOp>(op); });
  int gate = 0;
  int64_t N = nmm;
  Shape lead;
  std::string row = "n", epi;
  ArgmaxOp argmax;
  Type ty;
  if (ropePairs) {
    if (failed(pairedEpilogue(mm, nmm, lead, row, epi)))
      return failure();
    gate = 1, N = nmm / 2;
  } else {
    SmallVector<SliceOp> slices;
    for (Operation *u : mm->getUsers())
      if (auto s = dyn_cast<SliceOp>(u))
        slices.push_back(s);
    if (!slices.empty()) {
      if (slices.size() != 2 || !llvm::all_of(mm->getUsers(), [](Operation *u) { return isa<SliceOp>(u); }))
        return fail(mm, "a matmul read through slices must split into exactly two halves");
      int64_t r = cast<RankedTensorType>(mm.getType()).getRank();
      for (SliceOp s : slices) {
        int64_t start = s.getStarts()[r - 1], end = s.getEnds()[r - 1];
        end = std::min(end, nmm);
        if (s.getSteps()[r - 1] != 1 || end - start != nmm / 2 || (start != 0 && start != nmm / 2))
          return fail(s, "a gated matmul's slices must be its two halves");
        for (int64_t i = 0; i + 1 < r; ++i)
          if (s.getStarts()[i] != 0 || s.getSteps()[i] != 1 ||
              s.getEnds()[i] != std::numeric_limits<int64_t>::max())
            return fail(s, "a gated matmul's slices may cut only the last axis");
        mmSlot_[s] = start == 0 ? 0 : 1;
      }
      gate = 1, N = nmm / 2, row = "n + j * N";
    } else {
      mmSlot_[mm] = 0;
    }
    if (!mmSlot_.count(mm))
      mmSlot_[mm] = 0; // the matmul itself is yielded alongside its halves: not supported below

    Value y;
    for (Value v : yield_->getOperands()) {
      if (auto am = v.getDefiningOp<ArgmaxOp>()) {
        argmax = am;
        continue;
      }
      if (y)
        return fail(mm, "a matmul kernel yields one tensor (and optionally its argmax)");
      y = v;
    }
    if (!y)
      return fail(mm, "a matmul kernel must yield the product");
    if (argmax) {
      int64_t r = cast<RankedTensorType>(argmax.getInput().getType()).getRank();
      if (argmax.getInput() != y || static_cast<int64_t>(argmax.getAxis()) != r - 1)
        return fail(argmax, "the argmax must be over the last axis of the yielded product");
    }
    FailureOr<Shape> ys = shapeOf(y);
    if (failed(ys))
      return failure();
    if (ys->back().sym || ys->back().value != N)
      return fail(mm, "the epilogue must keep the product's columns");
    // Every op between the matmul and y must be elementwise of y's shape (or
    // a broadcast operand of it); fn() rejects anything else.
    lead.assign(ys->begin(), ys->end() - 1);
    FailureOr<std::string> yf = fn(y);
    if (failed(yf))
      return failure();
    ty = elemOf(y);
    llvm::raw_string_ostream es(epi);
    es << "  __device__ static __forceinline__ float epi(const kiln::Args &a, kiln::i64 m, kiln::i64 n, "
          "float mm0, float mm1) {\n";
    es << "    " << delinearise("m", lead, "ix0") << "\n    kiln::i64 ix[" << ys->size() << "];";
    for (size_t i = 0; i + 1 < ys->size(); ++i)
      es << " ix[" << i << "] = ix0[" << i << "];";
    es << " ix[" << ys->size() - 1 << "] = n;\n";
    es << "    float y = " << call(*yf, "ix") << ";\n";
    es << "    kiln::stv(" << ptr(outputSlot(yieldIndex(y)), ty, false) << ", m * N + n, y);\n";
    es << "    return kiln::roundTo<" << cType(ty) << ">(y);\n  }\n";
  }
  FailureOr<Shape> xs = shapeOf(x);
  if (failed(xs))
    return failure();

  Type ta = elemOf(x), tw = wType.getElementType();
  bool tensorCores = kernel_.getFamily() == "gemm" && (ta.isBF16() || ta.isF16()) && ta == tw;

  // Rows staged per pass in the GEMV: as many as fit 48 KB of A.
  int64_t maxRows = maxProduct(lead, options_);
  int64_t aBytes = std::max<int64_t>(1, ta.getIntOrFloatBitWidth() / 8);
  bool stage = K * aBytes <= 40 * 1024;
  int64_t mc = std::max<int64_t>(1, std::min<int64_t>({maxRows, 8, stage ? (40 * 1024) / (K * aBytes) : 8}));

  std::string s;
  llvm::raw_string_ostream os(s);
  os << "struct S {\n";
  os << "  typedef " << cType(ta) << " TA;\n  typedef " << cType(tw) << " TW;\n";
  os << "  static constexpr kiln::i64 K = " << K << ", N = " << N << ";\n";
  os << "  static constexpr int GATE = " << gate << ", NORM = " << normKind
     << ", ARGMAX = " << (argmax ? 1 : 0) << ", MC = " << mc << ", STAGE = " << (stage ? 1 : 0) << ";\n";
  os << "  static constexpr float EPS = " << fmtFloat(eps) << ";\n";
  os << "  __device__ static __forceinline__ kiln::i64 rows(const kiln::Args &a) { return "
     << product(lead) << "; }\n";
  os << "  /// The weight row of output item n (j: its gated or paired second row).\n";
  os << "  __device__ static __forceinline__ kiln::i64 row(kiln::i64 n, int j) { return " << row
     << (gate ? "" : " + 0 * j") << "; }\n";
  unsigned xSlot = cast<BlockArgument>(x).getArgNumber();
  os << "  __device__ static __forceinline__ const TA *A(const kiln::Args &a) { return "
     << ptr(xSlot, ta, true) << "; }\n";
  os << "  __device__ static __forceinline__ const TW *W(const kiln::Args &a) { return "
     << ptr(wArg.getArgNumber(), tw, true) << "; }\n";
  os << "  __device__ static __forceinline__ float x(const kiln::Args &a, kiln::i64 m, kiln::i64 k) { "
        "return kiln::ldf(A(a), m * K + k); }\n";
  if (failed(vectorLoad(os, gamma, "gamma", offset)) || failed(vectorLoad(os, beta, "beta", 0.0f)))
    return failure();
  os << decls_ << epi;
  if (argmax) {
    int amOut = yieldIndex(argmax);
    os << "  __device__ static __forceinline__ kiln::i64 *argmaxOut(const kiln::Args &a) { return "
       << ptr(outputSlot(amOut), elemOf(argmax), false) << "; }\n";
    os << "  __device__ static __forceinline__ kiln::u64 *argmaxBest(const kiln::Args &a) { return "
          "static_cast<kiln::u64 *>(a.ws); }\n";
    os << "  __device__ static __forceinline__ unsigned *argmaxCounter(const kiln::Args &a) { return "
          "reinterpret_cast<unsigned *>(static_cast<kiln::u64 *>(a.ws) + "
       << maxRows << "); }\n";
    if (!elemOf(argmax).isInteger(64))
      return fail(argmax, "argmax results must be i64");
  } else {
    os << "  __device__ static __forceinline__ kiln::i64 *argmaxOut(const kiln::Args &) { return nullptr; }\n"
          "  __device__ static __forceinline__ kiln::u64 *argmaxBest(const kiln::Args &) { return nullptr; }\n"
          "  __device__ static __forceinline__ unsigned *argmaxCounter(const kiln::Args &) { return nullptr; }\n";
  }
  os << "};\n";
  out.workspace = SizeRule{argmax ? maxRows * 8 + 8 : 0, {}, 1, 0};
  if (tensorCores) {
    int64_t bm = tileInt(kernel_, "block_m", 64) >= 128 ? 128 : 64, bn = 64;
    int64_t wm = bm / 32, wn = 2;
    out.family = "gemm";
    out.threads = wm * wn * 32;
    out.smem = std::max<int64_t>((bm + bn) * (32 + 8) * 2, bm * (bn + 4) * 4);
    int64_t nout = gate ? bn / 2 : bn;
    SizeRule g = ruleOf(lead);
    g.factor *= (N + nout - 1) / nout;
    g.divisor = bm; // approximately ceil(rows / BM) * tilesN; the kernel strides
    out.grid = g;
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                        "kiln::gemm<S, {2}, {3}, {4}, {5}>(a); }\n",
                        out.threads, kernel_.getSymName(), bm, bn, wm, wn);
  } else {
    int64_t threads = pow2Floor(std::clamp<int64_t>(tileInt(kernel_, "threads", 256), 64, 512));
    int64_t vecBytes = 16, ebytes = std::max<int64_t>(1, tw.getIntOrFloatBitWidth() / 8);
    int64_t vec = vecBytes / ebytes;
    while (vec > 1 && K % vec)
      vec /= 2;
    // Weights in 16-byte loads; the activation's VEC elements follow in as
    // many 16-byte loads as they take (two of f32 beside bf16 weights).
    auto vectorisable = [](Type t) { return t.isBF16() || t.isF16() || t.isF32(); };
    if (!vectorisable(ta) || !vectorisable(tw))
      vec = 1;
    int64_t warps = threads / 32;
    int64_t splitK = std::min<int64_t>(warps, pow2Floor(std::max<int64_t>(1, tileInt(kernel_, "split_k", 1))));
    int64_t chunk = 32 * vec, iters = ((K + splitK - 1) / splitK + chunk - 1) / chunk;
    int64_t unroll = 1;
    while (unroll < std::min<int64_t>(8, iters))
      unroll *= 2;
    unroll = std::min<int64_t>(unroll, pow2Floor(std::max<int64_t>(1, tileInt(kernel_, "unroll", unroll))));
    // Fewer loads in flight per lane when several rows or the gate's second
    // half multiply the accumulators and the registers holding them.
    if (mc * (gate ? 2 : 1) > 4)
      unroll = std::min<int64_t>(unroll, 4);
    int64_t cols = warps / splitK;
    out.family = "gemv";
    out.threads = threads;
    out.smem = 0;
    out.grid = SizeRule{(N + cols - 1) / cols, {}, 1, 0};
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                        "kiln::gemv<S, {0}, {2}, {3}, {4}>(a); }\n",
                        threads, kernel_.getSymName(), splitK, vec, unroll);
  }
  out.specialisation = globals_ + s;
  return success();
}

LogicalResult Emitter::pairedEpilogue(MatmulOp mm, int64_t nmm, Shape &lead, std::string &row,
                                      std::string &epi) {
  // The slices all cut one value P: the product through elementwise ops
  // (a bias) with the product's shape.
  Value p;
  for (Operation &op : body_->without_terminator())
    if (auto sl = dyn_cast<SliceOp>(op)) {
      if (p && sl.getInput() != p)
        return fail(sl, "RoPE pairs: every slice must cut the same product");
      p = sl.getInput();
    }
  FailureOr<Shape> ps = p ? shapeOf(p) : FailureOr<Shape>(failure());
  if (failed(ps) || ps->size() != 3 || ps->back().sym || ps->back().value != nmm)
    return fail(mm, "RoPE pairs: the product must be [batch, tokens, columns], cut by slices");
  lead.assign(ps->begin(), ps->end() - 1);

  // Each stored tensor: [batch, tokens, heads, D], a reshaped slice of P of
  // whole heads, rotated or not.
  struct Segment {
    int64_t start = 0, heads = 0;
    RopeOp rope;
    Value stored;      // the tensor whose elements are stored
    KvAppendOp kv;     // or the append it is the key or value of
    bool key = false;
    int yield = -1;    // the kernel result
  };
  SmallVector<Segment> segs;
  int64_t D = 0;
  auto trace = [&](Value v, Segment &seg) -> LogicalResult {
    seg.stored = v;
    seg.rope = v.getDefiningOp<RopeOp>();
    Value t = seg.rope ? seg.rope.getInput() : v;
    auto rs = t.getDefiningOp<ReshapeOp>();
    auto sl = rs ? rs.getInput().getDefiningOp<SliceOp>() : SliceOp();
    auto rt = cast<RankedTensorType>(v.getType());
    if (!sl || rt.getRank() != 4 || rt.isDynamicDim(2) || rt.isDynamicDim(3))
      return fail(v.getDefiningOp(), "RoPE pairs: expected [batch, tokens, heads, D] reshaped from a slice");
    int64_t d = rt.getDimSize(3), last = 2;
    int64_t start = sl.getStarts()[last], end = std::min(sl.getEnds()[last], nmm);
    for (int64_t i = 0; i < last; ++i)
      if (sl.getStarts()[i] != 0 || sl.getSteps()[i] != 1 || sl.getEnds()[i] != std::numeric_limits<int64_t>::max())
        return fail(sl, "RoPE pairs: slices may cut only the columns");
    if (D && d != D)
      return fail(sl, "RoPE pairs: every head must have the same size");
    D = d;
    if (sl.getSteps()[last] != 1 || start % D || end - start != rt.getDimSize(2) * D)
      return fail(sl, "RoPE pairs: a slice must be whole heads");
    seg.start = start, seg.heads = rt.getDimSize(2);
    return success();
  };
  for (auto [i, y] : llvm::enumerate(yield_->getOperands())) {
    if (auto kv = y.getDefiningOp<KvAppendOp>()) {
      if (!isa<BlockArgument>(kv.getCache()) || !isa<BlockArgument>(kv.getBlockTables()))
        return fail(kv, "the cache and block tables must be kernel operands");
      Segment k, v;
      k.kv = v.kv = kv, k.key = true, k.yield = v.yield = static_cast<int>(i);
      if (failed(trace(kv.getKey(), k)) || failed(trace(kv.getValue(), v)))
        return failure();
      segs.push_back(k), segs.push_back(v);
      continue;
    }
    Segment q;
    q.yield = static_cast<int>(i);
    if (failed(trace(y, q)))
      return failure();
    segs.push_back(q);
  }
  // One pairing for all: RoPE's (neox: d, d + D/2; gptj: 2i, 2i + 1), over
  // every dimension of the head.
  std::optional<bool> neox;
  for (Segment &seg : segs) {
    if (!seg.rope)
      continue;
    FailureOr<RopeTable> rt = ropeTable(seg.rope, D);
    if (failed(rt))
      return failure();
    if (rt->rotaryDim != D || (neox && *neox != rt->neox))
      return fail(seg.rope, "RoPE pairs: every rotation must turn whole heads in one style");
    neox = rt->neox;
  }
  if (!neox)
    return fail(mm, "RoPE pairs: no rotation to pair columns for");
  llvm::sort(segs, [](const Segment &a, const Segment &b) { return a.start < b.start; });
  for (size_t i = 1; i < segs.size(); ++i)
    if (segs[i].start < segs[i - 1].start + segs[i - 1].heads * D)
      return fail(mm, "RoPE pairs: two stored tensors read the same columns");
  int64_t po = *neox ? D / 2 : 1;
  pairOffset_ = po, mmSlot_[mm] = 2;
  row = llvm::formatv("(n / {0}) * {1} + n % {0} + j * {0}", po, 2 * po).str();

  // One function per segment stores the pair (d, d + po) of head h.
  llvm::raw_string_ostream es(epi);
  for (auto [si, seg] : llvm::enumerate(segs)) {
    std::string name = "pair" + std::to_string(si);
    std::string body;
    // The pair's two values, y0 and y1.
    if (seg.rope) {
      FailureOr<RopeTable> rt = ropeTable(seg.rope, D);
      FailureOr<std::string> in = fn(seg.rope.getInput()), pos = fn(seg.rope.getPositions());
      FailureOr<Shape> pshape = shapeOf(seg.rope.getPositions());
      if (failed(rt) || failed(in) || failed(pos) || failed(pshape))
        return failure();
      bool shared = !(*pshape)[0].sym && (*pshape)[0].value == 1;
      Type et = elemOf(seg.rope);
      std::string round = et.isF32() ? "" : "kiln::roundTo<" + cType(et) + ">";
      body += llvm::formatv("    kiln::i64 px[2] = {{{0}, t};\n"
                            "    double ang = static_cast<double>({1}) * {2}({3});\n"
                            "    double sn, cs;\n    sincos(ang, &sn, &cs);\n"
                            "    float c = static_cast<float>(cs * {4}), s = static_cast<float>(sn * {4});\n"
                            "    float x0 = {5}, x1 = {6};\n"
                            "    float y0 = {7}(x0 * c - x1 * s), y1 = {7}(x1 * c + x0 * s);\n",
                            shared ? "0" : "b", call(*pos, "px"), rt->fn, *neox ? "d" : "d / 2",
                            fmtDouble(rt->magnitude), call(*in, "ix"), call(*in, "jx"), round)
                  .str();
    } else {
      FailureOr<std::string> f = fn(seg.stored);
      if (failed(f))
        return failure();
      body += "    float y0 = " + call(*f, "ix") + ", y1 = " + call(*f, "jx") + ";\n";
    }
    // Where they go.
    if (seg.kv) {
      FailureOr<std::string> pos = fn(seg.kv.getPositions());
      FailureOr<Shape> pshape = shapeOf(seg.kv.getPositions());
      if (failed(pos) || failed(pshape))
        return failure();
      bool shared = !(*pshape)[0].sym && (*pshape)[0].value == 1;
      // d + po is po elements past d in the same head's row of the page.
      std::string off0 = seg.key ? "0" : kvValue(seg.kv), off1 = std::to_string(po);
      if (!seg.key)
        off1 = off0 + " + " + off1;
      body += llvm::formatv("    kiln::i64 qx[2] = {{{0}, t};\n    kiln::i64 pos = {1};\n    if (pos < 0) return;\n",
                            shared ? "0" : "b", call(*pos, "qx"))
                  .str();
      body += kvStore(seg.kv, outputSlot(seg.yield), {{off0, "y0"}, {off1, "y1"}});
    } else {
      FailureOr<Shape> ys = shapeOf(seg.stored);
      if (failed(ys))
        return failure();
      std::string out = ptr(outputSlot(seg.yield), elemOf(seg.stored), false);
      body += "    kiln::stv(" + out + ", " + linearise("ix", *ys) + ", y0);\n";
      body += "    kiln::stv(" + out + ", " + linearise("jx", *ys) + ", y1);\n";
    }
    es << llvm::formatv("  __device__ static __forceinline__ void {0}(const kiln::Args &a, kiln::i64 b, kiln::i64 t, "
                         "kiln::i64 h, kiln::i64 d, float mm0, float mm1) {{\n"
                         "    kiln::i64 ix[4] = {{b, t, h, d}, jx[4] = {{b, t, h, d + {1}};\n{2}  }\n",
                         name, po, body)
               .str();
  }
  es << "  __device__ static __forceinline__ float epi(const kiln::Args &a, kiln::i64 m, kiln::i64 n, "
        "float mm0, float mm1) {\n";
  es << "    " << delinearise("m", lead, "ix0") << "\n    kiln::i64 c = row(n, 0);\n";
  for (auto [si, seg] : llvm::enumerate(segs))
    es << llvm::formatv("    if (c >= {0} && c < {1}) {{ pair{2}(a, ix0[0], ix0[1], (c - {0}) / {3}, (c - {0}) % {3}, "
                        "mm0, mm1); return 0.0f; }\n",
                        seg.start, seg.start + seg.heads * D, si, D)
              .str();
  es << "    return 0.0f;\n  }\n";
  return success();
}

LogicalResult Emitter::emitAttention(PagedAttentionOp pa, EmittedKernel &out) {
  // In decode the layer's append may precede the attention in the kernel.
  auto kv = pa.getCache().getDefiningOp<KvAppendOp>();
  int yOut = yieldIndex(pa), yCache = kv ? yieldIndex(kv.getResult()) : -1;
  if (yOut < 0 || yield_->getNumOperands() != (kv ? 2u : 1u) || (kv && yCache < 0))
    return fail(pa, "an attention kernel yields the attention result (and the cache it appends to) alone");
  auto cacheArg = dyn_cast<BlockArgument>(kv ? kv.getCache() : pa.getCache());
  auto btArg = dyn_cast<BlockArgument>(pa.getBlockTables());
  auto lenArg = dyn_cast<BlockArgument>(pa.getContextLens());
  auto posArg = dyn_cast<BlockArgument>(pa.getPositions());
  if (!cacheArg || !btArg || !lenArg || !posArg)
    return fail(pa, "the cache, block tables, context lengths and positions must be kernel operands");
  auto ct = cast<RankedTensorType>(pa.getCache().getType());
  auto qt = cast<RankedTensorType>(pa.getQuery().getType());
  int64_t page = ct.getDimSize(3), hkv = ct.getDimSize(4), D = ct.getDimSize(5), H = qt.getDimSize(2);
  FailureOr<Shape> ps = shapeOf(pa.getPositions());
  FailureOr<Shape> qs = shapeOf(pa.getQuery());
  if (failed(ps) || failed(qs))
    return failure();
  bool sharedPos = !(*ps)[0].sym && (*ps)[0].value == 1;
  double scale = pa.getScale() ? pa.getScale()->convertToDouble() : 1.0 / std::sqrt(static_cast<double>(D));
  int64_t maxRows = maxProduct(ArrayRef<Dim>(*qs).take_front(2), options_);
  bool decode = kernel_.getFamily() == "paged_attention";
  int64_t splits = decode ? std::max<int64_t>(1, tileInt(kernel_, "splits", 1)) : 1;
  if (kv && (!decode || (*qs)[1].sym || (*qs)[1].value != 1 || kv.getPositions() != pa.getPositions() ||
             !isa<BlockArgument>(kv.getBlockTables())))
    return fail(pa, "appends in its own kernel only in decode (one token per sequence, the attention's "
                    "positions, block tables a kernel operand)");
  // RoPE from a per-row table when queries and keys are rotated alike at the
  // attention's positions; otherwise per element (S::q, S::key).
  auto qRope = pa.getQuery().getDefiningOp<RopeOp>();
  auto kRope = kv ? kv.getKey().getDefiningOp<RopeOp>() : RopeOp();
  bool tableRope = qRope && kRope && qRope.getPositions() == pa.getPositions() &&
                   kRope.getPositions() == pa.getPositions() &&
                   qRope->getAttrDictionary() == kRope->getAttrDictionary();
  // Element accessors (b, t, h, d): the queries, the append's keys and
  // values, the rotation's inputs (fn() adds to decls_, so before the
  // struct is written).
  std::string more = std::string("  static constexpr bool APPEND = ") + (kv ? "true" : "false") + ";\n";
  auto element = [&](StringRef name, Value v) -> LogicalResult {
    FailureOr<std::string> f = fn(v);
    if (failed(f))
      return failure();
    more += ("  __device__ static __forceinline__ float " + name +
             "(const kiln::Args &a, kiln::i64 b, kiln::i64 t, kiln::i64 h, kiln::i64 d) { kiln::i64 ix[4] = {b, "
             "t, h, d}; float mm0 = 0.0f, mm1 = 0.0f; return " +
             call(*f, "ix") + "; }\n")
                .str();
    return success();
  };
  if (failed(element("q", pa.getQuery())))
    return failure();
  if (kv) {
    if (failed(element("key", kv.getKey())) || failed(element("value", kv.getValue())))
      return failure();
    more += "  __device__ static __forceinline__ void storeKV(const kiln::Args &a, kiln::i64 b, kiln::i64 t, "
            "kiln::i64 h, kiln::i64 d, float k, float v) {\n    kiln::i64 ix[4] = {b, t, h, d};\n"
            "    kiln::i64 pos = position(a, b, t);\n    if (pos < 0) return;\n" +
            kvStore(kv, outputSlot(yCache), {{"0", "k"}, {kvValue(kv), "v"}}) + "  }\n";
  }
  if (tableRope) {
    FailureOr<RopeTable> rt = ropeTable(qRope, D);
    if (failed(rt) || failed(element("qIn", qRope.getInput())) || (kv && failed(element("kIn", kRope.getInput()))))
      return failure();
    more += llvm::formatv("  static constexpr int ROPE = {0}, ROT = {1};\n"
                          "  static constexpr double ROPE_MAG = {2};\n"
                          "  __device__ static __forceinline__ double invFreq(int i) {{ return {3}(i); }\n"
                          "  __device__ static __forceinline__ float roundQ(float x) {{ return {4}; }\n",
                          rt->neox ? 1 : 2, rt->rotaryDim, fmtDouble(rt->magnitude), rt->fn,
                          elemOf(qRope).isF32() ? "x" : "kiln::roundTo<" + cType(elemOf(qRope)) + ">(x)")
                .str();
  } else {
    more += "  static constexpr int ROPE = 0, ROT = 0;\n";
  }

  std::string s;
  llvm::raw_string_ostream os(s);
  os << "struct S {\n";
  os << "  typedef " << cType(ct.getElementType()) << " TC;\n";
  os << "  static constexpr int H = " << H << ", HKV = " << hkv << ", D = " << D << ", PAGE = " << page
     << ", CAUSAL = " << (pa.getCausal() ? 1 : 0) << ", WINDOW = " << pa.getSlidingWindow().value_or(0)
     << ";\n";
  os << "  static constexpr kiln::i64 MAX_ROWS = " << maxRows << ";\n";
  os << "  static constexpr float SCALE = " << fmtFloat(scale)
     << ", SOFTCAP = " << fmtFloat(pa.getSoftcap() ? pa.getSoftcap()->convertToDouble() : 0.0) << ";\n";
  os << decls_;
  os << "  __device__ static __forceinline__ const TC *cache(const kiln::Args &a) { return "
     << ptr(cacheArg.getArgNumber(), ct.getElementType(), true) << "; }\n";
  os << "  __device__ static __forceinline__ const int *blockTables(const kiln::Args &a) { return "
        "static_cast<const int *>(a.p["
     << btArg.getArgNumber() << "]); }\n";
  os << "  __device__ static __forceinline__ kiln::i64 contextLen(const kiln::Args &a, kiln::i64 b) { return "
        "static_cast<const int *>(a.p["
     << lenArg.getArgNumber() << "])[b]; }\n";
  os << "  __device__ static __forceinline__ kiln::i64 position(const kiln::Args &a, kiln::i64 b, kiln::i64 t) { "
        "return kiln::ldi("
     << ptr(posArg.getArgNumber(), elemOf(pa.getPositions()), true) << ", "
     << (sharedPos ? "t" : "b * a.tokens + t") << "); }\n";
  os << "  __device__ static __forceinline__ void store(const kiln::Args &a, kiln::i64 b, kiln::i64 t, kiln::i64 h, "
        "kiln::i64 d, float v) { kiln::stv("
     << ptr(outputSlot(yOut), elemOf(pa), false) << ", ((b * a.tokens + t) * H + h) * D + d, v); }\n";
  os << more << "};\n";
  out.threads = 128;
  out.smem = 0;
  if (decode) {
    out.family = "attention_decode";
    out.grid = SizeRule{hkv * splits, {Sym::Batch, Sym::Tokens}, 1, 0};
    out.workspace = SizeRule{splits > 1 ? maxRows * H * splits * (D + 2) * 4 + maxRows * hkv * 4 : 0, {}, 1, 0};
    // Many keys in flight (attentionDecodeTiled) when a key splits into
    // 16-byte vectors over a power-of-two number of lanes and the scores and
    // partial sums fit in shared memory; otherwise a warp per query head.
    int64_t cbytes = std::max<int64_t>(1, ct.getElementType().getIntOrFloatBitWidth() / 8);
    int64_t vec = std::max<int64_t>(1, 16 / cbytes);
    auto fits = [&](int64_t v) { return D % v == 0 && D / v <= 32 && llvm::isPowerOf2_64(D / v); };
    while (vec > 1 && !fits(vec))
      vec /= 2;
    const int64_t keysPerThread = 4, G = H / hkv;
    int64_t chunk = fits(vec) ? 4 * (32 / (D / vec)) * keysPerThread : 0;
    int64_t sharedBytes = 4 * (G * chunk + 3 * G + 4 * G * D + (tableRope ? D : 0));
    if (fits(vec) && H % hkv == 0 && sharedBytes <= 40 * 1024)
      os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                          "kiln::attentionDecodeTiled<S, {1}, {2}, {3}>(a); }\n",
                          kernel_.getSymName(), splits, vec, keysPerThread);
    else
      os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                          "kiln::attentionDecode<S, {1}>(a); }\n",
                          kernel_.getSymName(), splits);
  } else {
    out.family = "attention_prefill";
    out.grid = SizeRule{H, {Sym::Batch, Sym::Tokens}, 4, 0};
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                        "kiln::attentionPrefill<S>(a); }\n",
                        kernel_.getSymName());
  }
  out.specialisation = globals_ + s;
  return success();
}

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
                      "kiln::normRows<S>(a); }\n",
                      threads, kernel_.getSymName());
  out.specialisation = globals_ + s;
  return success();
}

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

LogicalResult Emitter::emitPointwise(EmittedKernel &out) {
  // Segments of work: each yielded tensor is stored element by element,
  // except a KV cache, for which each kv_append stores its keys and values.
  struct Segment {
    std::string count; // elements, as a C expression
    SizeRule rule;
    std::string code;  // per element: `e` is the element's index
  };
  SmallVector<Segment> segments;
  for (auto [i, y] : llvm::enumerate(yield_->getOperands())) {
    if (auto kv = y.getDefiningOp<KvAppendOp>()) {
      auto cacheArg = dyn_cast<BlockArgument>(kv.getCache());
      auto btArg = dyn_cast<BlockArgument>(kv.getBlockTables());
      if (!cacheArg || !btArg)
        return fail(kv, "the cache and block tables must be kernel operands");
      FailureOr<std::string> kf = fn(kv.getKey()), vf = fn(kv.getValue()), pf = fn(kv.getPositions());
      FailureOr<Shape> ks = shapeOf(kv.getKey()), ps = shapeOf(kv.getPositions());
      if (failed(kf) || failed(vf) || failed(pf) || failed(ks) || failed(ps))
        return failure();
      bool sharedPos = !(*ps)[0].sym && (*ps)[0].value == 1;
      Segment seg;
      seg.count = product(*ks);
      seg.rule = ruleOf(*ks);
      seg.code = "    " + delinearise("e", *ks, "ix") + "\n";
      seg.code += llvm::formatv("    kiln::i64 px[2] = {{{0}, ix[1]};\n"
                                "    kiln::i64 pos = {1};\n"
                                "    if (pos < 0) return;\n",
                                sharedPos ? "0" : "ix[0]", call(*pf, "px"))
                      .str();
      seg.code += kvStore(kv, outputSlot(i), {{"0", call(*kf, "ix")}, {kvValue(kv), call(*vf, "ix")}});
      segments.push_back(seg);
      if (llvm::any_of(kv.getCache().getUsers(), [&](Operation *u) { return u != kv; }))
        return fail(kv, "the cache is read in the kernel that appends to it");
      continue;
    }
    FailureOr<std::string> f = fn(y);
    FailureOr<Shape> ys = shapeOf(y);
    if (failed(f) || failed(ys))
      return failure();
    Segment seg;
    seg.count = product(*ys);
    seg.rule = ruleOf(*ys);
    seg.code = "    " + delinearise("e", *ys, "ix") + "\n    float mm0 = 0.0f, mm1 = 0.0f;\n";
    seg.code += "    kiln::stv(" + ptr(outputSlot(i), elemOf(y), false) + ", e, " + call(*f, "ix") + ");\n";
    segments.push_back(seg);
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "struct S {\n" << decls_;
  std::string total;
  for (const Segment &seg : segments)
    total += (total.empty() ? "" : " + ") + seg.count;
  os << "  __device__ static __forceinline__ kiln::i64 count(const kiln::Args &a) { return " << total << "; }\n";
  for (auto [i, seg] : llvm::enumerate(segments)) {
    os << "  __device__ static __forceinline__ void run" << i << "(const kiln::Args &a, kiln::i64 e) {\n";
    if (seg.code.find("mm0") != std::string::npos && seg.code.find("float mm0") == std::string::npos)
      os << "    float mm0 = 0.0f, mm1 = 0.0f;\n";
    os << seg.code << "  }\n";
  }
  os << "  __device__ static __forceinline__ void run(const kiln::Args &a, kiln::i64 e) {\n";
  for (auto [i, seg] : llvm::enumerate(segments)) {
    os << "    if (e < " << seg.count << ") { run" << i << "(a, e); return; }\n";
    os << "    e -= " << seg.count << ";\n";
  }
  os << "  }\n};\n";
  // Grid: the largest segment's elements over the block (the kernel
  // strides over the rest).
  SizeRule g;
  for (const Segment &seg : segments)
    if (seg.rule.symbols.size() > g.symbols.size() ||
        (seg.rule.symbols.size() == g.symbols.size() && seg.rule.factor > g.factor))
      g = seg.rule;
  int64_t threads = 256;
  g.factor *= static_cast<int64_t>(segments.size());
  g.divisor = threads;
  g.max = 65535;
  out.family = "pointwise";
  out.threads = threads;
  out.grid = g;
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                      "kiln::pointwise<S>(a); }\n",
                      threads, kernel_.getSymName());
  out.specialisation = globals_ + s;
  return success();
}

/// A double as JSON: non-finite values as the strings "inf", "-inf", "nan".
llvm::json::Value finite(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d > 0 ? "inf" : "-inf";
  return d;
}

LogicalResult Emitter::emitHostProgram(EmittedKernel &out) {
  DenseMap<Value, int64_t> ids;
  llvm::json::Array args, ops, yields;
  for (BlockArgument a : body_->getArguments()) {
    ids[a] = static_cast<int64_t>(ids.size());
    llvm::json::Array dims;
    for (const Dim &d : argShapes_[a.getArgNumber()])
      dims.push_back(d.sym ? llvm::json::Value(symName(*d.sym)) : llvm::json::Value(d.value));
    std::string dt;
    llvm::raw_string_ostream os(dt);
    elemOf(a).print(os);
    args.push_back(llvm::json::Object{{"dtype", dt}, {"shape", std::move(dims)}});
  }
  for (Operation &op : body_->without_terminator()) {
    host::HostOp h;
    if (Status s = interp::toHostOp(&op, h); !s)
      return fail(&op, "has no host form: " + s.message());
    llvm::json::Array operands, results;
    for (Value v : op.getOperands())
      operands.push_back(ids.lookup(v));
    for (auto [i, r] : llvm::enumerate(op.getResults())) {
      ids[r] = static_cast<int64_t>(ids.size());
      llvm::json::Array shape;
      for (int64_t d : h.resultShapes[i])
        shape.push_back(d);
      results.push_back(llvm::json::Object{{"dtype", host::dtypeName(h.resultTypes[i])}, {"shape", std::move(shape)}});
    }
    llvm::json::Object attrs;
    for (const auto &[name, a] : h.attrs) {
      using K = host::HostAttr::Kind;
      switch (a.kind) {
      case K::Int: attrs[name] = a.i; break;
      case K::Float: attrs[name] = llvm::json::Object{{"f", finite(a.f)}}; break;
      case K::Bool: attrs[name] = a.b; break;
      case K::Str: attrs[name] = a.s; break;
      case K::Ints: {
        llvm::json::Array v;
        for (int64_t x : a.ints)
          v.push_back(x);
        attrs[name] = llvm::json::Object{{"ints", std::move(v)}};
        break;
      }
      case K::Floats: {
        llvm::json::Array v;
        for (double x : a.floats)
          v.push_back(finite(x));
        attrs[name] = llvm::json::Object{{"floats", std::move(v)}};
        break;
      }
      }
    }
    llvm::json::Object o{{"op", h.name}, {"operands", std::move(operands)}, {"results", std::move(results)},
                         {"attrs", std::move(attrs)}};
    if (h.name == "constant") {
      llvm::json::Array shape, data;
      for (int64_t d : h.value.shape())
        shape.push_back(d);
      for (int64_t i = 0; i < h.value.numel(); ++i)
        data.push_back(host::isFloat(h.value.dtype()) ? finite(h.value.get(i))
                                                      : llvm::json::Value(h.value.getInt(i)));
      o["value"] = llvm::json::Object{{"shape", std::move(shape)}, {"data", std::move(data)}};
    }
    ops.push_back(std::move(o));
  }
  for (Value v : yield_->getOperands())
    yields.push_back(ids.lookup(v));
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(llvm::json::Object{{"args", std::move(args)}, {"ops", std::move(ops)}, {"yields", std::move(yields)}});
  out.hostProgram = std::move(text);
  return success();
}

LogicalResult Emitter::emit(EmittedKernel &out) {
  out.name = kernel_.getSymName().str();
  out.bytes = static_cast<int64_t>(kernel_.getBytes());
  out.flops = static_cast<int64_t>(kernel_.getFlops());
  if (kernel_.getBody().empty())
    return fail(kernel_, "has no body to generate code from");
  body_ = &kernel_.getBody().front();
  fused_ = dyn_cast<FusedOp>(&body_->front());
  if (!fused_)
    return fail(kernel_, "the body must be one kiln.fused op");
  // Inside the fused region, arguments mirror the kernel's operands.
  Block &inner = fused_.getBody().front();
  for (auto [outer, in] : llvm::zip(fused_.getInputs(), inner.getArguments())) {
    auto arg = dyn_cast<BlockArgument>(outer);
    if (!arg || arg.getOwner() != body_ || arg.getArgNumber() != in.getArgNumber())
      return fail(fused_, "the fused op must take the kernel's operands in order");
  }
  body_ = &inner;
  yield_ = inner.getTerminator();
  if (fused_->getNumResults() != yield_->getNumOperands())
    return fail(fused_, "results and yield differ");

  Operation *mm = nullptr, *pa = nullptr, *norm = nullptr, *am = nullptr;
  size_t ops = 0;
  for (Operation &op : inner.without_terminator()) {
    ++ops;
    if (isa<MatmulOp>(op))
      mm = mm ? reinterpret_cast<Operation *>(-1) : &op;
    else if (isa<PagedAttentionOp>(op))
      pa = &op;
    else if (isa<RmsNormOp, LayerNormOp>(op))
      norm = &op;
    else if (isa<ArgmaxOp>(op))
      am = &op;
    else if (isa<AttentionOp, SoftmaxOp, ReduceSumOp, ReduceMeanOp, ReduceMaxOp, ReduceMinOp, CumsumOp>(op))
      return fail(&op, "has no CUDA code generation yet");
  }
  if (mm == reinterpret_cast<Operation *>(-1))
    return fail(fused_, "holds more than one matmul");
  LogicalResult r = failure();
  if (mm)
    r = emitMatmul(cast<MatmulOp>(mm), out);
  else if (pa)
    r = emitAttention(cast<PagedAttentionOp>(pa), out);
  else if (norm && ops == 1 && kernel_.getFamily() == "norm")
    r = emitNorm(norm, out);
  else if (am && ops == 1)
    r = emitArgmaxRows(cast<ArgmaxOp>(am), out);
  else
    r = emitPointwise(out);
  if (failed(r) || failed(emitHostProgram(out)))
    return failure();
  out.specialisation = "// ---- " + out.name + " (" + out.family + ") ----\n" + out.specialisation;
  out.source = kernelSource(out.specialisation);
  return success();
}

/// The step size each dynamic dimension of the kernel's operands is bound
/// to, from a launch: KV caches ([L, P, ...]) bind pages, block tables
/// [batch, max_blocks], anything else [batch, tokens, ...].
FailureOr<SmallVector<Shape>> operandShapes(ex::KernelOp kernel, ex::LaunchOp launch) {
  SmallVector<Shape> shapes;
  Block &body = kernel.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    Value buf = launch.getBuffers()[arg.getArgNumber()];
    while (auto v = buf.getDefiningOp<ex::ViewOp>())
      buf = v.getSource();
    StringRef name;
    if (auto fa = dyn_cast<BlockArgument>(buf))
      if (auto f = dyn_cast<func::FuncOp>(fa.getOwner()->getParentOp()))
        if (auto n = f.getArgAttrOfType<StringAttr>(fa.getArgNumber(), "kiln.name"))
          name = n.getValue();
    auto t = cast<RankedTensorType>(arg.getType());
    Shape s;
    for (int64_t i = 0; i < t.getRank(); ++i) {
      if (!t.isDynamicDim(i)) {
        s.push_back(Dim{t.getDimSize(i), std::nullopt});
        continue;
      }
      Sym sym;
      if (t.getRank() == 6 && i == 1)
        sym = Sym::Pages;
      else if (name == "block_tables" && i == 1)
        sym = Sym::MaxBlocks;
      else if (i == 0)
        sym = Sym::Batch;
      else if (i == 1)
        sym = Sym::Tokens;
      else {
        launch.emitError("codegen: operand ") << arg.getArgNumber() << " of " << kernel.getSymName()
                                              << " has a dynamic dimension " << i
                                              << " that is not batch, tokens or pages";
        return failure();
      }
      s.push_back(Dim{0, sym});
    }
    shapes.push_back(s);
  }
  return shapes;
}

} // namespace

int64_t evalSize(const SizeRule &rule, int64_t batch, int64_t tokens, int64_t pages,
                 int64_t maxBlocks, bool atLeastOne) {
  int64_t v = rule.factor;
  for (Sym s : rule.symbols)
    v *= s == Sym::Batch ? batch : s == Sym::Tokens ? tokens : s == Sym::Pages ? pages : maxBlocks;
  v = (v + rule.divisor - 1) / std::max<int64_t>(1, rule.divisor);
  if (atLeastOne)
    v = std::max<int64_t>(1, v);
  if (rule.max > 0)
    v = std::min(v, rule.max);
  return v;
}

int64_t totalWorkspace(const std::vector<EmittedKernel> &kernels, const EmitOptions &o) {
  // Each kernel has its own 256-byte aligned region (what one kernel leaves
  // there, say attention partials, must not be another's zeroed counters);
  // the runtime lays them out in kernel order and clears them once at load.
  int64_t w = 0;
  for (const EmittedKernel &k : kernels)
    w += (evalSize(k.workspace, o.maxBatch, o.maxTokens, 0, 0, false) + 255) / 256 * 256;
  return w;
}

LogicalResult emitKernels(ModuleOp module, const EmitOptions &options, std::vector<EmittedKernel> &out) {
  DenseMap<Operation *, ex::LaunchOp> firstLaunch;
  module.walk([&](ex::LaunchOp l) {
    if (auto k = module.lookupSymbol<ex::KernelOp>(l.getKernel()))
      firstLaunch.try_emplace(k, l);
  });
  for (ex::KernelOp k : module.getOps<ex::KernelOp>()) {
    auto it = firstLaunch.find(k);
    if (it == firstLaunch.end())
      continue; // never launched
    FailureOr<SmallVector<Shape>> shapes = operandShapes(k, it->second);
    if (failed(shapes))
      return failure();
    EmittedKernel e;
    Emitter em(k, *shapes, options);
    if (failed(em.emit(e)))
      return failure();
    out.push_back(std::move(e));
  }
  return success();
}

} // namespace kiln::codegen
