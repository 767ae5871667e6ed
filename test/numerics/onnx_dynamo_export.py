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
  left as kernels of its own).

  onnx_dynamo_export.py --bin build/bin --arch llama
"""
import argparse, os, re, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--arch", required=True)
a = ap.parse_args()
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
onnx_model = os.path.join(root, "onnx", "dynamo", a.arch, "model.onnx")
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
print("PASS")
