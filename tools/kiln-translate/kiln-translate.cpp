//===- kiln-translate.cpp - import models into the kiln dialect -----------===//
//
//   kiln-translate --import-hf DIR [--dtype f32|bf16|f16] [-o FILE]
//   kiln-translate --import-onnx FILE [-o FILE]
//
// Prints the imported IR. An HF import reads config.json and the safetensors
// headers only; an ONNX import reads the graph and its small constants.
//
//===----------------------------------------------------------------------===//
#include "frontend/hf/HFImporter.h"
#include "frontend/onnx/ONNXImporter.h"
#include "ir/Kiln/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;
static cl::OptionCategory kilnOptions("kiln-translate options");

static cl::opt<std::string> importHF("import-hf",
                                     cl::desc("a Hugging Face model directory to import"),
                                     cl::value_desc("dir"), cl::cat(kilnOptions));
static cl::opt<std::string> importONNX("import-onnx", cl::desc("an .onnx file to import"),
                                       cl::value_desc("file"), cl::cat(kilnOptions));
static cl::opt<std::string> dtype("dtype",
                                  cl::desc("activation dtype: f32, bf16 or f16 "
                                           "(default: the model's)"), cl::cat(kilnOptions));
static cl::opt<std::string> output("o", cl::desc("output file"), cl::init("-"), cl::cat(kilnOptions));

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) { os << "kiln-translate " KILN_VERSION_STRING " (LLVM/MLIR " LLVM_VERSION_STRING ")\n"; });
  cl::HideUnrelatedOptions(kilnOptions);
  cl::ParseCommandLineOptions(argc, argv, "kiln model importer\n");
  if (importHF.empty() == importONNX.empty()) {
    llvm::errs() << "kiln-translate: give one of --import-hf DIR or --import-onnx FILE\n";
    return 2;
  }
  mlir::MLIRContext context;
  kiln::Status status = kiln::Status::ok();
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (!importHF.empty()) {
    kiln::hf::ImportOptions options;
    options.computeDType = dtype;
    module = kiln::hf::importHFModel(context, importHF, options, status);
  } else {
    module = kiln::onnx_frontend::importONNXModel(context, importONNX, status);
  }
  if (!module) {
    llvm::errs() << "kiln-translate: " << status.message() << "\n";
    return 1;
  }
  std::string err;
  auto out = mlir::openOutputFile(output, &err);
  if (!out) {
    llvm::errs() << "kiln-translate: " << err << "\n";
    return 1;
  }
  module->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}
