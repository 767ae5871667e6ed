//===- kiln.cpp - the kiln command line -------------------------------------===//
//
//   kiln compile MODEL -o ENGINE [--target sm_90a[,sm_80...]] [--gpu NAME|FILE.json]
//                [--emit graph|fused|exec|cuda|engine] [--max-batch B] [--max-seq S]
//                [--max-num-tokens N] [--page-size P] [--decode-buckets 1,8,64|none] [--threads N] [--embed-weights]
//                [--dtype f32|bf16|f16] [--append-in-attention] [--no-wgmma] [--[no-]warp-specialize]
//                [--exact-attention] [--[no-]attention-ws[=pingpong]] [--attention-block-kv N]
//                [--decode-gemm-stages N] [--decode-attention=mma|tiled] [--no-decode-cluster-split]
//                [--decode-gate-tile 64|128] [--pdl-prefetch BYTES] [--pdl-prefetch-keys N]
//                [--pdl-trigger 0|1]
//                [--quantize int8|int4 [--group-size G] [--quantize-lm-head]] [--quiet]
//   kiln run ENGINE|MODEL [kiln-run options]      (a MODEL is compiled first)
//   kiln bench ENGINE|MODEL [--prompt-len N] [--gen M] [--batch B] [--profile] [--device ...]
//   kiln serve ENGINE|MODEL [--host H] [--port P] [--api-key KEY] [--device ...]  (kiln-serve)
//   kiln inspect MODEL|ENGINE [--json] [--arch sm_90]
//   kiln plan MODEL [--max-batch B] [--max-seq S] [--gpu NAME|FILE.json]
//             [--max-num-tokens N] [--page-size P] [--decode-buckets ...] [--json] [--svg FILE]
//
// MODEL is a Hugging Face directory or an .onnx file. For a directory,
// `inspect` imports the graph (config.json and safetensors headers; no weight
// data) and prints the architecture, parameter count, bytes by dtype,
// KV-cache bytes per token and a per-layer summary. For ONNX it reads the
// initializers' headers, the past-KV inputs and the operators used. `plan`
// compiles the model and prints its memory manifest (tools/kiln/Plan.cpp).
//
//===----------------------------------------------------------------------===//
#include "frontend/hf/HFImporter.h"
#include "frontend/onnx/ONNXModel.h"
#include "tools/kiln/Compile.h"
#include "tools/kiln/Plan.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <csignal>
#include <map>
#include <regex>

using namespace mlir;

