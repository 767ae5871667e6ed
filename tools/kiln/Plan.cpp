//===- Plan.cpp - kiln plan: the memory manifest before anything loads ----===//
//
// Compiles the model (graph passes, lowering, arena planning; no weight data
// is read) and adds up where every byte will live on the target GPU:
//
//   weights          every weight slot the engine binds, once
//   activations      the larger of the prefill and decode arenas
//   KV cache         bytes per token from the cache's type; the pool for
//                    max-batch sequences of max-seq tokens, in whole pages
//   workspace        split-KV partials and argmax candidates of the largest
//                    kernel, as the code generator sized them
//   CUDA graphs      an estimated reserve for the captured decode steps
//
// then the largest batch at max-seq (and the tokens of KV) that fit what
// the GPU has left after a reserve for the CUDA context.
//
//===----------------------------------------------------------------------===//
#include "tools/kiln/Plan.h"

#include "frontend/hf/HFConfig.h"
#include "frontend/hf/HFImporter.h"
#include "frontend/onnx/ONNXImporter.h"
#include "codegen/KernelEmitter.h"
#include "ir/Exec/ExecOps.h"
#include "ir/Kiln/KilnOps.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "passes/exec/BufferLiveness.h"
#include "runtime/target/Target.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>

using namespace mlir;
namespace ex = kiln::exec;

namespace kiln::tool {

namespace {

/// The CUDA context, cuBLAS and allocator slack the runtime does not own.
constexpr int64_t kContextReserve = int64_t(1) << 30;
/// Per captured decode graph (one per batch bucket): nodes and parameters.
constexpr int64_t kGraphBase = int64_t(1) << 20, kGraphPerLaunch = 4096;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Buffer lifetimes as bars: x is the launch index, y the arena offset; one
/// panel per planned function. Each bar has a tooltip with its range.
Status writeSvg(ModuleOp module, const std::string &path, int64_t &buffers) {
  struct Panel {
    std::string name;
    int64_t launches, arena, lowerBound;
    std::vector<ex::BufferLiveness::Interval> ivs;
    std::vector<int64_t> offsets;
  };
  std::vector<Panel> panels;
  buffers = 0;
  for (func::FuncOp f : module.getOps<func::FuncOp>()) {
    ex::BufferLiveness live(f);
    if (live.intervals().empty())
      continue;
    Panel p{f.getName().str(), live.numLaunches(), 0, live.lowerBound(), live.intervals(), {}};
    for (const auto &iv : p.ivs) {
      auto slice = cast<ex::BufferSliceOp>(iv.op);
      p.offsets.push_back(static_cast<int64_t>(slice.getOffset()));
      p.arena = std::max(p.arena, p.offsets.back() + iv.bytes);
    }
    buffers += static_cast<int64_t>(p.ivs.size());
    panels.push_back(std::move(p));
  }
  const double width = 960, panelH = 300, left = 90, top = 40, gap = 70;
  std::ofstream out(path);
  if (!out)
    return Status::error(path + ": cannot write the SVG");
  double height = top + panels.size() * (panelH + gap);
  out << std::setprecision(10);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width + left + 20
      << "\" height=\"" << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel &p = panels[pi];
    double y0 = top + pi * (panelH + gap);
    double sx = width / std::max<int64_t>(1, p.launches + 1);
    double sy = panelH / std::max<int64_t>(1, p.arena);
    out << "<text x=\"" << left << "\" y=\"" << y0 - 10 << "\" font-size=\"14\">@" << p.name
        << ": " << p.ivs.size() << " buffers over " << p.launches << " launches, arena "
        << p.arena << " bytes (lower bound " << p.lowerBound << ")</text>\n";
    out << "<g class=\"panel\" data-function=\"" << p.name << "\">\n";
    out << "<rect x=\"" << left << "\" y=\"" << y0 << "\" width=\"" << width << "\" height=\""
        << panelH << "\" fill=\"none\" stroke=\"black\"/>\n";
    for (size_t i = 0; i < p.ivs.size(); ++i) {
      const auto &iv = p.ivs[i];
      double x = left + iv.start * sx, w = (iv.end - iv.start + 1) * sx;
      double h = std::max(1.0, iv.bytes * sy);
      double y = std::max(y0, y0 + panelH - p.offsets[i] * sy - h);
      int hue = static_cast<int>((i * 47) % 360);
      out << "<rect class=\"buffer\" x=\"" << x << "\" y=\"" << y << "\" width=\"" << w
          << "\" height=\"" << h << "\" fill=\"hsl(" << hue
          << ",60%,65%)\" stroke=\"black\" stroke-width=\"0.3\"><title>buffer " << i << ": "
          << iv.bytes << " bytes at " << p.offsets[i] << ", launches " << iv.start << "-"
          << iv.end << "</title></rect>\n";
    }
    out << "</g>\n";
    out << "<text x=\"" << left << "\" y=\"" << y0 + panelH + 16 << "\">launch 0</text>\n";
    out << "<text x=\"" << left + width - 80 << "\" y=\"" << y0 + panelH + 16 << "\">launch "
        << p.launches << "</text>\n";
    out << "<text x=\"5\" y=\"" << y0 + 12 << "\">" << p.arena << " B</text>\n";
    out << "<text x=\"5\" y=\"" << y0 + panelH << "\">0</text>\n";
  }
  out << "</svg>\n";
  return out ? Status::ok() : Status::error(path + ": write failed");
}

} // namespace

