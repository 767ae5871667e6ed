//===- ExecDialect.td - the kiln_exec dialect --------------*- tablegen -*-===//
//
// What will run: kernels with their launch configuration, launches in
// schedule order, buffers as arena slices, weight slots and KV page pools.
// Everything the runtime needs is decided at this level and written into the
// engine. (MLIR dialect names cannot contain '.', so "kiln.exec" is spelled
// `kiln_exec`.)
//
//===----------------------------------------------------------------------===//
#ifndef KILN_EXEC_DIALECT_TD
#define KILN_EXEC_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Exec_Dialect : Dialect {
  let name = "kiln_exec";
  let cppNamespace = "::kiln::exec";
  let summary = "Kernels, launches, arena buffers, weight slots and KV page pools";
  let description = [{
    The executable level of kiln, produced from the fused graph by lowering
    and filled by the memory passes (`buffer-liveness`, `schedule-memory`,
    `plan-arena`). A function body is the schedule: `kiln_exec.launch` ops in
    the order they run, each naming a `kiln_exec.kernel` and the buffers it
    reads and writes.
  }];
  let useDefaultTypePrinterParser = 1;
}

class Exec_Op<string mnemonic, list<Trait> traits = []>
    : Op<Exec_Dialect, mnemonic, traits>;

def Exec_BufferType : TypeDef<Exec_Dialect, "Buffer"> {
  let mnemonic = "buffer";
  let summary = "device memory holding a tensor of a given (maximum) shape";
  let description = [{
    A handle to bytes in an arena, the weights or the KV pool, viewed as the
    tensor type it holds. Buffers the compiler places (`alloc`, then
    `buffer_slice`) have the planned maximum shape (token dimensions sized
    for the largest step), so they are static; buffers the runtime binds
    (step inputs, the KV pool, whose pages are counted at load) may have
    dynamic dimensions.

    ```mlir
    !kiln_exec.buffer<tensor<16x64xbf16>>
    ```
  }];
  let parameters = (ins "::mlir::RankedTensorType":$view);
  let assemblyFormat = "`<` $view `>`";
  let genVerifyDecl = 1;
}

#endif // KILN_EXEC_DIALECT_TD
