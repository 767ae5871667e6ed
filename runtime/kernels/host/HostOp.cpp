//===- HostOp.cpp - one kiln op, evaluated with the host kernels ----------===//
#include "runtime/kernels/host/HostOp.h"

#include "runtime/kernels/host/HostKernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace kiln::host {

int64_t HostOp::getInt(const std::string &k, int64_t otherwise) const {
  auto it = attrs.find(k);
  if (it == attrs.end())
    return otherwise;
  if (it->second.kind == HostAttr::Kind::Int)
    return it->second.i;
  if (it->second.kind == HostAttr::Kind::Float)
    return static_cast<int64_t>(it->second.f);
  return otherwise;
}
double HostOp::getFloat(const std::string &k, double otherwise) const {
  auto it = attrs.find(k);
  if (it == attrs.end())
    return otherwise;
  if (it->second.kind == HostAttr::Kind::Float)
    return it->second.f;
  if (it->second.kind == HostAttr::Kind::Int)
    return static_cast<double>(it->second.i);
  return otherwise;
}
bool HostOp::getBool(const std::string &k) const {
  auto it = attrs.find(k);
  return it != attrs.end() && (it->second.kind != HostAttr::Kind::Bool || it->second.b);
}
std::string HostOp::getStr(const std::string &k) const {
  auto it = attrs.find(k);
  return it != attrs.end() && it->second.kind == HostAttr::Kind::Str ? it->second.s : std::string();
}
std::vector<int64_t> HostOp::getInts(const std::string &k) const {
  auto it = attrs.find(k);
  return it != attrs.end() && it->second.kind == HostAttr::Kind::Ints ? it->second.ints : std::vector<int64_t>();
}
std::vector<double> HostOp::getFloats(const std::string &k) const {
  auto it = attrs.find(k);
  return it != attrs.end() && it->second.kind == HostAttr::Kind::Floats ? it->second.floats : std::vector<double>();
}

SliceRange sliceRange(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0)
    start += dim;
  if (end < 0)
    end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end > start ? (end - start + step - 1) / step : 0};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  return {start, start > end ? (start - end - step - 1) / -step : 0};
}

Status reshapeDims(const Shape &input, const std::vector<int64_t> &pattern, Shape &out) {
  out.assign(pattern.begin(), pattern.end());
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == -1) {
      if (infer >= 0)
        return Status::error("reshape shape may have only one -1");
      infer = static_cast<int64_t>(i);
      continue;
    }
    if (pattern[i] == 0) {
      if (i >= input.size())
        return Status::error("reshape entry 0 at index " + std::to_string(i) + " has no input dimension to copy");
      out[i] = input[i];
    } else if (pattern[i] < 0) {
      return Status::error("reshape dimension " + std::to_string(pattern[i]) + " is negative");
    }
    known *= out[i];
  }
  int64_t total = numElements(input);
  if (infer >= 0) {
    if (known == 0 || total % known)
      return Status::error("cannot reshape " + shapeToString(input) + " with pattern of " + std::to_string(known) +
                           " elements");
    out[static_cast<size_t>(infer)] = total / known;
  } else if (known != total) {
    return Status::error("reshape changes the element count from " + std::to_string(total) + " to " +
                         std::to_string(known));
  }
  return Status::ok();
}

Status ropeParams(const HostOp &op, RopeParams &p) {
  std::string style = op.getStr("style"), scaling = op.getStr("scaling");
  if (op.name == "rope_cos_sin" && style.empty())
    style = "neox"; // a table has no pairing
  if (style != "neox" && style != "gptj")
    return Status::error("rope style '" + style + "'");
  p.style = style == "neox" ? RopeStyle::Neox : RopeStyle::GptJ;
  p.theta = op.getFloat("theta", 10000.0);
  p.rotaryDim = op.getInt("rotary_dim", 0);
  if (scaling.empty() || scaling == "none")
    p.scaling = RopeScaling::None;
  else if (scaling == "linear")
    p.scaling = RopeScaling::Linear;
  else if (scaling == "llama3")
    p.scaling = RopeScaling::Llama3;
  else if (scaling == "yarn")
    p.scaling = RopeScaling::Yarn;
  else
    return Status::error("rope scaling '" + scaling + "'");
  p.factor = op.getFloat("factor", 1.0);
  p.lowFreqFactor = op.getFloat("low_freq_factor", 1.0);
  p.highFreqFactor = op.getFloat("high_freq_factor", 4.0);
  p.originalMaxPositions = op.getInt("original_max_positions", 0);
  p.betaFast = op.getFloat("beta_fast", 32.0);
  p.betaSlow = op.getFloat("beta_slow", 1.0);
  if (op.has("attention_factor"))
    p.attentionFactor = op.getFloat("attention_factor");
  p.invFreq = op.getFloats("inv_freq");
  return Status::ok();
}

