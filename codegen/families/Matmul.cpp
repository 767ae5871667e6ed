//===- Matmul.cpp - matmul kernels -----------------------------------===//
//
// A matmul kernel's `struct S`: the A operand or a norm of it (prologue),
// the weight [N, K], the epilogue (elementwise, gated halves, RoPE pairs with
// the KV append) and an optional argmax. The launch is a GEMV or a GEMM.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

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
    // value (loads and arithmetic, as stored) apart from put (the store),
    // so that a tile's epilogue can issue every load before any store
    // (SPLIT); epi does both for one element.
    llvm::raw_string_ostream es(epi);
    // Whether the epilogue reads memory besides the product (a residual, a
    // bias): gemmStoreTile then computes a row pair's values before its
    // stores.
    bool loads = false;
    SmallVector<Value> work{y};
    llvm::SmallPtrSet<Value, 16> seen;
    while (!work.empty() && !loads) {
      Value v = work.pop_back_val();
      if (!seen.insert(v).second || v == mm.getResult())
        continue;
      if (isArg(v)) {
        loads = true;
        continue;
      }
      if (Operation *d = v.getDefiningOp())
        if (d->getBlock() == body_)
          for (Value o : d->getOperands())
            work.push_back(o);
    }
    bool pairs = N % 2 == 0 && (ty.isF32() || ty.isBF16() || ty.isF16());
    es << "  static constexpr bool SPLIT = true, EPI_LOADS = " << (loads ? "true" : "false")
       << ", PAIRS = " << (pairs ? "true" : "false") << ";\n";
    es << "  __device__ static __forceinline__ float value(const kiln::Args &a, kiln::i64 m, kiln::i64 n, "
          "float mm0, float mm1) {\n";
    es << "    " << delinearise("m", lead, "ix0") << "\n    kiln::i64 ix[" << ys->size() << "];";
    for (size_t i = 0; i + 1 < ys->size(); ++i)
      es << " ix[" << i << "] = ix0[" << i << "];";
    es << " ix[" << ys->size() - 1 << "] = n;\n";
    // y's element function rounds to y's type already (fnBody).
    es << "    return " << call(*yf, "ix") << ";\n  }\n";
    es << "  __device__ static __forceinline__ void put(const kiln::Args &a, kiln::i64 m, kiln::i64 n, float y) { "
          "kiln::stv("
       << ptr(outputSlot(yieldIndex(y)), ty, false) << ", m * N + n, y); }\n";
    // Columns n and n + 1 (gemmStoreTile calls it only with PAIRS).
    es << "  __device__ static __forceinline__ void put2(const kiln::Args &a, kiln::i64 m, kiln::i64 n, float y0, "
          "float y1) { ";
    if (pairs)
      es << "kiln::stv2(" << ptr(outputSlot(yieldIndex(y)), ty, false) << ", m * N + n, y0, y1); }\n";
    else
      es << "put(a, m, n, y0); put(a, m, n + 1, y1); }\n";
    // Columns n .. n + 7 (gemmWs's epilogue warps, where N % 8 == 0).
    es << "  __device__ static __forceinline__ void put8(const kiln::Args &a, kiln::i64 m, kiln::i64 n, "
          "const float (&y)[8]) { ";
    if (N % 8 == 0 && (ty.isF32() || ty.isBF16() || ty.isF16()))
      es << "kiln::stv8(" << ptr(outputSlot(yieldIndex(y)), ty, false) << ", m * N + n, y); }\n";
    else
      es << "for (int j = 0; j < 8; ++j) put(a, m, n + j, y[j]); }\n";
    es << "  __device__ static __forceinline__ float epi(const kiln::Args &a, kiln::i64 m, kiln::i64 n, "
          "float mm0, float mm1) {\n";
    es << "    float y = value(a, m, n, mm0, mm1);\n    put(a, m, n, y);\n    return y;\n  }\n";
  }
  FailureOr<Shape> xs = shapeOf(x);
  if (failed(xs))
    return failure();

  Type ta = elemOf(x), tw = wType.getElementType();
  bool tensorCores = kernel_.getFamily() == "gemm" && (ta.isBF16() || ta.isF16()) && ta == tw;

  // Rows of A per pass over the weights in the GEMV: choose-tiling's
  // `rows` (the step's rows, at most 8), else as many as the largest step
  // has, up to 8. They are staged in shared memory where they fit 40 KB,
  // else read from global memory (L1/L2) as the loads need them.
  int64_t maxRows = maxProduct(lead, options_);
  int64_t aBytes = std::max<int64_t>(1, ta.getIntOrFloatBitWidth() / 8);
  int64_t mc = std::clamp<int64_t>(tileInt(kernel_, "rows", std::min<int64_t>(maxRows, 8)), 1, 8);
  bool stage = mc * K * aBytes <= 40 * 1024;

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
  // TMA boxes of W's rows need them in item order: plain, or gated halves
  // (RoPE pairs are per head).
  if (tensorCores)
    gemmSkeleton(os, out, K, N, gate, normKind == 0 && !argmax, lead,
                 GemmOperands{xSlot, wArg.getArgNumber(), nmm, !ropePairs, ta.isBF16() ? "bf16" : "f16",
                              cast<RankedTensorType>(mm.getType()).getElementType() == ta, argmax});
  else
    gemvSkeleton(os, out, K, N, gate, mc, ta, tw);
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
      body += std::string("    kiln::i64 px[2] = {") + (shared ? "0" : "b") + ", t};\n";
      FailureOr<std::string> cs = ropeCosSin(seg.rope, *rt, call(*pos, "px"), "px", *neox ? "d" : "d / 2");
      if (failed(cs))
        return failure();
      body += *cs;
      body += llvm::formatv("    float x0 = {0}, x1 = {1};\n"
                            "    float y0 = {2}(x0 * c - x1 * s), y1 = {2}(x1 * c + x0 * s);\n",
                            call(*in, "ix"), call(*in, "jx"), round)
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
  es << "  static constexpr bool SPLIT = false, EPI_LOADS = false, PAIRS = false; // stores queries and cache "
        "entries per pair\n";
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

} // namespace kiln::codegen::detail
