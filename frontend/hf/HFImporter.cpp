//===- HFImporter.cpp - Hugging Face directory -> kiln dialect ------------===//
#include "frontend/hf/HFImporter.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

#include <limits>
#include <map>

using namespace mlir;

namespace kiln::hf {
namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

std::string layerName(const char *pattern, int64_t layer) {
  std::string s(pattern);
  size_t at = s.find("{i}");
  if (at != std::string::npos)
    s.replace(at, 3, std::to_string(layer));
  return s;
}

/// Emits the graph of one model, op by op, keeping the first error.
class GraphBuilder {
public:
  GraphBuilder(MLIRContext &ctx, const ModelConfig &c, const format::SafetensorsIndex &t,
               std::string source, Type computeType)
      : c_(c), f_(*c.family), tensors_(t), source_(std::move(source)), b_(&ctx),
        loc_(FileLineColLoc::get(&ctx, source_, 0, 0)), ct_(computeType) {}

  OwningOpRef<ModuleOp> build(Status &status);

private:
  RankedTensorType act(ArrayRef<int64_t> shape) { return RankedTensorType::get(shape, ct_); }

  /// `name` as a kiln.weight of the expected shape, cast to the compute type.
  Value weight(const std::string &name, ArrayRef<int64_t> shape);
  /// `name` as a kiln.weight of the file's dtype (one of `dtypes`) and
  /// exactly `shape`: a packed weight's parts.
  Value stored(const std::string &name, ArrayRef<int64_t> shape, ArrayRef<const char *> dtypes);
  /// The `[in, out]` weight of the quantized projection `p` (its qweight,
  /// scales, qzeros and g_idx), a kiln.dequant to the compute type.
  Value dequantized(const std::string &p, int64_t out, int64_t in);
  Value linear(Value x, const char *pattern, int64_t layer, int64_t out, int64_t in,
               bool bias);
  Value norm(Value x, const char *pattern, int64_t layer, int64_t size);
  Value rope(Value x, Value positions);
  Value attentionBlock(Value h, Value positions, int64_t layer);
  Value mlpBlock(Value h, int64_t layer);
  Value reshape(Value x, ArrayRef<int64_t> pattern) {
    return kiln::ReshapeOp::create(b_, loc_, x, pattern);
  }
  Value add(Value a, Value b) { return kiln::AddOp::create(b_, loc_, a, b); }
  void fail(const std::string &m) {
    if (status_)
      status_ = Status::error(source_ + ": " + m);
  }

