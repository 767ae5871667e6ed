// share-rope-tables: every rotation of the same positions, frequencies and
// rotary dim reads one kiln.rope_cos_sin; the rotations compute what they
// did (the interpreter, before and after, on random inputs, 2 seeds).
// RUN: kiln-opt %s -kiln-share-rope-tables | FileCheck %s
// RUN: kiln-interp %s --check-pipeline "builtin.module(kiln-share-rope-tables)" | FileCheck %s --check-prefix=NUM
// NUM: compared 12 results: all agree

// CHECK-LABEL: func.func @layer
// CHECK-SAME: (%[[X:.*]]: tensor<2x?x4x16xf32>, %[[K:.*]]: tensor<2x?x2x16xf32>, %[[P:.*]]: tensor<2x?xi64>, %[[P2:.*]]: tensor<1x?xi64>)
// The query and key rotations share one table, made first.
// CHECK-NEXT: %[[T:.*]] = kiln.rope_cos_sin %[[P]] {factor = 8.000000e+00 : f64, original_max_positions = 64 : i64, rotary_dim = 16 : i64, scaling = #kiln<rope_scaling llama3>, theta = 5.000000e+05 : f64} : tensor<2x?xi64> -> tensor<2x?x8x2xf32>
// Other frequencies, rotary dim or positions: a table each.
// CHECK-NEXT: %[[T2:.*]] = kiln.rope_cos_sin %[[P]] {rotary_dim = 16 : i64, theta = 1.000000e+04 : f64}
// CHECK-NEXT: %[[T3:.*]] = kiln.rope_cos_sin %[[P]] {{{.*}}rotary_dim = 8 : i64
// CHECK-NEXT: %[[T4:.*]] = kiln.rope_cos_sin %[[P2]] {{{.*}}rotary_dim = 16 : i64, scaling = #kiln<rope_scaling llama3>
// CHECK-SAME: -> tensor<1x?x8x2xf32>
// CHECK-NEXT: kiln.rope %[[X]], %[[P]] table %[[T]] {{.*}}style = #kiln<rope_style neox>
// CHECK-NEXT: kiln.rope %[[K]], %[[P]] table %[[T]] {{.*}}style = #kiln<rope_style gptj>
// CHECK-NEXT: kiln.rope %[[X]], %[[P]] table %[[T2]]
// CHECK-NEXT: kiln.rope %[[X]], %[[P]] table %[[T3]]
// CHECK-NEXT: kiln.rope %[[X]], %[[P2]] table %[[T4]]
// CHECK-NEXT: kiln.rope %[[K]], %[[P]] table %[[T]]
// CHECK-NOT: rope_cos_sin
func.func @layer(%x: tensor<2x?x4x16xf32>, %k: tensor<2x?x2x16xf32>, %p: tensor<2x?xi64>, %p2: tensor<1x?xi64>)
    -> (tensor<2x?x4x16xf32>, tensor<2x?x2x16xf32>, tensor<2x?x4x16xf32>, tensor<2x?x4x16xf32>, tensor<2x?x4x16xf32>, tensor<2x?x2x16xf32>) {
  %q = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, original_max_positions = 64 : i64} : tensor<2x?x4x16xf32>, tensor<2x?xi64>
  // Its defaults spelled out (factor 1 -> 8 above, low_freq_factor 1): the same table.
  %kr = kiln.rope %k, %p {style = #kiln<rope_style gptj>, theta = 5.0e+05 : f64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, low_freq_factor = 1.0 : f64, original_max_positions = 64 : i64, rotary_dim = 16 : i64} : tensor<2x?x2x16xf32>, tensor<2x?xi64>
  %a = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<2x?x4x16xf32>, tensor<2x?xi64>
  %b = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, original_max_positions = 64 : i64, rotary_dim = 8 : i64} : tensor<2x?x4x16xf32>, tensor<2x?xi64>
  %c = kiln.rope %x, %p2 {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, original_max_positions = 64 : i64} : tensor<2x?x4x16xf32>, tensor<1x?xi64>
  // Another key rotation: the first table again.
  %d = kiln.rope %k, %p {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, original_max_positions = 64 : i64} : tensor<2x?x2x16xf32>, tensor<2x?xi64>
  return %q, %kr, %a, %b, %c, %d : tensor<2x?x4x16xf32>, tensor<2x?x2x16xf32>, tensor<2x?x4x16xf32>, tensor<2x?x4x16xf32>, tensor<2x?x4x16xf32>, tensor<2x?x2x16xf32>
}
