//===- ONNXCompositeOps.cpp - ONNX nodes of several kiln ops ---------------===//
//
// Split, RotaryEmbedding, Attention (opset 23), Range (f16/bf16 through stash_type), and
// LayerNormalization/RMSNormalization over several axes with their optional
// statistics: the nodes that expand to more than one kiln op.
//
//===----------------------------------------------------------------------===//
#include "frontend/onnx/ONNXGraph.h"

#include <cmath>
#include <limits>

namespace kiln::onnx_frontend::detail {

Status GraphImporter::convertSplit(const onnx::NodeProto &n) {
  Status status = Status::ok();
  Value result;
  auto done = [&](Operation *o) { return emit(n, o, status, result); };
  // Each output a slice along `axis`: the sizes given (the `split` input),
  // or num_outputs (18) / the outputs' count parts of ceil(dim / parts),
  // the last smaller (before 18 they must divide evenly).
  Value x = input(n, 0);
  auto xt = cast<RankedTensorType>(x.getType());
  int64_t r = xt.getRank(), outs = n.output_size();
  int64_t axis = normAxis(attrInt(n, "axis", 0), r);
  if (axis < 0 || axis >= r)
    return error(n, "Split axis " + std::to_string(attrInt(n, "axis", 0)) + " out of range");
  if (xt.isDynamicDim(axis))
    return error(n, "Split along a dimension known only at run time is not supported");
  const int64_t dim = xt.getDimSize(axis);
  std::vector<int64_t> sizes;
  if (input(n, 1)) {
    KILN_RETURN_IF_ERROR(knownInts(n, 1, sizes, "split"));
  } else {
    int64_t parts = attrInt(n, "num_outputs", outs);
    if (parts != outs || parts <= 0)
      return error(n, "Split into " + std::to_string(parts) + " parts with " + std::to_string(outs) + " outputs");
    if (opset_ < 18 && dim % parts)
      return error(n, "Split of " + std::to_string(dim) + " into " + std::to_string(parts) + " equal parts");
    int64_t chunk = (dim + parts - 1) / parts;
    for (int64_t i = 0; i < parts; ++i)
      sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
  }
  int64_t sum = 0;
  for (int64_t v : sizes)
    sum += v < 0 ? dim + 1 : v; // (a negative size fails the sum)
  if (static_cast<int64_t>(sizes.size()) != outs || sum != dim)
    return error(n, "Split sizes must be " + std::to_string(outs) + " non-negative sizes adding up to " +
                        std::to_string(dim));
  int64_t at = 0;
  for (int64_t i = 0; i < outs; ++i) {
    std::vector<int64_t> fs(r, 0), fe(r, std::numeric_limits<int64_t>::max()), fst(r, 1);
    fs[axis] = at;
    fe[axis] = at + sizes[i];
    KILN_RETURN_IF_ERROR(done(make<kiln::SliceOp>(n, status, x, fs, fe, fst)));
    values_[n.output(static_cast<int>(i))] = result;
    at += sizes[i];
  }
  return Status::ok();
}

Status GraphImporter::convertRotary(const onnx::NodeProto &n) {
  Status status = Status::ok();
  auto step = [&](Operation *o, Value &out) { return emit(n, o, status, out); };
  // ONNX's decomposition (opset 23), in kiln's ops: the first R channels
  // of each head turn by the cache's cos and sin (gathered by
  // position_ids, else given per token), as halves or interleaved pairs;
  // the rest pass. 4-D input [B, heads, S, D]; 3-D [B, S, heads * D].
  Value x = input(n, 0), cosv = input(n, 1), sinv = input(n, 2);
  auto xt = cast<RankedTensorType>(x.getType());
  const int64_t r = xt.getRank();
  if ((r != 3 && r != 4) || !cosv || !sinv)
    return error(n, "RotaryEmbedding takes a 3-D or 4-D input, cos_cache and sin_cache");
  const int64_t heads = attrInt(n, "num_heads", 0);
  if (xt.isDynamicDim(r - 1) || (r == 3 && (heads <= 0 || xt.getDimSize(2) % heads)))
    return error(n, r == 3 ? "RotaryEmbedding of a 3-D input needs num_heads dividing its static last dimension"
                           : "RotaryEmbedding needs a static head size");
  const int64_t D = r == 3 ? xt.getDimSize(2) / heads : xt.getDimSize(3);
  const int64_t R = attrInt(n, "rotary_embedding_dim", 0) ? attrInt(n, "rotary_embedding_dim", 0) : D;
  if (R <= 0 || R % 2 || R > D)
    return error(n, "RotaryEmbedding's rotary_embedding_dim " + std::to_string(R) + " must be even and at most "
                        "the head size " + std::to_string(D));
  Value x4 = x;
  if (r == 3)
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, x, std::vector<int64_t>{0, 0, heads, D}), x4));
  // cos and sin: [B, S, R/2], then a unit axis at the heads'.
  Value cs[2] = {cosv, sinv};
  for (Value &c : cs) {
    if (input(n, 3))
      KILN_RETURN_IF_ERROR(step(make<kiln::GatherOp>(n, status, c, input(n, 3), int64_t(0)), c));
    auto ct = cast<RankedTensorType>(c.getType());
    if (ct.getRank() != 3 || ct.isDynamicDim(2) || ct.getDimSize(2) != R / 2)
      return error(n, "RotaryEmbedding's cos and sin must be [batch, tokens, " + std::to_string(R / 2) + "]");
    std::vector<int64_t> shape = r == 4 ? std::vector<int64_t>{0, 1, -1, R / 2} : std::vector<int64_t>{0, 0, 1, R / 2};
    if (r == 4 && !ct.isDynamicDim(1))
      shape[2] = ct.getDimSize(1);
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, c, shape), c));
  }
  const bool inter = attrInt(n, "interleaved", 0) != 0;
  auto cut = [&](Value v, int64_t from, int64_t to, int64_t by, Value &out) {
    std::vector<int64_t> st(4, 0), en(4, std::numeric_limits<int64_t>::max()), sp(4, 1);
    st[3] = from, en[3] = to, sp[3] = by;
    return step(make<kiln::SliceOp>(n, status, v, st, en, sp), out);
  };
  Value x1, x2, a, b2, re, im;
  KILN_RETURN_IF_ERROR(inter ? cut(x4, 0, R, 2, x1) : cut(x4, 0, R / 2, 1, x1));
  KILN_RETURN_IF_ERROR(inter ? cut(x4, 1, R, 2, x2) : cut(x4, R / 2, R, 1, x2));
  // real = cos x1 - sin x2, imag = sin x1 + cos x2
  KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, cs[0], x1), a));
  KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, cs[1], x2), b2));
  KILN_RETURN_IF_ERROR(step(make<kiln::SubOp>(n, status, a, b2), re));
  KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, cs[1], x1), a));
  KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, cs[0], x2), b2));
  KILN_RETURN_IF_ERROR(step(make<kiln::AddOp>(n, status, a, b2), im));
  Value rot;
  if (inter) {
    // [.., R/2] pairs side by side: [.., R/2, 2] read as [.., R].
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, re, std::vector<int64_t>{0, 0, 0, R / 2, 1}), re));
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, im, std::vector<int64_t>{0, 0, 0, R / 2, 1}), im));
    KILN_RETURN_IF_ERROR(step(make<kiln::ConcatOp>(n, status, SmallVector<Value>{re, im}, int64_t(4)), rot));
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, rot, std::vector<int64_t>{0, 0, 0, R}), rot));
  } else {
    KILN_RETURN_IF_ERROR(step(make<kiln::ConcatOp>(n, status, SmallVector<Value>{re, im}, int64_t(3)), rot));
  }
  if (R < D) {
    Value pass;
    KILN_RETURN_IF_ERROR(cut(x4, R, D, 1, pass));
    KILN_RETURN_IF_ERROR(step(make<kiln::ConcatOp>(n, status, SmallVector<Value>{rot, pass}, int64_t(3)), rot));
  }
  if (r == 3)
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, rot, std::vector<int64_t>{0, 0, heads * D}), rot));
  return single(n, rot);
}

