//===- DecodeBuckets.cpp - @decode once per batch bucket --------------------===//
//
// See Passes.td (DecodeBuckets).
//
//===----------------------------------------------------------------------===//
#include "passes/PassUtils.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

#include <algorithm>

namespace kiln {
#define GEN_PASS_DEF_DECODEBUCKETS
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

struct DecodeBucketsPass : kiln::impl::DecodeBucketsBase<DecodeBucketsPass> {
  using DecodeBucketsBase::DecodeBucketsBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    auto decode = m.lookupSymbol<func::FuncOp>("decode");
    if (!decode || decode.isExternal()) {
      m.emitError("kiln-decode-buckets: the module has no @decode (run kiln-insert-kv-cache first)");
      return signalPassFailure();
    }
    SmallVector<int64_t> sizes(buckets.begin(), buckets.end());
    llvm::sort(sizes);
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] < 1 || (i && sizes[i] == sizes[i - 1])) {
        m.emitError("kiln-decode-buckets: bucket ") << sizes[i] << (sizes[i] < 1 ? " is not positive" : " is named twice");
        return signalPassFailure();
      }
    }
    if (sizes.empty())
      return;
    Builder b(&getContext());
    decode->setAttr(kDecodeBatchAttr, b.getI64IntegerAttr(sizes.back()));
    SymbolTable symbols(m);
    OpBuilder ob(&getContext());
    ob.setInsertionPointAfter(decode);
    for (int64_t n : ArrayRef(sizes).drop_back()) {
      std::string name = bucketFunctionName(n);
      if (symbols.lookup(name)) {
        m.emitError("kiln-decode-buckets: the module already has @") << name;
        return signalPassFailure();
      }
      auto copy = cast<func::FuncOp>(ob.clone(*decode));
      copy.setSymName(name);
      copy->setAttr(kDecodeBatchAttr, b.getI64IntegerAttr(n));
    }
  }
};

} // namespace
