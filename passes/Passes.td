//===- Passes.td - kiln's passes -----------------------------*- tablegen -*-===//
#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def RaisePatterns : Pass<"kiln-raise-patterns", "mlir::ModuleOp"> {
  let summary = "Rewrite primitive spellings of SiLU, SwiGLU, GELU, RMSNorm, LayerNorm, RoPE and attention to composite ops";
  let description = [{
    Exporters spell composites as chains of primitives; the fusion and
    codegen passes want the composite. This pass recognises:

    - SiLU: `x * sigmoid(x)` (either order) becomes `kiln.silu`.
    - SwiGLU: `silu(g) * u` (either order) becomes `kiln.swiglu g, u`.
    - RMSNorm: `w * (x * r)` where `r` is `rsqrt(m + eps)`,
      `reciprocal(sqrt(m + eps))` or `1 / sqrt(m + eps)`, `m = reduce_mean(x^2)` over the last axis
      with kept dims (`x^2` as `pow(x, 2)` or `x * x`), `eps` a scalar
      constant and `w` 1-D of the last dimension's size; any operand order.
      It becomes `kiln.rms_norm x, w {epsilon = eps}`.
    - GELU: a product of `x`, `0.5` and `1 + erf(x / sqrt 2)` (exact) or
      `1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))` (tanh form), in any order and
      grouping, constants within 1e-3, becomes `kiln.gelu` (with
      `tanh_approximation` for the second).

    - RoPE: `x * C + R(x) * S`, recognised by evaluation: R must compute
      rotate-half (neox) or rotate-every-two (gptj) on a probe, and C/S,
      evaluated for probe positions bound to the integer value they are
      computed from or gathered by, must be cos/sin of `pos * f` (magnitude
      1). It becomes `kiln.rope` with theta, or with `inv_freq` when the
      frequencies are not `theta^(-2i/D)`; head-major inputs are wrapped in
      transposes that cancel with the exporter's.
    - LayerNorm: RMSNorm of `x - mean(x)` becomes `kiln.layer_norm`, which
      absorbs a following 1-D bias add (RMSNorm also in the spelling
      `x / sqrt(mean(x^2) + eps)`).
    - Attention/SDPA: head-major `softmax(q k^T * s + mask) v` transposed
      to token-major, with GQA repetition by reshape-expand-reshape; the
      mask must evaluate (from shapes only) to exactly causal or zero. It
      becomes `kiln.attention {causal}` on token-major operands.
    - Positions: `range(0, shape_of(x)[a], 1)` becomes `kiln.arange`.

    Casts to the same type fold away first (exporters wrap norms in them).
    Anything else is left alone: another axis, another exponent, a weight of
    another shape, or an intermediate value used elsewhere (which would then
    be computed twice).

    Before:
    ```mlir
    %p = kiln.pow %x, %two : ... ; %m = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims}
    %a = kiln.add %m, %eps ; %s = kiln.sqrt %a ; %r = kiln.reciprocal %s
    %n = kiln.mul %x, %r ; %y = kiln.mul %w, %n
    ```
    After:
    ```mlir
    %y = kiln.rms_norm %x, %w {epsilon = 1.0e-06 : f32}
    ```
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def InsertKvCache : Pass<"kiln-insert-kv-cache", "mlir::ModuleOp"> {
  let summary = "Derive prefill and decode entry points over a paged KV cache from a full-sequence forward";
  let description = [{
    The imported `@forward(input_ids[B, T]) -> logits` recomputes every key
    and value at each step. This pass replaces it with two entry points that
    share one paged cache:

    ```
    @prefill(input_ids[B, T], positions[B, T], block_tables[B, N],
             context_lens[B], kv_cache[L, P, 2, page, Hkv, D])
        -> (logits[B, T, V], kv_cache, next_tokens[B, T])
    @decode(input_ids[B, 1], positions[B, 1], ...same...)
        -> (logits[B, 1, V], kv_cache, next_tokens[B, 1])
    ```

    `next_tokens` is the argmax of the logits (greedy decoding; `fuse` puts
    it in the LM head's epilogue). With `prefill-logits=last` (the default)
    prefill's LM head runs only on each sequence's last token (the one with
    the largest position; padding is -1), so its logits are `[B, 1, V]`: for
    a 128k vocabulary that is the difference between a 2 MB and a 130 MB
    buffer at 512 prompt tokens.

    Token `pos` of sequence `b` is stored in page `block_tables[b, pos /
    page]`, so sequences of different lengths run in one batch; a negative
    position is padding. Every `kiln.attention` (causal self-attention over
    the same tokens) becomes `kiln.kv_append` of its keys and values into
    layer `l` of the cache followed by `kiln.paged_attention` of its queries,
    in program order. The sequence positions `arange(input_ids)` become the
    `positions` argument (RoPE and learned position embeddings then read the
    true positions), and decode's types are refined to one token.

    Before:
    ```mlir
    %a = kiln.attention %q, %k, %v {causal} : ...
    ```
    After:
    ```mlir
    %c1 = kiln.kv_append %c0[0], %k, %v, %block_tables, %positions : ...
    %a = kiln.paged_attention %q, %c1[0], %block_tables, %context_lens, %positions {causal} : ...
    ```

    Refused with an error naming the op: no attention, attention that is not
    causal self-attention, layers whose KV heads, head dim or dtype differ,
    or sequence positions used other than as `[1, T]` positions.
  }];
  let options = [
    Option<"pageSize", "page-size", "int64_t", /*default=*/"16",
           "tokens per KV page (a power of two)">,
    Option<"entry", "entry", "std::string", /*default=*/"\"forward\"",
           "the full-sequence function to replace">,
    Option<"prefillLogits", "prefill-logits", "std::string", /*default=*/"\"last\"",
           "prefill's logits: `last` (each sequence's last token: what generation "
           "needs, and the LM head runs on one row per sequence) or `all` (every "
           "position: scoring)">
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def DecodeBuckets : Pass<"kiln-decode-buckets", "mlir::ModuleOp"> {
  let summary = "Copy @decode once per batch bucket, each to be fused and tiled for its batch";
  let description = [{
    A decode step's best kernels depend on how many sequences it carries: a
    GEMV with every row in flight at a few sequences, tensor-core GEMM tiles
    at many; split-KV attention where the batch leaves SMs idle, none where
    it fills them. The runtime runs a step of B sequences through the
    smallest bucket that holds B, so an engine built for 256 sequences
    decodes one through kernels chosen for one.

    `buckets` lists the batch sizes; the largest is @decode's own (the
    engine's `max_batch`), and each smaller `b` becomes a copy
    `@decode_b<b>`. Every decode function gets `kiln.decode_batch`, which
    fuse, choose-tiling and lower-to-exec read as the step's batch (before
    their own `decode-batch` option). With fewer than two buckets the pass
    only marks @decode.

    ```mlir
    func.func @decode(...) attributes {kiln.decode_batch = 8 : i64}
    func.func @decode_b1(...) attributes {kiln.decode_batch = 1 : i64}
    func.func @decode_b4(...) attributes {kiln.decode_batch = 4 : i64}
    ```

    Refused: no @decode, a bucket that is not positive, or one named twice.
  }];
  let options = [
    ListOption<"buckets", "buckets", "int64_t",
               "decode batch sizes; the largest is @decode's own">
  ];
}

def DequantAtLoad : Pass<"kiln-dequant-at-load", "mlir::ModuleOp"> {
  let summary = "Turn kiln.dequant of packed weights into weights the loader dequantizes once";
  let description = [{
    A `kiln.dequant` whose operands are all plain `kiln.weight`s (a GPTQ or
    AWQ projection: qweight, scales, qzeros, g_idx) becomes one
    `kiln.weight` of its result type, named after the packed weight
    (`X.qweight` -> `X.weight`), and the module's
    `kiln.dequant_weights` dictionary says how the loader computes it: the
    stored tensors' names, `packing`, `bits` and `group_size`. The values are
    kiln.dequant's ((q - z) * scale in f32, rounded once to the result
    type); later passes treat the weight like any other (fuse transposes it
    to rows and merges Q/K/V), and the engine's manifest carries the table
    (`dequant_weights`). The weight is then read from memory in the compute
    dtype: a layout transform for correctness, not yet a 4-bit kernel.

    ```mlir
    %w = kiln.dequant %qw, %s zeros %z {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>}
        : (tensor<8x64xi32>, tensor<1x64xf16>, tensor<1x8xi32>) -> tensor<64x64xf32>
    // becomes
    %w = kiln.weight "q_proj.weight" : tensor<64x64xf32>
    // with module attributes {kiln.dequant_weights = {"q_proj.weight" = {bits = 4 : i64, ...}}}
    ```

    A dequant of anything but weights is left alone (codegen refuses it by
    name); one name derived twice from different parts is an error.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def QuantizeWeights : Pass<"kiln-quantize-weights", "mlir::ModuleOp"> {
  let summary = "Have the loader round float projection weights to an int8 or int4 grid (kiln compile --quantize)";
  let description = [{
    Every plain float `kiln.weight` of rank 2 whose every use is the right
    operand of a `kiln.matmul` (a projection: attention, MLP, and the LM head
    with `lm-head`) gets an entry in the module's `kiln.dequant_weights`:
    `packing = "rtn"`, its own name as `source`, `bits`, `group_size` and
    `k_axis` (the stored input-feature axis: 1 for `[N, K]` with
    `transpose_b`, 0 for `[K, N]`). The loader then reads the stored float
    tensor and rounds it to nearest on the grid a gptq_v2 checkpoint of those
    bits and groups would hold -- asymmetric, per output and group of K, f16
    scales (host::quantizeRoundTrip) -- so one float checkpoint serves
    float and quantized engines. Embeddings (used by a gather, tied heads
    too) stay float; the LM head (a matmul whose columns are the returned
    logits') stays float unless `lm-head`. The graph is not changed: the
    kernels read the rounded weights in the compute dtype (the packed
    4-bit kernels are issue 19's next step).

    ```mlir
    %w = kiln.weight "mlp.up_proj.weight" : tensor<172x64xbf16>
    %y = kiln.matmul %x, %w {transpose_b} : ...
    // module attributes {kiln.dequant_weights = {"mlp.up_proj.weight" =
    //   {bits = 4 : i64, group_size = 32 : i64, k_axis = 1 : i64, packing = "rtn", source = "mlp.up_proj.weight"}}}
    ```

    Refused, naming what: a group size that does not divide a weight's
    input features, a model already quantized (GPTQ/AWQ), bits other than
    4 and 8, and a module with no projection to quantize.
  }];
  let options = [
    Option<"bits", "bits", "int64_t", "8", "bits per value: 4 or 8">,
    Option<"groupSize", "group-size", "int64_t", "128",
           "input features per scale (-1: each output's whole row)">,
    Option<"lmHead", "lm-head", "bool", "false", "quantize the LM head too">
  ];
}

def ShareRopeTables : Pass<"kiln-share-rope-tables", "mlir::ModuleOp"> {
  let summary = "Compute each step's RoPE cosines and sines once, in a kiln.rope_cos_sin every rotation reads";
  let description = [{
    Every `kiln.rope` of a function that rotates with the same positions,
    frequencies and rotary dim reads one `kiln.rope_cos_sin` of those
    positions (made just after the positions are defined) through its
    `cos_sin` operand. A decode step then computes `B x rotary_dim / 2`
    angles once, instead of a double-precision sine and cosine for every
    rotated pair of every query and key head of every layer (the epilogue
    that set the QKV projection's time at large batches). The values are
    those the rotations computed themselves: the same angle in double,
    rounded once to f32.

    ```mlir
    %cs = kiln.rope_cos_sin %pos {rotary_dim = 16 : i64, theta = 5.0e+05 : f64}
        : tensor<1x?xi64> -> tensor<1x?x8x2xf32>
    %q = kiln.rope %x, %pos table %cs {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64}
        : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x8x2xf32>
    ```

    Rotations that already read a table, or whose rotary dim is dynamic, are
    left alone.
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def Fuse : Pass<"kiln-fuse", "mlir::ModuleOp"> {
  let summary = "Merge projections and group ops into kiln.fused kernels under a byte-cost rule";
  let description = [{
    Decode at batch 1 is bound by bytes and launches, so the pass first
    merges matmuls that read the same activation with transposed weights
    (Q/K/V, gate/up) into one matmul over a `kiln.weight` with `sources` (a
    row concatenation applied at load; biases merge likewise), whose result
    is sliced. It then forms fusion groups, each outlined as a `kiln.fused`
    region whose `kind` names the kernel family:

    - `matmul`: an RMSNorm/LayerNorm prologue (when the cost rule allows),
      then an epilogue of elementwise ops (bias, residual, activation,
      SwiGLU over the merged gate/up halves) and an argmax over its output
      (greedy decoding's LM head).
    - `rope_kv_append` (or `kv_append`): the slices of the merged QKV, the
      per-head norms (Qwen3), RoPE of queries and keys and the append of
      keys and values to the paged cache. In a decode function, when the
      group is only slices of one QKV projection, reshapes, RoPE over whole
      heads in one style and the append, and nothing else reads that
      projection (no gated halves, no argmax), it joins the projection's
      `matmul` group: codegen computes each rotated pair of columns side by
      side and rotates and stores them in the epilogue.
    - `paged_attention`, `attention`, `embedding`, `norm`, `elementwise`
      (chains of elementwise ops) and one group per remaining op.
    - In a decode function (one token per sequence) with
      `append-in-attention`, the `rope_kv_append` group joins its layer's
      `paged_attention` instead: one kernel ropes the queries as it loads
      them and the split that holds the new token appends its key and value
      before reading the cache. Off by default: checked on the H100, and
      slower there than the separate kernels it replaced (bench/NOTES.md
      item 10).

    Reshapes between groups are views and stay outside. A group is only
    formed when it stays convex (no outside op both depends on it and lies
    inside its span).

    **Cost rule.** Fusing a producer into a consumer saves writing and
    reading the intermediate, `2 |t|` bytes, plus one launch, counted as
    `launch-bytes` bytes of HBM traffic (a few microseconds at HBM speed).
    An elementwise epilogue costs nothing. A norm prologue is recomputed by
    each of the consumer's column tiles (estimated `ceil(N / 128)`), each
    rereading the activation mostly from L2, costing `(tiles - 1) |x| /
    l2-ratio`. Fuse iff saved > cost, and only for steps of at most 2 rows
    (the GEMV's, `kGemvMaxRows`: a tensor-core tile's norm prologue is
    serialised with its copies and MMAs). With `decode-tokens` tokens (one
    token per sequence: decode) at up to 2 sequences the norm fuses; with `prefill-tokens` it
    does not. Epilogues stop at `max-epilogue-ops` ops (registers).

    Before:
    ```mlir
    %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
    %q = kiln.matmul %n, %wq {transpose_b} : ...
    %k = kiln.matmul %n, %wk {transpose_b} : ...
    ```
    After:
    ```mlir
    %w = kiln.weight "l.{q,k}" {sources = ["l.q", "l.k"], source_rows = array<i64: 64, 32>} : tensor<96x64xf32>
    %qk = kiln.fused "matmul" (%x, %g, %w) : ... {
      %n = kiln.rms_norm ... ; %m = kiln.matmul %n, %w {transpose_b} ; kiln.yield %m
    }
    %q = kiln.slice %qk ...
    ```
  }];
  let options = [
    Option<"decodeTokens", "decode-tokens", "int64_t", /*default=*/"1",
           "tokens per step assumed where the token dimension is 1 (decode)">,
    Option<"prefillTokens", "prefill-tokens", "int64_t", /*default=*/"512",
           "tokens per step assumed where the token dimension is dynamic">,
    Option<"launchBytes", "launch-bytes", "int64_t", /*default=*/"4194304",
           "HBM bytes one kernel launch is worth">,
    Option<"l2Ratio", "l2-ratio", "double", /*default=*/"3.0",
           "L2 bandwidth over HBM bandwidth, for recomputed prologues">,
    Option<"maxEpilogueOps", "max-epilogue-ops", "int64_t", /*default=*/"8",
           "most elementwise ops in one matmul epilogue">,
    Option<"mergeProjections", "merge-projections", "bool", /*default=*/"true",
           "merge matmuls of one activation into one over concatenated weights">,
    Option<"appendInAttention", "append-in-attention", "bool", /*default=*/"false",
           "in decode, RoPE and the KV append join the attention kernel (instead of the QKV projection)">
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def ChooseTiling : Pass<"kiln-choose-tiling", "mlir::ModuleOp"> {
  let summary = "Pick each kernel's tiling with an analytic cost model of a target GPU";
  let description = [{
    For each `kiln.fused` kernel the pass reads what it computes (matmul
    sizes, attention heads and context, bytes of weights, cache and
    activations for one step), enumerates the tilings of its family on the
    target (`targets/*.json`: SMs, bandwidth, latency, shared memory,
    registers, clocks, tensor-core rate) and keeps the fastest under the
    model in `passes/tiling/CostModel.h`:

    - `gemv` (at most 16 rows of tokens): `split_k` (warps sharing a weight
      row), `unroll` (16-byte loads per lane in flight), `vector_width`
      (16-byte loads where K allows), `threads`. Time is the bytes over the
      streaming bandwidth, scaled by the fraction of the bandwidth-latency
      product the resident warps keep in flight, plus the activations'
      rereads from L2.
    - `gemm`: `block_m`, `block_n`, `block_k`, `stages` within shared memory;
      time is the larger of wave-quantised tensor-core time and traffic.
    - `paged_attention` (decode): the split-KV chunk `kv_chunk` and `splits`
      for `context` cached tokens; `flash_attention` (prefill): `block_q`,
      `block_kv`.
    - everything else streams: `threads`, `vector_width`.

    Each kernel gets `kiln.tile` (family and parameters) and `kiln.cost`
    (`bytes`, `weight_bytes`, `flops`, `time_ns`); the module gets
    `kiln.target`. Steps are costed at `decode-batch` sequences of one token
    (functions taking `[?, 1]` tokens) or `prefill-tokens` tokens. No GPU is
    needed.

    ```mlir
    %0 = kiln.fused "matmul"(...) {kiln.cost = {bytes = 8650752 : i64, ...}, kiln.tile = {family = "gemv", split_k = 1 : i64, threads = 256 : i64, unroll = 8 : i64, vector_width = 8 : i64}} : ...
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"h100-sxm-80gb\"",
           "a built-in target name or alias, or a path to a description .json">,
    Option<"decodeBatch", "decode-batch", "int64_t", /*default=*/"1",
           "sequences in a decode step">,
    Option<"prefillTokens", "prefill-tokens", "int64_t", /*default=*/"512",
           "tokens in a prefill step">,
    Option<"context", "context", "int64_t", /*default=*/"1024",
           "cached tokens a decode step attends to">,
    Option<"epilogueWarps", "epilogue-warps", "bool", /*default=*/"true",
           "GEMM tiles may run their epilogue in warps of their own (gemmWs's EPIWG)">
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

def TestPrintCost : Pass<"kiln-test-print-cost", "mlir::ModuleOp"> {
  let summary = "Print each kernel's predicted bytes, FLOPs and time, and per-step totals";
  let description = [{
    One line per kernel in schedule order (a `kiln.fused` group, or an op
    that would be a kernel of its own before fusion): kind, family, tiling,
    bytes, weight bytes, FLOPs and predicted microseconds; then the step's
    kernel count, bytes against the weight bytes the function binds (fused
    decode reads each weight once), and predicted time and tokens per
    second. Costs come from `kiln.cost` where choose-tiling set them, else
    from the same model with this pass's options.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"h100-sxm-80gb\"",
           "as choose-tiling">,
    Option<"decodeBatch", "decode-batch", "int64_t", /*default=*/"1", "as choose-tiling">,
    Option<"prefillTokens", "prefill-tokens", "int64_t", /*default=*/"512", "as choose-tiling">,
    Option<"context", "context", "int64_t", /*default=*/"1024", "as choose-tiling">
  ];
}

def LowerToExec : Pass<"kiln-lower-to-exec", "mlir::ModuleOp"> {
  let summary = "Lower the fused, tiled graph to kiln_exec kernels, launches and buffers";
  let description = [{
    Each function becomes its schedule over buffers:

    - arguments become buffers the runtime binds (inputs, the KV pool);
    - `kiln.weight` becomes `kiln_exec.weight_slot` with its layout
      transform (`transpose`, `concat_rows`, `transpose_concat_rows`);
    - each `kiln.fused` group becomes a `kiln_exec.launch` of a
      `kiln_exec.kernel` whose body is the group (family, tiling and cost
      from choose-tiling; grid and block from the tiling). Identical groups
      (the same body, family and tiling, e.g. in every layer) share one
      kernel;
    - each result gets a `kiln_exec.alloc` of its largest step: decode steps
      of `max-batch` sequences, prefill steps of `max-tokens` tokens. The KV
      cache a kernel appends to is written in place;
    - reshapes become `kiln_exec.view`s of the same bytes.

    Launch operands are the group's inputs, then its results (`num_outputs`).
    Anything that would run as a kernel outside a `kiln.fused` group is an
    error: fuse first.
  }];
  let options = [
    Option<"maxBatch", "max-batch", "int64_t", /*default=*/"1",
           "sequences in a decode step">,
    Option<"maxTokens", "max-tokens", "int64_t", /*default=*/"512",
           "tokens in a prefill step">
  ];
  let dependentDialects = ["kiln::KilnDialect", "kiln::exec::ExecDialect"];
}

def TestPrintLiveness : Pass<"kiln-test-print-liveness", "mlir::ModuleOp"> {
  let summary = "Print each planned buffer's live range over launch indices";
  let description = [{
    For each lowered function: the number of launches, then one line per
    `kiln_exec.alloc` (in order): its bytes and live range `[first write,
    last use]` (a returned buffer lives to the end), and the lower bound of
    any arena: the most bytes live at one launch.
  }];
}

def PlanArena : Pass<"kiln-plan-arena", "mlir::ModuleOp"> {
  let summary = "Place activation buffers in one arena per function by their live ranges";
  let description = [{
    Buffers whose live ranges overlap get disjoint bytes; others may share.
    Offsets are multiples of `alignment` (256). Two strategies run, largest
    buffer first and earliest start first (each placed at the lowest offset
    free during its whole range), and the smaller peak is kept. Each
    `kiln_exec.alloc` becomes a `kiln_exec.buffer_slice` of
    `@<function>.arena`, whose `size` is the peak; the arena records
    `total_bytes` (all buffers laid end to end), `lower_bound` (the most
    bytes live at once) and the `strategy` kept.
  }];
  let options = [
    Option<"alignment", "alignment", "int64_t", /*default=*/"256",
           "offset alignment in bytes (a power of two)">
  ];
  let dependentDialects = ["kiln::exec::ExecDialect"];
}

def ScheduleMemory : Pass<"kiln-schedule-memory", "mlir::ModuleOp"> {
  let summary = "Reorder launches, as their dependencies allow, to lower the most bytes live at once";
  let description = [{
    A list scheduler over each lowered function's launches: a launch is
    ready when every launch it depends on (it reads what they write, writes
    what they read, or writes what they write, through views) has run; among
    the ready ones it picks the one that adds the fewest live bytes (its new
    outputs minus the buffers whose last reader it is), ties going to the
    original order. The new order is kept only if its lower bound (the most
    bytes live at once) is smaller. Declarations (weight slots, allocs,
    views) move to the top of the function first; they run nothing.
    Prefill steps are already planned for `max-tokens` tokens: the runtime
    splits longer prompts into chunks of that many.

    Before: `a = f(x); b = g(x); c = h(a); d = k(b)` keeps a and b live
    together. After: `a = f(x); c = h(a); b = g(x); d = k(b)`.
  }];
  let dependentDialects = ["kiln::exec::ExecDialect"];
}

#endif // KILN_PASSES_TD
