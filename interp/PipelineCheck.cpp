//===- PipelineCheck.cpp - check that passes preserve numbers -------------===//
#include "interp/PipelineCheck.h"

#include "interp/ExecInterpreter.h"
#include "interp/Interpreter.h"
#include "ir/Exec/ExecOps.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

LogicalResult runPipeline(ModuleOp m, llvm::StringRef pipeline, std::string &error) {
  // The textual form names its anchor ("builtin.module(...)"): parse it as a
  // whole, so that the passes run on `m` itself rather than on modules nested
  // in it.
  llvm::raw_string_ostream es(error);
  FailureOr<OpPassManager> parsed = parsePassPipeline(pipeline, es);
  if (failed(parsed)) {
    error = "bad pipeline: " + error;
    return failure();
  }
  if (parsed->getOpAnchorName() != ModuleOp::getOperationName() &&
      parsed->getOpAnchorName() != OpPassManager::getAnyOpAnchorName()) {
    error = "the pipeline must be anchored on builtin.module, got " +
            parsed->getOpAnchorName().str();
    return failure();
  }
  PassManager pm(m.getContext(), ModuleOp::getOperationName());
  static_cast<OpPassManager &>(pm) = *parsed;
  return pm.run(m);
}

LogicalResult checkPipelinePreservesOutputs(ModuleOp module, llvm::StringRef pipeline,
                                            const CheckOptions &options,
                                            std::string &report) {
  auto transform = [&](ModuleOp m) -> LogicalResult {
    std::string err;
    LogicalResult r = runPipeline(m, pipeline, err);
    if (!err.empty())
      report += err + "\n";
    return r;
  };
  return checkTransformPreservesOutputs(module, transform, options, report);
}

//===--- KV cache ------------------------------------------------------------===//

namespace {

Tensor intTensor(DType t, host::Shape shape, int64_t fill) {
  Tensor x(t, std::move(shape));
  for (int64_t i = 0; i < x.numel(); ++i)
    x.setInt(i, fill);
  return x;
}

/// Row `row` (of `rowLen` elements) of `t` as a tensor of shape [rowLen].
Tensor rowOf(const Tensor &t, int64_t row, int64_t rowLen) {
  Tensor r(t.dtype(), {rowLen});
  size_t bytes = static_cast<size_t>(rowLen) * host::dtypeSize(t.dtype());
  std::memcpy(r.data(), static_cast<const uint8_t *>(t.data()) + row * bytes, bytes);
  return r;
}

} // namespace

