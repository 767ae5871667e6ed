//===- Pointwise.cpp - the pointwise family --------------------------===//
//
// Elementwise groups, gathers, RoPE and KV-cache appends, per element:
// cuda/pointwise.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

LogicalResult Emitter::emitPointwise(EmittedKernel &out) {
  // Segments of work: each yielded tensor is stored element by element,
  // except a KV cache, for which each kv_append stores its keys and values.
  struct Segment {
    std::string count; // elements, as a C expression
    SizeRule rule;
    std::string code;  // per element: `e` is the element's index
  };
  SmallVector<Segment> segments;
  // A RoPE of whole heads in the neox style is stored a pair of dims at a
  // time (d and d + D/2, one angle and one sincos in double for both):
  // its segment walks the first half of each head.
  auto pairOf = [&](Value v, Shape &half) -> FailureOr<std::string> {
    auto r = v.getDefiningOp<RopeOp>();
    FailureOr<Shape> s = shapeOf(v);
    if (!r || failed(s) || s->size() != 4 || (*s)[3].sym)
      return failure();
    FailureOr<std::string> code = ropePair(r);
    if (succeeded(code)) {
      half = *s;
      half[3].value /= 2;
    }
    return code;
  };
  for (auto [i, y] : llvm::enumerate(yield_->getOperands())) {
    if (auto kv = y.getDefiningOp<KvAppendOp>()) {
      auto cacheArg = dyn_cast<BlockArgument>(kv.getCache());
      auto btArg = dyn_cast<BlockArgument>(kv.getBlockTables());
      if (!cacheArg || !btArg)
        return fail(kv, "the cache and block tables must be kernel operands");
      // The key's own element function only where it is not stored in pairs.
      Shape half;
      FailureOr<std::string> pair = pairOf(kv.getKey(), half);
      FailureOr<std::string> kf = succeeded(pair) ? std::string() : fn(kv.getKey());
      FailureOr<std::string> vf = fn(kv.getValue()), pf = fn(kv.getPositions());
      FailureOr<Shape> ks = shapeOf(kv.getKey()), ps = shapeOf(kv.getPositions());
      if (failed(kf) || failed(vf) || failed(pf) || failed(ks) || failed(ps))
        return failure();
      bool sharedPos = !(*ps)[0].sym && (*ps)[0].value == 1;
      Segment seg;
      const Shape &walk = succeeded(pair) ? half : *ks;
      seg.count = product(walk);
      seg.rule = ruleOf(walk);
      seg.code = "    " + delinearise("e", walk, "ix") + "\n";
      seg.code += llvm::formatv("    kiln::i64 px[2] = {{{0}, ix[1]};\n"
                                "    kiln::i64 pos = {1};\n"
                                "    if (pos < 0) return;\n",
                                sharedPos ? "0" : "ix[0]", call(*pf, "px"))
                      .str();
      if (succeeded(pair)) {
        // The key's pair (d, d + D/2) and the values at the same places.
        std::string d2 = std::to_string(half[3].value);
        seg.code += *pair;
        seg.code += kvStore(kv, outputSlot(i),
                            {{"0", "y0"}, {d2, "y1"}, {kvValue(kv), call(*vf, "ix")}, {kvValue(kv) + " + " + d2,
                                                                                          call(*vf, "jx")}});
      } else {
        seg.code += kvStore(kv, outputSlot(i), {{"0", call(*kf, "ix")}, {kvValue(kv), call(*vf, "ix")}});
      }
      segments.push_back(seg);
      if (llvm::any_of(kv.getCache().getUsers(), [&](Operation *u) { return u != kv; }))
        return fail(kv, "the cache is read in the kernel that appends to it");
      continue;
    }
    Segment seg;
    Shape half;
    FailureOr<std::string> pair = pairOf(y, half);
    // y's own element function only where it is not stored in pairs.
    FailureOr<std::string> f = succeeded(pair) ? std::string() : fn(y);
    FailureOr<Shape> ys = shapeOf(y);
    if (failed(f) || failed(ys))
      return failure();
    if (succeeded(pair)) {
      std::string out = ptr(outputSlot(i), elemOf(y), false);
      seg.count = product(half);
      seg.rule = ruleOf(half);
      seg.code = "    " + delinearise("e", half, "ix") + "\n    float mm0 = 0.0f, mm1 = 0.0f;\n" + *pair;
      seg.code += "    kiln::stv(" + out + ", " + linearise("ix", *ys) + ", y0);\n";
      seg.code += "    kiln::stv(" + out + ", " + linearise("jx", *ys) + ", y1);\n";
      segments.push_back(seg);
      continue;
    }
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

} // namespace kiln::codegen::detail
