//===- kiln-translate.cpp - import models into the kiln dialect -----------===//
//
//   kiln-translate --import-hf DIR [--dtype f32|bf16|f16] [-o FILE]
//
// Prints the imported IR. Reads config.json and the safetensors headers only.
//
//===----------------------------------------------------------------------===//
#include "frontend/hf/HFImporter.h"
#include "ir/Kiln/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

static cl::opt<std::string> importHF("import-hf",
                                     cl::desc("a Hugging Face model directory to import"),
                                     cl::value_desc("dir"));
static cl::opt<std::string> dtype("dtype",
                                  cl::desc("activation dtype: f32, bf16 or f16 "
                                           "(default: the model's)"));
static cl::opt<std::string> output("o", cl::desc("output file"), cl::init("-"));

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "kiln model importer\n");
  if (importHF.empty()) {
    llvm::errs() << "kiln-translate: nothing to do; give --import-hf DIR\n";
    return 2;
  }
  mlir::MLIRContext context;
  kiln::Status status = kiln::Status::ok();
  kiln::hf::ImportOptions options;
  options.computeDType = dtype;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      kiln::hf::importHFModel(context, importHF, options, status);
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
