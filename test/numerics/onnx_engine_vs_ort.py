#!/usr/bin/env python3
"""The torch.onnx export of the tiny Llama as an engine on the host device,
its weights bound from the ONNX file by the runtime, against onnxruntime.

For each encoding of the weights (raw_data as exported, typed float_data,
external data beside the model) the model is compiled with `kiln compile`,
a golden is made with onnxruntime (greedy, 16 tokens, full recompute each
step; last-position logits of the prompt), and `kiln-run --device host
--golden` must produce the same tokens and logits within 1e-3 of the
largest. Then bad external data must fail with its message.

  onnx_engine_vs_ort.py --bin build/bin --model test/models/onnx/llama_plain.onnx
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper as nh

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--model", required=True)
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="kiln-onnx-engine-")
base = onnx.load(a.model)


def variant(name):
    m = onnx.ModelProto()
    m.CopyFrom(base)
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    if name == "typed":
        for i, t in enumerate(m.graph.initializer):
            arr = nh.to_array(t)
            if arr.dtype == np.float32:
                n = onnx.helper.make_tensor(t.name, onnx.TensorProto.FLOAT, arr.shape, arr.flatten().tolist())
                m.graph.initializer[i].CopyFrom(n)
        onnx.save(m, path)
    elif name == "external":
        os.makedirs(os.path.join(d, "weights"), exist_ok=True)
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights/model.bin", size_threshold=1024)
    else:
        onnx.save(m, path)
    return path


def golden(path, prompt, steps=16):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ids = list(prompt)
    first = None
    for _ in range(steps):
        logits = s.run(None, {"input_ids": np.array([ids], dtype=np.int64)})[0][0, -1]
        if first is None:
            first = logits
        ids.append(int(np.argmax(logits)))
    return dict(prompt=list(prompt), greedy_tokens=ids[len(prompt):], last_logits=[float(x) for x in first])


prompt = [int(x) for x in np.random.default_rng(3).integers(0, 512, 9)]
fail = 0
for name in ("raw", "typed", "external"):
    path = variant(name)
    g = golden(path, prompt)
    gpath = os.path.join(tmp, name + ".json")
    json.dump(g, open(gpath, "w"))
    engine = os.path.join(tmp, name + ".engine")
    c = subprocess.run([os.path.join(a.bin, "kiln"), "compile", path, "--max-batch", "1", "--max-seq", "64",
                        "--quiet", "-o", engine], capture_output=True, text=True)
    if c.returncode:
        print(f"{name:9} compile failed: {c.stderr.strip()}")
        fail = 1
        continue
    r = subprocess.run([os.path.join(a.bin, "kiln-run"), engine, "--device", "host", "--golden", gpath,
                        "--tolerance", "1e-3"], capture_output=True, text=True)
    line = (r.stdout.strip().splitlines() or [r.stderr.strip()])[0]
    print(f"{name:9} {line}")
    fail |= r.returncode != 0 or not line.startswith("PASS")

# The external variant with its data file moved away: a clear error.
ext = os.path.join(tmp, "external")
os.rename(os.path.join(ext, "weights", "model.bin"), os.path.join(ext, "weights", "moved.bin"))
r = subprocess.run([os.path.join(a.bin, "kiln-run"), os.path.join(tmp, "external.engine"), "--device", "host",
                    "--prompt-ids", "1,2,3"], capture_output=True, text=True)
want = "cannot open its external data"
# Each file named once: the model, then the data file it points to.
ok = r.returncode != 0 and want in r.stderr and r.stderr.count(os.path.join(ext, "model.onnx")) == 1
print(f"missing   {'PASS' if ok else 'FAIL'} external data moved: {r.stderr.strip()}")
fail |= not ok
sys.exit(1 if fail else 0)