  const ModelConfig &c_;
  const FamilySpec &f_;
  const format::SafetensorsIndex &tensors_;
  std::string source_;
  OpBuilder b_;
  Location loc_;
  Type ct_;
  std::map<std::string, Value> weights_;
  Status status_ = Status::ok();
};

Value GraphBuilder::weight(const std::string &name, ArrayRef<int64_t> shape) {
  if (auto it = weights_.find(name); it != weights_.end())
    return it->second;
  const format::SafetensorsTensor *t = tensors_.find(name);
  Type elt;
  if (!t) {
    fail("missing tensor '" + name + "' (" + f_.architecture + " needs it)");
  } else {
    if (t->dtype == "BF16")
      elt = b_.getBF16Type();
    else if (t->dtype == "F16")
      elt = b_.getF16Type();
    else if (t->dtype == "F32")
      elt = b_.getF32Type();
    else
      fail("tensor '" + name + "' has dtype " + t->dtype + ", kiln imports BF16/F16/F32");
    if (t->shape != std::vector<int64_t>(shape.begin(), shape.end())) {
      std::string want, got;
      for (int64_t d : shape)
        want += (want.empty() ? "" : "x") + std::to_string(d);
      for (int64_t d : t->shape)
        got += (got.empty() ? "" : "x") + std::to_string(d);
      fail("tensor '" + name + "' has shape [" + got + "], the config implies [" + want + "]");
    }
  }
  if (!elt)
    elt = ct_; // keep building so the IR stays well formed; status holds the error
  Value w = kiln::WeightOp::create(b_, loc_, RankedTensorType::get(shape, elt), name);
  if (elt != ct_)
    w = kiln::CastOp::create(b_, loc_, RankedTensorType::get(shape, ct_), w);
  weights_[name] = w;
  return w;
}

namespace {
std::string shapeText(ArrayRef<int64_t> shape) {
  std::string s;
  for (int64_t d : shape)
    s += (s.empty() ? "" : "x") + std::to_string(d);
  return "[" + s + "]";
}
} // namespace

Value GraphBuilder::stored(const std::string &name, ArrayRef<int64_t> shape, ArrayRef<const char *> dtypes) {
  const format::SafetensorsTensor *t = tensors_.find(name);
  Type elt;
  if (!t) {
    fail("missing tensor '" + name + "' (the quantization_config's " + c_.quant->method + " checkpoint needs it)");
  } else {
    std::string allowed;
    for (const char *d : dtypes) {
      allowed += std::string(allowed.empty() ? "" : "/") + d;
      if (t->dtype == d)
        elt = t->dtype == "I32"    ? Type(b_.getI32Type())
              : t->dtype == "BF16" ? Type(b_.getBF16Type())
              : t->dtype == "F16"  ? Type(b_.getF16Type())
                                   : Type(b_.getF32Type());
    }
    if (!elt)
      fail("tensor '" + name + "' has dtype " + t->dtype + ", a " + c_.quant->method + " checkpoint stores it " +
           allowed);
    else if (t->shape != std::vector<int64_t>(shape.begin(), shape.end()))
      fail("tensor '" + name + "' has shape " + shapeText(t->shape) + ", the config and quantization_config imply " +
           shapeText(shape));
  }
  if (!elt)
    elt = std::string(dtypes.front()) == "I32" ? Type(b_.getI32Type()) : Type(b_.getF16Type());
  return kiln::WeightOp::create(b_, loc_, RankedTensorType::get(shape, elt), name);
}

Value GraphBuilder::dequantized(const std::string &p, int64_t out, int64_t in) {
  const QuantConfig &q = *c_.quant;
  const int64_t per = 32 / q.bits, K = in, N = out;
  const bool awq = q.packing == "awq";
  auto bad = [&](const std::string &m) {
    fail(p + ": " + m);
    return kiln::WeightOp::create(b_, loc_, act({K, N}), p + ".qweight").getResult();
  };
  if (q.groupSize != -1 && K % q.groupSize)
    return bad("quantization_config group_size " + std::to_string(q.groupSize) + " does not divide its " +
               std::to_string(K) + " inputs");
  if (N % per || (!awq && K % per))
    return bad(std::to_string(q.bits) + "-bit values pack " + std::to_string(per) + " to a word, which does not divide " +
               (N % per ? "its " + std::to_string(N) + " outputs" : "its " + std::to_string(K) + " inputs"));
  const int64_t G = q.groupSize == -1 ? 1 : K / q.groupSize;
  Value qweight = stored(p + ".qweight", awq ? std::vector<int64_t>{K, N / per} : std::vector<int64_t>{K / per, N},
                         {"I32"});
  Value zeros = stored(p + ".qzeros", {G, N / per}, {"I32"});
  Value scales = stored(p + ".scales", {G, N}, {"F16", "BF16", "F32"});
  Value gIdx;
  if (!awq && tensors_.find(p + ".g_idx"))
    gIdx = stored(p + ".g_idx", {K}, {"I32"});
  else if (!awq && q.descAct)
    fail("missing tensor '" + p + ".g_idx' (quantization_config desc_act: true orders rows by it)");
  auto packing = q.packing == "gptq"      ? kiln::QuantPacking::Gptq
                 : q.packing == "gptq_v2" ? kiln::QuantPacking::GptqV2
                                          : kiln::QuantPacking::Awq;
  return kiln::DequantOp::create(b_, loc_, act({K, N}), qweight, scales, zeros, gIdx,
                                 kiln::QuantPackingAttr::get(b_.getContext(), packing),
                                 b_.getI64IntegerAttr(q.bits), b_.getI64IntegerAttr(q.groupSize));
}

Value GraphBuilder::linear(Value x, const char *pattern, int64_t layer, int64_t out,
                           int64_t in, bool bias) {
  std::string p = layerName(pattern, layer);
  // A quantized checkpoint stores a projection packed (`.qweight`) unless
  // its config keeps the module in floats (modules_to_not_convert,
  // modules_in_block_to_quantize): then `.weight` as usual.
  if (c_.quant && (tensors_.find(p + ".qweight") || !tensors_.find(p + ".weight"))) {
    Value y = kiln::MatmulOp::create(b_, loc_, x, dequantized(p, out, in), /*transpose_b=*/false);
    return bias ? add(y, weight(p + ".bias", {out})) : y;
  }
  Value w = f_.conv1d ? weight(p + ".weight", {in, out}) : weight(p + ".weight", {out, in});
  Value y = kiln::MatmulOp::create(b_, loc_, x, w, /*transpose_b=*/!f_.conv1d);
  return bias ? add(y, weight(p + ".bias", {out})) : y;
}

Value GraphBuilder::norm(Value x, const char *pattern, int64_t layer, int64_t size) {
  std::string p = layerName(pattern, layer);
  Value w = weight(p + ".weight", {size});
  auto eps = b_.getF32FloatAttr(static_cast<float>(c_.normEps));
  if (f_.layerNorm)
    return kiln::LayerNormOp::create(b_, loc_, x.getType(), x, w,
                                     weight(p + ".bias", {size}), eps);
  return kiln::RmsNormOp::create(b_, loc_, x.getType(), x, w, eps,
                                 b_.getF32FloatAttr(0.0f));
}

Value GraphBuilder::rope(Value x, Value positions) {
  const RopeConfig &r = c_.rope;
  RopeScaling scaling = r.type == "linear"   ? RopeScaling::Linear
                        : r.type == "llama3" ? RopeScaling::Llama3
                        : r.type == "yarn"   ? RopeScaling::Yarn
                                             : RopeScaling::None;
  int64_t rotary = static_cast<int64_t>(c_.headDim * r.partialRotaryFactor);
  auto op = kiln::RopeOp::create(
      b_, loc_, x.getType(), x, positions, /*cos_sin=*/Value(), RopeStyleAttr::get(b_.getContext(), RopeStyle::Neox),
      b_.getF64FloatAttr(r.theta),
      rotary == c_.headDim ? IntegerAttr() : b_.getI64IntegerAttr(rotary),
      RopeScalingAttr::get(b_.getContext(), scaling),
      b_.getF64FloatAttr(r.factor), b_.getF64FloatAttr(r.lowFreqFactor),
      b_.getF64FloatAttr(r.highFreqFactor), b_.getI64IntegerAttr(r.originalMaxPositions),
      b_.getF64FloatAttr(r.betaFast), b_.getF64FloatAttr(r.betaSlow),
      r.attentionFactor ? b_.getF64FloatAttr(*r.attentionFactor) : FloatAttr(),
      DenseF64ArrayAttr());
  return op;
}

Value GraphBuilder::attentionBlock(Value h, Value positions, int64_t i) {
  int64_t H = c_.hidden, D = c_.headDim, nq = c_.heads * D, nkv = c_.kvHeads * D;
  bool qkvBias = f_.qkvBias || c_.attentionBias;
  Value q, k, v;
  if (*f_.qkv) { // one projection [H, 3H], sliced
    Value qkv = linear(h, f_.qkv, i, nq + 2 * nkv, H, true);
    const int64_t end = std::numeric_limits<int64_t>::max();
    auto part = [&](int64_t from, int64_t to) -> Value {
      return kiln::SliceOp::create(b_, loc_, qkv, ArrayRef<int64_t>{0, 0, from},
                                   ArrayRef<int64_t>{end, end, to}, ArrayRef<int64_t>{1, 1, 1});
    };
    q = part(0, nq);
    k = part(nq, nq + nkv);
    v = part(nq + nkv, nq + 2 * nkv);
  } else {
    q = linear(h, f_.q, i, nq, H, qkvBias);
    k = linear(h, f_.k, i, nkv, H, qkvBias);
    v = linear(h, f_.v, i, nkv, H, qkvBias);
  }
  q = reshape(q, {0, 0, c_.heads, D});
  k = reshape(k, {0, 0, c_.kvHeads, D});
  v = reshape(v, {0, 0, c_.kvHeads, D});
  if (f_.qkNorm) {
    q = norm(q, f_.qNorm, i, D);
    k = norm(k, f_.kNorm, i, D);
  }
  if (!f_.learnedPositions) {
    q = rope(q, positions);
    k = rope(k, positions);
  }
  Value a = kiln::AttentionOp::create(
      b_, loc_, q, k, v, /*causal=*/true, FloatAttr(),
      c_.slidingWindow ? b_.getI64IntegerAttr(*c_.slidingWindow) : IntegerAttr(),
      FloatAttr());
  a = reshape(a, {0, 0, nq});
  return linear(a, f_.o, i, H, nq, c_.attentionBias);
}

Value GraphBuilder::mlpBlock(Value h, int64_t i) {
  int64_t H = c_.hidden, I = c_.intermediate;
  bool tanh = c_.activation != "gelu";
  if (f_.gatedMlp) {
    Value g = linear(h, f_.gate, i, I, H, c_.mlpBias);
    Value u = linear(h, f_.up, i, I, H, c_.mlpBias);
    Value s = c_.activation == "silu"
                  ? Value(kiln::SwigluOp::create(b_, loc_, g, u))
                  : Value(kiln::GegluOp::create(b_, loc_, g, u, tanh));
    return linear(s, f_.down, i, H, I, c_.mlpBias);
  }
  Value u = linear(h, f_.fc, i, I, H, c_.mlpBias);
  u = kiln::GeluOp::create(b_, loc_, u, tanh);
  return linear(u, f_.proj, i, H, I, c_.mlpBias);
}

OwningOpRef<ModuleOp> GraphBuilder::build(Status &status) {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc_);
  MLIRContext *ctx = b_.getContext();
  (*module)->setAttr("kiln.architecture", b_.getStringAttr(f_.architecture));
  b_.setInsertionPointToEnd(module->getBody());
  auto idsType = RankedTensorType::get({kDyn, kDyn}, b_.getI64Type());
  auto logitsType = act({kDyn, kDyn, c_.vocab});
  auto fn = func::FuncOp::create(b_, loc_, "forward",
                                 FunctionType::get(ctx, {idsType}, {logitsType}));
  fn.setArgAttr(0, "kiln.name", b_.getStringAttr("input_ids"));
  b_.setInsertionPointToEnd(fn.addEntryBlock());
  Value ids = fn.getArgument(0);