Status GraphImporter::convertRange(const onnx::NodeProto &n) {
  Location loc = locOf(n);
  Status status = Status::ok();
  Value result;
  auto done = [&](Operation *o) { return emit(n, o, status, result); };
  // Opset 27: f16/bf16 ranges are computed in stash_type (1: f32, 11:
  // f64), then rounded to the inputs' type; other types ignore it.
  Type et = cast<RankedTensorType>(input(n, 0).getType()).getElementType();
  const bool low = et.isF16() || et.isBF16();
  const int64_t stash = attrInt(n, "stash_type", 1);
  if (low && stash != 1 && stash != 11)
    return error(n, "Range with stash_type " + std::to_string(stash) + " (kiln computes f16/bf16 ranges in f32, "
                    "stash_type 1, or f64, 11)");
  const Tensor *s = known(n, 0), *l = known(n, 1), *d = known(n, 2);
  double span = s && l && d && d->get(0) != 0 ? (l->get(0) - s->get(0)) / d->get(0) : 0;
  if (!s || !l || !d || span > static_cast<double>(kMaxFoldElements)) {
    if (!low) {
      KILN_RETURN_IF_ERROR(
          done(make<kiln::RangeOp>(n, status, input(n, 0), input(n, 1), input(n, 2))));
      values_[n.output(0)] = result;
      return Status::ok();
    }
    Type ct = stash == 11 ? Type(b_.getF64Type()) : Type(b_.getF32Type());
    SmallVector<Value, 3> wide;
    for (int i = 0; i < 3; ++i) {
      auto t = cast<RankedTensorType>(input(n, i).getType());
      KILN_RETURN_IF_ERROR(done(kiln::CastOp::create(b_, loc, t.clone(ct), input(n, i))));
      wide.push_back(result);
    }
    KILN_RETURN_IF_ERROR(done(make<kiln::RangeOp>(n, status, wide[0], wide[1], wide[2])));
    auto rt = cast<RankedTensorType>(result.getType());
    KILN_RETURN_IF_ERROR(done(kiln::CastOp::create(b_, loc, rt.clone(et), result)));
    values_[n.output(0)] = result;
    return Status::ok();
  }
  double start = s->get(0), limit = l->get(0), delta = d->get(0);
  if (delta == 0)
    return error(n, "Range with delta 0");
  int64_t count = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
  Tensor t(s->dtype(), {count});
  for (int64_t i = 0; i < count; ++i)
    t.set(i, low && stash == 1 ? static_cast<double>(static_cast<float>(start + i * delta)) : start + i * delta);
  result = constant(t, loc);
  return single(n, result);
}

