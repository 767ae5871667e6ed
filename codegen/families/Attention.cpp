//===- Attention.cpp - paged attention kernels -----------------------===//
//
// A paged attention kernel's `struct S`: cache, block tables, positions,
// queries (and in decode the append's keys and values, RoPE from a table).
// The launch is decode or prefill.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

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
  // A row's keys per split (decode): the tile's kv_chunk; a row takes
  // ceil(its keys / chunk) splits each step, up to `splits`.
  int64_t chunk = std::max<int64_t>(1, tileInt(kernel_, "kv_chunk", splits > 1 ? 64 : int64_t(1) << 30));
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
  // Queries read as they are stored (a kernel operand in the cache's dtype,
  // rows of D contiguous elements): attentionPrefillWs copies their rows
  // whole (qRow), where S::q would read them an element at a time.
  auto qArg = dyn_cast<BlockArgument>(pa.getQuery());
  if (qArg && elemOf(pa.getQuery()) == ct.getElementType() && qs->size() == 4 && !(*qs)[3].sym &&
      (*qs)[3].value == D)
    more += "  static constexpr bool Q_ROWS = true;\n"
            "  __device__ static __forceinline__ const TC *qRow(const kiln::Args &a, kiln::i64 b, kiln::i64 t, "
            "kiln::i64 h) { kiln::i64 ix[4] = {b, t, h, 0}; return " +
            ptr(qArg.getArgNumber(), elemOf(pa.getQuery()), true) + " + " + linearise("ix", *qs) + "; }\n";
  else
    more += "  static constexpr bool Q_ROWS = false;\n"
            "  __device__ static __forceinline__ const TC *qRow(const kiln::Args &, kiln::i64, kiln::i64, kiln::i64) "
            "{ return nullptr; }\n";
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
  os << "  static constexpr bool EXACT_P = " << (options_.exactAttention ? "true" : "false") << ";\n";
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
  if (decode)
    attentionDecodeSkeleton(os, out, H, hkv, D, splits, chunk, maxRows, ct.getElementType(), tableRope,
                            (tableRope ? elemOf(qRope) : elemOf(pa.getQuery())) == ct.getElementType());
  else
    attentionPrefillSkeleton(os, out, H, hkv, D, ct.getElementType());
  out.specialisation = globals_ + s;
  return success();
}

} // namespace kiln::codegen::detail
