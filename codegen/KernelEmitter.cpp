//===- KernelEmitter.cpp - kiln_exec kernels -> CUDA C++ ------------------===//
//
// See KernelEmitter.h and docs/codegen.md. The generated part of a kernel
// is a `struct S` whose members the skeleton calls: shapes as constexpr,
// pointers into `Args::p`, and element functions (Emitter.cpp). This file
// picks the family from the kernel's body (families/*.cpp write its struct
// and launch), adds the host program and emits every kernel of a module.
//
//===----------------------------------------------------------------------===//
#include "codegen/KernelEmitter.h"
#include "codegen/Emitter.h"

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

namespace detail {

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

} // namespace detail

int64_t evalSize(const SizeRule &rule, int64_t batch, int64_t tokens, int64_t pages,
                 int64_t maxBlocks, bool atLeastOne) {
  int64_t v = rule.tiles ? 1 : rule.factor;
  for (Sym s : rule.symbols)
    v *= s == Sym::Batch ? batch : s == Sym::Tokens ? tokens : s == Sym::Pages ? pages : maxBlocks;
  v = (v + rule.divisor - 1) / std::max<int64_t>(1, rule.divisor);
  if (rule.tiles)
    v *= rule.factor;
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

std::map<std::string, std::string> mergeIdenticalKernels(std::vector<EmittedKernel> &kernels) {
  // Everything the engine records of a kernel but its name and the bytes
  // and FLOPs it was planned for (each launch carries its own).
  auto identity = [](const EmittedKernel &k) {
    std::string text;
    llvm::raw_string_ostream os(text);
    auto rule = [&](const SizeRule &r) {
      os << r.factor << '/' << r.divisor << '/' << r.max << '/' << r.tiles;
      for (Sym s : r.symbols)
        os << ',' << symName(s);
      os << ';';
    };
    os << k.family << ';' << k.threads << ';' << k.smem << ';' << k.dependentLaunch << ';';
    rule(k.grid);
    rule(k.workspace);
    for (const TensorMapSpec &t : k.tensorMaps) {
      os << t.operand << ',' << t.cols << ',' << t.boxRows << ',' << t.boxCols << ',' << t.dtype << ',';
      rule(t.rows);
    }
    os << k.hostProgram << '\n' << llvm::join(llvm::split(k.specialisation, k.name), "\x01");
    return text;
  };
  std::map<std::string, std::string> folded;
  std::map<std::string, size_t> first;
  std::vector<EmittedKernel> kept;
  for (EmittedKernel &k : kernels) {
    auto [it, fresh] = first.try_emplace(identity(k), kept.size());
    if (fresh)
      kept.push_back(std::move(k));
    else
      folded[k.name] = kept[it->second].name;
  }
  kernels = std::move(kept);
  return folded;
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
    FailureOr<SmallVector<detail::Shape>> shapes = detail::operandShapes(k, it->second);
    if (failed(shapes))
      return failure();
    EmittedKernel e;
    detail::Emitter em(k, *shapes, options);
    if (failed(em.emit(e)))
      return failure();
    out.push_back(std::move(e));
  }
  return success();
}

} // namespace kiln::codegen