namespace {

AttentionParams attentionParams(const HostOp &op) {
  AttentionParams p;
  p.causal = op.getBool("causal");
  if (op.has("scale"))
    p.scale = op.getFloat("scale");
  if (op.has("sliding_window"))
    p.slidingWindow = op.getInt("sliding_window");
  if (op.has("softcap"))
    p.softcap = op.getFloat("softcap");
  return p;
}

bool unaryKind(const std::string &n, const HostOp &op, UnaryOp &k) {
  static const std::pair<const char *, UnaryOp> table[] = {
      {"neg", UnaryOp::Neg},   {"abs", UnaryOp::Abs},       {"exp", UnaryOp::Exp},
      {"log", UnaryOp::Log},   {"sqrt", UnaryOp::Sqrt},     {"rsqrt", UnaryOp::Rsqrt},
      {"reciprocal", UnaryOp::Reciprocal}, {"tanh", UnaryOp::Tanh}, {"sigmoid", UnaryOp::Sigmoid},
      {"silu", UnaryOp::Silu}, {"erf", UnaryOp::Erf},       {"sin", UnaryOp::Sin},
      {"cos", UnaryOp::Cos},   {"relu", UnaryOp::Relu},     {"not", UnaryOp::Not}};
  for (auto [name, kind] : table)
    if (n == name) {
      k = kind;
      return true;
    }
  if (n == "gelu") {
    k = op.getBool("tanh_approximation") ? UnaryOp::GeluTanh : UnaryOp::Gelu;
    return true;
  }
  return false;
}

bool binaryKind(const std::string &n, BinaryOp &k) {
  static const std::pair<const char *, BinaryOp> table[] = {
      {"add", BinaryOp::Add}, {"sub", BinaryOp::Sub}, {"mul", BinaryOp::Mul}, {"div", BinaryOp::Div},
      {"pow", BinaryOp::Pow}, {"max", BinaryOp::Max}, {"min", BinaryOp::Min}, {"and", BinaryOp::And},
      {"or", BinaryOp::Or}};
  for (auto [name, kind] : table)
    if (n == name) {
      k = kind;
      return true;
    }
  return false;
}

/// Evaluates with the results allocated by `alloc(i, shape)`.
class Eval {
public:
  Eval(const HostOp &op, const std::vector<const Tensor *> &in, std::vector<Tensor> &out, int64_t base)
      : op_(op), in_(in), out_(out), base_(base) {}

  Status run();

private:
  const Tensor &x(size_t i) const { return *in_[i]; }
  Status need(size_t n) const {
    if (in_.size() < n)
      return Status::error("takes " + std::to_string(n) + " operands, got " + std::to_string(in_.size()));
    return Status::ok();
  }
  /// Allocates result `i` with `shape`, checked against its declared shape.
  Status alloc(const Shape &shape, Tensor *&t, size_t i = 0) {
    if (i >= op_.resultTypes.size())
      return Status::error("has no result " + std::to_string(i));
    if (i < op_.resultShapes.size()) {
      const Shape &decl = op_.resultShapes[i];
      bool ok = decl.size() == shape.size();
      for (size_t d = 0; ok && d < decl.size(); ++d)
        ok = decl[d] < 0 || decl[d] == shape[d];
      if (!ok)
        return Status::error("evaluated result shape " + shapeToString(shape) + " contradicts the declared " +
                             shapeToString(decl));
    }
    int64_t elements = 1;
    for (int64_t d : shape)
      if (d < 0 || __builtin_mul_overflow(elements, d, &elements) || elements > (int64_t(1) << 34))
        return Status::error("evaluated result shape " + shapeToString(shape) + " is too large to hold");
    if (out_.size() <= i)
      out_.resize(i + 1);
    out_[i] = Tensor(op_.resultTypes[i], shape);
    t = &out_[i];
    return Status::ok();
  }