Status GraphImporter::convertNorm(const onnx::NodeProto &n) {
  Location loc = locOf(n);
  const std::string &op = n.op_type();
  Status status = Status::ok();
  Value result;
  auto done = [&](Operation *o) { return emit(n, o, status, result); };
  // Over the axes from `axis` on: the last axis directly; several as one,
  // through a reshape of static sizes (the scale and bias broadcast to
  // them, then flattened).
  bool rms = op == "RMSNormalization";
  if (attrInt(n, "stash_type", 1) != 1)
    return error(n, op + " with stash_type " + std::to_string(attrInt(n, "stash_type", 1)) +
                        " (statistics in another precision than f32) is not supported");
  Value x = input(n, 0);
  auto xt = cast<RankedTensorType>(x.getType());
  int64_t r = rankOf(x), axis = normAxis(attrInt(n, "axis", -1), r);
  if (axis < 0 || axis >= r)
    return error(n, op + " axis " + std::to_string(attrInt(n, "axis", -1)) + " is out of range");
  ArrayRef<int64_t> normShape = xt.getShape().drop_front(axis);
  if (llvm::any_of(normShape, [](int64_t d) { return d == kDyn; }))
    return error(n, op + " over axes whose sizes are known only at run time is not supported");
  int64_t width = 1;
  for (int64_t d : normShape)
    width *= d;
  auto flat = [&](Value v) -> FailureOr<Value> {
    if (!v)
      return v;
    auto vt = cast<RankedTensorType>(v.getType());
    if (vt.getShape() == normShape && axis == r - 1)
      return v;
    if (vt.getShape() != normShape) {
      Shape norm(normShape.begin(), normShape.end()), out;
      if (Status bs = host::broadcastShapes(Shape(vt.getShape().begin(), vt.getShape().end()), norm, out);
          !bs || out != norm)
        return failure();
      if (!done(kiln::BroadcastToOp::create(b_, loc, RankedTensorType::get(normShape, vt.getElementType()), v)))
        return failure();
      v = result;
    }
    if (!done(make<kiln::ReshapeOp>(n, status, v, ArrayRef<int64_t>{width})))
      return failure();
    return result;
  };
  FailureOr<Value> scale = flat(input(n, 1)), bias = rms ? FailureOr<Value>(Value()) : flat(input(n, 2));
  if (failed(scale) || failed(bias))
    return status.isOk() ? error(n, op + "'s scale and bias must broadcast to the normalized axes") : status;
  Value in = x;
  if (axis != r - 1) {
    SmallVector<int64_t> pattern(axis, 0);
    pattern.push_back(width);
    KILN_RETURN_IF_ERROR(done(make<kiln::ReshapeOp>(n, status, x, pattern)));
    in = result;
  }
  auto eps = b_.getF32FloatAttr(attrFloat(n, "epsilon", 1e-5f));
  Operation *norm = rms ? kiln::RmsNormOp::create(b_, loc, in.getType(), in, *scale, eps, b_.getF32FloatAttr(0.0f))
                              .getOperation()
                        : kiln::LayerNormOp::create(b_, loc, in.getType(), in, *scale, *bias, eps).getOperation();
  KILN_RETURN_IF_ERROR(done(norm));
  if (axis != r - 1) {
    SmallVector<int64_t> back(xt.getShape().begin(), xt.getShape().end());
    for (int64_t i = 0; i < axis; ++i)
      back[i] = 0; // copies the input's (possibly dynamic) leading sizes
    KILN_RETURN_IF_ERROR(done(make<kiln::ReshapeOp>(n, status, result, back)));
  }
  if (!rms && n.output_size() > 1) {
    // LayerNormalization's optional Mean and InvStdDev: f32 statistics over
    // the normalized axes, kept as size-1 dimensions.
    Value y = result, xf = x;
    if (!xt.getElementType().isF32()) {
      KILN_RETURN_IF_ERROR(done(kiln::CastOp::create(b_, loc, xt.clone(b_.getF32Type()), x)));
      xf = result;
    }
    std::vector<int64_t> axes;
    for (int64_t a = axis; a < r; ++a)
      axes.push_back(a);
    KILN_RETURN_IF_ERROR(done(make<kiln::ReduceMeanOp>(n, status, xf, axes, true)));
    Value mean = result;
    KILN_RETURN_IF_ERROR(done(make<kiln::SubOp>(n, status, xf, mean)));
    Value d = result;
    KILN_RETURN_IF_ERROR(done(make<kiln::MulOp>(n, status, d, d)));
    KILN_RETURN_IF_ERROR(done(make<kiln::ReduceMeanOp>(n, status, result, axes, true)));
    Tensor e(DType::F32, {});
    e.set(0, eps.getValueAsDouble());
    KILN_RETURN_IF_ERROR(done(make<kiln::AddOp>(n, status, result, constant(e, loc))));
    KILN_RETURN_IF_ERROR(done(kiln::RsqrtOp::create(b_, loc, result)));
    if (n.output_size() > 3)
      return error(n, "LayerNormalization has at most 3 outputs");
    values_[n.output(0)] = y;
    if (!n.output(1).empty())
      values_[n.output(1)] = mean;
    if (n.output_size() > 2 && !n.output(2).empty())
      values_[n.output(2)] = result;
    return Status::ok();
  }
  return single(n, result);
}


