//===- ExecOps.cpp - verifiers of kiln_exec ops ---------------------------===//
//
// Every rule here has an `expected-error` case in test/lit/ir/exec/invalid.mlir.
//
//===----------------------------------------------------------------------===//
#include "ir/Exec/ExecOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace kiln::exec;

ArrayRef<StringRef> kiln::exec::kernelFamilies() {
  static const StringRef families[] = {
      "gemv", "gemm", "elementwise", "norm", "rope_kv_append",
      "flash_attention", "paged_attention", "sampling", "embedding", "fused"};
  return families;
}

int64_t kiln::exec::tensorBytes(RankedTensorType t) {
  int64_t bits = t.getElementType().getIntOrFloatBitWidth();
  return t.getNumElements() * std::max<int64_t>(1, bits / 8);
}

static bool isPowerOfTwo(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

LogicalResult ArenaOp::verify() {
  if (static_cast<int64_t>(getSize()) < 0)
    return emitOpError("size must not be negative");
  if (!isPowerOfTwo(static_cast<int64_t>(getAlignment())))
    return emitOpError("alignment must be a power of two, got ")
           << static_cast<int64_t>(getAlignment());
  return success();
}

LogicalResult BufferSliceOp::verify() {
  int64_t offset = static_cast<int64_t>(getOffset());
  int64_t size = static_cast<int64_t>(getSize());
  if (offset < 0 || size < 0)
    return emitOpError("offset and size must not be negative");
  int64_t need = tensorBytes(getType().getView());
  if (size < need)
    return emitOpError("slice of ") << size << " bytes cannot hold "
                                    << getType().getView() << " (" << need
                                    << " bytes)";
  return success();
}

LogicalResult BufferSliceOp::verifySymbolUses(SymbolTableCollection &symbols) {
  auto arena = symbols.lookupNearestSymbolFrom<ArenaOp>(*this, getArenaAttr());
  if (!arena)
    return emitOpError("'") << getArena() << "' is not a kiln_exec.arena";
  int64_t offset = static_cast<int64_t>(getOffset());
  int64_t size = static_cast<int64_t>(getSize());
  int64_t align = static_cast<int64_t>(arena.getAlignment());
  if (offset % align)
    return emitOpError("offset ") << offset << " is not a multiple of the arena alignment "
                                  << align;
  if (offset + size > static_cast<int64_t>(arena.getSize()))
    return emitOpError("slice [") << offset << ", " << offset + size
                                  << ") runs past the arena's "
                                  << static_cast<int64_t>(arena.getSize()) << " bytes";
  return success();
}

LogicalResult WeightSlotOp::verify() {
  if (getName().empty())
    return emitOpError("weight name must not be empty");
  WeightLayout layout = getLayout();
  std::optional<ArrayAttr> sources = getSources();
  bool concat = layout == WeightLayout::ConcatRows || layout == WeightLayout::TransposeConcatRows;
  if (concat && (!sources || sources->size() < 2))
    return emitOpError(stringifyWeightLayout(layout)) << " needs at least two sources";
  if (!concat && sources)
    return emitOpError("only concat_rows and transpose_concat_rows take sources");
  if ((layout == WeightLayout::Transpose || layout == WeightLayout::TransposeConcatRows) &&
      getType().getView().getRank() != 2)
    return emitOpError("transpose applies to 2-D weights");
  return success();
}

LogicalResult KvPagePoolOp::verify() {
  for (auto [name, v] : {std::pair<const char *, uint64_t>{"num_layers", getNumLayers()},
                         {"num_kv_heads", getNumKvHeads()},
                         {"head_dim", getHeadDim()}})
    if (static_cast<int64_t>(v) <= 0)
      return emitOpError(name) << " must be positive";
  if (!isPowerOfTwo(static_cast<int64_t>(getPageSize())))
    return emitOpError("page_size must be a power of two, got ")
           << static_cast<int64_t>(getPageSize());
  if (!isa<FloatType>(getDtype()))
    return emitOpError("dtype must be a float type, got ") << getDtype();
  return success();
}

LogicalResult KernelOp::verify() {
  if (!llvm::is_contained(kernelFamilies(), getFamily()))
    return emitOpError("unknown kernel family '") << getFamily() << "'";
  if (static_cast<int64_t>(getFlops()) < 0 || static_cast<int64_t>(getBytes()) < 0)
    return emitOpError("flops and bytes must not be negative");
  return success();
}

LogicalResult LaunchOp::verify() {
  if (getGrid().size() != 3 || getBlock().size() != 3)
    return emitOpError("grid and block need three entries each");
  int64_t threads = 1;
  for (int64_t d : getGrid())
    if (d <= 0)
      return emitOpError("grid dimensions must be positive");
  for (int64_t d : getBlock()) {
    if (d <= 0)
      return emitOpError("block dimensions must be positive");
    threads *= d;
  }
  if (threads > 1024)
    return emitOpError("block of ") << threads << " threads exceeds 1024";
  int64_t outs = static_cast<int64_t>(getNumOutputs());
  if (outs < 0 || outs > static_cast<int64_t>(getBuffers().size()))
    return emitOpError("num_outputs ") << outs << " is outside [0, "
                                       << getBuffers().size() << "]";
  int64_t smem = static_cast<int64_t>(getSmem());
  if (smem < 0 || smem > 232448)
    return emitOpError("smem of ") << smem << " bytes is outside [0, 232448]";
  return success();
}

LogicalResult AllocOp::verify() {
  if (!getType().getView().hasStaticShape())
    return emitOpError("an arena buffer needs a static shape, got ") << getType().getView();
  return success();
}

LogicalResult ViewOp::verify() {
  RankedTensorType from = getSource().getType().getView(), to = getType().getView();
  if (from.hasStaticShape() && to.hasStaticShape() && tensorBytes(from) != tensorBytes(to))
    return emitOpError("view of ") << tensorBytes(from) << " bytes as " << to << " ("
                                   << tensorBytes(to) << " bytes)";
  return success();
}

LogicalResult LaunchOp::verifySymbolUses(SymbolTableCollection &symbols) {
  if (!symbols.lookupNearestSymbolFrom<KernelOp>(*this, getKernelAttr()))
    return emitOpError("'") << getKernel() << "' is not a kiln_exec.kernel";
  return success();
}

#define GET_OP_CLASSES
#include "ir/Exec/ExecOps.cpp.inc"
