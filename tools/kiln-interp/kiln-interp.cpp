//===- kiln-interp.cpp - evaluate kiln IR on the host ---------------------===//
//
//   kiln-interp model.mlir [--entry F] [--input x.npy ...] [--weights DIR]
//               [--seed N] [--dynamic-size N] [--int-range N]
//               [--output-dir DIR] [--print]
//   kiln-interp model.mlir --check-pipeline "builtin.module(canonicalize)"
//   kiln-interp model.mlir --weights DIR --check-kv-cache "builtin.module(kiln-insert-kv-cache)"
//
// Inputs come from .npy files or, without --input, from the seed; weights
// from `DIR/<name>.npy` or, without --weights, from the seed.
//
//===----------------------------------------------------------------------===//
#include "frontend/onnx/ONNXImporter.h"
#include "interp/Interpreter.h"
#include "interp/Npy.h"
#include "interp/PipelineCheck.h"
#include "ir/Exec/ExecDialect.h"
#include "ir/Kiln/KilnDialect.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <sys/stat.h>

using namespace mlir;
namespace cl = llvm::cl;
static cl::OptionCategory kilnOptions("kiln-interp options");
using kiln::host::Tensor;

static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.mlir>"),
                                      cl::Required, cl::cat(kilnOptions));
static cl::opt<std::string> entry("entry", cl::desc("function to evaluate"), cl::cat(kilnOptions));
static cl::list<std::string> inputs("input", cl::desc("an input .npy, one per argument"), cl::cat(kilnOptions));
static cl::opt<std::string> weightsDir(
    "weights", cl::desc("an .onnx file's initializers, a model directory with "
                        "safetensors, or a directory of <name>.npy"), cl::cat(kilnOptions));
static cl::opt<uint64_t> seed("seed", cl::desc("seed of random inputs and weights"),
                              cl::init(0), cl::cat(kilnOptions));
static cl::opt<int64_t> dynamicSize("dynamic-size",
                                    cl::desc("size of dynamic dims of random inputs"),
                                    cl::init(8), cl::cat(kilnOptions));
static cl::opt<int64_t> intRange("int-range",
                                 cl::desc("random integer inputs are in [0, N)"),
                                 cl::init(16), cl::cat(kilnOptions));
static cl::opt<std::string> outputDir("output-dir",
                                      cl::desc("write result<i>.npy here"), cl::cat(kilnOptions));
static cl::opt<bool> print("print", cl::desc("print each result"), cl::cat(kilnOptions));
static cl::opt<std::string> checkPipeline(
    "check-pipeline", cl::desc("check that this pass pipeline preserves the outputs"), cl::cat(kilnOptions));

static cl::opt<std::string> checkKvCache(
    "check-kv-cache",
    cl::desc("check that this pipeline's @prefill and @decode reproduce @forward's logits"), cl::cat(kilnOptions));

static cl::opt<int64_t> prefillChunk(
    "prefill-chunk", cl::desc("with --check-kv-cache: prefill prompts in chunks of N tokens"),
    cl::init(0), cl::cat(kilnOptions));

