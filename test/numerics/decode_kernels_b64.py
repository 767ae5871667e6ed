#!/usr/bin/env python3
"""Batched decode's kernel choices at the Llama-3.2-1B and Llama-3.1-8B shapes, built with NVRTC.

Writes each shape with one layer (header-only weights,
scripts/make_shape_model.py), compiles a `--max-batch 64` engine (every
kernel through NVRTC: the instantiations below must compile) and its CUDA
source, and checks the batch-64 step's kernels on the H100 description:

- decode attention on tensor cores, attentionDecodeMma: four warps and four
  blocks an SM at head dim 64, two warps at 128; `--decode-attention=tiled`
  gives attentionDecodeTiled back;
- the QKV projection (RoPE pairs, gemmMma) splits K over clusters of four
  blocks on the 1B and two on the 8B (as many as two blocks an SM hold);
- the O and down projections (64-row tiles, K of 2048 to 14336) split K
  over clusters of four blocks reduced through distributed shared memory
  (gemmWs's CSPLIT, KILN_CLUSTER_DIMS(4)): 64 x 64 tiles on the 1B (16
  tiles of 128 columns would leave half the SMs idle), 64 x 128 on the 8B;
  `--no-decode-cluster-split` gives split-K through the workspace back;
- the gate/up projection, with enough tiles for every SM, takes neither; its
  column tile is 128 where the 128-wide tiles fill a wave (the 8B's 224) or
  a step has at most 32 rows (a `--max-batch 8` engine), 64 on the 1B at
  batch 64 (128 wide tiles for 132 SMs); `--decode-gate-tile 64` keeps 64;
- a `--max-batch 256` engine's batch-64 bucket takes the kernels of a
  `--max-batch 64` engine's step (each bucket's GEMMs are chosen for its own
  rows, not the engine's largest).
"""
import argparse, json, os, re, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from make_shape_model import config_for, write_model  # noqa: E402


def kernels(source):
    """{kernel name: (launch bounds, cluster dims or None, skeleton call)} of the decode function
    (decode_N_*) and of its batch buckets' (decode_bB_N_*)."""
    out = {}
    pat = (r'extern "C" __global__ void __launch_bounds__\(([^)]*)\) (?:KILN_CLUSTER_DIMS\((\d+)\) )?'
           r'(decode_(?:b\d+_)?\d+_\w+)\(kiln::Args a[^{]*\{ (kiln::\w+<[^;]*>)\(a')
    for m in re.finditer(pat, source):
        out[m.group(3)] = (m.group(1), m.group(2), m.group(4))
    return out


def by_suffix(ks, suffix):
    found = [v for k, v in ks.items() if k.endswith(suffix) and re.match(r"decode_\d+_", k)]
    if len(found) != 1:
        raise SystemExit(f"expected one decode kernel *{suffix}, found {len(found)}: {sorted(ks)}")
    return found[0]


def matmuls(ks, bucket=None):
    """The matmul kernels in order (QKV, O, gate/up, down, LM head) of the decode function, or
    of its bucket `bucket` (decode_bB_*)."""
    prefix = re.compile(rf"decode_b{bucket}_\d+_matmul$" if bucket else r"decode_\d+_matmul$")
    names = sorted((k for k in ks if prefix.match(k)), key=lambda k: int(k.split("_")[-2]))
    return [ks[k] for k in names]


