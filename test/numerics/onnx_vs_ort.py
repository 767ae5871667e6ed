#!/usr/bin/env python3
"""ONNX models built with onnx.helper: kiln's importer + interpreter vs onnxruntime.

Each model is imported with `kiln-translate --import-onnx`, evaluated with
`kiln-interp --weights MODEL.onnx` on random inputs, and compared with
onnxruntime on the same inputs (float32: max error below 1e-4 of the largest
output). Then malformed models must fail with the error each names.

  onnx_vs_ort.py --bin build/bin
"""
import argparse, os, subprocess, sys, tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T, helper as h, numpy_helper as nh

OPSET = 18
rng = np.random.default_rng(0)


def model(nodes, inputs, outputs, inits, name):
    g = h.make_graph(nodes, name, inputs, outputs, [nh.from_array(v, k) for k, v in inits.items()])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", OPSET)], producer_name="kiln-test")
    m.ir_version = 8
    return m


def w(*shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def c64(*vals):
    return np.array(vals, dtype=np.int64)


def mlp():
    """Linear layers with bias, SiLU spelled out, GELU via Erf, residual; dynamic batch."""
    nodes = [
        h.make_node("MatMul", ["x", "w1"], ["a"]), h.make_node("Add", ["a", "b1"], ["ab"]),
        h.make_node("Sigmoid", ["ab"], ["s"]), h.make_node("Mul", ["ab", "s"], ["silu"]),
        h.make_node("Div", ["silu", "sqrt2"], ["d"]), h.make_node("Erf", ["d"], ["e"]),
        h.make_node("Add", ["e", "one"], ["e1"]), h.make_node("Mul", ["silu", "e1"], ["g0"]),
        h.make_node("Mul", ["g0", "half"], ["g"]),
        h.make_node("Gemm", ["g", "w2t", "b2"], ["y0"], transB=1),
        h.make_node("Add", ["x", "y0"], ["y"]),
    ]
    inits = dict(w1=w(24, 40), b1=w(40), w2t=w(24, 40), b2=w(24),
                 sqrt2=np.array(np.sqrt(2), np.float32), one=np.array(1, np.float32),
                 half=np.array(0.5, np.float32))
    return model(nodes, [h.make_tensor_value_info("x", T.FLOAT, ["batch", 24])],
                 [h.make_tensor_value_info("y", T.FLOAT, None)], inits, "mlp"), \
        {"x": w(5, 24, scale=1)}


def attention():
    """Embedding, RMSNorm spelled out, heads by Reshape/Transpose, a causal mask
    from Range/Unsqueeze/LessOrEqual/Where, Softmax, shapes from Shape and
    ConstantOfShape, Concat, Slice, Squeeze, Expand, Cast, LayerNormalization."""
    S, H, NH, D = 6, 16, 2, 8
    nodes = [
        h.make_node("Gather", ["emb", "ids"], ["x"]),                      # [1, S, H]
        h.make_node("Pow", ["x", "two"], ["x2"]),
        h.make_node("ReduceMean", ["x2", "last"], ["ms"], keepdims=1),
        h.make_node("Add", ["ms", "eps"], ["mse"]), h.make_node("Sqrt", ["mse"], ["rms"]),
        h.make_node("Reciprocal", ["rms"], ["inv"]), h.make_node("Mul", ["x", "inv"], ["xn"]),
        h.make_node("Mul", ["xn", "g"], ["hn"]),
        h.make_node("MatMul", ["hn", "wq"], ["q"]), h.make_node("MatMul", ["hn", "wk"], ["k"]),
        h.make_node("MatMul", ["hn", "wv"], ["v"]),
        h.make_node("Reshape", ["q", "heads"], ["q4"]), h.make_node("Reshape", ["k", "heads"], ["k4"]),
        h.make_node("Reshape", ["v", "heads"], ["v4"]),
        h.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
        h.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        h.make_node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
        h.make_node("MatMul", ["qt", "kt"], ["s0"]), h.make_node("Div", ["s0", "scale"], ["s"]),
        h.make_node("Range", ["zero", "seq", "step"], ["pos"]),
        h.make_node("Unsqueeze", ["pos", "ax0"], ["row"]), h.make_node("Unsqueeze", ["pos", "ax1"], ["col"]),
        h.make_node("LessOrEqual", ["row", "col"], ["allowed"]),
        h.make_node("Where", ["allowed", "s", "ninf"], ["sm"]),
        h.make_node("Softmax", ["sm"], ["p"], axis=-1),
        h.make_node("MatMul", ["p", "vt"], ["o4"]),
        h.make_node("Transpose", ["o4"], ["o3"], perm=[0, 2, 1, 3]),
        h.make_node("Shape", ["x"], ["xs"]),
        h.make_node("Reshape", ["o3", "xs"], ["o"]),
        h.make_node("Concat", ["o", "x"], ["cat"], axis=-1),                # [1, S, 2H]
        h.make_node("Slice", ["cat", "st", "en", "axs", "sp"], ["sl"]),      # [1, S/2, H]: attention out
        h.make_node("Squeeze", ["sl", "ax0"], ["sq"]),                       # [S/2, H]
        h.make_node("Expand", ["sq", "ex"], ["exd"]),                        # [2, S/2, H]
        h.make_node("ConstantOfShape", ["cs"], ["ones"], value=nh.from_array(np.array([1.5], np.float32))),
        h.make_node("Mul", ["exd", "ones"], ["m"]),
        h.make_node("Cast", ["m"], ["m16"], to=T.FLOAT16), h.make_node("Cast", ["m16"], ["m32"], to=T.FLOAT),
        h.make_node("LayerNormalization", ["m32", "lnw", "lnb"], ["ln"], axis=-1, epsilon=1e-5),
        h.make_node("Tanh", ["ln"], ["t"]), h.make_node("Max", ["t", "lnb"], ["mx"]),
        h.make_node("Neg", ["mx"], ["y"]),
    ]
    inits = dict(emb=w(50, H, scale=1), two=np.array(2, np.float32), last=c64(-1),
                 eps=np.array(1e-6, np.float32), g=(1 + w(H)), wq=w(H, NH * D), wk=w(H, NH * D),
                 wv=w(H, NH * D), heads=c64(0, 0, NH, D), scale=np.array(np.sqrt(D), np.float32),
                 zero=np.array(0, np.int64), seq=np.array(S, np.int64), step=np.array(1, np.int64),
                 ax0=c64(0), ax1=c64(1),
                 ninf=np.array(-1e9, np.float32), st=c64(0, 0), en=c64(S, 16), axs=c64(1, 2),
                 sp=c64(2, 1), ex=c64(2, 1, 1), cs=c64(2, S // 2, H), lnw=(1 + w(H)), lnb=w(H))
    inputs = [h.make_tensor_value_info("ids", T.INT64, [1, S])]
    return model(nodes, inputs, [h.make_tensor_value_info("y", T.FLOAT, None)], inits, "attention"), \
        {"ids": rng.integers(0, 50, (1, S)).astype(np.int64)}


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def check(name, m, feeds, binary, tmp, external=False, raised=()):
    """m: a ModelProto to save, or the path of a committed .onnx file. With
    `raised`, the model also goes through -kiln-raise-patterns, must then hold
    those ops, and must still match onnxruntime."""
    if isinstance(m, str):
        path = m
    else:
        path = os.path.join(tmp, name + ".onnx")
        if external:
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".weights", size_threshold=0)
        else:
            onnx.save_model(m, path)
    want = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    mlir = os.path.join(tmp, name + ".mlir")
    r = run([os.path.join(binary, "kiln-translate"), "--import-onnx", path, "-o", mlir])
    if r.returncode:
        return f"{name}: import failed: {r.stderr.strip()}"
    err = compare(name, mlir, path, feeds, want, binary, tmp)
    if err or not raised:
        return err
    rmlir = os.path.join(tmp, name + ".raised.mlir")
    r = run([os.path.join(binary, "kiln-opt"), mlir, "-kiln-raise-patterns", "-o", rmlir])
    if r.returncode:
        return f"{name}: raise-patterns failed: {r.stderr.strip()}"
    text = open(rmlir).read()
    missing = [op for op in raised if op not in text]
    if missing:
        return f"{name}: raise-patterns did not produce {missing}"
    return compare(name + " raised", rmlir, path, feeds, want, binary, tmp)


def compare(name, mlir, path, feeds, want, binary, tmp):
    """Evaluates `mlir` with the model's weights and compares with `want`."""
    args = [os.path.join(binary, "kiln-interp"), mlir, "--weights", path,
            "--output-dir", os.path.join(tmp, name + ".out")]
    for k, v in feeds.items():
        np.save(os.path.join(tmp, k + ".npy"), v)
        args += ["--input", os.path.join(tmp, k + ".npy")]
    r = run(args)
    if r.returncode:
        return f"{name}: evaluation failed: {r.stderr.strip()}"
    worst = 0.0
    for i, w in enumerate(want):
        got = np.load(os.path.join(tmp, name + ".out", f"result{i}.npy"))
        if got.shape != w.shape:
            return f"{name}: output {i} shape {got.shape} != onnxruntime's {w.shape}"
        worst = max(worst, float(np.abs(got - w).max() / max(np.abs(w).max(), 1e-30)))
    print(f"{name}: {len(want)} outputs, first {want[0].shape}, "
          f"max error {worst:.1e} of the largest output")
    return None if worst < 1e-4 else f"{name}: max relative error {worst:.2e} >= 1e-4"


def malformed(binary, tmp):
    """Each bad model and the words its error must contain."""
    x = h.make_tensor_value_info("x", T.FLOAT, [2])
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    cases = {}
    cases["cyclic"] = (model([h.make_node("Add", ["x", "b"], ["a"], name="n1"),
                              h.make_node("Neg", ["a"], ["b"], name="n2"),
                              h.make_node("Identity", ["a"], ["y"], name="n3")], [x], [y], {}, "c"),
                       "the graph has a cycle")
    cases["missing_initializer"] = (model([h.make_node("Add", ["x", "w"], ["y"], name="add")], [x], [y], {}, "m"),
                                    "node 'add' (Add): reads 'w', which no node, graph input or initializer defines")
    cases["unsupported_op"] = (model([h.make_node("Einsum", ["x", "x"], ["y"], name="e", equation="i,i->i")],
                                     [x], [y], {}, "u"),
                               "node 'e' (Einsum): operator Einsum (domain '', opset 18) is not supported")
    old = model([h.make_node("Neg", ["x"], ["y"])], [x], [y], {}, "o")
    old.opset_import[0].version = 11
    cases["old_opset"] = (old, "opset 11 is not supported")
    for name, where in (("absolute", "/etc/passwd"), ("escape", "../outside.bin")):
        m = model([h.make_node("Add", ["x", "w"], ["y"])], [x], [y], {"w": w(2)}, name)
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = T.EXTERNAL
        t.external_data.add(key="location", value=where)
        cases["external_" + name] = (m, "is an absolute path" if name == "absolute" else "leaves the model's directory")
    huge = model([h.make_node("Add", ["x", "big"], ["y"])], [x], [y], {}, "h")
    big = huge.graph.initializer.add()
    big.name, big.data_type = "big", T.FLOAT
    big.dims.extend([1 << 40, 1 << 40])
    cases["shape_overflow"] = (huge, "tensor 'big': shape overflows")
    nodata = model([h.make_node("Add", ["x", "w"], ["y"])], [x], [y], {}, "n")
    w0 = nodata.graph.initializer.add()
    w0.name, w0.data_type = "w", T.FLOAT
    w0.dims.extend([1 << 20, 1 << 20])  # a valid shape, and no data at all
    cases["weight_without_data"] = (nodata, "tensor 'w': has 0 values for 1099511627776 elements of f32")
    fails = []
    for name, (m, want) in cases.items():
        path = os.path.join(tmp, name + ".onnx")
        onnx.save_model(m, path)
        r = run([os.path.join(binary, "kiln-translate"), "--import-onnx", path])
        if r.returncode == 0 or want not in r.stderr or path not in r.stderr or "Assertion" in r.stderr:
            fails.append(f"malformed {name}: rc {r.returncode}, stderr {r.stderr.strip()!r}, want {want!r}")
    truncated = os.path.join(tmp, "truncated.onnx")
    data = open(os.path.join(tmp, "mlp.onnx"), "rb").read()
    open(truncated, "wb").write(data[: len(data) // 3])
    r = run([os.path.join(binary, "kiln-translate"), "--import-onnx", truncated])
    if r.returncode == 0 or "not a valid ONNX model" not in r.stderr:
        fails.append(f"truncated: rc {r.returncode}, {r.stderr.strip()!r}")
    print(f"malformed models: {len(cases) + 1} checked")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    fails = []
    with tempfile.TemporaryDirectory() as tmp:
        m, feeds = mlp()
        fails.append(check("mlp", m, feeds, a.bin, tmp, raised=("kiln.silu", "kiln.gelu")))
        fails.append(check("mlp_ext", m, feeds, a.bin, tmp, external=True))
        m, feeds = attention()
        fails.append(check("attention", m, feeds, a.bin, tmp))
        # torch.onnx exports of the tiny transformers Llama (test/models/onnx), at
        # lengths other than the ones they were traced with (16 tokens, 5 past).
        models = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "onnx")
        ids = rng.integers(0, 512, (1, 11)).astype(np.int64)
        fails.append(check("torch_llama_plain", os.path.join(models, "llama_plain.onnx"),
                           {"input_ids": ids}, a.bin, tmp, raised=("kiln.rms_norm", "kiln.swiglu", "kiln.rope")))
        past = 9
        feeds = {"input_ids": ids, "position_ids": np.arange(past, past + 11, dtype=np.int64)[None]}
        for l in range(2):
            for t in ("key", "value"):
                feeds[f"past_{t}_{l}"] = rng.standard_normal((1, 2, past, 16)).astype(np.float32)
        fails.append(check("torch_llama_kv", os.path.join(models, "llama_kv.onnx"), feeds, a.bin, tmp,
                           raised=("kiln.rms_norm", "kiln.swiglu")))
        fails += malformed(a.bin, tmp)
    fails = [f for f in fails if f]
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