static void printTensor(llvm::raw_ostream &os, llvm::StringRef what, unsigned i,
                        const Tensor &t) {
  os << what << " " << i << ": " << kiln::host::dtypeName(t.dtype())
     << kiln::host::shapeToString(t.shape());
  int64_t n = t.numel(), shown = std::min<int64_t>(n, 8);
  os << " = [";
  for (int64_t j = 0; j < shown; ++j) {
    os << (j ? ", " : "");
    if (kiln::host::isFloat(t.dtype()))
      os << t.get(j);
    else
      os << static_cast<int64_t>(t.get(j));
  }
  os << (n > shown ? ", ...]" : "]") << "\n";
  // For logits-shaped results, the argmax of each row: the greedy tokens.
  if (what == "result" && kiln::host::isFloat(t.dtype()) && t.rank() >= 2) {
    int64_t cols = t.shape().back();
    os << "  argmax of each row:";
    for (int64_t r = 0; r < n / cols; ++r) {
      int64_t best = 0;
      for (int64_t c = 1; c < cols; ++c)
        if (t.get(r * cols + c) > t.get(r * cols + best))
          best = c;
      os << " " << best;
    }
    os << "\n";
  }
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  kiln::registerKilnPasses();
  kiln::registerKilnPipelines();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) { os << "kiln-interp " KILN_VERSION_STRING " (LLVM/MLIR " LLVM_VERSION_STRING ")\n"; });
  cl::HideUnrelatedOptions(kilnOptions);
  cl::ParseCommandLineOptions(argc, argv, "kiln IR interpreter\n");

  DialectRegistry registry;
  registry.insert<kiln::KilnDialect, kiln::exec::ExecDialect, func::FuncDialect>();
  MLIRContext context(registry);
  std::string err;
  auto file = openInputFile(inputFile, &err);
  if (!file) {
    llvm::errs() << "kiln-interp: " << err << "\n";
    return 1;
  }
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(sm, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sm, &context);
  if (!module)
    return 1;

  // --weights DIR: a model directory's safetensors, else DIR/<name>.npy.
  kiln::interp::WeightProvider weights = kiln::interp::randomWeights(seed);
  if (llvm::StringRef(weightsDir).ends_with(".onnx")) {
    kiln::Status s = kiln::Status::ok();
    FailureOr<kiln::interp::WeightProvider> w = kiln::onnx_frontend::onnxWeights(weightsDir, s);
    if (failed(w)) {
      llvm::errs() << "kiln-interp: " << s.message() << "\n";
      return 1;
    }
    weights = *w;
  } else if (!weightsDir.empty()) {
    std::string why;
    FailureOr<kiln::interp::WeightProvider> st =
        kiln::interp::safetensorsWeights(weightsDir, why);
    weights = succeeded(st) ? *st : kiln::interp::npyWeights(weightsDir);
  }
  if (!checkKvCache.empty()) {
    kiln::interp::KvCheckOptions opts;
    opts.seed = seed;
    opts.prefillChunk = prefillChunk;
    std::string report;
    auto transform = [&](ModuleOp m) -> LogicalResult {
      std::string e;
      LogicalResult r = kiln::interp::runPipeline(m, checkKvCache, e);
      if (!e.empty())
        report += e + "\n";
      return r;
    };
    LogicalResult r =
        kiln::interp::checkKvCacheMatchesForward(*module, transform, weights, opts, report);
    llvm::outs() << report;
    return failed(r) ? 1 : 0;
  }

  if (!checkPipeline.empty()) {
    kiln::interp::CheckOptions opts;
    opts.entry = entry;
    opts.seed = seed;
    opts.dynamicSize = dynamicSize;
    opts.intRange = intRange;
    std::string report;
    LogicalResult r = kiln::interp::checkPipelinePreservesOutputs(*module, checkPipeline,
                                                                  opts, report);
    llvm::outs() << report;
    return failed(r) ? 1 : 0;
  }

  func::FuncOp fn;
  for (func::FuncOp f : module->getOps<func::FuncOp>()) {
    if (f.isExternal() || (!entry.empty() && f.getName() != entry))
      continue;
    if (fn) {
      llvm::errs() << "kiln-interp: " << inputFile
                   << " has several functions; choose one with --entry\n";
      return 1;
    }
    fn = f;
  }
  if (!fn) {
    llvm::errs() << "kiln-interp: " << inputFile << " has no function "
                 << (entry.empty() ? std::string("with a body") : "@" + entry) << "\n";
    return 1;
  }

  std::vector<Tensor> args;
  if (inputs.empty()) {
    args = kiln::interp::randomInputs(fn, seed, dynamicSize, intRange);
  } else {
    for (const std::string &path : inputs) {
      Tensor t;
      if (kiln::host::Status s = kiln::interp::readNpy(path, t); !s) {
        llvm::errs() << "kiln-interp: " << s.message() << "\n";
        return 1;
      }
      // .npy has no bf16: a float input is cast to the argument's dtype.
      if (args.size() < fn.getNumArguments()) {
        FailureOr<kiln::host::DType> dt =
            kiln::interp::tensorDType(fn.getArgumentTypes()[args.size()]);
        if (succeeded(dt) && *dt != t.dtype() && kiln::host::isFloat(*dt) &&
            kiln::host::isFloat(t.dtype())) {
          Tensor c(*dt, t.shape());
          (void)kiln::host::cast(t, c);
          t = std::move(c);
        }
      }
      args.push_back(std::move(t));
    }
  }
  if (print)
    for (auto [i, t] : llvm::enumerate(args))
      printTensor(llvm::outs(), "input", static_cast<unsigned>(i), t);
  std::vector<Tensor> results;
  if (failed(kiln::interp::evaluate(fn, args, weights, results)))
    return 1;

  for (auto [i, t] : llvm::enumerate(results)) {
    if (print || outputDir.empty())
      printTensor(llvm::outs(), "result", static_cast<unsigned>(i), t);
    if (!outputDir.empty()) {
      ::mkdir(outputDir.c_str(), 0755);
      std::string path = outputDir + "/result" + std::to_string(i) + ".npy";
      if (kiln::host::Status s = kiln::interp::writeNpy(path, t); !s) {
        llvm::errs() << "kiln-interp: " << s.message() << "\n";
        return 1;
      }
    }
  }
  return 0;
}