Status GraphImporter::convertAttention(const onnx::NodeProto &n) {
  Location loc = locOf(n);
  Status status = Status::ok();
  auto step = [&](Operation *o, Value &out) { return emit(n, o, status, out); };
  // ONNX's Attention (opset 23) as its reference computes it, in kiln's
  // ops: 3-D inputs [B, S, heads * D] to [B, heads, S, D]; past keys and
  // values before the new ones (the present outputs); Q and K each times
  // sqrt(scale) (1/sqrt(D) by default) rounded to their type; the KV heads
  // repeated for grouped queries; Q K^T; a soft cap; an additive bias from
  // the mask (bool: -inf where false; padded with -inf to the keys) plus the
  // causal frontier j <= i + past (or nonpad_kv_seqlen - S), a sliding
  // window about it, the keys past nonpad_kv_seqlen; softmax, zero on a row
  // the bias masks entirely; times V. Shapes must be static.
  Value q = input(n, 0), k = input(n, 1), v = input(n, 2), mask = input(n, 3);
  Value pastK = input(n, 4), pastV = input(n, 5);
  if (!q || !k || !v)
    return error(n, "Attention needs Q, K and V");
  Value nonpad = input(n, 6);
  if (nonpad && pastK)
    return error(n, "Attention's nonpad_kv_seqlen comes without past_key and past_value");
  const int64_t left = attrInt(n, "left_window_size", -1), right = attrInt(n, "right_window_size", -1);
  if (left < -1 || right < -1)
    return error(n, "Attention's left_window_size and right_window_size are -1 or at least 0");
  if (!pastK != !pastV)
    return error(n, "Attention takes past_key and past_value together");
  auto typeOf = [](Value x) { return cast<RankedTensorType>(x.getType()); };
  const int64_t r = typeOf(q).getRank();
  if ((r != 3 && r != 4) || typeOf(k).getRank() != r || typeOf(v).getRank() != r)
    return error(n, "Attention takes Q, K and V of rank 3 or 4 alike");
  for (Value x : {q, k, v, mask, pastK, pastV, nonpad})
    if (x && !typeOf(x).hasStaticShape())
      return error(n, "Attention needs static shapes (kiln builds its masks when it imports the node)");
  Type et = typeOf(q).getElementType();
  if (!et.isF32() && !et.isF16() && !et.isBF16())
    return error(n, "Attention computes f32, f16 or bf16");
  const DType dt = et.isF32() ? DType::F32 : et.isF16() ? DType::F16 : DType::BF16;
  const int64_t prec = attrInt(n, "softmax_precision", 0);
  if (prec != 0 && prec != 1 && prec != 10 && prec != 16)
    return error(n, "Attention's softmax_precision " + std::to_string(prec) +
                        " (kiln's softmax computes in f32: 1, or the inputs' 16-bit type)");
  auto scalar = [&](double value) {
    Tensor t(dt, {});
    t.set(0, value);
    return constant(t, loc);
  };
  const double negInf = -std::numeric_limits<double>::infinity();
  Value q4 = q, k4 = k, v4 = v;
  if (r == 3) {
    const int64_t qh = attrInt(n, "q_num_heads", 0), kvh = attrInt(n, "kv_num_heads", 0);
    if (qh <= 0 || kvh <= 0 || typeOf(q).getDimSize(2) % qh || typeOf(k).getDimSize(2) % kvh ||
        typeOf(v).getDimSize(2) % kvh)
      return error(n, "Attention of 3-D inputs needs q_num_heads and kv_num_heads dividing their hidden sizes");
    auto to4 = [&](Value x, int64_t heads, Value &out) {
      auto t = typeOf(x);
      KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, x,
                                                      std::vector<int64_t>{t.getDimSize(0), t.getDimSize(1), heads,
                                                                           t.getDimSize(2) / heads}),
                                out));
      return step(make<kiln::TransposeOp>(n, status, out, std::vector<int64_t>{0, 2, 1, 3}), out);
    };
    KILN_RETURN_IF_ERROR(to4(q, qh, q4));
    KILN_RETURN_IF_ERROR(to4(k, kvh, k4));
    KILN_RETURN_IF_ERROR(to4(v, kvh, v4));
  }
  int64_t offset = 0;
  if (pastK) {
    offset = typeOf(pastK).getDimSize(2);
    KILN_RETURN_IF_ERROR(step(make<kiln::ConcatOp>(n, status, SmallVector<Value>{pastK, k4}, int64_t(2)), k4));
    KILN_RETURN_IF_ERROR(step(make<kiln::ConcatOp>(n, status, SmallVector<Value>{pastV, v4}, int64_t(2)), v4));
  }
  const int64_t B = typeOf(q4).getDimSize(0), Hq = typeOf(q4).getDimSize(1), Sq = typeOf(q4).getDimSize(2),
                D = typeOf(q4).getDimSize(3), Hkv = typeOf(k4).getDimSize(1), Skv = typeOf(k4).getDimSize(2),
                Dv = typeOf(v4).getDimSize(3);
  if (typeOf(k4).getDimSize(3) != D || typeOf(v4).getDimSize(1) != Hkv || typeOf(v4).getDimSize(2) != Skv ||
      Hq % Hkv)
    return error(n, "Attention's Q, K and V disagree in their heads, head sizes or keys");
  const onnx::AttributeProto *scaleAttr = attr(n, "scale");
  const double scale = scaleAttr ? static_cast<double>(attrFloat(n, "scale", 1.0f)) : 1.0 / std::sqrt(double(D));
  Value root = scalar(std::sqrt(scale)), qs, ks = k4, vs = v4;
  KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, q4, root), qs));
  KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, k4, root), ks));
  if (Hq != Hkv) {
    // Each KV head repeated Hq / Hkv times in place: [h0, h0, h1, h1, ...].
    auto repeat = [&](Value x, Value &out) {
      auto t = typeOf(x);
      const int64_t S = t.getDimSize(2), E = t.getDimSize(3);
      KILN_RETURN_IF_ERROR(
          step(make<kiln::ReshapeOp>(n, status, x, std::vector<int64_t>{B, Hkv, 1, S, E}), out));
      KILN_RETURN_IF_ERROR(step(kiln::BroadcastToOp::create(
                                    b_, loc, RankedTensorType::get({B, Hkv, Hq / Hkv, S, E}, et), out),
                                out));
      return step(make<kiln::ReshapeOp>(n, status, out, std::vector<int64_t>{B, Hq, S, E}), out);
    };
    KILN_RETURN_IF_ERROR(repeat(ks, ks));
    KILN_RETURN_IF_ERROR(repeat(vs, vs));
  }
  Value kT, scores;
  KILN_RETURN_IF_ERROR(step(make<kiln::TransposeOp>(n, status, ks, std::vector<int64_t>{0, 1, 3, 2}), kT));
  KILN_RETURN_IF_ERROR(step(make<kiln::MatmulOp>(n, status, qs, kT, UnitAttr()), scores));
  const float cap = attrFloat(n, "softcap", 0.0f);
  if (cap > 0) {
    Value c = scalar(cap), t;
    KILN_RETURN_IF_ERROR(step(make<kiln::DivOp>(n, status, scores, c), t));
    KILN_RETURN_IF_ERROR(step(make<kiln::TanhOp>(n, status, t), t));
    KILN_RETURN_IF_ERROR(step(make<kiln::MulOp>(n, status, t, c), scores));
  }
  // The additive bias, broadcast against [B, Hq, Sq, Skv].
  Value bias;
  if (mask) {
    auto mt = typeOf(mask);
    const int64_t mr = mt.getRank(), last = mt.getDimSize(mr - 1);
    if (mr < 1 || mr > 4 || last > Skv)
      return error(n, "Attention's attn_mask must have rank 1 to 4 and at most the keys' " + std::to_string(Skv) +
                          " columns");
    Value m = mask;
    if (mt.getElementType().isInteger(1)) {
      Tensor zeros(dt, Shape(mt.getShape().begin(), mt.getShape().end())), masked = zeros;
      for (int64_t i = 0; i < zeros.numel(); ++i)
        zeros.set(i, 0.0), masked.set(i, negInf);
      KILN_RETURN_IF_ERROR(
          step(make<kiln::WhereOp>(n, status, mask, constant(zeros, loc), constant(masked, loc)), m));
    } else if (mt.getElementType() != et) {
      return error(n, "Attention's attn_mask must be bool or the type of Q");
    }
    if (last < Skv) {
      Shape pad(mt.getShape().begin(), mt.getShape().end());
      pad.back() = Skv - last;
      Tensor p(dt, pad);
      for (int64_t i = 0; i < p.numel(); ++i)
        p.set(i, negInf);
      KILN_RETURN_IF_ERROR(
          step(make<kiln::ConcatOp>(n, status, SmallVector<Value>{m, constant(p, loc)}, mr - 1), m));
    }
    bias = m;
  }
  // diff = (query position) - (key position), the query at i + offset:
  // offset the past's length, or per batch nonpad_kv_seqlen[b] - Sq (an
  // external cache; then [B, 1, Sq, Skv]). Folded to a constant where known.
  auto i64Scalar = [&](int64_t value) {
    Tensor t(DType::I64, {});
    t.set(0, static_cast<double>(value));
    return constant(t, loc);
  };
  Tensor d(DType::I64, {Sq, Skv});
  for (int64_t i = 0; i < Sq; ++i)
    for (int64_t j = 0; j < Skv; ++j)
      d.as<int64_t>()[i * Skv + j] = i + offset - j;
  Value diff = constant(d, loc);
  if (nonpad) {
    auto nt = typeOf(nonpad);
    if (nt.getRank() != 1 || nt.getDimSize(0) != B || !nt.getElementType().isInteger(64))
      return error(n, "Attention's nonpad_kv_seqlen must be int64 [batch]");
    Value off;
    KILN_RETURN_IF_ERROR(step(make<kiln::SubOp>(n, status, nonpad, i64Scalar(Sq)), off));
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, off, std::vector<int64_t>{B, 1, 1, 1}), off));
    KILN_RETURN_IF_ERROR(step(make<kiln::AddOp>(n, status, diff, off), diff));
  }
  // Adds where(diff `p` bound, 0, -inf) to the bias.
  auto gate = [&](kiln::ComparePredicate p, int64_t bound) -> Status {
    Value ok, g;
    KILN_RETURN_IF_ERROR(step(make<kiln::CompareOp>(n, status, p, diff, i64Scalar(bound)), ok));
    KILN_RETURN_IF_ERROR(step(make<kiln::WhereOp>(n, status, ok, scalar(0.0), scalar(negInf)), g));
    if (bias)
      return step(make<kiln::AddOp>(n, status, bias, g), bias);
    bias = g;
    return Status::ok();
  };
  if (attrInt(n, "is_causal", 0))
    KILN_RETURN_IF_ERROR(gate(kiln::ComparePredicate::ge, 0)); // j <= i + offset
  if (left >= 0)
    KILN_RETURN_IF_ERROR(gate(kiln::ComparePredicate::le, left));
  if (right >= 0)
    KILN_RETURN_IF_ERROR(gate(kiln::ComparePredicate::ge, -right));
  if (nonpad) {
    // Keys past a batch's nonpad_kv_seqlen are padding.
    Tensor j(DType::I64, {Skv});
    for (int64_t x = 0; x < Skv; ++x)
      j.as<int64_t>()[x] = x;
    Value len, ok, g;
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, nonpad, std::vector<int64_t>{B, 1}), len));
    KILN_RETURN_IF_ERROR(step(make<kiln::CompareOp>(n, status, kiln::ComparePredicate::lt, constant(j, loc), len), ok));
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, ok, std::vector<int64_t>{B, 1, 1, Skv}), ok));
    KILN_RETURN_IF_ERROR(step(make<kiln::WhereOp>(n, status, ok, scalar(0.0), scalar(negInf)), g));
    if (bias)
      KILN_RETURN_IF_ERROR(step(make<kiln::AddOp>(n, status, bias, g), bias));
    else
      bias = g;
  }
  Value withBias = scores, probs;
  if (bias)
    KILN_RETURN_IF_ERROR(step(make<kiln::AddOp>(n, status, scores, bias), withBias));
  if (et.isF32() || prec == 1) {
    // In f32, rounded once to the inputs' type (softmax_precision float).
    KILN_RETURN_IF_ERROR(step(kiln::SoftmaxOp::create(b_, loc, withBias, int64_t(3)), probs));
  } else {
    // The reference's softmax in the 16-bit type: each step rounded to it.
    // A row of -inf gives NaN here; the guard below zeroes it.
    Value mx, e, sum;
    KILN_RETURN_IF_ERROR(step(make<kiln::ReduceMaxOp>(n, status, withBias, std::vector<int64_t>{3}, true), mx));
    KILN_RETURN_IF_ERROR(step(make<kiln::SubOp>(n, status, withBias, mx), e));
    KILN_RETURN_IF_ERROR(step(make<kiln::ExpOp>(n, status, e), e));
    KILN_RETURN_IF_ERROR(step(make<kiln::ReduceSumOp>(n, status, e, std::vector<int64_t>{3}, true), sum));
    KILN_RETURN_IF_ERROR(step(make<kiln::DivOp>(n, status, e, sum), probs));
  }
  if (bias) {
    // A row whose bias is -inf throughout attends to nothing: zeros.
    Value rowMax, none;
    const int64_t br = typeOf(bias).getRank();
    KILN_RETURN_IF_ERROR(
        step(make<kiln::ReduceMaxOp>(n, status, bias, std::vector<int64_t>{br - 1}, true), rowMax));
    KILN_RETURN_IF_ERROR(step(make<kiln::CompareOp>(n, status, kiln::ComparePredicate::eq, rowMax, scalar(negInf)), none));
    KILN_RETURN_IF_ERROR(step(make<kiln::WhereOp>(n, status, none, scalar(0.0), probs), probs));
  }
  Value y;
  KILN_RETURN_IF_ERROR(step(make<kiln::MatmulOp>(n, status, probs, vs, UnitAttr()), y));
  if (r == 3) {
    KILN_RETURN_IF_ERROR(step(make<kiln::TransposeOp>(n, status, y, std::vector<int64_t>{0, 2, 1, 3}), y));
    KILN_RETURN_IF_ERROR(step(make<kiln::ReshapeOp>(n, status, y, std::vector<int64_t>{B, Sq, Hq * Dv}), y));
  }
  const int64_t mode = attrInt(n, "qk_matmul_output_mode", 0);
  if (mode < 0 || mode > 3)
    return error(n, "Attention's qk_matmul_output_mode " + std::to_string(mode) + " is not 0 to 3");
  // The reference's outputs: modes 0 and 1 give the (soft-capped) products,
  // 2 with the bias added, 3 the probabilities.
  Value outs[4] = {y, k4, v4, mode <= 1 ? scores : mode == 2 ? withBias : probs};
  for (int i = 0; i < n.output_size() && i < 4; ++i)
    if (!n.output(i).empty())
      values_[n.output(i)] = outs[i];
  if (n.output_size() > 4)
    return error(n, "Attention has at most 4 outputs");
  return Status::ok();
}

} // namespace kiln::onnx_frontend::detail
