//===- Compile.cpp - kiln compile: a model into an engine file ------------===//
//
// Imports the model (config.json and tensor headers; no weight data unless
// --embed-weights), runs the graph and memory pipelines, generates each
// kernel's CUDA C++ (codegen/KernelEmitter), compiles the distinct sources
// with NVRTC for every target on several threads, and writes the engine
// (docs/engine-format.md): the manifest (JSON: model, limits, KV layout,
// memory plan, weight bindings, kernels, schedules), the CUDA sources, and
// per target the cubins and PTX. `--emit` stops earlier and prints the
// graph, the fused graph, the kiln_exec module or the CUDA.
//
//===----------------------------------------------------------------------===//
#include "tools/kiln/Compile.h"
#include "tools/kiln/Plan.h"
#include "passes/PassUtils.h"

#include "codegen/KernelEmitter.h"
#include "codegen/Nvrtc.h"
#include "ir/Exec/ExecOps.h"
#include "ir/Kiln/KilnOps.h"
#include "runtime/format/Engine.h"
#include "runtime/format/Manifest.h"
#include "runtime/format/OnnxWeights.h"
#include "runtime/format/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

using namespace mlir;
namespace ex = kiln::exec;

namespace kiln::tool {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string typeName(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

llvm::json::Array shapeOf(RankedTensorType t) {
  llvm::json::Array a;
  for (int64_t d : t.getShape())
    a.push_back(ShapedType::isDynamic(d) ? int64_t(-1) : d);
  return a;
}

llvm::json::Object sizeRule(const codegen::SizeRule &r) {
  llvm::json::Array syms;
  for (codegen::Sym s : r.symbols)
    syms.push_back(codegen::symName(s));
  llvm::json::Object o{{"factor", r.factor}, {"symbols", std::move(syms)}, {"divisor", r.divisor}, {"max", r.max}};
  if (r.tiles)
    o["tiles"] = true;
  return o;
}

const char *layoutName(ex::WeightLayout l) {
  switch (l) {
  case ex::WeightLayout::Identity: return "identity";
  case ex::WeightLayout::Transpose: return "transpose";
  case ex::WeightLayout::ConcatRows: return "concat_rows";
  case ex::WeightLayout::TransposeConcatRows: return "transpose_concat_rows";
  }
  return "identity";
}

/// Appends `bytes` to `section` at a 256-byte boundary; returns [offset, size].
llvm::json::Array appendAligned(std::string &section, const std::string &bytes) {
  section.resize((section.size() + 255) / 256 * 256, '\0');
  int64_t off = static_cast<int64_t>(section.size());
  section += bytes;
  return llvm::json::Array{off, static_cast<int64_t>(bytes.size())};
}

/// The functions' schedules: each launch's operands as arena ranges,
/// function arguments or weight slots.
Status schedules(ModuleOp module, const std::map<std::string, int64_t> &kernelIndex,
                 std::map<std::string, int64_t> &weightIndex, llvm::json::Array &weights,
                 llvm::json::Array &out) {
  for (func::FuncOp f : module.getOps<func::FuncOp>()) {
    if (f.isExternal())
      continue;
    int64_t arenaBytes = 0;
    if (auto arena = module.lookupSymbol<ex::ArenaOp>((f.getName() + ".arena").str()))
      arenaBytes = static_cast<int64_t>(arena.getSize());
    llvm::json::Array args;
    for (auto [i, t] : llvm::enumerate(f.getArgumentTypes())) {
      auto view = cast<ex::BufferType>(t).getView();
      auto name = f.getArgAttrOfType<StringAttr>(i, "kiln.name");
      args.push_back(llvm::json::Object{{"name", name ? name.getValue().str() : "arg" + std::to_string(i)},
                                        {"dtype", typeName(view.getElementType())},
                                        {"shape", shapeOf(view)}});
    }
    std::string error;
    auto ref = [&](Value v) -> llvm::json::Value {
      while (auto view = v.getDefiningOp<ex::ViewOp>())
        v = view.getSource();
      if (auto arg = dyn_cast<BlockArgument>(v))
        return llvm::json::Object{{"arg", static_cast<int64_t>(arg.getArgNumber())}};
      if (auto s = v.getDefiningOp<ex::BufferSliceOp>())
        return llvm::json::Object{
            {"arena", llvm::json::Array{static_cast<int64_t>(s.getOffset()), static_cast<int64_t>(s.getSize())}}};
      if (auto w = v.getDefiningOp<ex::WeightSlotOp>()) {
        std::string name = w.getName().str();
        auto [it, fresh] = weightIndex.try_emplace(name, static_cast<int64_t>(weights.size()));
        if (fresh) {
          auto view = w.getType().getView();
          llvm::json::Object o{{"name", name},
                               {"dtype", typeName(view.getElementType())},
                               {"shape", shapeOf(view)},
                               {"layout", layoutName(w.getLayout())},
                               {"bytes", ex::tensorBytes(view)}};
          llvm::json::Array sources, rows;
          if (auto src = w.getSourcesAttr())
            for (Attribute a : src)
              sources.push_back(cast<StringAttr>(a).getValue().str());
          else
            sources.push_back(name);
          if (auto r = w.getSourceRowsAttr())
            for (int64_t n : r.asArrayRef())
              rows.push_back(n);
          o["sources"] = std::move(sources);
          o["source_rows"] = std::move(rows);
          weights.push_back(std::move(o));
        }
        return llvm::json::Object{{"weight", it->second}};
      }
      error = "a launch operand is neither an argument, an arena slice nor a weight slot "
              "(was the memory pipeline run?)";
      return nullptr;
    };
    llvm::json::Array launches, results, resultTypes;
    for (Operation &op : f.getBody().front()) {
      if (auto l = dyn_cast<ex::LaunchOp>(op)) {
        auto it = kernelIndex.find(l.getKernel().str());
        if (it == kernelIndex.end())
          return Status::error("launch of unknown kernel " + l.getKernel().str());
        llvm::json::Array operands;
        for (Value b : l.getBuffers())
          operands.push_back(ref(b));
        llvm::json::Object launch{{"kernel", it->second},
                                  {"operands", std::move(operands)},
                                  {"outputs", static_cast<int64_t>(l.getNumOutputs())},
                                  {"kv_layer", static_cast<int64_t>(l.getKvLayer())}};
        // The launch's planned bytes and FLOPs (its step's rows).
        for (const char *key : {"bytes", "flops"})
          if (auto v = l->getAttrOfType<IntegerAttr>(std::string("kiln.") + key))
            launch[key] = v.getInt();
        launches.push_back(std::move(launch));
      } else if (auto r = dyn_cast<func::ReturnOp>(op)) {
        // @prefill and @decode return (logits, kv_cache, next_tokens).
        static const char *kNames[] = {"logits", "kv_cache", "next_tokens"};
        for (auto [i, v] : llvm::enumerate(r.getOperands())) {
          results.push_back(ref(v));
          auto view = cast<ex::BufferType>(v.getType()).getView();
          std::string name = r.getNumOperands() == 3 ? kNames[i] : "result" + std::to_string(i);
          resultTypes.push_back(llvm::json::Object{
              {"name", name}, {"dtype", typeName(view.getElementType())}, {"shape", shapeOf(view)}});
        }
      }
      if (!error.empty())
        return Status::error(error);
    }
    llvm::json::Object fn{{"name", f.getName().str()},
                          {"arena_bytes", arenaBytes},
                          {"args", std::move(args)},
                          {"launches", std::move(launches)},
                          {"results", std::move(results)},
                          {"result_types", std::move(resultTypes)}};
    // A decode bucket: the most sequences its kernels were chosen for.
    if (auto batch = f->getAttrOfType<IntegerAttr>(kDecodeBatchAttr))
      fn["batch"] = batch.getInt();
    out.push_back(std::move(fn));
  }
  return Status::ok();
}

/// The model's config.json as JSON, or null. An ONNX file's is the one
/// beside it, where exporters (optimum) write it; the runtime reads its
/// end-of-sequence ids.
llvm::json::Value configOf(const std::string &model) {
  llvm::SmallString<256> path(model);
  if (llvm::StringRef(model).ends_with(".onnx"))
    llvm::sys::path::remove_filename(path);
  llvm::sys::path::append(path, "config.json");
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf)
    return nullptr;
  llvm::Expected<llvm::json::Value> v = llvm::json::parse((*buf)->getBuffer());
  if (!v) {
    llvm::consumeError(v.takeError());
    return nullptr;
  }
  return std::move(*v);
}

/// The weights' bytes laid out as the manifest binds them (each slot's
/// layout applied), for --embed-weights.
Status embedWeights(const std::string &model, const llvm::json::Array &weights, std::string &section,
                    llvm::json::Array &ranges) {
  format::SafetensorsIndex index;
  KILN_RETURN_IF_ERROR(format::readWeightIndex(model, index));
  for (const llvm::json::Value &w : weights) {
    const llvm::json::Object &o = *w.getAsObject();
    std::string layout = o.getString("layout")->str();
    if (layout != "identity" && layout != "concat_rows")
      return Status::error("--embed-weights does not apply the '" + layout +
                           "' layout yet; compile without it and let the runtime bind the weights");
    std::string bytes;
    for (const llvm::json::Value &src : *o.getArray("sources")) {
      std::string name = src.getAsString()->str();
      const format::SafetensorsTensor *t = index.find(name);
      if (!t)
        return Status::error(model + " has no tensor '" + name + "'");
      size_t at = bytes.size();
      bytes.resize(at + t->size);
      KILN_RETURN_IF_ERROR(format::readTensorData(*t, bytes.data() + at));
    }
    if (static_cast<int64_t>(bytes.size()) != *o.getInteger("bytes"))
      return Status::error("weight " + o.getString("name")->str() + " has " + std::to_string(bytes.size()) +
                           " bytes in " + model + ", the engine binds " +
                           std::to_string(*o.getInteger("bytes")) +
                           " (a dtype conversion is not applied when embedding)");
    ranges.push_back(appendAligned(section, bytes));
  }
  return Status::ok();
}

} // namespace