  const HostOp &op_;
  const std::vector<const Tensor *> &in_;
  std::vector<Tensor> &out_;
  int64_t base_;
};

Status Eval::run() {
  const std::string &n = op_.name;
  Tensor *o = nullptr;
  UnaryOp u;
  BinaryOp bk;
  if (n == "constant") {
    KILN_RETURN_IF_ERROR(alloc(op_.value.shape(), o));
    if (op_.value.byteSize() != o->byteSize())
      return Status::error("constant value does not match its type");
    if (o->byteSize())
      std::memcpy(o->data(), op_.value.data(), o->byteSize());
    return Status::ok();
  }
  if (unaryKind(n, op_, u)) {
    KILN_RETURN_IF_ERROR(need(1));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return unary(u, x(0), *o);
  }
  if (binaryKind(n, bk)) {
    KILN_RETURN_IF_ERROR(need(2));
    Shape s;
    KILN_RETURN_IF_ERROR(broadcastShapes(x(0).shape(), x(1).shape(), s));
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return binary(bk, x(0), x(1), *o);
  }
  if (n == "compare") {
    KILN_RETURN_IF_ERROR(need(2));
    std::string p = op_.getStr("predicate");
    CompareOp c = p == "eq" ? CompareOp::Eq : p == "ne" ? CompareOp::Ne : p == "lt" ? CompareOp::Lt
                : p == "le" ? CompareOp::Le : p == "gt" ? CompareOp::Gt : CompareOp::Ge;
    if (p != "eq" && p != "ne" && p != "lt" && p != "le" && p != "gt" && p != "ge")
      return Status::error("compare predicate '" + p + "'");
    Shape s;
    KILN_RETURN_IF_ERROR(broadcastShapes(x(0).shape(), x(1).shape(), s));
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return compare(c, x(0), x(1), *o);
  }
  if (n == "where") {
    KILN_RETURN_IF_ERROR(need(3));
    Shape s1, s2;
    KILN_RETURN_IF_ERROR(broadcastShapes(x(0).shape(), x(1).shape(), s1));
    KILN_RETURN_IF_ERROR(broadcastShapes(s1, x(2).shape(), s2));
    KILN_RETURN_IF_ERROR(alloc(s2, o));
    return where(x(0), x(1), x(2), *o);
  }
  if (n == "cast") {
    KILN_RETURN_IF_ERROR(need(1));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return cast(x(0), *o);
  }
  if (n == "matmul") {
    KILN_RETURN_IF_ERROR(need(2));
    const Shape &as = x(0).shape(), &bs = x(1).shape();
    bool tb = op_.getBool("transpose_b");
    Shape ab(as.begin(), as.end() - std::min<size_t>(as.size(), 2));
    Shape bb(bs.begin(), bs.end() - std::min<size_t>(bs.size(), 2));
    Shape s;
    KILN_RETURN_IF_ERROR(broadcastShapes(ab, bb, s));
    if (as.size() > 1)
      s.push_back(as[as.size() - 2]);
    if (bs.size() > 1)
      s.push_back(tb ? bs[bs.size() - 2] : bs.back());
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return matmul(x(0), x(1), tb, *o);
  }
  if (n == "reduce_sum" || n == "reduce_mean" || n == "reduce_max" || n == "reduce_min") {
    KILN_RETURN_IF_ERROR(need(1));
    ReduceOp k = n == "reduce_sum" ? ReduceOp::Sum : n == "reduce_mean" ? ReduceOp::Mean
               : n == "reduce_max" ? ReduceOp::Max : ReduceOp::Min;
    std::vector<int64_t> axes = op_.getInts("axes");
    bool keep = op_.getBool("keep_dims");
    Shape s;
    for (int64_t d = 0; d < x(0).rank(); ++d) {
      bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
      if (!reduced || keep)
        s.push_back(reduced ? 1 : x(0).dim(d));
    }
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return reduce(k, x(0), axes, keep, *o);
  }
  if (n == "argmax") {
    KILN_RETURN_IF_ERROR(need(1));
    int64_t axis = op_.getInt("axis");
    if (axis < 0 || axis >= x(0).rank())
      return Status::error("argmax axis " + std::to_string(axis) + " out of range");
    Shape s = x(0).shape();
    bool keep = op_.getBool("keep_dims");
    if (keep)
      s[static_cast<size_t>(axis)] = 1;
    else
      s.erase(s.begin() + axis);
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return argmax(x(0), axis, keep, *o);
  }
  if (n == "softmax") {
    KILN_RETURN_IF_ERROR(need(1));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return softmax(x(0), op_.getInt("axis"), *o);
  }
  if (n == "rms_norm") {
    KILN_RETURN_IF_ERROR(need(2));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return rmsNorm(x(0), x(1), static_cast<float>(op_.getFloat("epsilon")),
                   static_cast<float>(op_.getFloat("weight_offset")), *o);
  }
  if (n == "layer_norm") {
    KILN_RETURN_IF_ERROR(need(2));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return layerNorm(x(0), x(1), in_.size() > 2 ? in_[2] : nullptr, static_cast<float>(op_.getFloat("epsilon")),
                     *o);
  }
  if (n == "gather") {
    KILN_RETURN_IF_ERROR(need(2));
    int64_t axis = op_.getInt("axis");
    if (axis < 0 || axis >= x(0).rank())
      return Status::error("gather axis " + std::to_string(axis) + " out of range");
    const Shape &d = x(0).shape(), &i = x(1).shape();
    Shape s(d.begin(), d.begin() + axis);
    s.insert(s.end(), i.begin(), i.end());
    s.insert(s.end(), d.begin() + axis + 1, d.end());
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return gather(x(0), x(1), axis, *o);
  }
  if (n == "reshape" || n == "reshape_to") {
    KILN_RETURN_IF_ERROR(need(n == "reshape" ? 1 : 2));
    std::vector<int64_t> pattern = op_.getInts("shape");
    if (n == "reshape_to") {
      pattern.clear();
      for (int64_t i = 0; i < x(1).numel(); ++i)
        pattern.push_back(x(1).getInt(i));
    }
    Shape s;
    KILN_RETURN_IF_ERROR(reshapeDims(x(0).shape(), pattern, s));
    KILN_RETURN_IF_ERROR(alloc(s, o));
    if (o->byteSize())
      std::memcpy(o->data(), x(0).data(), x(0).byteSize());
    return Status::ok();
  }
  if (n == "transpose") {
    KILN_RETURN_IF_ERROR(need(1));
    std::vector<int64_t> perm = op_.getInts("permutation");
    Shape s;
    for (int64_t p : perm) {
      if (p < 0 || p >= x(0).rank())
        return Status::error("transpose permutation entry " + std::to_string(p) + " out of range");
      s.push_back(x(0).dim(p));
    }
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return transpose(x(0), perm, *o);
  }
  if (n == "concat") {
    KILN_RETURN_IF_ERROR(need(1));
    int64_t axis = op_.getInt("axis");
    if (axis < 0 || axis >= x(0).rank())
      return Status::error("concat axis " + std::to_string(axis) + " out of range");
    Shape s = x(0).shape();
    s[static_cast<size_t>(axis)] = 0;
    for (const Tensor *t : in_) {
      if (t->rank() != x(0).rank())
        return Status::error("concat operands differ in rank");
      s[static_cast<size_t>(axis)] += t->dim(axis);
    }
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return concat(in_, axis, *o);
  }
  if (n == "slice") {
    KILN_RETURN_IF_ERROR(need(1));
    std::vector<int64_t> st = op_.getInts("starts"), en = op_.getInts("ends"), sp = op_.getInts("steps"), starts;
    if (static_cast<int64_t>(st.size()) != x(0).rank() || en.size() != st.size() || sp.size() != st.size())
      return Status::error("slice attributes do not match the rank");
    Shape s;
    for (int64_t d = 0; d < x(0).rank(); ++d) {
      SliceRange r = sliceRange(x(0).dim(d), st[d], en[d], sp[d]);
      starts.push_back(r.start);
      s.push_back(r.length);
    }
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return slice(x(0), starts, sp, *o);
  }
  if (n == "slice_to") {
    KILN_RETURN_IF_ERROR(need(3));
    std::vector<int64_t> axes = op_.getInts("axes"), sp = op_.getInts("steps");
    std::vector<int64_t> starts(static_cast<size_t>(x(0).rank()), 0), steps(static_cast<size_t>(x(0).rank()), 1);
    Shape s = x(0).shape();
    for (size_t i = 0; i < axes.size(); ++i) {
      int64_t a = axes[i];
      if (a < 0 || a >= x(0).rank() || i >= sp.size() || static_cast<int64_t>(i) >= x(1).numel() ||
          static_cast<int64_t>(i) >= x(2).numel())
        return Status::error("slice_to axes out of range");
      SliceRange r = sliceRange(x(0).dim(a), x(1).getInt(static_cast<int64_t>(i)),
                                x(2).getInt(static_cast<int64_t>(i)), sp[i]);
      starts[static_cast<size_t>(a)] = r.start;
      steps[static_cast<size_t>(a)] = sp[i];
      s[static_cast<size_t>(a)] = r.length;
    }
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return slice(x(0), starts, steps, *o);
  }
  if (n == "broadcast_to") {
    KILN_RETURN_IF_ERROR(need(1));
    if (op_.resultShapes.empty())
      return Status::error("broadcast_to needs its declared shape");
    const Shape &decl = op_.resultShapes[0];
    int64_t off = static_cast<int64_t>(decl.size()) - x(0).rank();
    Shape s;
    for (int64_t d = 0; d < static_cast<int64_t>(decl.size()); ++d)
      s.push_back(decl[d] < 0 ? (d - off >= 0 ? x(0).dim(d - off) : 1) : decl[d]);
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return broadcastTo(x(0), *o);
  }
  if (n == "arange") {
    KILN_RETURN_IF_ERROR(need(1));
    int64_t axis = op_.getInt("axis");
    if (axis < 0 || axis >= x(0).rank())
      return Status::error("arange axis " + std::to_string(axis) + " out of range");
    int64_t len = x(0).dim(axis), start = op_.getInt("start");
    KILN_RETURN_IF_ERROR(alloc({len}, o));
    for (int64_t i = 0; i < len; ++i)
      o->setInt(i, start + i);
    return Status::ok();
  }
  if (n == "shape_of") {
    KILN_RETURN_IF_ERROR(need(1));
    KILN_RETURN_IF_ERROR(alloc({x(0).rank()}, o));
    for (int64_t d = 0; d < x(0).rank(); ++d)
      o->set(d, static_cast<double>(x(0).dim(d)));
    return Status::ok();
  }
  if (n == "range") {
    KILN_RETURN_IF_ERROR(need(3));
    double start = x(0).get(0), limit = x(1).get(0), delta = x(2).get(0);
    if (delta == 0)
      return Status::error("range with a delta of 0");
    int64_t len = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
    KILN_RETURN_IF_ERROR(alloc({len}, o));
    for (int64_t i = 0; i < len; ++i)
      o->set(i, start + static_cast<double>(i) * delta);
    return Status::ok();
  }
  if (n == "expand") {
    KILN_RETURN_IF_ERROR(need(2));
    Shape target, s;
    for (int64_t i = 0; i < x(1).numel(); ++i)
      target.push_back(x(1).getInt(i));
    KILN_RETURN_IF_ERROR(broadcastShapes(x(0).shape(), target, s));
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return broadcastTo(x(0), *o);
  }
  if (n == "fill") {
    KILN_RETURN_IF_ERROR(need(1));
    Shape s;
    for (int64_t i = 0; i < x(0).numel(); ++i) {
      s.push_back(x(0).getInt(i));
      if (s.back() < 0)
        return Status::error("fill with a negative dimension");
    }
    KILN_RETURN_IF_ERROR(alloc(s, o));
    o->fill(op_.getFloat("value"));
    return Status::ok();
  }
  if (n == "cumsum") {
    KILN_RETURN_IF_ERROR(need(1));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return cumsum(x(0), op_.getInt("axis"), op_.getBool("exclusive"), op_.getBool("reverse"), *o);
  }
  if (n == "gather_nd") {
    KILN_RETURN_IF_ERROR(need(2));
    if (x(1).rank() < 1)
      return Status::error("gather_nd indices must have a last dimension");
    int64_t k = x(1).shape().back();
    if (k < 0 || k > x(0).rank())
      return Status::error("gather_nd index tuples are longer than the data's rank");
    Shape s(x(1).shape().begin(), x(1).shape().end() - 1);
    s.insert(s.end(), x(0).shape().begin() + k, x(0).shape().end());
    KILN_RETURN_IF_ERROR(alloc(s, o));
    return gatherNd(x(0), x(1), *o);
  }
  if (n == "rope") {
    KILN_RETURN_IF_ERROR(need(2));
    RopeParams p;
    KILN_RETURN_IF_ERROR(ropeParams(op_, p));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return rope(x(0), x(1), p, *o, in_.size() > 2 ? &x(2) : nullptr);
  }
  if (n == "dequant") {
    // Operands: qweight, scales, then zeros and g_idx where present
    // (operandSegmentSizes says which).
    KILN_RETURN_IF_ERROR(need(2));
    std::vector<int64_t> seg = op_.getInts("operandSegmentSizes");
    if (seg.size() != 4 || seg[0] != 1 || seg[1] != 1 || seg[2] < 0 || seg[2] > 1 || seg[3] < 0 || seg[3] > 1 ||
        in_.size() != static_cast<size_t>(2 + seg[2] + seg[3]))
      return Status::error("dequant's operand segments do not match its operands");
    DequantParams p;
    std::string packing = op_.getStr("packing");
    if (!parseQuantPacking(packing, p.packing))
      return Status::error("dequant packing '" + packing + "'");
    p.bits = op_.getInt("bits");
    p.groupSize = op_.getInt("group_size");
    if (op_.resultShapes.empty() || op_.resultShapes[0].size() != 2 || op_.resultShapes[0][0] <= 0 ||
        op_.resultShapes[0][1] <= 0)
      return Status::error("dequant declares no static [K, N] result");
    KILN_RETURN_IF_ERROR(alloc(op_.resultShapes[0], o));
    const Tensor *zeros = seg[2] ? &x(2) : nullptr, *gIdx = seg[3] ? &x(2 + seg[2]) : nullptr;
    return dequant(x(0), x(1), zeros, gIdx, p, *o);
  }
  if (n == "rope_cos_sin") {
    KILN_RETURN_IF_ERROR(need(1));
    RopeParams p;
    KILN_RETURN_IF_ERROR(ropeParams(op_, p));
    if (x(0).rank() != 2 || p.rotaryDim <= 0 || p.rotaryDim % 2)
      return Status::error("rope_cos_sin needs [batch, tokens] positions and a positive even rotary_dim");
    KILN_RETURN_IF_ERROR(alloc({x(0).dim(0), x(0).dim(1), p.rotaryDim / 2, 2}, o));
    return ropeCosSin(x(0), p, *o);
  }
  if (n == "attention") {
    KILN_RETURN_IF_ERROR(need(3));
    if (x(0).rank() != 4 || x(2).rank() != 4)
      return Status::error("attention operands must be [batch, seq, heads, head_dim]");
    KILN_RETURN_IF_ERROR(alloc({x(0).dim(0), x(0).dim(1), x(0).dim(2), x(2).dim(3)}, o));
    return attention(x(0), x(1), x(2), attentionParams(op_), *o);
  }
  if (n == "kv_append") {
    KILN_RETURN_IF_ERROR(need(5));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return kvAppend(x(0), x(1), x(2), x(3), x(4), base_ + op_.getInt("layer"), *o);
  }
  if (n == "paged_attention") {
    KILN_RETURN_IF_ERROR(need(5));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return pagedAttention(x(0), x(1), x(2), x(3), x(4), base_ + op_.getInt("layer"), attentionParams(op_), *o);
  }
  if (n == "swiglu") {
    KILN_RETURN_IF_ERROR(need(2));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return swiglu(x(0), x(1), *o);
  }
  if (n == "geglu") {
    KILN_RETURN_IF_ERROR(need(2));
    KILN_RETURN_IF_ERROR(alloc(x(0).shape(), o));
    return geglu(x(0), x(1), op_.getBool("tanh_approximation"), *o);
  }
  return Status::error("has no host evaluation");
}

} // namespace

Status evalHostOp(const HostOp &op, const std::vector<const Tensor *> &operands, std::vector<Tensor> &results,
                  int64_t kvLayerBase) {
  results.clear();
  Eval e(op, operands, results, kvLayerBase);
  return e.run().withContext("kiln." + op.name);
}

} // namespace kiln::host
