// The raised composites compute what the primitives did: the interpreter
// evaluates each function before and after on random inputs (2 seeds).
// RUN: kiln-interp %s --check-pipeline "builtin.module(kiln-raise-patterns)" | FileCheck %s
// RUN: kiln-opt %s -kiln-raise-patterns | FileCheck %s --check-prefix=RAISED
// CHECK: compared 6 results: all agree
// RAISED-LABEL: func.func @layer_norm
// RAISED: kiln.layer_norm
// RAISED-LABEL: func.func @attention
// RAISED: kiln.attention {{.*}} {causal}
// RAISED-LABEL: func.func @rope_gptj_gathered
// RAISED: kiln.rope {{.*}} {style = #kiln<rope_style gptj>, theta = 1.000000e+04 : f64}

func.func @layer_norm(%x: tensor<1x?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<1x?x64xf32> {
  %m = kiln.reduce_mean %x {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xf32> -> tensor<1x?x1xf32>
  %d = kiln.sub %x, %m : tensor<1x?x64xf32>, tensor<1x?x1xf32> -> tensor<1x?x64xf32>
  %two = kiln.constant dense<2.0> : tensor<f32>
  %p = kiln.pow %d, %two : tensor<1x?x64xf32>, tensor<f32> -> tensor<1x?x64xf32>
  %v = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xf32> -> tensor<1x?x1xf32>
  %eps = kiln.constant dense<1.0e-05> : tensor<f32>
  %a = kiln.add %v, %eps : tensor<1x?x1xf32>, tensor<f32> -> tensor<1x?x1xf32>
  %s = kiln.sqrt %a : tensor<1x?x1xf32>
  %n = kiln.div %d, %s : tensor<1x?x64xf32>, tensor<1x?x1xf32> -> tensor<1x?x64xf32>
  %y = kiln.mul %n, %w : tensor<1x?x64xf32>, tensor<64xf32> -> tensor<1x?x64xf32>
  %z = kiln.add %y, %b : tensor<1x?x64xf32>, tensor<64xf32> -> tensor<1x?x64xf32>
  return %z : tensor<1x?x64xf32>
}

func.func @attention(%ids: tensor<1x?xi64>, %q: tensor<1x4x?x16xf32>, %k: tensor<1x2x?x16xf32>, %v: tensor<1x2x?x16xf32>) -> tensor<1x?x4x16xf32> {
  %s = kiln.shape_of %ids : tensor<1x?xi64> -> tensor<2xi64>
  %t1 = kiln.slice %s {starts = array<i64: 1>, ends = array<i64: 2>, steps = array<i64: 1>} : tensor<2xi64> -> tensor<1xi64>
  %t = kiln.reshape %t1 {shape = array<i64>} : tensor<1xi64> -> tensor<i64>
  %zero = kiln.constant dense<0> : tensor<i64>
  %one = kiln.constant dense<1> : tensor<i64>
  %r = kiln.range %zero, %t, %one : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
  %ri = kiln.reshape %r {shape = array<i64: -1, 1>} : tensor<?xi64> -> tensor<?x1xi64>
  %rj = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %above = kiln.compare gt, %rj, %ri : tensor<1x?xi64>, tensor<?x1xi64> -> tensor<?x?xi1>
  %ninf = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %z = kiln.constant dense<0.0> : tensor<f32>
  %mask = kiln.where %above, %ninf, %z : tensor<?x?xi1>, tensor<f32>, tensor<f32> -> tensor<?x?xf32>
  %c1 = kiln.constant dense<1> : tensor<1xi64>
  %c2 = kiln.constant dense<2> : tensor<1xi64>
  %c16 = kiln.constant dense<16> : tensor<1xi64>
  %es = kiln.concat %c1, %c2, %c2, %t1, %c16 {axis = 0 : i64} : tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64> -> tensor<5xi64>
  %k5 = kiln.reshape %k {shape = array<i64: 1, 2, 1, -1, 16>} : tensor<1x2x?x16xf32> -> tensor<1x2x1x?x16xf32>
  %ke = kiln.expand %k5, %es : tensor<1x2x1x?x16xf32>, tensor<5xi64> -> tensor<?x2x?x?x16xf32>
  %kr = kiln.reshape %ke {shape = array<i64: 1, 4, -1, 16>} : tensor<?x2x?x?x16xf32> -> tensor<1x4x?x16xf32>
  %v5 = kiln.reshape %v {shape = array<i64: 1, 2, 1, -1, 16>} : tensor<1x2x?x16xf32> -> tensor<1x2x1x?x16xf32>
  %ve = kiln.expand %v5, %es : tensor<1x2x1x?x16xf32>, tensor<5xi64> -> tensor<?x2x?x?x16xf32>
  %vr = kiln.reshape %ve {shape = array<i64: 1, 4, -1, 16>} : tensor<?x2x?x?x16xf32> -> tensor<1x4x?x16xf32>
  %kt = kiln.transpose %kr {permutation = array<i64: 0, 1, 3, 2>} : tensor<1x4x?x16xf32> -> tensor<1x4x16x?xf32>
  %qk = kiln.matmul %q, %kt : tensor<1x4x?x16xf32>, tensor<1x4x16x?xf32> -> tensor<1x4x?x?xf32>
  %scale = kiln.constant dense<2.500000e-01> : tensor<f32>
  %sc = kiln.mul %qk, %scale : tensor<1x4x?x?xf32>, tensor<f32> -> tensor<1x4x?x?xf32>
  %sm = kiln.add %sc, %mask : tensor<1x4x?x?xf32>, tensor<?x?xf32> -> tensor<1x4x?x?xf32>
  %p = kiln.softmax %sm {axis = 3 : i64} : tensor<1x4x?x?xf32>
  %o = kiln.matmul %p, %vr : tensor<1x4x?x?xf32>, tensor<1x4x?x16xf32> -> tensor<1x4x?x16xf32>
  %ot = kiln.transpose %o {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x4x?x16xf32> -> tensor<1x?x4x16xf32>
  return %ot : tensor<1x?x4x16xf32>
}

func.func @rope_gptj_gathered(%x: tensor<1x2x?x8xf32>, %pos: tensor<1x?xi64>) -> tensor<1x2x?x8xf32> {
  %cos_tab = kiln.constant dense<[[1.000000000e+00, 1.000000000e+00, 1.000000000e+00, 1.000000000e+00], [5.403023059e-01, 9.950041653e-01, 9.999500004e-01, 9.999995000e-01], [-4.161468365e-01, 9.800665778e-01, 9.998000067e-01, 9.999980000e-01], [-9.899924966e-01, 9.553364891e-01, 9.995500337e-01, 9.999955000e-01], [-6.536436209e-01, 9.210609940e-01, 9.992001067e-01, 9.999920000e-01], [2.836621855e-01, 8.775825619e-01, 9.987502604e-01, 9.999875000e-01], [9.601702867e-01, 8.253356149e-01, 9.982005399e-01, 9.999820001e-01], [7.539022543e-01, 7.648421873e-01, 9.975510003e-01, 9.999755001e-01], [-1.455000338e-01, 6.967067093e-01, 9.968017063e-01, 9.999680002e-01], [-9.111302619e-01, 6.216099683e-01, 9.959527330e-01, 9.999595003e-01], [-8.390715291e-01, 5.403023059e-01, 9.950041653e-01, 9.999500004e-01], [4.425697988e-03, 4.535961214e-01, 9.939560980e-01, 9.999395006e-01], [8.438539587e-01, 3.623577545e-01, 9.928086359e-01, 9.999280009e-01], [9.074467815e-01, 2.674988286e-01, 9.915618937e-01, 9.999155012e-01], [1.367372182e-01, 1.699671429e-01, 9.902159962e-01, 9.999020016e-01], [-7.596879129e-01, 7.073720167e-02, 9.887710779e-01, 9.998875021e-01]]> : tensor<16x4xf32>
  %sin_tab = kiln.constant dense<[[0.000000000e+00, 0.000000000e+00, 0.000000000e+00, 0.000000000e+00], [8.414709848e-01, 9.983341665e-02, 9.999833334e-03, 9.999998333e-04], [9.092974268e-01, 1.986693308e-01, 1.999866669e-02, 1.999998667e-03], [1.411200081e-01, 2.955202067e-01, 2.999550020e-02, 2.999995500e-03], [-7.568024953e-01, 3.894183423e-01, 3.998933419e-02, 3.999989333e-03], [-9.589242747e-01, 4.794255386e-01, 4.997916927e-02, 4.999979167e-03], [-2.794154982e-01, 5.646424734e-01, 5.996400648e-02, 5.999964000e-03], [6.569865987e-01, 6.442176872e-01, 6.994284734e-02, 6.999942833e-03], [9.893582466e-01, 7.173560909e-01, 7.991469397e-02, 7.999914667e-03], [4.121184852e-01, 7.833269096e-01, 8.987854920e-02, 8.999878500e-03], [-5.440211109e-01, 8.414709848e-01, 9.983341665e-02, 9.999833334e-03], [-9.999902066e-01, 8.912073601e-01, 1.097783008e-01, 1.099977817e-02], [-5.365729180e-01, 9.320390860e-01, 1.197122073e-01, 1.199971200e-02], [4.201670368e-01, 9.635581854e-01, 1.296341426e-01, 1.299963384e-02], [9.906073557e-01, 9.854497300e-01, 1.395431146e-01, 1.399954267e-02], [6.502878402e-01, 9.974949866e-01, 1.494381325e-01, 1.499943751e-02]]> : tensor<16x4xf32>
  %c = kiln.gather %cos_tab[%pos] {axis = 0 : i64} : tensor<16x4xf32>, tensor<1x?xi64> -> tensor<1x?x4xf32>
  %s = kiln.gather %sin_tab[%pos] {axis = 0 : i64} : tensor<16x4xf32>, tensor<1x?xi64> -> tensor<1x?x4xf32>
  %c5 = kiln.reshape %c {shape = array<i64: 1, 1, -1, 4, 1>} : tensor<1x?x4xf32> -> tensor<1x1x?x4x1xf32>
  %s5 = kiln.reshape %s {shape = array<i64: 1, 1, -1, 4, 1>} : tensor<1x?x4xf32> -> tensor<1x1x?x4x1xf32>
  %c2 = kiln.concat %c5, %c5 {axis = 4 : i64} : tensor<1x1x?x4x1xf32>, tensor<1x1x?x4x1xf32> -> tensor<1x1x?x4x2xf32>
  %s2 = kiln.concat %s5, %s5 {axis = 4 : i64} : tensor<1x1x?x4x1xf32>, tensor<1x1x?x4x1xf32> -> tensor<1x1x?x4x2xf32>
  %cr = kiln.reshape %c2 {shape = array<i64: 1, 1, -1, 8>} : tensor<1x1x?x4x2xf32> -> tensor<1x1x?x8xf32>
  %sr = kiln.reshape %s2 {shape = array<i64: 1, 1, -1, 8>} : tensor<1x1x?x4x2xf32> -> tensor<1x1x?x8xf32>
  %ev = kiln.slice %x {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807>, steps = array<i64: 1, 1, 1, 2>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %od = kiln.slice %x {starts = array<i64: 0, 0, 0, 1>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807>, steps = array<i64: 1, 1, 1, 2>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %no = kiln.neg %od : tensor<1x2x?x4xf32>
  %u0 = kiln.reshape %no {shape = array<i64: 1, 2, -1, 4, 1>} : tensor<1x2x?x4xf32> -> tensor<1x2x?x4x1xf32>
  %u1 = kiln.reshape %ev {shape = array<i64: 1, 2, -1, 4, 1>} : tensor<1x2x?x4xf32> -> tensor<1x2x?x4x1xf32>
  %st = kiln.concat %u0, %u1 {axis = 4 : i64} : tensor<1x2x?x4x1xf32>, tensor<1x2x?x4x1xf32> -> tensor<1x2x?x4x2xf32>
  %rot = kiln.reshape %st {shape = array<i64: 1, 2, -1, 8>} : tensor<1x2x?x4x2xf32> -> tensor<1x2x?x8xf32>
  %xc = kiln.mul %x, %cr : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %rs = kiln.mul %rot, %sr : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %y = kiln.add %xc, %rs : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32> -> tensor<1x2x?x8xf32>
  return %y : tensor<1x2x?x8xf32>
}