std::unique_ptr<MLIRContext> makeContext() {
  DialectRegistry registry;
  registry.insert<KilnDialect, ex::ExecDialect, func::FuncDialect>();
  auto ctx = std::make_unique<MLIRContext>(registry);
  ctx->loadAllAvailableDialects();
  return ctx;
}

std::vector<int64_t> decodeBucketsOf(const BuildOptions &o) {
  std::vector<int64_t> b;
  if (!o.noDecodeBuckets && o.decodeBuckets.empty())
    for (int64_t n = 1; n < o.maxBatch; n *= 2)
      b.push_back(n);
  else if (!o.noDecodeBuckets)
    for (int64_t n : o.decodeBuckets)
      if (n < o.maxBatch)
        b.push_back(n);
  b.push_back(o.maxBatch);
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

void defaultMaxSeq(BuildOptions &o) {
  if (o.maxSeqGiven || llvm::StringRef(o.model).ends_with(".onnx"))
    return;
  hf::ModelConfig config;
  if (hf::parseConfig(o.model + "/config.json", config) && config.maxPositions > 0 && config.maxPositions < o.maxSeq)
    o.maxSeq = config.maxPositions; // (a config that does not parse is reported by the build)
}

Status buildModule(MLIRContext &ctx, const BuildOptions &o, Stage stage,
                   OwningOpRef<ModuleOp> &module, target::TargetDesc &gpu, int64_t &weightBytes) {
  if (o.maxBatch <= 0 || o.maxSeq <= 0 || o.maxNumTokens <= 0)
    return Status::error("--max-batch, --max-seq and --max-num-tokens must be positive");
  if (o.pageSize <= 0 || o.pageSize > 1024)
    return Status::error("--page-size must be between 1 and 1024");
  KILN_RETURN_IF_ERROR(target::findTarget(o.gpu, gpu));
  Status status = Status::ok();
  if (llvm::StringRef(o.model).ends_with(".onnx")) {
    module = onnx_frontend::importONNXModel(ctx, o.model, status);
    // An ONNX model computes in the dtypes its export holds: a --dtype that
    // asks for another is refused, not ignored.
    if (module && !o.dtype.empty()) {
      std::string held; // the largest float weight's dtype (norms may stay f32 in a bf16 export)
      int64_t largest = 0;
      module->walk([&](WeightOp w) {
        Type et = w.getType().getElementType();
        if (isa<FloatType>(et) && w.getType().hasStaticShape() && w.getType().getNumElements() > largest) {
          largest = w.getType().getNumElements();
          held.clear();
          llvm::raw_string_ostream(held) << et; // f32, bf16, f16: --dtype's spelling
        }
      });
      if (!held.empty() && held != o.dtype)
        return Status::error("--dtype " + o.dtype + ": " + o.model + " holds " + held +
                             " weights, and an ONNX model computes in the dtypes of its export; export it in " +
                             o.dtype + ", or drop --dtype");
    }
  } else {
    hf::ModelConfig config;
    KILN_RETURN_IF_ERROR(hf::parseConfig(o.model + "/config.json", config));
    if (config.maxPositions > 0 && o.maxSeq > config.maxPositions) {
      if (config.family->learnedPositions)
        return Status::error("--max-seq " + std::to_string(o.maxSeq) + " exceeds the " +
                             std::to_string(config.maxPositions) + " positions " + o.model +
                             " has embeddings for");
      llvm::errs() << "kiln: note: --max-seq " << o.maxSeq << " is beyond the "
                   << config.maxPositions << " positions " << o.model << " was trained for\n";
    }
    hf::ImportOptions io;
    io.computeDType = o.dtype;
    module = hf::importHFModel(ctx, o.model, io, status);
  }
  if (!module)
    return status;
  // An export that fixed its batch (input_ids [1, T], torch.onnx's default
  // without a dynamic batch dimension) takes that many sequences a step.
  // (The model's function, the first: the entry points come later.)
  auto funcs = module->getOps<func::FuncOp>();
  if (!funcs.empty() && (*funcs.begin()).getNumArguments()) {
    auto ids = dyn_cast<RankedTensorType>((*funcs.begin()).getArgumentTypes()[0]);
    if (ids && ids.getRank() == 2 && !ids.isDynamicDim(0) && o.maxBatch > ids.getDimSize(0))
      return Status::error(o.model + " fixes the batch of its input at " + std::to_string(ids.getDimSize(0)) +
                           " sequence(s) (exported without a dynamic batch dimension), so --max-batch " +
                           std::to_string(o.maxBatch) + " cannot be compiled: use --max-batch " +
                           std::to_string(ids.getDimSize(0)) +
                           ", or export with dimension 0 of input_ids dynamic");
  }

  // Weights the engine binds, each tensor once (graph level: before merges).
  std::set<std::string> seen;
  weightBytes = 0;
  module->walk([&](WeightOp w) {
    if (seen.insert(w.getName().str()).second)
      weightBytes += ex::tensorBytes(w.getType());
  });
  if (stage == Stage::Graph)
    return Status::ok();

  int64_t prefillTokens = std::min(o.maxNumTokens, o.maxSeq);
  PassManager pm(&ctx, ModuleOp::getOperationName());
  GraphPipelineOptions g;
  g.pageSize = o.pageSize;
  g.target = gpu.name;
  g.decodeBatch = o.maxBatch;
  for (int64_t n : o.decodeBuckets)
    if (n < 1 || n > o.maxBatch)
      return Status::error("--decode-buckets: " + std::to_string(n) + " is not between 1 and --max-batch " +
                           std::to_string(o.maxBatch));
  if (std::vector<int64_t> buckets = decodeBucketsOf(o); buckets.size() > 1)
    g.decodeBuckets = buckets;
  g.prefillTokens = prefillTokens;
  g.context = o.maxSeq;
  g.appendInAttention = o.appendInAttention;
  g.epilogueWarps = o.epilogueWarpgroup != 0;
  g.ropeTables = o.ropeTables;
  g.quantizeBits = o.quantizeBits;
  g.groupSize = o.groupSize;
  g.quantizeLmHead = o.quantizeLmHead;
  buildGraphPipeline(pm, g);
  if (stage == Stage::Exec) {
    MemoryPipelineOptions mem;
    mem.maxBatch = o.maxBatch;
    mem.maxTokens = prefillTokens;
    buildMemoryPipeline(pm, mem);
  }
  if (failed(pm.run(*module)))
    return Status::error("compiling " + o.model + " failed (see the diagnostics above)");
  return Status::ok();
}

Status planMemory(ModuleOp module, const BuildOptions &o, const target::TargetDesc &gpu,
                  int64_t weightBytes, int64_t workspace, MemoryPlan &m) {
  m = MemoryPlan();
  m.weights = weightBytes;
  m.target = gpu.name;
  m.gpuBytes = gpu.memoryBytes;
  m.contextReserve = kContextReserve;
  for (ex::ArenaOp a : module.getOps<ex::ArenaOp>()) {
    int64_t size = static_cast<int64_t>(a.getSize());
    auto lb = a->getAttrOfType<IntegerAttr>("lower_bound");
    int64_t &arena = a.getSymName().starts_with("decode") ? m.arenaDecode : m.arenaPrefill;
    arena = std::max(arena, size); // decode's buckets share one
    m.arenaLowerBound = std::max(m.arenaLowerBound, lb ? lb.getInt() : 0);
  }
  auto decode = module.lookupSymbol<func::FuncOp>("decode");
  if (!decode || decode.getNumArguments() != 5)
    return Status::error("the compiled model has no @decode over a KV cache");
  auto cache = cast<ex::BufferType>(decode.getArgumentTypes()[4]).getView();
  int64_t elt = std::max<int64_t>(1, cache.getElementTypeBitWidth() / 8);
  m.pageSize = cache.getDimSize(3);
  m.kvPerToken = cache.getDimSize(0) * 2 * cache.getDimSize(4) * cache.getDimSize(5) * elt;
  m.pagesPerSeq = ceilDiv(o.maxSeq, m.pageSize);
  m.kvPool = o.maxBatch * m.pagesPerSeq * m.pageSize * m.kvPerToken;

  // Workspace: the largest any kernel asks for (split-KV partials, argmax
  // candidates), as the code generator sized it for the largest step.
  m.workspace = workspace;
  for (ex::LaunchOp l : decode.getOps<ex::LaunchOp>()) {
    (void)l;
    ++m.launchesDecode;
  }
  // The runtime captures a decode graph per bucket for each input buffer
  // (two, alternating while steps are launched ahead) with the step's ids
  // uploaded or fed from the step before -- four -- and once more the
  // first step's, timed with programmatic dependent launch the other way.
  m.buckets = 0;
  for (func::FuncOp f : module.getOps<func::FuncOp>())
    m.buckets += f.getSymName() == "decode" || f.getSymName().starts_with("decode_b");
  m.graphs = (4 * m.buckets + 1) * (kGraphBase + m.launchesDecode * kGraphPerLaunch);
  int64_t arena = m.arena();
  m.total = m.weights + arena + m.kvPool + m.workspace + m.graphs;

  int64_t free = m.gpuBytes - kContextReserve - m.weights - arena - m.workspace - m.graphs;
  int64_t pageBytes = m.pageSize * m.kvPerToken;
  m.kvTokensFree = free > 0 ? free / pageBytes * m.pageSize : 0;
  m.maxBatchAtSeq = free > 0 ? free / (m.pagesPerSeq * pageBytes) : 0;
  return Status::ok();
}

int plan(const PlanOptions &po) {
  const BuildOptions &o = po.build;
  auto fail = [](const std::string &m) {
    llvm::errs() << "kiln plan: " << m << "\n";
    return 1;
  };
  if (llvm::StringRef(o.model).ends_with(".onnx"))
    return fail(o.model + ": kiln plan takes a Hugging Face model directory (ONNX models are "
                          "not planned yet)");
  std::unique_ptr<MLIRContext> context = makeContext();
  MLIRContext &ctx = *context;
  OwningOpRef<ModuleOp> module;
  target::TargetDesc gpu;
  int64_t weightBytes = 0;
  if (Status s = buildModule(ctx, o, Stage::Exec, module, gpu, weightBytes); !s)
    return fail(s.message());
  std::vector<codegen::EmittedKernel> kernels;
  codegen::EmitOptions eo;
  eo.maxBatch = o.maxBatch;
  eo.maxTokens = std::min(o.maxNumTokens, o.maxSeq);
  eo.wgmma = o.wgmma;
  eo.warpSpecialize = gpu.arch == "sm_90a" ? o.warpSpecialize : 0;
  eo.exactAttention = o.exactAttention;
  eo.attentionWs = o.attentionWs;
  eo.attentionBlockKv = o.attentionBlockKv;
  eo.decodeGemmStages = o.decodeGemmStages;
  eo.decodeAttentionMma = o.decodeAttentionMma;
  eo.decodeClusterSplit = o.decodeClusterSplit;
  eo.decodeGateTileN = o.decodeGateTileN;
  eo.sms = gpu.smCount;
  eo.cluster = o.cluster;
  eo.epilogueWarpgroup = o.epilogueWarpgroup;
  if (failed(codegen::emitKernels(*module, eo, kernels)))
    return fail("generating the kernels of " + o.model + " failed (see the diagnostics above)");
  codegen::mergeIdenticalKernels(kernels); // as kiln compile shares them (their workspace once)
  MemoryPlan m;
  if (Status s = planMemory(*module, o, gpu, weightBytes, codegen::totalWorkspace(kernels, eo), m); !s)
    return fail(s.message());
  int64_t arena = m.arena();
  int64_t buckets = m.buckets;

  int64_t svgBuffers = 0;
  if (!po.svg.empty())
    if (Status s = writeSvg(*module, po.svg, svgBuffers); !s)
      return fail(s.message());

  if (po.json) {
    llvm::json::Object out{
        {"model", o.model},
        {"target", m.target},
        {"gpu_bytes", m.gpuBytes},
        {"max_batch", o.maxBatch},
        {"max_seq", o.maxSeq},
        {"weights_bytes", m.weights},
        {"activation_arena_bytes", arena},
        {"arena_prefill_bytes", m.arenaPrefill},
        {"arena_decode_bytes", m.arenaDecode},
        {"arena_lower_bound_bytes", m.arenaLowerBound},
        {"kv_bytes_per_token", m.kvPerToken},
        {"kv_page_tokens", m.pageSize},
        {"kv_pool_bytes", m.kvPool},
        {"workspace_bytes", m.workspace},
        {"cuda_graph_reserve_bytes", m.graphs},
        {"context_reserve_bytes", kContextReserve},
        {"total_bytes", m.total},
        {"fits", m.total + kContextReserve <= m.gpuBytes},
        {"max_batch_at_max_seq", m.maxBatchAtSeq},
        {"kv_tokens_that_fit", m.kvTokensFree},
        {"decode_buckets", llvm::json::Array(decodeBucketsOf(o))},
    };
    if (!po.svg.empty())
      out["svg_buffers"] = svgBuffers;
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(out))) << "\n";
    return 0;
  }
  auto &os = llvm::outs();
  auto gb = [](int64_t b) { return llvm::format("%10.3f GB", b / 1e9); };
  os << "kiln plan " << o.model << " on " << m.target << " (" << gb(m.gpuBytes) << "), batch "
     << o.maxBatch << " x " << o.maxSeq << " tokens\n";
  os << "  weights            " << gb(m.weights) << "  (" << m.weights << " bytes)\n";
  os << "  activation arena   " << gb(arena) << "  (prefill " << m.arenaPrefill << ", decode "
     << m.arenaDecode << " bytes; lower bound " << m.arenaLowerBound << ")\n";
  os << "  KV cache           " << gb(m.kvPool) << "  (" << m.kvPerToken << " bytes per token, "
     << m.pagesPerSeq << " pages of " << m.pageSize << " tokens per sequence)\n";
  os << "  workspace          " << gb(m.workspace) << "\n";
  os << "  CUDA graphs        " << gb(m.graphs) << "  (" << 4 * buckets + 1 << " graphs: " << buckets
     << " batch bucket" << (buckets == 1 ? "" : "s") << " x 4 + 1, up to " << m.launchesDecode
     << " launches each; estimate)\n";
  os << "  total              " << gb(m.total) << "  + " << gb(kContextReserve)
     << " CUDA context reserve: "
     << (m.total + kContextReserve <= m.gpuBytes ? "fits" : "does NOT fit") << "\n";
  os << "  largest batch at " << o.maxSeq << " tokens: " << m.maxBatchAtSeq << " ("
     << m.kvTokensFree << " tokens of KV fit)\n";
  return 0;
}

} // namespace kiln::tool