def shared_kernels(d, base, expect):
    """A max-batch-256 engine stores each kernel once: buckets whose rows chose the same kernel (the
    1B's buckets 8, 16 and 32 take one tile) share it, and every launch of every function calls a
    kernel with the text of the one emitted for it."""
    flags = ["--max-batch", "256"]
    cu, ir, eng = (os.path.join(d, "shared" + x) for x in (".cu", ".mlir", ".engine"))
    subprocess.run(base + flags + ["--emit", "cuda", "-o", cu], check=True)
    subprocess.run(base + flags + ["--emit", "exec", "-o", ir], check=True)
    subprocess.run(base + flags + ["-o", eng], check=True)
    texts = {}
    for part in re.split(r"\n(?=// ---- )", open(cu).read())[1:]:
        n = re.match(r"// ---- (\w+)", part).group(1)
        texts[n] = part.replace(n, "@")
    first = {}
    canon = {n: first.setdefault(t, n) for n, t in texts.items()}
    folded = sum(1 for n, c in canon.items() if n != c)
    info = json.loads(subprocess.run(base[:1] + ["inspect", eng, "--json"], check=True, capture_output=True,
                                     text=True).stdout)
    stored = [k["name"] for k in info["kernels"]]
    expect("1B max-batch-256 engine: each kernel text stored once", folded > 0 and
           sorted(stored) == sorted(set(canon.values())), f"{len(texts)} emitted, {folded} shared, {len(stored)} stored")
    calls = {}
    fn = None
    for line in open(ir):
        m = re.match(r"\s*func\.func @(\w+)", line)
        if m:
            fn = m.group(1)
        m = re.search(r"kiln_exec\.launch @(\w+)\(", line)
        if m:
            calls.setdefault(fn, []).append(canon[m.group(1)])
    got = {f["name"]: [stored[l["kernel"]] for l in f["launches"]] for f in info["functions"]}
    expect("1B max-batch-256 engine: every launch calls its own kernel's text",
           got == calls and "decode_b64" in got, f"{len(got)} functions, {sum(map(len, got.values()))} launches")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True, help="directory with kiln")
    a = ap.parse_args()
    kiln = os.path.join(a.bin, "kiln")
    failures = []

    def expect(what, cond, got):
        print(f"{'ok  ' if cond else 'FAIL'} {what}: {got}")
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as d:
        for shape, name, D in (("llama-3.2-1b", "1B", 64), ("llama-3.1-8b", "8B", 128)):
            c = config_for(shape, 1)
            c.pop("rope_scaling", None)
            model = os.path.join(d, name)
            write_model(model, c)
            base = [kiln, "compile", model, "--max-batch", "64", "--max-seq", "640", "--quiet"]
            subprocess.run(base + ["-o", os.path.join(d, name + ".engine")], check=True)
            src = {}
            for variant, flags in (("default", []), ("tiled", ["--decode-attention=tiled"]),
                                   ("memory", ["--no-decode-cluster-split"]),
                                   ("b8", ["--max-batch", "8"]), ("b8-g64", ["--max-batch", "8", "--decode-gate-tile", "64"]),
                                   ("b256", ["--max-batch", "256"])):
                path = os.path.join(d, f"{name}-{variant}.cu")
                subprocess.run(base + flags + ["--emit", "cuda", "-o", path], check=True)
                src[variant] = kernels(open(path).read())
            ks = src["default"]
            bounds, _, att = by_suffix(ks, "_paged_attention")
            warps = 4 if D == 64 else 2
            expect(f"{name} decode attention", att.startswith(f"kiln::attentionDecodeMma<S, 1, ") and
                   att.endswith(f", {warps}, 2>") and bounds == f"{warps * 32}, {4 if warps == 4 else 5}",
                   f"__launch_bounds__({bounds}) {att}")
            att_t = by_suffix(src["tiled"], "_paged_attention")[2]
            expect(f"{name} decode attention, --decode-attention=tiled", att_t.startswith("kiln::attentionDecodeTiled<"),
                   att_t)
            mm = matmuls(ks)
            if len(mm) != 5:
                raise SystemExit(f"{name}: expected 5 decode matmul kernels, found {len(mm)}")
            bn = 64 if name == "1B" else 128
            for label, k in (("O", mm[1]), ("down", mm[3])):
                expect(f"{name} {label} projection", k[1] == "4" and k[2] == f"kiln::gemmWs<S, 64, {bn}, 4, false, 1, false, 1, 4>",
                       f"cluster {k[1]} {k[2]}")
            gate_bn = 64 if name == "1B" else 128
            expect(f"{name} gate/up projection", mm[2][1] is None and
                   re.fullmatch(rf"kiln::gemmWs<S, 64, {gate_bn}, \d, false, 1>", mm[2][2]) is not None,
                   f"cluster {mm[2][1]} {mm[2][2]}")
            for variant, want in (("b8", 128), ("b8-g64", 64)):
                g = matmuls(src[variant])[2]
                expect(f"{name} gate/up projection at batch 8 ({variant})", g[1] is None and
                       re.fullmatch(rf"kiln::gemmWs<S, 64, {want}, \d, false, 1>", g[2]) is not None,
                       f"cluster {g[1]} {g[2]}")
            parts = "4" if name == "1B" else "2"
            expect(f"{name} QKV projection (RoPE pairs)", mm[0][1] == parts and
                   mm[0][2] == f"kiln::gemmMma<S, 64, 64, 64, 4, 2, 2, true, 1, {parts}>", f"cluster {mm[0][1]} {mm[0][2]}")
            # The batch-64 bucket of a max-batch-256 engine (decode_b64_*):
            # the max-batch-64 step's kernels, skeleton for skeleton.
            mine = [(v[1], v[2]) for v in matmuls(src["b256"], 64)]
            want = [(v[1], v[2]) for v in mm]
            expect(f"{name} max-batch-256 engine's batch-64 bucket", mine == want,
                   "; ".join(f"cluster {c} {k}" for c, k in mine) or "no decode_b64_* kernels")
            # Steps of one or two sequences at head dim 128 take the tiled
            # decode attention; at 64, and from batch 4, the tensor cores.
            for bucket, want in ((1, "attentionDecodeTiled" if D == 128 else "attentionDecodeMma"),
                                 (2, "attentionDecodeTiled" if D == 128 else "attentionDecodeMma"),
                                 (4, "attentionDecodeMma")):
                att_b = [v[2] for k, v in src["b8"].items() if re.fullmatch(rf"decode_b{bucket}_\d+_paged_attention", k)]
                expect(f"{name} decode attention at batch {bucket}", len(att_b) == 1 and
                       att_b[0].startswith(f"kiln::{want}<"), att_b)
            # Past two rows the matmuls run on tensor cores: the batch-4
            # bucket takes the batch-8 bucket's kernels.
            b4, b8 = matmuls(src["b8"], 4), matmuls(src["b8"], 8) or matmuls(src["b8"])
            expect(f"{name} batch-4 bucket's matmuls on tensor cores", len(b4) == 5 and
                   [k[1:] for k in b4] == [k[1:] for k in b8] and all("gemv" not in k[2] for k in b4),
                   "; ".join(k[2] for k in b4))
            if name == "1B":
                shared_kernels(d, base, expect)
            mem = matmuls(src["memory"])
            expect(f"{name} QKV projection, --no-decode-cluster-split",
                   mem[0][1] is None and re.fullmatch(r"kiln::gemmMma<S, 64, 64, 64, \d, 2, 2, true, [248]>", mem[0][2]) is not None,
                   f"cluster {mem[0][1]} {mem[0][2]}")
            for label, k in (("O", mem[1]), ("down", mem[3])):
                expect(f"{name} {label} projection, --no-decode-cluster-split",
                       k[1] is None and re.fullmatch(r"kiln::gemmWs<S, 64, 64, \d, false, 1, false, [248]>", k[2]) is not None,
                       f"cluster {k[1]} {k[2]}")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
