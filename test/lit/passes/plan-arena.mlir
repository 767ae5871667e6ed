// RUN: kiln-opt %s -kiln-test-print-liveness -o /dev/null | FileCheck %s --check-prefix=LIVE
// RUN: kiln-opt %s -kiln-plan-arena | FileCheck %s
// RUN: not kiln-opt %s -kiln-plan-arena=alignment=100 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: alignment must be a power of two, got 100

// Five buffers over four launches (alignment 256). Live ranges, inclusive:
//   A 1024 B [0, 1]   B 512 B [1, 2]   C 1024 B [2, 3]   D 256 B [0, 3]
//   E 256 B [3, 4] (returned: read after the last launch)
// Bytes live per launch: 1280, 1792, 1792, 1536, 256: no plan can use less
// than 1792. Largest first, each at the best-fitting free offset: A 0,
// C 0 (A is dead by then), B 1024, D 1536, E 1024 (the gap B left): peak
// 1792, the lower bound. Laid end to end they would take 3072.
// LIVE: @steps: 4 launches, 5 buffers
// LIVE-NEXT: buffer 0: 1024 bytes, live [0, 1]
// LIVE-NEXT: buffer 1: 256 bytes, live [0, 3]
// LIVE-NEXT: buffer 2: 512 bytes, live [1, 2]
// LIVE-NEXT: buffer 3: 1024 bytes, live [2, 3]
// LIVE-NEXT: buffer 4: 256 bytes, live [3, 4]
// LIVE-NEXT: total 3072 bytes, lower bound 1792 bytes
// CHECK: kiln_exec.arena @steps.arena size(1792) alignment(256) {lower_bound = 1792 : i64, strategy = "largest_first", total_bytes = 3072 : i64}
// CHECK-LABEL: func.func @steps
// CHECK: %[[A:.*]] = kiln_exec.buffer_slice @steps.arena[0, 1024] : !kiln_exec.buffer<tensor<256xf32>>
// CHECK: %[[D:.*]] = kiln_exec.buffer_slice @steps.arena[1536, 256] : !kiln_exec.buffer<tensor<64xf32>>
// CHECK: %[[B:.*]] = kiln_exec.buffer_slice @steps.arena[1024, 512] : !kiln_exec.buffer<tensor<128xf32>>
// CHECK: %[[C:.*]] = kiln_exec.buffer_slice @steps.arena[0, 1024] : !kiln_exec.buffer<tensor<16x16xf32>>
// The view of C is the same bytes.
// CHECK: %[[CV:.*]] = kiln_exec.view %[[C]]
// CHECK: %[[E:.*]] = kiln_exec.buffer_slice @steps.arena[1024, 256] : !kiln_exec.buffer<tensor<64xf32>>
// CHECK: kiln_exec.launch @k(%[[CV]], %[[D]], %[[E]])
// CHECK-NOT: kiln_exec.alloc
kiln_exec.kernel @k family("elementwise")
func.func @steps(%in: !kiln_exec.buffer<tensor<?xf32>>) -> !kiln_exec.buffer<tensor<64xf32>> {
  %a = kiln_exec.alloc : !kiln_exec.buffer<tensor<256xf32>>
  %d = kiln_exec.alloc : !kiln_exec.buffer<tensor<64xf32>>
  kiln_exec.launch @k(%in, %a, %d) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 2 : i64} : !kiln_exec.buffer<tensor<?xf32>>, !kiln_exec.buffer<tensor<256xf32>>, !kiln_exec.buffer<tensor<64xf32>>
  %b = kiln_exec.alloc : !kiln_exec.buffer<tensor<128xf32>>
  kiln_exec.launch @k(%a, %b) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<256xf32>>, !kiln_exec.buffer<tensor<128xf32>>
  %c = kiln_exec.alloc : !kiln_exec.buffer<tensor<16x16xf32>>
  kiln_exec.launch @k(%b, %c) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<128xf32>>, !kiln_exec.buffer<tensor<16x16xf32>>
  %cv = kiln_exec.view %c : !kiln_exec.buffer<tensor<16x16xf32>> to !kiln_exec.buffer<tensor<256xf32>>
  %e = kiln_exec.alloc : !kiln_exec.buffer<tensor<64xf32>>
  kiln_exec.launch @k(%cv, %d, %e) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<256xf32>>, !kiln_exec.buffer<tensor<64xf32>>, !kiln_exec.buffer<tensor<64xf32>>
  return %e : !kiln_exec.buffer<tensor<64xf32>>
}
