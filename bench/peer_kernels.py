#!/usr/bin/env python3
"""Kernel peers for the prefill benchmark (GPU machine, bf16, CUDA events):

  peak   torch.matmul 8192 x 8192 x 8192: the measured dense bf16 peak
  gemm   F.linear (cuBLAS) at kiln's prefill GEMM shapes of a Llama shape:
         the merged QKV projection, the output projection, the merged
         gate/up projection and the down projection, M = the prompt tokens;
         timed back to back (ms: operands partly in L2 from the last call)
         and with L2 evicted before each call (ms_cold)
  sdpa   scaled_dot_product_attention, batch 1, causal, the model's query and
         KV heads (enable_gqa=True), forced to the flash backend

Prints one JSON object.

  python3 peer_kernels.py --shape llama3.1-8b --tokens 512 2048 4096 --sdpa-tokens 4096
"""
import argparse, json
import torch
import torch.nn.functional as F

SHAPES = {  # hidden, intermediate, heads, kv heads, head dim (peer_decode.py's shapes)
    "llama3.2-1b": (2048, 8192, 32, 8, 64),
    "llama3.1-8b": (4096, 14336, 32, 8, 128),
}


_flush = None


def time_ms(fn, reps=20, cold=False):
    """Median of reps timed calls. cold: a 256 MB write before each call
    evicts L2 (50 MB on the H100), as a kernel inside a model's forward
    pass finds it (its weights not read since the last step)."""
    global _flush
    if cold and _flush is None:
        _flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    for _ in range(3):
        fn()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        if cold:
            _flush.zero_()
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), action="append", default=[])
    ap.add_argument("--tokens", type=int, nargs="*", default=[512, 2048, 4096])
    ap.add_argument("--sdpa-tokens", type=int, nargs="*", default=[4096])
    a = ap.parse_args()
    dev = "cuda"
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    x = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    y = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    ms = time_ms(lambda: torch.matmul(x, y))
    out["peak_tflops"] = round(2 * 8192 ** 3 / ms / 1e9, 1)
    del x, y
    for shape in a.shape:
        H, I, NH, KV, D = SHAPES[shape]
        gemms = {"qkv": ((NH + 2 * KV) * D, H), "o": (H, NH * D), "gate_up": (2 * I, H), "down": (H, I)}
        rows = []
        for M in a.tokens:
            for name, (N, K) in gemms.items():
                act = torch.randn(M, K, device=dev, dtype=torch.bfloat16)
                w = torch.randn(N, K, device=dev, dtype=torch.bfloat16) * 0.02
                ms = time_ms(lambda: F.linear(act, w))
                cold = time_ms(lambda: F.linear(act, w), cold=True)
                rows.append(dict(name=name, M=M, N=N, K=K, ms=round(ms, 4),
                                 tflops=round(2 * M * N * K / ms / 1e9, 1), ms_cold=round(cold, 4)))
        att = []
        for T in a.sdpa_tokens:
            q = torch.randn(1, NH, T, D, device=dev, dtype=torch.bfloat16)
            k = torch.randn(1, KV, T, D, device=dev, dtype=torch.bfloat16)
            v = torch.randn(1, KV, T, D, device=dev, dtype=torch.bfloat16)
            from torch.nn.attention import SDPBackend, sdpa_kernel
            note = "flash, enable_gqa"
            try:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
            except RuntimeError as e:  # flash without GQA support: heads repeated
                note = f"flash, KV heads repeated ({str(e).splitlines()[0][:80]})"
                k2, v2 = k.repeat_interleave(NH // KV, 1), v.repeat_interleave(NH // KV, 1)
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    ms = time_ms(lambda: F.scaled_dot_product_attention(q, k2, v2, is_causal=True))
            flops = 4 * NH * D * T * T / 2
            att.append(dict(T=T, heads=NH, kv_heads=KV, D=D, ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1),
                            backend=note))
        out[shape] = {"gemm": rows, "sdpa": att}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
