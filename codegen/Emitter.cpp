//===- Emitter.cpp - element functions -------------------------------===//
//
// The machinery every family shares: shapes of body values, index
// arithmetic (broadcasts, slices, reshapes, gathers, concatenations) and the
// fused body's ops as `__device__` element functions of an index, rounded to
// each op's dtype as the host interpreter stores it; RoPE tables, KV-cache
// stores and vector operands.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

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
  } else if (auto t = dyn_cast<RopeCosSinOp>(op)) {
    // [P, T, R/2, 2] from positions [P, T]: aligned at the front.
    FailureOr<Shape> pos = shapeOf(t.getPositions());
    if (failed(pos))
      return failure();
    r = fromType([&](int64_t i) -> std::optional<Dim> {
      return i < 2 ? std::optional<Dim>((*pos)[i]) : std::nullopt;
    });
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
    else if (shape[i].sym) // a step size: kiln::divStep's 32-bit division where it fits
      s += llvm::formatv(" {0}[{1}] = kiln::divStep(rem, {2});", ix, i, shape[i].str()).str();
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

namespace {
/// A rotation's positions are shared by the batch where they are [1, T] and
/// the batch is not 1 by construction.
bool ropePositionsShared(const Shape &positions, const Shape &rotated) {
  return !positions[0].sym && positions[0].value == 1 && !(!rotated[0].sym && rotated[0].value == 1);
}
} // namespace

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
    int64_t rd = rt->rotaryDim;
    bool shared = ropePositionsShared(*ps, shape);
    int64_t half = rd / 2;
    bool neox = rt->neox;
    b += llvm::formatv("    kiln::i64 d = ix[3];\n"
                       "    if (d >= {0}) return {1};\n"
                       "    kiln::i64 px[2] = {{{2}, ix[1]};\n",
                       rd, call(*xf, "ix"), shared ? "0" : "ix[0]")
             .str();
    if (neox)
      b += llvm::formatv("    kiln::i64 i = d < {0} ? d : d - {0}, partner = d < {0} ? d + {0} : d - {0};\n"
                         "    float sign = d < {0} ? -1.0f : 1.0f;\n",
                         half)
               .str();
    else
      b += "    kiln::i64 i = d / 2, partner = d ^ 1;\n    float sign = (d & 1) ? 1.0f : -1.0f;\n";
    FailureOr<std::string> cs = ropeCosSin(r, *rt, call(*pf, "px"), "px", "i");
    if (failed(cs))
      return failure();
    b += *cs;
    b += "    kiln::i64 jx[4] = {ix[0], ix[1], ix[2], partner};\n";
    ret(call(*xf, "ix") + " * c + sign * " + call(*xf, "jx") + " * s");
    return std::string();
  }
  if (auto t = dyn_cast<RopeCosSinOp>(op)) {
    // Element (p, t, i, k) of the table: k = 0 the cosine, 1 the sine.
    FailureOr<std::string> pf = operandFn(t.getPositions());
    FailureOr<RopeTable> rt = ropeTable(t, static_cast<int64_t>(t.getRotaryDim()));
    if (failed(pf) || failed(rt))
      return failure();
    b += "    kiln::i64 px[2] = {ix[0], ix[1]};\n";
    b += ropeAngle(*rt, call(*pf, "px"), "ix[2]");
    ret("(ix[3] == 0 ? c : s)");
    return std::string();
  }
  return fail("op '" + op->getName().getStringRef() + "' cannot be evaluated per element");
}

FailureOr<std::string> Emitter::ropePair(RopeOp r) {
  auto rt = cast<RankedTensorType>(r.getType());
  if (rt.getRank() != 4 || rt.isDynamicDim(3))
    return failure();
  int64_t D = rt.getDimSize(3);
  FailureOr<RopeTable> t = ropeTable(r, D);
  if (failed(t) || !t->neox || t->rotaryDim != D || D % 2)
    return failure();
  FailureOr<std::string> xf = fn(r.getInput()), pf = fn(r.getPositions());
  FailureOr<Shape> ps = shapeOf(r.getPositions()), shape = shapeOf(r.getResult());
  if (failed(xf) || failed(pf) || failed(ps) || failed(shape))
    return failure();
  bool shared = ropePositionsShared(*ps, *shape);
  Type et = rt.getElementType();
  std::string round = et.isF32() || et.isF64() ? "" : "kiln::roundTo<" + cType(et) + ">";
  FailureOr<std::string> cs = ropeCosSin(r, *t, call(*pf, "rpx"), "rpx", "ix[3]");
  if (failed(cs))
    return failure();
  return llvm::formatv("    kiln::i64 jx[4] = {{ix[0], ix[1], ix[2], ix[3] + {0}};\n"
                       "    kiln::i64 rpx[2] = {{{1}, ix[1]};\n",
                       D / 2, shared ? "0" : "ix[0]")
             .str() +
         *cs +
         llvm::formatv("    float x0 = {0}, x1 = {1};\n"
                       "    float y0 = {2}(x0 * c + -1.0f * x1 * s), y1 = {2}(x1 * c + 1.0f * x0 * s);\n",
                       call(*xf, "ix"), call(*xf, "jx"), round)
             .str();
}

FailureOr<std::string> Emitter::ropeCosSin(RopeOp r, const RopeTable &t, const std::string &pos,
                                           const std::string &px, const std::string &i) {
  Value table = r.getCosSin();
  if (!table)
    return ropeAngle(t, pos, i);
  // The step's table (rope_cos_sin of the same positions and frequencies):
  // the same two floats, loaded.
  FailureOr<std::string> tf = fn(table);
  if (failed(tf))
    return failure();
  return llvm::formatv("    kiln::i64 csx[4] = {{{0}[0], {0}[1], {1}, 0};\n"
                       "    float c = {2};\n    csx[3] = 1;\n    float s = {2};\n",
                       px, i, call(*tf, "csx"))
      .str();
}

std::string Emitter::ropeAngle(const RopeTable &t, const std::string &pos, const std::string &i) {
  return llvm::formatv("    double ang = static_cast<double>({0}) * {1}({2});\n"
                       "    double sn, cs;\n    sincos(ang, &sn, &cs); // one range reduction for both\n"
                       "    float c = static_cast<float>(cs * {3}), s = static_cast<float>(sn * {3});\n",
                       pos, t.fn, i, fmtDouble(t.magnitude))
      .str();
}

FailureOr<Emitter::RopeTable> Emitter::ropeTable(Operation *r, int64_t D) {
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

} // namespace kiln::codegen::detail