namespace {

// Each command's usage, in the order `kiln --help` prints them.
const std::pair<const char *, const char *> kUsage[] = {
    {"compile", "kiln compile MODEL -o ENGINE [--target sm_90a[,sm_80...]] [--gpu NAME|FILE.json]\n"
                "                    [--emit graph|fused|exec|cuda|engine] [--max-batch B] [--max-seq S]\n"
                "                    [--max-num-tokens N] [--page-size P] [--decode-buckets 1,8,64|none]\n"
                "                    [--threads N] [--embed-weights]\n"
                "                    [--dtype f32|bf16|f16] [--append-in-attention] [--no-wgmma]\n"
                "                    [--warp-specialize[=cooperative|pingpong] | --no-warp-specialize]\n"
                "                    [--cluster] [--[no-]epilogue-warpgroup] [--exact-attention] [--no-rope-tables]\n"
                "                    [--attention-ws[=pingpong] | --no-attention-ws] [--attention-block-kv 64|128]\n"
                "                    [--decode-gemm-stages N] [--decode-attention=mma|tiled]\n"
                "                    [--no-decode-cluster-split] [--decode-gate-tile 64|128]\n"
                "                    [--pdl-prefetch BYTES] [--pdl-prefetch-keys N] [--pdl-trigger 0|1]\n"
                "                    [--quantize int8|int4 [--group-size 128|-1] [--quantize-lm-head]]\n"
                "                    [--quiet]\n"},
    {"run", "kiln run ENGINE|MODEL [--prompt TEXT | --prompt-ids 1,2] [--max-tokens N]\n"
            "                [--temperature T --top-k K --top-p P --seed S] [--device auto|cuda|host]\n"
            "                [--max-seq S --max-batch B --dtype D --quantize int8|int4 (when compiling a MODEL)]\n"},
    {"bench", "kiln bench ENGINE|MODEL [--prompt-len N] [--gen M] [--batch B] [--profile] [--device auto|cuda|host]\n"},
    {"serve", "kiln serve ENGINE|MODEL [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--model-name NAME]\n"
              "                  [--chat-template FILE] [--max-waiting N]\n"
              "                  [--device auto|cuda|host] [--max-batch B --max-seq S (when compiling a MODEL)]\n"},
    {"inspect", "kiln inspect MODEL|ENGINE [--json] [--arch sm_90]\n"},
    {"plan", "kiln plan MODEL_DIR [--max-batch B] [--max-seq S] [--gpu NAME|FILE.json]\n"
             "                 [--max-num-tokens N] [--page-size P] [--decode-buckets 1,8,64|none]\n"
             "                 [--json] [--svg FILE]\n"},
};

/// Every command's usage (or `only`'s) on `os`.
void printUsage(llvm::raw_ostream &os, llvm::StringRef only = "") {
  bool first = true;
  for (const auto &[cmd, text] : kUsage) {
    if (!only.empty() && only != cmd)
      continue;
    os << (first ? "usage: " : "       ") << text;
    first = false;
  }
}

int usage() {
  printUsage(llvm::errs());
  return 2;
}

int64_t bytesOf(Type t) { return std::max<int64_t>(1, t.getIntOrFloatBitWidth() / 8); }

std::string dtypeName(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

struct LayerStats {
  int64_t params = 0;
  std::map<std::string, int64_t> tensors; // name within the layer -> elements
};

/// Past-KV inputs of an export: [batch, heads, past, head_dim] per K or V.
bool isPastKV(const std::string &name) {
  return name.find("past") != std::string::npos &&
         (name.find("key") != std::string::npos || name.find("value") != std::string::npos);
}

int inspectONNX(const std::string &path, bool json) {
  onnx::ModelProto model;
  if (kiln::Status s = kiln::onnx_frontend::loadModel(path, model); !s) {
    llvm::errs() << "kiln inspect: " << s.message() << "\n";
    return 1;
  }
  int64_t params = 0, kvPerToken = 0;
  std::map<std::string, int64_t> bytesByDType, ops;
  for (const auto &t : model.graph().initializer()) {
    kiln::host::DType dt;
    if (!kiln::onnx_frontend::dtypeOfOnnx(t.data_type(), dt))
      continue;
    int64_t n = 1;
    for (int64_t d : t.dims())
      n *= d;
    if (kiln::host::isFloat(dt))
      params += n;
    bytesByDType[kiln::host::dtypeName(dt)] += n * static_cast<int64_t>(kiln::host::dtypeSize(dt));
  }
  for (const auto &in : model.graph().input()) {
    const auto &dims = in.type().tensor_type().shape().dim();
    kiln::host::DType dt;
    if (!isPastKV(in.name()) || dims.size() != 4 ||
        !kiln::onnx_frontend::dtypeOfOnnx(in.type().tensor_type().elem_type(), dt))
      continue;
    kvPerToken += dims[1].dim_value() * dims[3].dim_value() *
                  static_cast<int64_t>(kiln::host::dtypeSize(dt));
  }
  for (const auto &n : model.graph().node())
    ++ops[n.op_type()];
  std::string producer = model.producer_name() + " " + model.producer_version();
  if (json) {
    llvm::json::Object bytes, opCounts;
    for (const auto &[d, b] : bytesByDType)
      bytes[d] = b;
    for (const auto &[o, c] : ops)
      opCounts[o] = c;
    llvm::json::Object out{{"format", "onnx"},
                           {"producer", producer},
                           {"opset", kiln::onnx_frontend::defaultOpset(model)},
                           {"parameters", params},
                           {"bytes_by_dtype", std::move(bytes)},
                           {"kv_bytes_per_token", kvPerToken},
                           {"nodes", model.graph().node_size()},
                           {"operators", std::move(opCounts)}};
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(out))) << "\n";
    return 0;
  }
  auto &os = llvm::outs();
  os << "model         " << path << " (ONNX, opset " << kiln::onnx_frontend::defaultOpset(model)
     << ", from " << producer << ")\n";
  os << "parameters    " << params << " (" << llvm::format("%.2f", params / 1e9) << " B)\n";
  for (const auto &[d, b] : bytesByDType)
    os << "initializers  " << d << ": " << b << " bytes\n";
  if (kvPerToken)
    os << "kv cache      " << kvPerToken << " bytes per token (from the past key/value inputs)\n";
  else
    os << "kv cache      none in the graph's inputs (a plain forward)\n";
  os << "nodes         " << model.graph().node_size() << ":";
  for (const auto &[o, c] : ops)
    os << " " << o << " " << c;
  os << "\n";
  return 0;
}