LogicalResult checkKvCacheMatchesForward(ModuleOp module,
                                         const std::function<LogicalResult(ModuleOp)> &transform,
                                         const WeightProvider &weights,
                                         const KvCheckOptions &options, std::string &report) {
  llvm::raw_string_ostream os(report);
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward || forward.getNumArguments() < 1) {
    os << "the reference needs @forward(input_ids, ...)\n";
    return failure();
  }
  OwningOpRef<ModuleOp> after = module.clone();
  if (failed(transform(*after))) {
    os << "the transformation failed\n";
    return failure();
  }
  auto prefill = after->lookupSymbol<func::FuncOp>("prefill");
  auto decode = after->lookupSymbol<func::FuncOp>("decode");
  if (!prefill || !decode || prefill.getNumArguments() != 5 || decode.getNumArguments() != 5) {
    os << "the transformation must produce @prefill and @decode with 5 arguments\n";
    after->print(os);
    return failure();
  }
  // Exec-form entry points take buffers: their views are the tensor types.
  auto viewOf = [](Type t) {
    if (auto b = dyn_cast<exec::BufferType>(t))
      return b.getView();
    return cast<RankedTensorType>(t);
  };
  auto cacheType = viewOf(prefill.getArgumentTypes()[4]);
  auto logitsType = cast<RankedTensorType>(forward.getResultTypes()[0]);
  FailureOr<DType> cacheDType = tensorDType(cacheType);
  int64_t vocab = logitsType.getDimSize(2), page = cacheType.getDimSize(3);
  if (failed(cacheDType) || ShapedType::isDynamic(vocab)) {
    os << "cannot size the cache or the vocabulary\n";
    return failure();
  }

  // A graph traced with a static batch (torch.onnx exports of batch 1) runs
  // one sequence at a time: check the longest prompt alone.
  std::vector<int64_t> lens = options.promptLengths;
  auto idsType = cast<RankedTensorType>(forward.getArgumentTypes()[0]);
  if (!idsType.isDynamicDim(0)) {
    if (idsType.getDimSize(0) != 1) {
      os << "@forward takes a static batch of " << idsType.getDimSize(0) << "\n";
      return failure();
    }
    lens = {*std::max_element(lens.begin(), lens.end())};
  }
  auto B = static_cast<int64_t>(lens.size());
  int64_t steps = options.decodeSteps, maxPrompt = 0, maxPages = 0, totalPages = 0;
  for (int64_t l : lens) {
    maxPrompt = std::max(maxPrompt, l);
    int64_t pages = (l + steps + page - 1) / page;
    maxPages = std::max(maxPages, pages);
    totalPages += pages;
  }
  host::Rng rng(options.seed);
  // Pages handed out in shuffled order, with spare pages nobody owns.
  int64_t poolPages = totalPages + 3;
  std::vector<int64_t> order(static_cast<size_t>(poolPages));
  for (int64_t i = 0; i < poolPages; ++i)
    order[i] = i;
  for (int64_t i = poolPages - 1; i > 0; --i)
    std::swap(order[i], order[rng.next() % static_cast<uint64_t>(i + 1)]);
  Tensor blockTables = intTensor(DType::I32, {B, maxPages}, -1);
  size_t next = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < (lens[b] + steps + page - 1) / page; ++i)
      blockTables.setInt(b * maxPages + i, order[next++]);

  // Token ids and the reference logits, one @forward call per sequence.
  int64_t intRange = std::min<int64_t>(vocab, 1 << 20);
  std::vector<std::vector<int64_t>> ids(static_cast<size_t>(B));
  std::vector<Tensor> want(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = lens[b] + steps;
    Tensor in(DType::I64, {1, n});
    for (int64_t t = 0; t < n; ++t) {
      ids[b].push_back(static_cast<int64_t>(rng.next() % static_cast<uint64_t>(intRange)));
      in.setInt(t, ids[b].back());
    }
    // Explicit-past references take position ids and an empty past.
    std::vector<Tensor> args = {in};
    for (Type t : forward.getArgumentTypes().drop_front()) {
      auto rt = cast<RankedTensorType>(t);
      FailureOr<DType> dt = tensorDType(rt);
      if (failed(dt)) {
        os << "@forward takes an argument of unsupported type\n";
        return failure();
      }
      if (rt.getElementType().isInteger(64) && rt.getRank() == 2) {
        Tensor pos(DType::I64, {1, n});
        for (int64_t t = 0; t < n; ++t)
          pos.setInt(t, t);
        args.push_back(std::move(pos));
        continue;
      }
      host::Shape shape;
      for (int64_t i = 0; i < rt.getRank(); ++i)
        shape.push_back(rt.isDynamicDim(i) ? (i == 0 ? 1 : 0) : rt.getDimSize(i));
      args.emplace_back(*dt, shape);
    }
    std::vector<Tensor> out;
    if (failed(evaluate(forward, args, weights, out))) {
      os << "@forward failed on sequence " << b << "\n";
      return failure();
    }
    want[b] = std::move(out[0]);
  }

  host::Shape cacheShape(cacheType.getShape().begin(), cacheType.getShape().end());
  cacheShape[1] = poolPages;
  Tensor cache(*cacheDType, cacheShape);
  std::vector<float> nan(static_cast<size_t>(cache.numel()), std::nanf(""));
  cache.fromF32(nan);

  bool ok = true;
  int compared = 0;
  // Logit rows against @forward's; next_tokens (when returned) against the
  // argmax of the same call's logits.
  auto compareRow = [&](const char *phase, int64_t b, int64_t pos,
                        const std::vector<Tensor> &got, int64_t row) {
    std::string why;
    llvm::raw_string_ostream w(why);
    Tensor logits = rowOf(got[0], row, vocab);
    if (!sameResult(rowOf(want[b], pos, vocab), logits, options.tolerance, w)) {
      os << phase << ": sequence " << b << " position " << pos << ": " << why << "\n";
      ok = false;
    }
    if (got.size() > 2) {
      int64_t best = 0;
      for (int64_t i = 1; i < vocab; ++i)
        if (logits.get(i) > logits.get(best))
          best = i;
      if (got[2].getInt(row) != best) {
        os << phase << ": sequence " << b << " position " << pos << ": next token "
           << got[2].getInt(row) << ", the logits' argmax is " << best << "\n";
        ok = false;
      }
    }
    ++compared;
  };

  std::vector<Tensor> out;
  // The entry points run as graph functions, or lowered and planned, as the
  // runtime will run them.
  auto run = [&](func::FuncOp f, const std::vector<Tensor> &in, std::vector<Tensor> &res) {
    return isExecFunction(f) ? evaluateExec(f, in, weights, res) : evaluate(f, in, weights, res);
  };
  // Prefill's logits are every position's, or (prefill-logits=last) each
  // sequence's last.
  bool lastOnly = viewOf(prefill.getResultTypes()[0]).getDimSize(1) == 1;
  // Prefill: every prompt in one padded batch, or one sequence per call when
  // the prefill is lowered (its rows planned as one sequence of max_tokens:
  // the runtime's chunked prefill).
  bool perSequence = isExecFunction(prefill);
  // Prompts go in chunks of `prefillChunk` tokens (0: whole), each chunk at
  // its positions and attending to the cache the earlier chunks filled: the
  // runtime's chunked prefill.
  int64_t chunk = options.prefillChunk > 0 ? options.prefillChunk : maxPrompt;
  for (int64_t first = 0; first < B; first += perSequence ? 1 : B) {
    int64_t n = perSequence ? 1 : B;
    int64_t longest = perSequence ? lens[first] : maxPrompt;
    for (int64_t from = 0; from < longest; from += chunk) {
      int64_t width = std::min(chunk, longest - from);
      Tensor prefillIds = intTensor(DType::I64, {n, width}, 0);
      Tensor positions = intTensor(DType::I64, {n, width}, -1);
      Tensor contextLens(DType::I32, {n});
      Tensor tables = intTensor(DType::I32, {n, maxPages}, -1);
      for (int64_t i = 0; i < n; ++i) {
        int64_t b = first + i;
        contextLens.setInt(i, std::min(lens[b], from + width));
        for (int64_t t = from; t < std::min(lens[b], from + width); ++t) {
          prefillIds.setInt(i * width + t - from, ids[b][t]);
          positions.setInt(i * width + t - from, t);
        }
        for (int64_t p = 0; p < maxPages; ++p)
          tables.setInt(i * maxPages + p, blockTables.getInt(b * maxPages + p));
      }
      if (failed(run(prefill, {prefillIds, positions, tables, contextLens, cache}, out))) {
        os << "@prefill failed\n";
        return failure();
      }
      for (int64_t i = 0; i < n; ++i) {
        int64_t b = first + i, end = std::min(lens[b], from + width);
        if (lastOnly) { // the chunk holding the sequence's last token
          if (from < lens[b] && lens[b] <= from + width)
            compareRow("prefill", b, lens[b] - 1, out, i);
          continue;
        }
        for (int64_t t = from; t < end; ++t)
          compareRow("prefill", b, t, out, i * width + t - from);
      }
      cache = std::move(out[1]);
    }
  }

  // Decode: every sequence one token per step, each at its own position.
  Tensor contextLens(DType::I32, {B});
  for (int64_t s = 0; s < steps; ++s) {
    Tensor stepIds(DType::I64, {B, 1}), stepPos(DType::I64, {B, 1});
    for (int64_t b = 0; b < B; ++b) {
      int64_t pos = lens[b] + s;
      stepIds.setInt(b, ids[b][pos]);
      stepPos.setInt(b, pos);
      contextLens.setInt(b, pos + 1);
    }
    out.clear();
    if (failed(run(decode, {stepIds, stepPos, blockTables, contextLens, cache}, out))) {
      os << "@decode failed at step " << s << "\n";
      return failure();
    }
    for (int64_t b = 0; b < B; ++b)
      compareRow("decode", b, lens[b] + s, out, b);
    cache = std::move(out[1]);
  }
  if (ok)
    os << "prefill of " << B << " sequences" << (lastOnly ? " (last-token logits)" : "")
       << (options.prefillChunk > 0 ? " in chunks of " + std::to_string(options.prefillChunk) : "")
       << " and " << steps << " decode steps: " << compared
       << " logit rows agree with @forward\n";
  return success(ok);
}

} // namespace kiln::interp
