// RUN: not kiln-opt %s 2>&1 | FileCheck %s
// Malformed IR is a located diagnostic and a non-zero exit, not a crash.

func.func @bad(%x: tensor<4xf32>) {
  // CHECK: malformed.mlir:[[@LINE+1]]:19: error: expected ':'
  %0 = kiln.exp %x tensor<4xf32>
  return
}