  Value embed = weight(f_.embed, {c_.vocab, c_.hidden});
  Value x = kiln::GatherOp::create(b_, loc_, embed, ids, 0);
  Value positions = reshape(kiln::ArangeOp::create(b_, loc_, ids, 1, 0), {1, -1});
  if (f_.learnedPositions)
    x = add(x, kiln::GatherOp::create(b_, loc_, weight(f_.positions, {c_.maxPositions, c_.hidden}),
                                      positions, 0));
  for (int64_t i = 0; i < c_.layers; ++i) {
    x = add(x, attentionBlock(norm(x, f_.attnNorm, i, c_.hidden), positions, i));
    x = add(x, mlpBlock(norm(x, f_.mlpNorm, i, c_.hidden), i));
  }
  x = norm(x, f_.finalNorm, 0, c_.hidden);
  Value head = c_.tieEmbeddings || !*f_.lmHead ? embed : weight(f_.lmHead, {c_.vocab, c_.hidden});
  Value logits = kiln::MatmulOp::create(b_, loc_, x, head, /*transpose_b=*/true);
  func::ReturnOp::create(b_, loc_, logits);

  if (status_ && failed(verify(*module)))
    fail("the imported graph does not verify (a kiln importer bug)");
  status = status_;
  if (!status)
    return nullptr;
  return module;
}

} // namespace

