//===- Interpreter.h - evaluate kiln functions on host tensors ---*- C++ -*-===//
//
// The numerical oracle of the compiler: walks a `func.func` of kiln ops and
// computes every value with the host reference kernels. Dynamic dimensions
// take the sizes of the actual inputs. Errors (an unsupported op, a shape the
// inputs contradict, a kernel error) are diagnostics on the op's location.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERP_INTERPRETER_H
#define KILN_INTERP_INTERPRETER_H

#include "runtime/kernels/host/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include <functional>
#include <vector>

namespace kiln::interp {

/// Fills `out` (already allocated with the weight's dtype and shape) with the
/// weight called `name`.
using WeightProvider =
    std::function<host::Status(llvm::StringRef name, host::Tensor &out)>;

/// Weights drawn from a seeded generator keyed by name: the same name and seed
/// give the same values, so a function before and after a pass sees the same
/// weights. Uniform in [-scale, scale].
WeightProvider randomWeights(uint64_t seed, double scale = 0.5);
/// Weights read from `<dir>/<name>.npy`, cast to the declared dtype.
WeightProvider npyWeights(std::string dir);
/// Weights read from a model directory's safetensors files (see
/// format::readSafetensorsDir); fails if `dir` has none.
llvm::FailureOr<WeightProvider> safetensorsWeights(const std::string &dir,
                                                   std::string &error);

/// Fills `out` (allocated with the result's dtype and shape) with a weight
/// applying its load-time layout: `transposed` 2-D storage, and/or the row
/// concatenation of `sources` (`sourceRows` rows each).
host::Status loadWeight(const WeightProvider &weights, llvm::StringRef name,
                        std::optional<mlir::ArrayAttr> sources,
                        std::optional<llvm::ArrayRef<int64_t>> sourceRows, bool transposed,
                        host::Tensor &out);

/// `weights`, with the weights kiln-dequant-at-load named in `op`'s module
/// (its `kiln.dequant_weights`) computed from their packed parts, read
/// through `weights` too; `weights` itself where the module has none.
WeightProvider withDequantWeights(const WeightProvider &weights, mlir::Operation *op);

/// The host dtype of a tensor element type; failure for unsupported types.
llvm::FailureOr<host::DType> dtypeOf(mlir::Type elementType);
/// The element dtype of a ranked tensor type; failure for anything else.
llvm::FailureOr<host::DType> tensorDType(mlir::Type type);

/// Evaluates `func` on `inputs` (one per argument, matching the argument
/// types' ranks, dtypes and static dimensions).
mlir::LogicalResult evaluate(mlir::func::FuncOp func,
                             const std::vector<host::Tensor> &inputs,
                             const WeightProvider &weights,
                             std::vector<host::Tensor> &results);

/// Evaluates one kiln op on `operands` (one tensor per operand); weights come
/// from `weights`. Used to fold constants at import time.
/// `kvLayer` is added to the layer of every kv_append/paged_attention op
/// (a kernel body names layer 0; its launch says which layer it serves).
mlir::LogicalResult evaluateOp(mlir::Operation *op, const std::vector<host::Tensor> &operands,
                               const WeightProvider &weights,
                               std::vector<host::Tensor> &results, int64_t kvLayer = 0);

/// Random inputs for `func`'s arguments: dynamic dimensions take
/// `dynamicSize`, floats are uniform in [-1, 1], integers in [0, intRange).
std::vector<host::Tensor> randomInputs(mlir::func::FuncOp func, uint64_t seed,
                                       int64_t dynamicSize, int64_t intRange);

} // namespace kiln::interp

#endif
