#!/usr/bin/env python3
"""A current torch.onnx (dynamo) export of a tiny Hugging Face model
(test/models/onnx/dynamo/ARCH, made by make_dynamo_exports.py) against the
model itself, on the host device:

- the export compiles (its attention, RoPE and norms raised to kiln's
  composites) and its engine reproduces the transformers golden of
  test/models/hf/ARCH: last prompt logits within 1e-3 of the largest and
  32 greedy tokens identical (the export's config.json gives the
  end-of-sequence id the golden masks);
- its decode step launches exactly as many kernels as the engine compiled
  from the Hugging Face directory (nothing of the export's spelling is
  left as kernels of its own);
- the export fixed its batch at 1 (input_ids [1, T]): `--max-batch 4` is
  refused, naming why; and it holds f32: `--dtype bf16` is refused, not
  ignored.

With --kv, the export with past/present keys and values (optimum's form,
ARCH-kv): its past inputs and present outputs become the paged cache.

  onnx_dynamo_export.py --bin build/bin --arch llama [--kv]
"""
import argparse, os, re, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--arch", required=True)
ap.add_argument("--kv", action="store_true", help="the export with past/present keys and values (ARCH-kv)")
a = ap.parse_args()
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
onnx_model = os.path.join(root, "onnx", "dynamo", a.arch + ("-kv" if a.kv else ""), "model.onnx")
hf_model = os.path.join(root, "hf", a.arch)
tmp = tempfile.mkdtemp(prefix="kiln-dynamo-")
kiln = os.path.join(a.bin, "kiln")


def run(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"FAIL {' '.join(cmd)}:\n{r.stdout}{r.stderr}")
    return r.stdout


def decode_launches(model, *flags):
    text = run(kiln, "compile", model, "--max-seq", "64", "--max-batch", "1", *flags, "--emit", "exec", "-o", "-")
    m = re.search(r"func\.func @decode\(.*?\n  \}", text, re.S)
    if not m:
        sys.exit(f"FAIL no decode function in {model}'s engine")
    return m.group(0).count("kiln_exec.launch")


engine = os.path.join(tmp, "onnx.engine")
run(kiln, "compile", onnx_model, "--max-seq", "64", "--max-batch", "1", "--quiet", "-o", engine)
out = run(os.path.join(a.bin, "kiln-run"), engine, "--device", "host", "--golden",
          os.path.join(hf_model, "golden.json"), "--tolerance", "1e-3")
print(out.strip().splitlines()[0])
got, want = decode_launches(onnx_model), decode_launches(hf_model, "--dtype", "f32")
print(f"decode launches: export {got}, Hugging Face directory {want}")
if got != want:
    sys.exit("FAIL the export's decode step launches a different number of kernels")
# The export fixed its batch at 1: more sequences a step are refused by name.
r = subprocess.run([kiln, "compile", onnx_model, "--max-seq", "64", "--max-batch", "4", "--quiet", "-o",
                    os.path.join(tmp, "b4.engine")], capture_output=True, text=True)
if r.returncode == 0 or "fixes the batch of its input at 1" not in r.stderr:
    sys.exit(f"FAIL --max-batch 4 of a batch-1 export: rc {r.returncode}, {r.stderr.strip()}")
print("refused: " + r.stderr.strip().splitlines()[-1])
# The export holds f32: a --dtype asking for bf16 is refused, not ignored.
r = subprocess.run([kiln, "compile", onnx_model, "--max-seq", "64", "--dtype", "bf16", "--quiet", "-o",
                    os.path.join(tmp, "bf16.engine")], capture_output=True, text=True)
if r.returncode == 0 or "holds f32 weights" not in r.stderr:
    sys.exit(f"FAIL --dtype bf16 of an f32 export: rc {r.returncode}, {r.stderr.strip()}")
print("refused: " + r.stderr.strip().splitlines()[-1])
print("PASS")
