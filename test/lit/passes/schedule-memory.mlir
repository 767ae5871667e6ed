// RUN: kiln-opt %s -kiln-schedule-memory | FileCheck %s
// RUN: kiln-opt %s -kiln-test-print-liveness -o /dev/null | FileCheck %s --check-prefix=BEFORE
// RUN: kiln-opt %s -kiln-schedule-memory -kiln-test-print-liveness -o /dev/null | FileCheck %s --check-prefix=AFTER

// Two independent chains x -> a (1024 B) -> c and x -> b (1024 B) -> d,
// joined by e. In program order a and b are live together with c: 2304
// bytes. Finishing a's chain before starting b's keeps at most b, c and d
// live: 1536. The scheduler picks, among ready launches, the one that adds
// the fewest live bytes (h frees a).
// BEFORE: lower bound 2304 bytes
// AFTER: lower bound 1536 bytes
// CHECK-LABEL: func.func @chains
// CHECK: kiln_exec.launch @f(%arg0, %[[A:[^)]*]])
// CHECK-NEXT: kiln_exec.launch @h(%[[A]], %[[C:[^)]*]])
// CHECK-NEXT: kiln_exec.launch @g(%arg0, %[[B:[^)]*]])
// CHECK-NEXT: kiln_exec.launch @k(%[[B]], %[[D:[^)]*]])
// CHECK-NEXT: kiln_exec.launch @j(%[[C]], %[[D]], %{{.*}})
kiln_exec.kernel @f family("elementwise")
kiln_exec.kernel @g family("elementwise")
kiln_exec.kernel @h family("elementwise")
kiln_exec.kernel @k family("elementwise")
kiln_exec.kernel @j family("elementwise")
func.func @chains(%x: !kiln_exec.buffer<tensor<?xf32>>) -> !kiln_exec.buffer<tensor<64xf32>> {
  %a = kiln_exec.alloc : !kiln_exec.buffer<tensor<256xf32>>
  kiln_exec.launch @f(%x, %a) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<?xf32>>, !kiln_exec.buffer<tensor<256xf32>>
  %b = kiln_exec.alloc : !kiln_exec.buffer<tensor<256xf32>>
  kiln_exec.launch @g(%x, %b) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<?xf32>>, !kiln_exec.buffer<tensor<256xf32>>
  %c = kiln_exec.alloc : !kiln_exec.buffer<tensor<64xf32>>
  kiln_exec.launch @h(%a, %c) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<256xf32>>, !kiln_exec.buffer<tensor<64xf32>>
  %d = kiln_exec.alloc : !kiln_exec.buffer<tensor<64xf32>>
  kiln_exec.launch @k(%b, %d) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<256xf32>>, !kiln_exec.buffer<tensor<64xf32>>
  %e = kiln_exec.alloc : !kiln_exec.buffer<tensor<64xf32>>
  kiln_exec.launch @j(%c, %d, %e) grid [1, 1, 1] block [128, 1, 1] smem 0 {num_outputs = 1 : i64} : !kiln_exec.buffer<tensor<64xf32>>, !kiln_exec.buffer<tensor<64xf32>>, !kiln_exec.buffer<tensor<64xf32>>
  return %e : !kiln_exec.buffer<tensor<64xf32>>
}