int compile(const CompileOptions &o) {
  auto fail = [](const std::string &m) {
    llvm::errs() << "kiln compile: " << m << "\n";
    return 1;
  };
  static const char *kEmits[] = {"graph", "fused", "exec", "cuda", "engine"};
  if (!llvm::is_contained(kEmits, o.emit))
    return fail("--emit takes graph, fused, exec, cuda or engine, not '" + o.emit + "'");
  if (o.emit == "engine" && o.output.empty())
    return fail("name the engine with -o FILE");
  auto progress = [&](const std::string &m) {
    if (!o.quiet)
      llvm::errs() << "kiln compile: " << m << "\n";
  };
  auto start = Clock::now();

  std::unique_ptr<MLIRContext> context = makeContext();
  MLIRContext &ctx = *context;
  OwningOpRef<ModuleOp> module;
  target::TargetDesc gpu;
  int64_t weightBytes = 0;
  Stage stage = o.emit == "graph" ? Stage::Graph : o.emit == "fused" ? Stage::Fused : Stage::Exec;
  if (Status s = buildModule(ctx, o.build, stage, module, gpu, weightBytes); !s)
    return fail(s.message());
  std::vector<std::string> archs = o.targets;
  if (archs.empty())
    archs.push_back(gpu.arch);

  auto writeText = [&](const std::string &text) {
    if (o.output.empty() || o.output == "-") {
      llvm::outs() << text;
      return 0;
    }
    std::error_code ec;
    llvm::raw_fd_ostream f(o.output, ec);
    if (ec)
      return fail("cannot write " + o.output + ": " + ec.message());
    f << text;
    return 0;
  };
  if (stage != Stage::Exec || o.emit == "exec") {
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    return writeText(text);
  }
  progress(llvm::formatv("{0}: compiled the graph in {1:f2} s", o.build.model, secondsSince(start)).str());

  codegen::EmitOptions eo;
  eo.maxBatch = o.build.maxBatch;
  eo.maxTokens = std::min(o.build.maxNumTokens, o.build.maxSeq);
  eo.wgmma = o.build.wgmma;
  eo.warpSpecialize =
      llvm::all_of(archs, [](const std::string &a) { return a == "sm_90a"; }) ? o.build.warpSpecialize : 0;
  eo.exactAttention = o.build.exactAttention;
  eo.attentionWs = o.build.attentionWs;
  eo.attentionBlockKv = o.build.attentionBlockKv;
  eo.decodeGemmStages = o.build.decodeGemmStages;
  eo.decodeAttentionMma = o.build.decodeAttentionMma;
  eo.decodeClusterSplit = o.build.decodeClusterSplit;
  eo.decodeGateTileN = o.build.decodeGateTileN;
  eo.sms = gpu.smCount;
  eo.cluster = o.build.cluster;
  eo.epilogueWarpgroup = o.build.epilogueWarpgroup;
  std::vector<codegen::EmittedKernel> kernels;
  if (failed(codegen::emitKernels(*module, eo, kernels)))
    return fail("generating the kernels of " + o.build.model + " failed (see the diagnostics above)");
  {
    // The sampler (runtime/core/Sampler.cpp) over the decode step's logits.
    auto decodeFn = module->lookupSymbol<func::FuncOp>("decode");
    auto logits = decodeFn && decodeFn.getNumResults() == 3
                      ? dyn_cast<ex::BufferType>(decodeFn.getResultTypes()[0])
                      : ex::BufferType();
    if (!logits || logits.getView().getRank() < 2 || logits.getView().isDynamicDim(logits.getView().getRank() - 1))
      return fail("@decode does not return [batch, ..., vocab] logits to sample from");
    std::string dt = typeName(logits.getView().getElementType());
    FailureOr<codegen::EmittedKernel> sampler =
        codegen::emitSamplingKernel(dt, logits.getView().getShape().back());
    if (failed(sampler))
      return fail("logits of " + dt + " over " + std::to_string(logits.getView().getShape().back()) +
                  " tokens cannot be sampled on the GPU (f32, bf16 or f16, fewer than 2^31 tokens)");
    kernels.push_back(std::move(*sampler));
  }
  if (o.emit == "cuda") {
    std::string text = "// kiln " + std::string(KILN_VERSION_STRING) + ": " +
                       std::to_string(kernels.size()) +
                       " kernels. Each kernel's source is the device library "
                       "(codegen/cuda/*.cuh) followed by its part below.\n";
    for (const codegen::EmittedKernel &k : kernels)
      text += "\n" + k.specialisation;
    return writeText(text);
  }

  // Buckets whose rows chose the same kernels share them (one binary, one
  // workspace region: buckets never run at once).
  const std::map<std::string, std::string> folded = codegen::mergeIdenticalKernels(kernels);
  if (!folded.empty())
    progress(llvm::formatv("{0} kernels identical to another bucket's are shared", folded.size()).str());

  MemoryPlan memory;
  int64_t workspace = codegen::totalWorkspace(kernels, eo);
  if (Status s = planMemory(*module, o.build, gpu, weightBytes, workspace, memory); !s)
    return fail(s.message());

  // NVRTC: every distinct source for every target, on several threads.
  unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<codegen::KernelSource> sources;
  for (const codegen::EmittedKernel &k : kernels)
    sources.push_back({k.name, k.source});
  std::string nvrtc;
  if (Status s = codegen::nvrtcVersion(nvrtc); !s)
    return fail(s.message());
  progress(llvm::formatv("compiling {0} kernels for {1} with NVRTC {2} on {3} threads", kernels.size(),
                         llvm::join(archs, ", "), nvrtc, threads)
               .str());
  auto nvrtcStart = Clock::now();
  std::vector<std::vector<codegen::CompiledKernel>> compiled;
  size_t unique = 0;
  codegen::NvrtcOptions no;
  if (o.build.pdlPrefetch >= 0)
    no.defines.push_back("KILN_PDL_PREFETCH=" + std::to_string(o.build.pdlPrefetch));
  if (o.build.pdlPrefetchKeys >= 0)
    no.defines.push_back("KILN_PDL_PREFETCH_KEYS=" + std::to_string(o.build.pdlPrefetchKeys));
  if (o.build.pdlTrigger >= 0)
    no.defines.push_back("KILN_PDL_TRIGGER=" + std::to_string(o.build.pdlTrigger));
  if (Status s = codegen::compileAll(sources, archs, no, threads, compiled, unique); !s)
    return fail(s.message());
  progress(llvm::formatv("compiled {0} distinct kernels in {1:f1} s", unique, secondsSince(nvrtcStart)).str());

  // Sections and the manifest.
  std::string sourceSection = codegen::deviceLibrary(), weightSection;
  std::vector<std::string> cubinSections(archs.size()), ptxSections(archs.size());
  std::map<std::string, int64_t> kernelIndex;
  llvm::json::Array kernelList;
  for (auto [i, k] : llvm::enumerate(kernels)) {
    kernelIndex[k.name] = static_cast<int64_t>(i);
    llvm::json::Object binaries;
    for (size_t t = 0; t < archs.size(); ++t)
      binaries[archs[t]] = llvm::json::Object{{"cubin", appendAligned(cubinSections[t], compiled[i][t].cubin)},
                                                  {"ptx", appendAligned(ptxSections[t], compiled[i][t].ptx)}};
    llvm::Expected<llvm::json::Value> host = llvm::json::parse(k.hostProgram);
    if (!host)
      return fail("the host program of " + k.name + " is not JSON: " + llvm::toString(host.takeError()));
    llvm::json::Object entry{{"name", k.name},
                             {"host", std::move(*host)},
                             {"family", k.family},
                             {"threads", k.threads},
                             {"smem", k.smem},
                             {"dependent_launch", k.dependentLaunch},
                             {"bytes", k.bytes},
                             {"flops", k.flops},
                             {"grid", sizeRule(k.grid)},
                             {"workspace", sizeRule(k.workspace)},
                             {"source", appendAligned(sourceSection, k.specialisation)},
                             {"binaries", std::move(binaries)}};
    if (!k.tensorMaps.empty()) {
      llvm::json::Array maps;
      for (const codegen::TensorMapSpec &t : k.tensorMaps)
        maps.push_back(llvm::json::Object{{"operand", t.operand},
                                          {"rows", sizeRule(t.rows)},
                                          {"cols", t.cols},
                                          {"box", llvm::json::Array{t.boxRows, t.boxCols}},
                                          {"dtype", t.dtype},
                                          {"swizzle", 128}});
      entry["tensor_maps"] = std::move(maps);
    }
    kernelList.push_back(std::move(entry));
  }
  for (const auto &[from, to] : folded)
    kernelIndex[from] = kernelIndex.at(to);
  std::map<std::string, int64_t> weightIndex;
  llvm::json::Array weights, functions;
  if (Status s = schedules(*module, kernelIndex, weightIndex, weights, functions); !s)
    return fail(s.message());
  // Weights the loader dequantizes (kiln-dequant-at-load), those the
  // slots read.
  llvm::json::Array dequantWeights;
  if (auto table = (*module)->getAttrOfType<DictionaryAttr>(kiln::kDequantWeightsAttr)) {
    std::set<std::string> used;
    for (const llvm::json::Value &w : weights)
      for (const llvm::json::Value &src : *w.getAsObject()->getArray("sources"))
        used.insert(src.getAsString()->str());
    for (NamedAttribute e : table) {
      auto d = dyn_cast<DictionaryAttr>(e.getValue());
      if (!d || !used.count(e.getName().str()))
        continue;
      llvm::json::Object o{{"name", e.getName().str()}};
      for (const char *key : {"qweight", "scales", "zeros", "g_idx", "source", "packing"})
        if (auto str = d.getAs<StringAttr>(key)) // (rtn's packing is a string)
          o[key] = str.getValue().str();
      if (auto packing = d.getAs<kiln::QuantPackingAttr>("packing"))
        o["packing"] = kiln::stringifyQuantPacking(packing.getValue()).str();
      for (const char *key : {"bits", "group_size", "k_axis"})
        if (auto i = d.getAs<IntegerAttr>(key))
          o[key] = i.getInt();
      dequantWeights.push_back(std::move(o));
    }
  }
  if (o.embedWeights && !dequantWeights.empty())
    return fail("--embed-weights does not embed quantized (--quantize, GPTQ, AWQ) weights yet; compile without it "
                "and let the runtime bind the weights");
  if (o.embedWeights) {
    progress("embedding the weights");
    llvm::json::Array ranges;
    if (Status s = embedWeights(o.build.model, weights, weightSection, ranges); !s)
      return fail(s.message());
    for (auto [w, r] : llvm::zip(weights, ranges))
      (*w.getAsObject())["embedded"] = std::move(r);
  }

  auto decode = module->lookupSymbol<func::FuncOp>("decode");
  auto cache = cast<ex::BufferType>(decode.getArgumentTypes()[4]).getView();
  llvm::json::Object kv{{"layers", cache.getDimSize(0)},
                        {"page_size", cache.getDimSize(3)},
                        {"kv_heads", cache.getDimSize(4)},
                        {"head_dim", cache.getDimSize(5)},
                        {"dtype", typeName(cache.getElementType())},
                        {"bytes_per_token", memory.kvPerToken},
                        {"layout", "[layers, pages, 2, page_size, kv_heads, head_dim]"}};
  llvm::json::Array targets;
  for (const std::string &t : archs)
    targets.push_back(t);
  std::string tokenizer;
  if (!llvm::StringRef(o.build.model).ends_with(".onnx") &&
      llvm::sys::fs::exists(o.build.model + "/tokenizer.json"))
    tokenizer = "tokenizer.json";
  auto arch = (*module)->getAttrOfType<StringAttr>("kiln.architecture");
  llvm::json::Object manifest{
      {"kiln_manifest", int64_t(format::kManifestVersion)},
      {"compiler", std::string("kiln ") + KILN_VERSION_STRING},
      {"nvrtc", nvrtc},
      {"model",
       llvm::json::Object{{"source", o.build.model},
                          {"architecture", arch ? arch.getValue().str() : std::string("")},
                          {"config", configOf(o.build.model)},
                          {"tokenizer", tokenizer.empty() ? llvm::json::Value(nullptr) : llvm::json::Value(tokenizer)},
                          {"weights_embedded", o.embedWeights}}},
      {"gpu", gpu.name},
      {"targets", std::move(targets)},
      {"limits", llvm::json::Object{{"max_batch", o.build.maxBatch},
                                    {"max_seq", o.build.maxSeq},
                                    {"max_num_tokens", eo.maxTokens},
                                    {"page_size", o.build.pageSize}}},
      {"kv_cache", std::move(kv)},
      {"memory", llvm::json::Object{{"weights_bytes", memory.weights},
                                    {"arena_prefill_bytes", memory.arenaPrefill},
                                    {"arena_decode_bytes", memory.arenaDecode},
                                    {"kv_pool_bytes", memory.kvPool},
                                    {"workspace_bytes", memory.workspace},
                                    {"cuda_graph_reserve_bytes", memory.graphs},
                                    {"total_bytes", memory.total}}},
      {"weights", std::move(weights)},
      {"dequant_weights", std::move(dequantWeights)},
      {"kernels", std::move(kernelList)},
      {"functions", std::move(functions)},
  };
  std::string manifestText;
  llvm::raw_string_ostream ms(manifestText);
  ms << llvm::formatv("{0:1}", llvm::json::Value(std::move(manifest)));

  format::EngineWriter writer(std::string("kiln ") + KILN_VERSION_STRING);
  Status st = writer.add("manifest", manifestText);
  if (st)
    st = writer.add("cuda_source", sourceSection);
  for (size_t t = 0; st && t < archs.size(); ++t) {
    std::string suffix = archs[t].substr(0, 9);
    st = writer.add("cubin." + suffix, cubinSections[t]);
    if (st)
      st = writer.add("ptx." + suffix, ptxSections[t]);
  }
  if (st && o.embedWeights)
    st = writer.add("weights", weightSection);
  // Check what we wrote as the runtime will read it.
  if (st) {
    format::EngineFile file;
    st = format::parseEngine(writer.serialize(), o.output, file);
    format::EngineManifest parsed;
    if (st)
      st = format::readManifest(file, o.output, parsed);
  }
  if (st)
    st = writer.write(o.output);
  if (!st)
    return fail(st.message());
  uint64_t size = 0;
  llvm::sys::fs::file_size(o.output, size);
  progress(llvm::formatv("wrote {0} ({1:f1} MB, {2} kernels, {3} launches per decode step) in {4:f1} s", o.output,
                         size / 1e6, kernels.size(), memory.launchesDecode, secondsSince(start))
               .str());
  return 0;
}

} // namespace kiln::tool
