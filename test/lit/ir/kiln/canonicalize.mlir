// RUN: kiln-opt %s -split-input-file -canonicalize | FileCheck %s
// Folders of kiln ops.

// A transpose undoing another, and an identity transpose, fold away; a
// transpose that does not undo the first stays.
// CHECK-LABEL: func.func @transpose_pairs
// CHECK-SAME: (%[[X:.*]]: tensor<1x?x4x16xf32>)
// CHECK-NEXT: %[[T:.*]] = kiln.transpose %[[X]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK-NEXT: %[[U:.*]] = kiln.transpose %[[T]] {permutation = array<i64: 0, 1, 3, 2>}
// CHECK-NEXT: return %[[X]], %[[X]], %[[U]]
func.func @transpose_pairs(%x: tensor<1x?x4x16xf32>) -> (tensor<1x?x4x16xf32>, tensor<1x?x4x16xf32>, tensor<1x4x16x?xf32>) {
  %t = kiln.transpose %x {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x4x16xf32> -> tensor<1x4x?x16xf32>
  %back = kiln.transpose %t {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x4x?x16xf32> -> tensor<1x?x4x16xf32>
  %same = kiln.transpose %x {permutation = array<i64: 0, 1, 2, 3>} : tensor<1x?x4x16xf32> -> tensor<1x?x4x16xf32>
  %other = kiln.transpose %t {permutation = array<i64: 0, 1, 3, 2>} : tensor<1x4x?x16xf32> -> tensor<1x4x16x?xf32>
  return %back, %same, %other : tensor<1x?x4x16xf32>, tensor<1x?x4x16xf32>, tensor<1x4x16x?xf32>
}

// -----

// A cast to its own type folds; a real conversion stays.
// CHECK-LABEL: func.func @casts
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>)
// CHECK-NEXT: %[[C:.*]] = kiln.cast %[[X]] : tensor<4xf32> to tensor<4xbf16>
// CHECK-NEXT: return %[[X]], %[[C]]
func.func @casts(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xbf16>) {
  %a = kiln.cast %x : tensor<4xf32> to tensor<4xf32>
  %b = kiln.cast %x : tensor<4xf32> to tensor<4xbf16>
  return %a, %b : tensor<4xf32>, tensor<4xbf16>
}
