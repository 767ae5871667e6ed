//===- kiln-opt.cpp - MlirOptMain with kiln's dialects and passes ---------===//
#include "ir/Exec/ExecDialect.h"
#include "ir/Kiln/KilnDialect.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"

int main(int argc, char **argv) {
  // The options registered before main are LLVM's (backends,
  // instrumentation, ...): hidden (all but --help and --version, which
  // HideUnrelatedOptions keeps), so --help shows MlirOptMain's, registered as
  // it starts, and kiln's passes and pipelines.
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) { os << "kiln-opt " KILN_VERSION_STRING " (LLVM/MLIR " LLVM_VERSION_STRING ")\n"; });
  static llvm::cl::OptionCategory none("none");
  llvm::cl::HideUnrelatedOptions(none);
  mlir::DialectRegistry registry;
  registry.insert<kiln::KilnDialect, kiln::exec::ExecDialect,
                  mlir::func::FuncDialect>();
  kiln::registerKilnPasses();
  kiln::registerKilnPipelines();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