OwningOpRef<ModuleOp> importHFModel(MLIRContext &context, const ModelConfig &config,
                                    const format::SafetensorsIndex &tensors,
                                    const std::string &source, const ImportOptions &options,
                                    Status &status) {
  context.getOrLoadDialect<kiln::KilnDialect>();
  context.getOrLoadDialect<func::FuncDialect>();
  Builder b(&context);
  std::string dt = options.computeDType;
  if (dt.empty())
    dt = config.dtype == "bfloat16" ? "bf16" : config.dtype == "float16" ? "f16" : "f32";
  Type ct = dt == "bf16" ? Type(b.getBF16Type())
            : dt == "f16" ? Type(b.getF16Type())
            : dt == "f32" ? Type(b.getF32Type())
                          : Type();
  if (!ct) {
    status = Status::error("unknown compute dtype '" + dt + "' (f32, bf16 or f16)");
    return nullptr;
  }
  return GraphBuilder(context, config, tensors, source, ct).build(status);
}

OwningOpRef<ModuleOp> importHFModel(MLIRContext &context, const std::string &dir,
                                    const ImportOptions &options, Status &status) {
  ModelConfig config;
  format::SafetensorsIndex tensors;
  status = parseConfig(dir + "/config.json", config);
  if (status)
    status = format::readSafetensorsDir(dir, tensors);
  if (!status)
    return nullptr;
  return importHFModel(context, config, tensors, dir, options, status);
}

} // namespace kiln::hf
