//===- ExecInterpreter.h - run lowered kiln_exec functions on the host --*- C++ -*-===//
//
// Evaluates a function after lowering (and arena planning) the way the
// runtime will run it: arenas are byte arrays, buffer slices windows into
// them, views reinterpretations, weight slots loaded with their layout
// transforms, and each launch evaluates its kernel's kiln.fused body on the
// bytes its input buffers hold, writing its outputs' bytes. A plan that lets
// two live buffers overlap therefore changes the results.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERP_EXECINTERPRETER_H
#define KILN_INTERP_EXECINTERPRETER_H

#include "interp/Interpreter.h"

namespace kiln::interp {

/// Whether `func` is in kiln_exec form (its arguments are buffers).
bool isExecFunction(mlir::func::FuncOp func);

/// Evaluates an exec-form `func`; inputs bind its argument buffers (their
/// dynamic dimensions take the inputs' sizes). Planned buffers hold exactly
/// their static shape, so steps are evaluated at the sizes lowering planned.
mlir::LogicalResult evaluateExec(mlir::func::FuncOp func, const std::vector<host::Tensor> &inputs,
                                 const WeightProvider &weights,
                                 std::vector<host::Tensor> &results);

} // namespace kiln::interp

#endif