int inspect(const std::string &dir, bool json) {
  if (llvm::StringRef(dir).ends_with(".onnx"))
    return inspectONNX(dir, json);
  MLIRContext ctx;
  kiln::Status status = kiln::Status::ok();
  kiln::hf::ModelConfig config;
  if (status = kiln::hf::parseConfig(dir + "/config.json", config); !status) {
    llvm::errs() << "kiln inspect: " << status.message() << "\n";
    return 1;
  }
  kiln::format::SafetensorsIndex tensors;
  if (status = kiln::format::readSafetensorsDir(dir, tensors); !status) {
    llvm::errs() << "kiln inspect: " << status.message() << "\n";
    return 1;
  }
  auto module = kiln::hf::importHFModel(ctx, config, tensors, dir, {}, status);
  if (!module) {
    llvm::errs() << "kiln inspect: " << status.message() << "\n";
    return 1;
  }

  // Count what the graph uses: each kiln.weight once. A packed weight
  // (GPTQ/AWQ qweight) holds the values of its dequantized matrix; its
  // scales, zero points and g_idx are bytes, not parameters.
  int64_t params = 0;
  std::map<std::string, int64_t> bytesByDType, packedValues;
  std::set<std::string> quantMeta;
  module->walk([&](kiln::DequantOp d) {
    if (auto q = d.getQweight().getDefiningOp<kiln::WeightOp>())
      packedValues[q.getName().str()] = cast<RankedTensorType>(d.getType()).getNumElements();
    for (Value v : {d.getScales(), d.getZeros(), d.getGIdx()})
      if (auto w = v ? v.getDefiningOp<kiln::WeightOp>() : kiln::WeightOp())
        quantMeta.insert(w.getName().str());
  });
  std::map<int64_t, LayerStats> layers;
  std::set<std::string> used;
  std::regex layerRe(R"(^(?:model\.layers|transformer\.h)\.(\d+)\.(.*)$)");
  module->walk([&](kiln::WeightOp w) {
    if (!used.insert(w.getName().str()).second)
      return;
    RankedTensorType t = w.getType();
    int64_t stored = t.getNumElements();
    auto packed = packedValues.find(w.getName().str());
    int64_t n = packed != packedValues.end() ? packed->second : quantMeta.count(w.getName().str()) ? 0 : stored;
    params += n;
    bytesByDType[dtypeName(t.getElementType())] += stored * bytesOf(t.getElementType());
    std::smatch m;
    std::string name = w.getName().str();
    if (std::regex_match(name, m, layerRe)) {
      LayerStats &l = layers[std::stoll(m[1])];
      l.params += n;
      l.tensors[m[2]] = n;
    }
  });
  int64_t unused = 0;
  for (const auto &t : tensors.tensors)
    unused += !used.count(t.name);
  // K and V for every layer, in the model's dtype.
  int64_t kvElt = config.dtype == "float32" ? 4 : 2;
  int64_t kvPerToken = config.layers * config.kvHeads * config.headDim * 2 * kvElt;

  // Runs of identical layers print as one line.
  struct Run {
    int64_t first, last;
    const LayerStats *stats;
  };
  std::vector<Run> runs;
  for (const auto &[i, l] : layers) {
    if (!runs.empty() && runs.back().last == i - 1 && runs.back().stats->tensors == l.tensors)
      runs.back().last = i;
    else
      runs.push_back({i, i, &l});
  }
  std::string attn = std::to_string(config.heads) + " query heads, " +
                     std::to_string(config.kvHeads) + " kv heads of " +
                     std::to_string(config.headDim);
  if (config.slidingWindow)
    attn += ", sliding window " + std::to_string(*config.slidingWindow);
  if (config.family->qkNorm)
    attn += ", q/k norm";
  std::string mlp = (config.family->gatedMlp ? "gated " : "") + config.activation + " MLP of " +
                    std::to_string(config.intermediate);
  std::string quant;
  if (config.quant) {
    const kiln::hf::QuantConfig &q = *config.quant;
    quant = q.method + " " + std::to_string(q.bits) + "-bit, " +
            (q.groupSize == -1 ? std::string("one group per column") : "groups of " + std::to_string(q.groupSize)) +
            ", packing " + q.packing + (q.descAct ? ", act order" : "") + "; dequantized to the compute dtype at load";
  }

  if (json) {
    llvm::json::Object bytes;
    for (const auto &[d, b] : bytesByDType)
      bytes[d] = b;
    llvm::json::Array layerArr;
    for (const Run &r : runs)
      layerArr.push_back(llvm::json::Object{{"first", r.first}, {"last", r.last},
                                            {"params_per_layer", r.stats->params}});
    llvm::json::Object out{
        {"architecture", config.family->architecture},
        {"parameters", params},
        {"bytes_by_dtype", std::move(bytes)},
        {"kv_bytes_per_token", kvPerToken},
        {"layers", config.layers},
        {"hidden_size", config.hidden},
        {"attention", attn},
        {"mlp", mlp},
        {"vocab_size", config.vocab},
        {"tied_embeddings", config.tieEmbeddings},
        {"rope", config.family->learnedPositions ? "learned positions" : config.rope.type},
        {"unused_tensors", unused},
        {"layer_runs", std::move(layerArr)},
    };
    if (config.quant)
      out["quantization"] = llvm::json::Object{{"method", config.quant->method},
                                               {"bits", config.quant->bits},
                                               {"group_size", config.quant->groupSize},
                                               {"packing", config.quant->packing},
                                               {"desc_act", config.quant->descAct}};
    else
      out["quantization"] = nullptr;
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(out))) << "\n";
    return 0;
  }
  auto &os = llvm::outs();
  os << "model         " << dir << "\n";
  os << "architecture  " << config.family->architecture << "\n";
  os << "parameters    " << params << " ("
     << llvm::format("%.2f", params / 1e9) << " B)\n";
  for (const auto &[d, b] : bytesByDType)
    os << "weights       " << d << ": " << b << " bytes ("
       << llvm::format("%.2f", b / 1e9) << " GB)\n";
  if (!quant.empty())
    os << "quantization  " << quant << "\n";
  os << "kv cache      " << kvPerToken << " bytes per token (" << config.layers
     << " layers x " << config.kvHeads << " kv heads x " << config.headDim
     << " x K,V x " << kvElt << " bytes)\n";
  os << "embedding     vocab " << config.vocab << " x " << config.hidden
     << (config.tieEmbeddings ? ", tied to the LM head" : "") << "\n";
  os << "positions     "
     << (config.family->learnedPositions ? std::string("learned")
                                         : "rope " + config.rope.type + ", theta " +
                                               std::to_string(static_cast<int64_t>(config.rope.theta)))
     << "\n";
  for (const Run &r : runs)
    os << "layers " << llvm::format("%-6s", (std::to_string(r.first) + "-" + std::to_string(r.last)).c_str())
       << " " << attn << "; " << mlp << "; " << r.stats->params << " parameters each\n";
  if (unused)
    os << "note          " << unused << " tensors in the files are not used by the graph\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  if (argc < 2)
    return usage();
  std::string cmd = argv[1];
  // --help (anywhere: that command's usage) and --version, on stdout.
  if (cmd == "--version" || cmd == "version") {
    llvm::outs() << "kiln " << KILN_VERSION_STRING << " (LLVM/MLIR " << LLVM_VERSION_STRING << ")\n";
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    llvm::outs() << "kiln: compile transformer models into engines and run, serve or inspect them.\n\n";
    printUsage(llvm::outs(), argc > 2 ? llvm::StringRef(argv[2]) : llvm::StringRef());
    return 0;
  }
  for (int i = 2; i < argc; ++i)
    if (llvm::StringRef(argv[i]) == "--help" || llvm::StringRef(argv[i]) == "-h") {
      bool known = false;
      for (const auto &u : kUsage)
        known |= cmd == u.first;
      if (!known)
        break; // an unknown command: its error below
      printUsage(llvm::outs(), cmd);
      return 0;
    }
  if (cmd == "inspect") {
    std::string model, arch;
    bool json = false;
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--json")
        json = true;
      else if (a == "--arch" && i + 1 < argc)
        arch = argv[++i];
      else if (!a.empty() && a[0] == '-')
        return usage();
      else
        model = a;
    }
    if (model.empty())
      return usage();
    if (kiln::tool::looksLikeEngine(model))
      return kiln::tool::inspectEngine(model, json, arch);
    return inspect(model, json);
  }
  if (cmd == "plan" || cmd == "compile") {
    kiln::tool::PlanOptions po;
    kiln::tool::CompileOptions co;
    kiln::tool::BuildOptions &b = cmd == "plan" ? po.build : co.build;
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      auto number = [&](int64_t &out) {
        if (i + 1 >= argc)
          return false;
        char *end = nullptr;
        out = std::strtoll(argv[++i], &end, 10);
        return end && *end == 0;
      };
      auto text = [&](std::string &out) {
        if (i + 1 >= argc)
          return false;
        out = argv[++i];
        return true;
      };
      bool ok = true;
      if (a == "--gpu")
        ok = text(b.gpu);
      else if (a == "--max-batch")
        ok = number(b.maxBatch);
      else if (a == "--dtype")
        ok = text(b.dtype);
      else if (a == "--max-seq")
        ok = number(b.maxSeq), b.maxSeqGiven = true;
      else if (a == "--max-num-tokens")
        ok = number(b.maxNumTokens);
      else if (a == "--page-size")
        ok = number(b.pageSize);
      else if (a == "--decode-buckets") {
        // 1,8,64 (each at most --max-batch, which is always one), or none.
        std::string list;
        ok = text(list);
        if (ok && list == "none") {
          b.noDecodeBuckets = true;
        } else if (ok) {
          llvm::SmallVector<llvm::StringRef> parts;
          llvm::StringRef(list).split(parts, ',', -1, false);
          for (llvm::StringRef p : parts) {
            int64_t n = 0;
            ok &= !p.trim().getAsInteger(10, n) && n > 0;
            b.decodeBuckets.push_back(n);
          }
          ok &= !parts.empty();
        }
      }
      else if (a == "--quantize") {
        std::string q;
        ok = text(q) && (q == "int8" || q == "int4");
        b.quantizeBits = q == "int4" ? 4 : 8;
      } else if (a == "--group-size")
        ok = number(b.groupSize) && (b.groupSize == -1 || b.groupSize > 0), b.groupSizeGiven = true;
      else if (a == "--quantize-lm-head")
        b.quantizeLmHead = true;
      else if (cmd == "plan" && a == "--json")
        po.json = true;
      else if (cmd == "plan" && a == "--svg")
        ok = text(po.svg);
      else if (cmd == "compile" && (a == "-o" || a == "--output"))
        ok = text(co.output);
      else if (cmd == "compile" && a == "--emit")
        ok = text(co.emit);
      else if (cmd == "compile" && a == "--embed-weights")
        co.embedWeights = true;
      else if (cmd == "compile" && a == "--quiet")
        co.quiet = true;
      else if (cmd == "compile" && a == "--append-in-attention")
        b.appendInAttention = true;
      else if (cmd == "compile" && a == "--no-wgmma")
        b.wgmma = false;
      else if (cmd == "compile" && (a == "--warp-specialize" || a == "--warp-specialize=cooperative"))
        b.warpSpecialize = 1;
      else if (cmd == "compile" && a == "--warp-specialize=pingpong")
        b.warpSpecialize = 2;
      else if (cmd == "compile" && a == "--no-warp-specialize")
        b.warpSpecialize = 0;
      else if (cmd == "compile" && a == "--exact-attention")
        b.exactAttention = true;
      else if (cmd == "compile" && a == "--no-attention-ws")
        b.attentionWs = 0;
      else if (cmd == "compile" && a == "--attention-ws")
        b.attentionWs = 1;
      else if (cmd == "compile" && a == "--attention-ws=pingpong")
        b.attentionWs = 2;
      else if (cmd == "compile" && a == "--attention-block-kv")
        ok = number(b.attentionBlockKv) && (b.attentionBlockKv == 64 || b.attentionBlockKv == 128);
      else if (cmd == "compile" && a == "--decode-gemm-stages")
        ok = number(b.decodeGemmStages) && b.decodeGemmStages >= 2 && b.decodeGemmStages <= 8;
      else if (cmd == "compile" && a == "--decode-attention=mma")
        b.decodeAttentionMma = true;
      else if (cmd == "compile" && a == "--decode-attention=tiled")
        b.decodeAttentionMma = false;
      else if (cmd == "compile" && a == "--no-decode-cluster-split")
        b.decodeClusterSplit = false;
      else if (cmd == "compile" && a == "--decode-gate-tile")
        ok = number(b.decodeGateTileN) && (b.decodeGateTileN == 64 || b.decodeGateTileN == 128);
      else if (cmd == "compile" && a == "--pdl-prefetch")
        ok = number(b.pdlPrefetch) && b.pdlPrefetch >= 0 && b.pdlPrefetch <= (1 << 20);
      else if (cmd == "compile" && a == "--pdl-prefetch-keys")
        ok = number(b.pdlPrefetchKeys) && b.pdlPrefetchKeys >= 0 && b.pdlPrefetchKeys <= 4096;
      else if (cmd == "compile" && a == "--pdl-trigger")
        ok = number(b.pdlTrigger) && (b.pdlTrigger == 0 || b.pdlTrigger == 1);
      else if (cmd == "compile" && a == "--cluster")
        b.cluster = true;
      else if (cmd == "compile" && a == "--no-rope-tables")
        b.ropeTables = false;
      else if (cmd == "compile" && a == "--epilogue-warpgroup")
        b.epilogueWarpgroup = 2;
      else if (cmd == "compile" && a == "--no-epilogue-warpgroup")
        b.epilogueWarpgroup = 0;
      else if (cmd == "compile" && a == "--threads") {
        int64_t n = 0;
        ok = number(n) && n > 0 && n <= 256;
        co.threads = static_cast<unsigned>(n);
      } else if (cmd == "compile" && a == "--target") {
        std::string list;
        ok = text(list);
        llvm::SmallVector<llvm::StringRef> parts;
        llvm::StringRef(list).split(parts, ',', -1, false);
        for (llvm::StringRef t : parts)
          co.targets.push_back(t.trim().str());
      } else if (!a.empty() && a[0] != '-' && b.model.empty())
        b.model = a;
      else
        ok = false;
      if (!ok) {
        llvm::errs() << "kiln " << cmd << ": bad argument '" << a << "'\n";
        return usage();
      }
    }
    if (b.model.empty())
      return usage();
    if ((b.groupSizeGiven || b.quantizeLmHead) && b.quantizeBits == 0) {
      llvm::errs() << "kiln " << cmd << ": --group-size and --quantize-lm-head go with --quantize int8|int4\n";
      return 2;
    }
    kiln::tool::defaultMaxSeq(b);
    return cmd == "plan" ? kiln::tool::plan(po) : kiln::tool::compile(co);
  }
  if (cmd == "run" || cmd == "bench" || cmd == "serve") {
    // Runs an engine with kiln-run (the runtime's own tool), or serves it
    // with kiln-serve; a model is compiled first, into a temporary engine.
    if (argc < 3)
      return usage();
    std::string target = argv[2];
    std::vector<std::string> rest;
    kiln::tool::CompileOptions co;
    co.quiet = true;
    int64_t benchBatch = 1;
    bool maxBatchGiven = false;
    for (int i = 3; i < argc; ++i) {
      std::string a = argv[i];
      auto number = [&](int64_t &out) {
        out = i + 1 < argc ? std::strtoll(argv[++i], nullptr, 10) : 0;
        return out > 0;
      };
      if (a == "--max-seq" || a == "--max-batch" || a == "--max-num-tokens") {
        int64_t v;
        if (!number(v))
          return usage();
        (a == "--max-seq" ? co.build.maxSeq : a == "--max-batch" ? co.build.maxBatch : co.build.maxNumTokens) = v;
        co.build.maxSeqGiven |= a == "--max-seq";
        maxBatchGiven |= a == "--max-batch";
      } else if (a == "--dtype" && i + 1 < argc) {
        co.build.dtype = argv[++i];
      } else if (a == "--quantize" && i + 1 < argc) {
        std::string q = argv[++i];
        if (q != "int8" && q != "int4")
          return usage();
        co.build.quantizeBits = q == "int4" ? 4 : 8;
      } else if (a == "--group-size" && i + 1 < argc) {
        co.build.groupSize = std::strtoll(argv[++i], nullptr, 10);
        co.build.groupSizeGiven = true;
      } else if (a == "--quantize-lm-head") {
        co.build.quantizeLmHead = true;
      } else if (a == "--batch" && cmd == "bench") {
        // Passed on; a model compiled here gets room for the batch.
        if (!number(benchBatch))
          return usage();
        rest.push_back(a);
        rest.push_back(std::to_string(benchBatch));
      } else {
        rest.push_back(a);
      }
    }
    if ((co.build.groupSizeGiven || co.build.quantizeLmHead) && co.build.quantizeBits == 0) {
      llvm::errs() << "kiln " << cmd << ": --group-size and --quantize-lm-head go with --quantize int8|int4\n";
      return 2;
    }
    if (!maxBatchGiven && benchBatch > co.build.maxBatch)
      co.build.maxBatch = benchBatch;
    std::string engine = target;
    llvm::SmallString<128> tmp;
    if (!kiln::tool::looksLikeEngine(target)) {
      int fd = -1;
      if (llvm::sys::fs::createTemporaryFile("kiln", "engine", fd, tmp)) {
        llvm::errs() << "kiln " << cmd << ": cannot create a temporary engine file\n";
        return 1;
      }
      llvm::sys::Process::SafelyCloseFileDescriptor(fd);
      co.build.model = target;
      co.output = tmp.str().str();
      kiln::tool::defaultMaxSeq(co.build);
      if (int rc = kiln::tool::compile(co))
        return rc;
      engine = co.output;
    }
    std::string self = llvm::sys::fs::getMainExecutable(argv[0], reinterpret_cast<void *>(&usage));
    llvm::SmallString<256> runner(llvm::sys::path::parent_path(self));
    llvm::sys::path::append(runner, cmd == "serve" ? "kiln-serve" : "kiln-run");
    std::vector<llvm::StringRef> args{runner, engine};
    if (cmd == "bench")
      args.push_back("--bench");
    for (const std::string &a : rest)
      args.push_back(a);
    std::string error;
    // Ctrl-C reaches the whole process group: the server stops on it
    // (kiln-serve resets the disposition it inherits), and this process
    // waits for that, then removes its temporary engine.
    if (cmd == "serve")
      std::signal(SIGINT, SIG_IGN);
    int rc = llvm::sys::ExecuteAndWait(runner, args, std::nullopt, {}, 0, 0, &error);
    if (!tmp.empty())
      llvm::sys::fs::remove(tmp);
    if (rc < 0) {
      llvm::errs() << "kiln " << cmd << ": cannot run " << runner << ": " << error << "\n";
      return 1;
    }
    return rc;
  }
  llvm::errs() << "kiln: unknown command '" << cmd << "' (kiln --help lists them)\n";
  return usage();
}
