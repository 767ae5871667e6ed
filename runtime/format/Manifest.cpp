//===- Manifest.cpp - reading and checking an engine's manifest -----------===//
#include "runtime/format/Manifest.h"

#include <algorithm>
#include <limits>

namespace kiln::format {

int64_t SizeRuleDesc::eval(int64_t batch, int64_t tokens, int64_t pages, int64_t maxBlocks) const {
  int64_t v = tiles ? 1 : factor;
  for (const std::string &s : symbols)
    v *= s == "batch" ? batch : s == "tokens" ? tokens : s == "pages" ? pages : maxBlocks;
  v = (v + divisor - 1) / divisor;
  if (tiles)
    v *= factor;
  if (max > 0)
    v = std::min(v, max);
  return v;
}

const FunctionDesc *EngineManifest::function(const std::string &name) const {
  for (const FunctionDesc &f : functions)
    if (f.name == name)
      return &f;
  return nullptr;
}

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

/// Typed access to the manifest's JSON with errors that name the field.
class Reader {
public:
  explicit Reader(std::string_view source) : source_(source) {}

  Status error(const std::string &path, const std::string &what) const {
    return Status::error(std::string(source_) + ": manifest field '" + path + "' " + what);
  }

  Status member(const JsonValue &o, const std::string &path, const char *key, JsonValue::Kind kind,
                const JsonValue *&out) const {
    std::string p = path.empty() ? key : path + "." + key;
    if (!o.isObject())
      return error(path, "must be an object");
    out = o.find(key);
    if (!out)
      return error(p, "is missing");
    if (out->kind() != kind)
      return error(p, std::string("must be ") + article(kind) + ", not " + article(out->kind()));
    return Status::ok();
  }
  Status integer(const JsonValue &o, const std::string &path, const char *key, int64_t lo, int64_t hi,
                 int64_t &out) const {
    const JsonValue *v;
    KILN_RETURN_IF_ERROR(member(o, path, key, JsonValue::Kind::Number, v));
    std::string p = path.empty() ? key : path + "." + key;
    if (!v->isInteger())
      return error(p, "must be an integer");
    if (v->asInt() < lo || v->asInt() > hi)
      return error(p, "is " + std::to_string(v->asInt()) + ", outside [" + std::to_string(lo) + ", " +
                          (hi == kMax ? std::string("inf") : std::to_string(hi)) + "]");
    out = v->asInt();
    return Status::ok();
  }
  Status string(const JsonValue &o, const std::string &path, const char *key, std::string &out) const {
    const JsonValue *v;
    KILN_RETURN_IF_ERROR(member(o, path, key, JsonValue::Kind::String, v));
    out = v->asString();
    return Status::ok();
  }
  Status boolean(const JsonValue &o, const std::string &path, const char *key, bool &out) const {
    const JsonValue *v;
    KILN_RETURN_IF_ERROR(member(o, path, key, JsonValue::Kind::Bool, v));
    out = v->asBool();
    return Status::ok();
  }
  Status array(const JsonValue &o, const std::string &path, const char *key,
               const std::vector<JsonValue> *&out) const {
    const JsonValue *v;
    KILN_RETURN_IF_ERROR(member(o, path, key, JsonValue::Kind::Array, v));
    out = &v->asArray();
    return Status::ok();
  }
  Status ints(const JsonValue &o, const std::string &path, const char *key, int64_t lo,
              std::vector<int64_t> &out) const {
    const std::vector<JsonValue> *a;
    KILN_RETURN_IF_ERROR(array(o, path, key, a));
    out.clear();
    for (size_t i = 0; i < a->size(); ++i) {
      const JsonValue &v = (*a)[i];
      if (!v.isInteger() || v.asInt() < lo)
        return error(path + "." + key + "[" + std::to_string(i) + "]",
                     "must be an integer of at least " + std::to_string(lo));
      out.push_back(v.asInt());
    }
    return Status::ok();
  }
  Status strings(const JsonValue &o, const std::string &path, const char *key,
                 std::vector<std::string> &out) const {
    const std::vector<JsonValue> *a;
    KILN_RETURN_IF_ERROR(array(o, path, key, a));
    out.clear();
    for (size_t i = 0; i < a->size(); ++i) {
      if (!(*a)[i].isString())
        return error(path + "." + key + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back((*a)[i].asString());
    }
    return Status::ok();
  }
  /// [offset, size] inside a section of `limit` bytes.
  Status range(const JsonValue &o, const std::string &path, const char *key, uint64_t limit,
               const std::string &section, ByteRange &out) const {
    std::vector<int64_t> v;
    KILN_RETURN_IF_ERROR(ints(o, path, key, 0, v));
    std::string p = path + "." + key;
    if (v.size() != 2)
      return error(p, "must be [offset, size]");
    out.offset = static_cast<uint64_t>(v[0]);
    out.size = static_cast<uint64_t>(v[1]);
    if (out.offset > limit || out.size > limit - out.offset)
      return error(p, "lies outside section '" + section + "' (" + std::to_string(limit) + " bytes)");
    return Status::ok();
  }
  Status sizeRule(const JsonValue &o, const std::string &path, const char *key, SizeRuleDesc &out) const {
    const JsonValue *v;
    KILN_RETURN_IF_ERROR(member(o, path, key, JsonValue::Kind::Object, v));
    std::string p = path + "." + key;
    KILN_RETURN_IF_ERROR(integer(*v, p, "factor", 0, kMax, out.factor));
    KILN_RETURN_IF_ERROR(integer(*v, p, "divisor", 1, kMax, out.divisor));
    KILN_RETURN_IF_ERROR(integer(*v, p, "max", 0, kMax, out.max));
    if (v->find("tiles"))
      KILN_RETURN_IF_ERROR(boolean(*v, p, "tiles", out.tiles));
    KILN_RETURN_IF_ERROR(strings(*v, p, "symbols", out.symbols));
    for (const std::string &s : out.symbols)
      if (s != "batch" && s != "tokens" && s != "pages" && s != "max_blocks")
        return error(p + ".symbols", "names '" + s + "', not a step size (batch, tokens, pages, max_blocks)");
    return Status::ok();
  }

private:
  static std::string article(JsonValue::Kind k) {
    switch (k) {
    case JsonValue::Kind::Null: return "null";
    case JsonValue::Kind::Bool: return "a boolean";
    case JsonValue::Kind::Number: return "a number";
    case JsonValue::Kind::String: return "a string";
    case JsonValue::Kind::Array: return "an array";
    case JsonValue::Kind::Object: return "an object";
    }
    return "?";
  }
  std::string_view source_;
};

uint64_t sectionSize(const EngineFile &e, const std::string &name) {
  const EngineSection *s = e.find(name);
  return s ? s->size : 0;
}

/// A number, or "inf"/"-inf"/"nan" (JSON has no non-finite numbers).
bool readDouble(const JsonValue &v, double &out) {
  if (v.isNumber()) {
    out = v.asNumber();
    return true;
  }
  if (!v.isString())
    return false;
  if (v.asString() == "inf")
    out = std::numeric_limits<double>::infinity();
  else if (v.asString() == "-inf")
    out = -std::numeric_limits<double>::infinity();
  else if (v.asString() == "nan")
    out = std::numeric_limits<double>::quiet_NaN();
  else
    return false;
  return true;
}

/// A kernel's `tensor_maps`: at most 4, each over a buffer slot, rows by a
/// step rule, 16-bit columns in whole 16-byte rows, boxes TMA can move with
/// the 128-byte swizzle (64 columns, 1 to 256 rows).
Status readTensorMaps(const Reader &r, const JsonValue &k, const std::string &p, std::vector<TensorMapDesc> &out) {
  const std::vector<JsonValue> *maps;
  KILN_RETURN_IF_ERROR(r.array(k, p, "tensor_maps", maps));
  if (maps->size() > 4)
    return r.error(p + ".tensor_maps", "lists " + std::to_string(maps->size()) + " maps; kernels take at most 4");
  for (size_t i = 0; i < maps->size(); ++i) {
    const JsonValue &t = (*maps)[i];
    std::string tp = p + ".tensor_maps[" + std::to_string(i) + "]";
    TensorMapDesc d;
    KILN_RETURN_IF_ERROR(r.integer(t, tp, "operand", 0, 15, d.operand));
    KILN_RETURN_IF_ERROR(r.sizeRule(t, tp, "rows", d.rows));
    KILN_RETURN_IF_ERROR(r.integer(t, tp, "cols", 8, int64_t(1) << 31, d.cols));
    if (d.cols % 8)
      return r.error(tp + ".cols", "is " + std::to_string(d.cols) + ": rows must be whole 16-byte pieces");
    std::vector<int64_t> box;
    KILN_RETURN_IF_ERROR(r.ints(t, tp, "box", 1, box));
    if (box.size() != 2 || box[0] > 256 || box[1] != 64)
      return r.error(tp + ".box", "must be [rows (1 to 256), 64]: 128-byte swizzled boxes of 16-bit columns");
    d.boxRows = box[0], d.boxCols = box[1];
    KILN_RETURN_IF_ERROR(r.string(t, tp, "dtype", d.dtype));
    if (d.dtype != "bf16" && d.dtype != "f16")
      return r.error(tp + ".dtype", "is '" + d.dtype + "'; tensor maps are of bf16 or f16");
    KILN_RETURN_IF_ERROR(r.integer(t, tp, "swizzle", 128, 128, d.swizzle));
    out.push_back(std::move(d));
  }
  return Status::ok();
}

Status readHostProgram(const Reader &r, const JsonValue &k, const std::string &path, HostProgramDesc &hp) {
  const JsonValue *h;
  KILN_RETURN_IF_ERROR(r.member(k, path, "host", JsonValue::Kind::Object, h));
  std::string p = path + ".host";
  const std::vector<JsonValue> *args, *ops;
  KILN_RETURN_IF_ERROR(r.array(*h, p, "args", args));
  for (size_t i = 0; i < args->size(); ++i) {
    std::string ap = p + ".args[" + std::to_string(i) + "]";
    HostProgramDesc::Arg a;
    KILN_RETURN_IF_ERROR(r.string((*args)[i], ap, "dtype", a.dtype));
    host::DType dt;
    if (!host::parseDType(a.dtype, dt))
      return r.error(ap + ".dtype", "is '" + a.dtype + "', not a dtype kiln knows");
    const std::vector<JsonValue> *dims;
    KILN_RETURN_IF_ERROR(r.array((*args)[i], ap, "shape", dims));
    for (const JsonValue &d : *dims) {
      if (d.isInteger() && d.asInt() >= 0) {
        a.sizes.push_back(d.asInt());
        a.symbols.push_back("");
      } else if (d.isString() && (d.asString() == "batch" || d.asString() == "tokens" || d.asString() == "pages" ||
                                  d.asString() == "max_blocks")) {
        a.sizes.push_back(-1);
        a.symbols.push_back(d.asString());
      } else {
        return r.error(ap + ".shape", "holds something that is neither a size nor a step-size name");
      }
    }
    hp.args.push_back(std::move(a));
  }
  int64_t values = static_cast<int64_t>(hp.args.size());
  KILN_RETURN_IF_ERROR(r.array(*h, p, "ops", ops));
  for (size_t i = 0; i < ops->size(); ++i) {
    const JsonValue &ov = (*ops)[i];
    std::string op = p + ".ops[" + std::to_string(i) + "]";
    HostProgramDesc::Op o;
    KILN_RETURN_IF_ERROR(r.string(ov, op, "op", o.op.name));
    KILN_RETURN_IF_ERROR(r.ints(ov, op, "operands", 0, o.operands));
    for (int64_t id : o.operands)
      if (id >= values)
        return r.error(op + ".operands", "names value " + std::to_string(id) + " before it is made");
    const std::vector<JsonValue> *results;
    KILN_RETURN_IF_ERROR(r.array(ov, op, "results", results));
    for (size_t j = 0; j < results->size(); ++j) {
      std::string rp = op + ".results[" + std::to_string(j) + "]";
      std::string dtName;
      KILN_RETURN_IF_ERROR(r.string((*results)[j], rp, "dtype", dtName));
      host::DType dt;
      if (!host::parseDType(dtName, dt))
        return r.error(rp + ".dtype", "is '" + dtName + "', not a dtype kiln knows");
      std::vector<int64_t> shape;
      KILN_RETURN_IF_ERROR(r.ints((*results)[j], rp, "shape", -1, shape));
      o.op.resultTypes.push_back(dt);
      o.op.resultShapes.push_back(shape);
    }
    values += static_cast<int64_t>(results->size());
    const JsonValue *attrs;
    KILN_RETURN_IF_ERROR(r.member(ov, op, "attrs", JsonValue::Kind::Object, attrs));
    for (const auto &[name, v] : attrs->asObject()) {
      host::HostAttr a;
      using K = host::HostAttr::Kind;
      std::string at = op + ".attrs." + name;
      if (v.isInteger()) {
        a.kind = K::Int;
        a.i = v.asInt();
      } else if (v.isBool()) {
        a.kind = K::Bool;
        a.b = v.asBool();
      } else if (v.isString()) {
        a.kind = K::Str;
        a.s = v.asString();
      } else if (v.isObject() && v.find("f")) {
        a.kind = K::Float;
        if (!readDouble(*v.find("f"), a.f))
          return r.error(at, "is not a number");
      } else if (v.isObject() && v.find("ints")) {
        a.kind = K::Ints;
        KILN_RETURN_IF_ERROR(r.ints(v, at, "ints", std::numeric_limits<int64_t>::min(), a.ints));
      } else if (v.isObject() && v.find("floats") && v.find("floats")->isArray()) {
        a.kind = K::Floats;
        for (const JsonValue &x : v.find("floats")->asArray()) {
          double d;
          if (!readDouble(x, d))
            return r.error(at, "holds something that is not a number");
          a.floats.push_back(d);
        }
      } else {
        return r.error(at, "is not an attribute kiln knows how to read");
      }
      o.op.attrs[name] = std::move(a);
    }
    if (o.op.name == "constant") {
      const JsonValue *value;
      KILN_RETURN_IF_ERROR(r.member(ov, op, "value", JsonValue::Kind::Object, value));
      std::vector<int64_t> shape;
      KILN_RETURN_IF_ERROR(r.ints(*value, op + ".value", "shape", 0, shape));
      const std::vector<JsonValue> *data;
      KILN_RETURN_IF_ERROR(r.array(*value, op + ".value", "data", data));
      if (o.op.resultTypes.size() != 1)
        return r.error(op + ".results", "of a constant must be one");
      int64_t n = 1;
      for (int64_t d : shape)
        n = d && n > (int64_t(1) << 32) / d ? -1 : n * d;
      if (n < 0 || n != static_cast<int64_t>(data->size()))
        return r.error(op + ".value.data", "does not hold its shape's elements");
      o.op.value = host::Tensor(o.op.resultTypes[0], shape);
      for (int64_t e = 0; e < n; ++e) {
        const JsonValue &x = (*data)[static_cast<size_t>(e)];
        double d;
        if (x.isInteger())
          o.op.value.setInt(e, x.asInt());
        else if (readDouble(x, d))
          o.op.value.set(e, d);
        else
          return r.error(op + ".value.data", "holds something that is not a number");
      }
    }
    hp.ops.push_back(std::move(o));
  }
  KILN_RETURN_IF_ERROR(r.ints(*h, p, "yields", 0, hp.yields));
  for (int64_t id : hp.yields)
    if (id >= values)
      return r.error(p + ".yields", "names value " + std::to_string(id) + ", which is never made");
  return Status::ok();
}

Status readOperand(const Reader &r, const JsonValue &v, const std::string &path, const FunctionDesc &f,
                   size_t weights, OperandDesc &out) {
  if (!v.isObject() || v.asObject().size() != 1)
    return r.error(path, "must be an object with one of 'arg', 'arena', 'weight'");
  const std::string &key = v.asObject().front().first;
  if (key == "arg") {
    out.kind = OperandDesc::Kind::Arg;
    KILN_RETURN_IF_ERROR(r.integer(v, path, "arg", 0, static_cast<int64_t>(f.args.size()) - 1, out.index));
  } else if (key == "weight") {
    out.kind = OperandDesc::Kind::Weight;
    KILN_RETURN_IF_ERROR(r.integer(v, path, "weight", 0, static_cast<int64_t>(weights) - 1, out.index));
  } else if (key == "arena") {
    out.kind = OperandDesc::Kind::Arena;
    KILN_RETURN_IF_ERROR(r.range(v, path, "arena", static_cast<uint64_t>(f.arenaBytes), f.name + ".arena", out.arena));
  } else {
    return r.error(path, "names '" + key + "', not 'arg', 'arena' or 'weight'");
  }
  return Status::ok();
}

int64_t dtypeBytes(const std::string &dtype) {
  if (dtype == "bf16" || dtype == "f16" || dtype == "i16")
    return 2;
  if (dtype == "f32" || dtype == "i32")
    return 4;
  if (dtype == "f64" || dtype == "i64")
    return 8;
  if (dtype == "i8" || dtype == "i1")
    return 1;
  return 0;
}

} // namespace

Status readManifest(const EngineFile &engine, std::string_view source, EngineManifest &m) {
  m = EngineManifest();
  const EngineSection *section = engine.find("manifest");
  if (!section)
    return Status::error(std::string(source) + ": the engine has no 'manifest' section");
  JsonValue root;
  if (Status s = parseJson(engine.data(*section), root); !s)
    return Status::error(std::string(source) + ": manifest: " + s.message());
  Reader r(source);
  KILN_RETURN_IF_ERROR(r.integer(root, "", "kiln_manifest", 0, kMax, m.version));
  if (m.version != kManifestVersion)
    return Status::error(std::string(source) + ": manifest version " + std::to_string(m.version) +
                         ", this kiln reads " + std::to_string(kManifestVersion) +
                         ": recompile the model with this kiln");
  KILN_RETURN_IF_ERROR(r.string(root, "", "compiler", m.compiler));
  KILN_RETURN_IF_ERROR(r.string(root, "", "nvrtc", m.nvrtc));
  KILN_RETURN_IF_ERROR(r.string(root, "", "gpu", m.gpu));

  const JsonValue *model;
  KILN_RETURN_IF_ERROR(r.member(root, "", "model", JsonValue::Kind::Object, model));
  KILN_RETURN_IF_ERROR(r.string(*model, "model", "source", m.modelSource));
  KILN_RETURN_IF_ERROR(r.string(*model, "model", "architecture", m.architecture));
  KILN_RETURN_IF_ERROR(r.boolean(*model, "model", "weights_embedded", m.weightsEmbedded));
  if (const JsonValue *t = model->find("tokenizer"); t && t->isString())
    m.tokenizer = t->asString();
  else if (t && !t->isNull())
    return r.error("model.tokenizer", "must be a string or null");
  if (const JsonValue *c = model->find("config"))
    m.config = *c;

  KILN_RETURN_IF_ERROR(r.strings(root, "", "targets", m.targets));
  if (m.targets.empty())
    return r.error("targets", "must name at least one architecture");
  for (size_t i = 0; i < m.targets.size(); ++i) {
    const std::string &t = m.targets[i];
    if (t.size() < 4 || t.compare(0, 3, "sm_") != 0 || t.size() > 9)
      return r.error("targets[" + std::to_string(i) + "]", "is '" + t + "', not an architecture like sm_90a");
    if (std::count(m.targets.begin(), m.targets.end(), t) > 1)
      return r.error("targets", "names " + t + " twice");
  }

  const JsonValue *limits, *kv, *memory;
  KILN_RETURN_IF_ERROR(r.member(root, "", "limits", JsonValue::Kind::Object, limits));
  KILN_RETURN_IF_ERROR(r.integer(*limits, "limits", "max_batch", 1, kMax, m.maxBatch));
  KILN_RETURN_IF_ERROR(r.integer(*limits, "limits", "max_seq", 1, kMax, m.maxSeq));
  KILN_RETURN_IF_ERROR(r.integer(*limits, "limits", "max_num_tokens", 1, kMax, m.maxNumTokens));
  KILN_RETURN_IF_ERROR(r.integer(*limits, "limits", "page_size", 1, 1024, m.pageSize));
  KILN_RETURN_IF_ERROR(r.member(root, "", "kv_cache", JsonValue::Kind::Object, kv));
  KILN_RETURN_IF_ERROR(r.integer(*kv, "kv_cache", "layers", 1, kMax, m.kv.layers));
  KILN_RETURN_IF_ERROR(r.integer(*kv, "kv_cache", "page_size", 1, 1024, m.kv.pageSize));
  KILN_RETURN_IF_ERROR(r.integer(*kv, "kv_cache", "kv_heads", 1, kMax, m.kv.kvHeads));
  KILN_RETURN_IF_ERROR(r.integer(*kv, "kv_cache", "head_dim", 1, kMax, m.kv.headDim));
  KILN_RETURN_IF_ERROR(r.integer(*kv, "kv_cache", "bytes_per_token", 1, kMax, m.kv.bytesPerToken));
  KILN_RETURN_IF_ERROR(r.string(*kv, "kv_cache", "dtype", m.kv.dtype));
  if (m.kv.bytesPerToken != m.kv.layers * 2 * m.kv.kvHeads * m.kv.headDim * dtypeBytes(m.kv.dtype))
    return r.error("kv_cache.bytes_per_token", "disagrees with layers x 2 x kv_heads x head_dim x dtype");
  if (m.kv.pageSize != m.pageSize)
    return r.error("kv_cache.page_size", "differs from limits.page_size");
  KILN_RETURN_IF_ERROR(r.member(root, "", "memory", JsonValue::Kind::Object, memory));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "weights_bytes", 0, kMax, m.memory.weights));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "arena_prefill_bytes", 0, kMax, m.memory.arenaPrefill));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "arena_decode_bytes", 0, kMax, m.memory.arenaDecode));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "kv_pool_bytes", 0, kMax, m.memory.kvPool));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "workspace_bytes", 0, kMax, m.memory.workspace));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "cuda_graph_reserve_bytes", 0, kMax, m.memory.graphs));
  KILN_RETURN_IF_ERROR(r.integer(*memory, "memory", "total_bytes", 0, kMax, m.memory.total));

  // Weights.
  const std::vector<JsonValue> *weights;
  KILN_RETURN_IF_ERROR(r.array(root, "", "weights", weights));
  uint64_t weightSection = sectionSize(engine, "weights");
  if (m.weightsEmbedded && !engine.find("weights"))
    return r.error("model.weights_embedded", "is true but the engine has no 'weights' section");
  for (size_t i = 0; i < weights->size(); ++i) {
    const JsonValue &w = (*weights)[i];
    std::string p = "weights[" + std::to_string(i) + "]";
    WeightDesc d;
    KILN_RETURN_IF_ERROR(r.string(w, p, "name", d.name));
    KILN_RETURN_IF_ERROR(r.string(w, p, "dtype", d.dtype));
    KILN_RETURN_IF_ERROR(r.string(w, p, "layout", d.layout));
    KILN_RETURN_IF_ERROR(r.ints(w, p, "shape", 1, d.shape));
    KILN_RETURN_IF_ERROR(r.strings(w, p, "sources", d.sources));
    KILN_RETURN_IF_ERROR(r.ints(w, p, "source_rows", 1, d.sourceRows));
    KILN_RETURN_IF_ERROR(r.integer(w, p, "bytes", 0, kMax, d.bytes));
    if (d.layout != "identity" && d.layout != "transpose" && d.layout != "concat_rows" &&
        d.layout != "transpose_concat_rows")
      return r.error(p + ".layout", "is '" + d.layout + "', not a layout kiln knows");
    int64_t elems = 1;
    for (int64_t x : d.shape)
      elems = elems > kMax / x ? kMax : elems * x;
    if (dtypeBytes(d.dtype) == 0 || elems * dtypeBytes(d.dtype) != d.bytes)
      return r.error(p + ".bytes", "disagrees with its shape and dtype '" + d.dtype + "'");
    if (d.sources.empty())
      return r.error(p + ".sources", "must name at least one tensor");
    bool concat = d.layout == "concat_rows" || d.layout == "transpose_concat_rows";
    if (concat && d.sourceRows.size() != d.sources.size())
      return r.error(p + ".source_rows", "must give the rows of each of its " + std::to_string(d.sources.size()) +
                                             " sources");
    if (w.find("embedded")) {
      ByteRange e;
      KILN_RETURN_IF_ERROR(r.range(w, p, "embedded", weightSection, "weights", e));
      if (static_cast<int64_t>(e.size) != d.bytes)
        return r.error(p + ".embedded", "holds " + std::to_string(e.size) + " bytes, not " + std::to_string(d.bytes));
      d.embedded = e;
    } else if (m.weightsEmbedded) {
      return r.error(p + ".embedded", "is missing from an engine with embedded weights");
    }
    m.weights.push_back(std::move(d));
  }
  if (root.find("dequant_weights")) {
    const std::vector<JsonValue> *dq;
    KILN_RETURN_IF_ERROR(r.array(root, "", "dequant_weights", dq));
    for (size_t i = 0; i < dq->size(); ++i) {
      const JsonValue &w = (*dq)[i];
      std::string p = "dequant_weights[" + std::to_string(i) + "]";
      DequantWeightDesc d;
      KILN_RETURN_IF_ERROR(r.string(w, p, "name", d.name));
      KILN_RETURN_IF_ERROR(r.string(w, p, "packing", d.packing));
      if (d.packing == "rtn") { // a float weight quantized at load
        KILN_RETURN_IF_ERROR(r.string(w, p, "source", d.source));
        if (w.find("k_axis"))
          KILN_RETURN_IF_ERROR(r.integer(w, p, "k_axis", 0, 1, d.kAxis));
      } else {
        KILN_RETURN_IF_ERROR(r.string(w, p, "qweight", d.qweight));
        KILN_RETURN_IF_ERROR(r.string(w, p, "scales", d.scales));
        if (w.find("zeros"))
          KILN_RETURN_IF_ERROR(r.string(w, p, "zeros", d.zeros));
        if (w.find("g_idx"))
          KILN_RETURN_IF_ERROR(r.string(w, p, "g_idx", d.gIdx));
      }
      KILN_RETURN_IF_ERROR(r.integer(w, p, "bits", 4, 8, d.bits));
      KILN_RETURN_IF_ERROR(r.integer(w, p, "group_size", -1, kMax, d.groupSize));
      if (d.packing != "gptq" && d.packing != "gptq_v2" && d.packing != "awq" && d.packing != "rtn")
        return r.error(p + ".packing", "is '" + d.packing + "', not gptq, gptq_v2, awq or rtn");
      if (d.bits != 4 && d.bits != 8)
        return r.error(p + ".bits", "must be 4 or 8");
      if (d.groupSize == 0)
        return r.error(p + ".group_size", "must be -1 or positive");
      if (findDequantWeight(m.dequantWeights, d.name))
        return r.error(p + ".name", "'" + d.name + "' is described twice");
      m.dequantWeights.push_back(std::move(d));
    }
  }

  // Kernels.
  const std::vector<JsonValue> *kernels;
  KILN_RETURN_IF_ERROR(r.array(root, "", "kernels", kernels));
  uint64_t sourceSection = sectionSize(engine, "cuda_source");
  for (size_t i = 0; i < kernels->size(); ++i) {
    const JsonValue &k = (*kernels)[i];
    std::string p = "kernels[" + std::to_string(i) + "]";
    KernelDesc d;
    KILN_RETURN_IF_ERROR(r.string(k, p, "name", d.name));
    KILN_RETURN_IF_ERROR(r.string(k, p, "family", d.family));
    KILN_RETURN_IF_ERROR(r.integer(k, p, "threads", 1, 1024, d.threads));
    KILN_RETURN_IF_ERROR(r.integer(k, p, "smem", 0, 232448, d.smem));
    if (k.find("dependent_launch"))
      KILN_RETURN_IF_ERROR(r.boolean(k, p, "dependent_launch", d.dependentLaunch));
    if (k.find("bytes"))
      KILN_RETURN_IF_ERROR(r.integer(k, p, "bytes", 0, kMax, d.bytes));
    if (k.find("flops"))
      KILN_RETURN_IF_ERROR(r.integer(k, p, "flops", 0, kMax, d.flops));
    KILN_RETURN_IF_ERROR(r.sizeRule(k, p, "grid", d.grid));
    KILN_RETURN_IF_ERROR(r.sizeRule(k, p, "workspace", d.workspace));
    if (k.find("tensor_maps"))
      KILN_RETURN_IF_ERROR(readTensorMaps(r, k, p, d.tensorMaps));
    KILN_RETURN_IF_ERROR(r.range(k, p, "source", sourceSection, "cuda_source", d.source));
    const JsonValue *bins;
    KILN_RETURN_IF_ERROR(r.member(k, p, "binaries", JsonValue::Kind::Object, bins));
    for (const std::string &t : m.targets) {
      const JsonValue *b;
      KILN_RETURN_IF_ERROR(r.member(*bins, p + ".binaries", t.c_str(), JsonValue::Kind::Object, b));
      KernelBinaryDesc kb;
      kb.target = t;
      std::string bp = p + ".binaries." + t;
      KILN_RETURN_IF_ERROR(r.range(*b, bp, "cubin", sectionSize(engine, "cubin." + t), "cubin." + t, kb.cubin));
      KILN_RETURN_IF_ERROR(r.range(*b, bp, "ptx", sectionSize(engine, "ptx." + t), "ptx." + t, kb.ptx));
      if (kb.cubin.size == 0)
        return r.error(bp + ".cubin", "is empty");
      d.binaries.push_back(kb);
    }
    if (bins->asObject().size() != m.targets.size())
      return r.error(p + ".binaries", "holds binaries for a target the engine does not list");
    KILN_RETURN_IF_ERROR(readHostProgram(r, k, p, d.host));
    m.kernels.push_back(std::move(d));
  }

  // Functions: the schedules.
  const std::vector<JsonValue> *functions;
  KILN_RETURN_IF_ERROR(r.array(root, "", "functions", functions));
  for (size_t i = 0; i < functions->size(); ++i) {
    const JsonValue &fv = (*functions)[i];
    std::string p = "functions[" + std::to_string(i) + "]";
    FunctionDesc f;
    KILN_RETURN_IF_ERROR(r.string(fv, p, "name", f.name));
    KILN_RETURN_IF_ERROR(r.integer(fv, p, "arena_bytes", 0, kMax, f.arenaBytes));
    // Decode buckets: "decode_b<N>" runs steps of at most N < max_batch
    // sequences; "decode" takes any up to max_batch.
    const bool bucket = f.name.rfind("decode_b", 0) == 0;
    if (f.name == "decode") {
      f.batch = m.maxBatch;
      if (fv.find("batch"))
        KILN_RETURN_IF_ERROR(r.integer(fv, p, "batch", m.maxBatch, m.maxBatch, f.batch));
    } else if (bucket) {
      KILN_RETURN_IF_ERROR(r.integer(fv, p, "batch", 1, m.maxBatch - 1, f.batch));
      if (f.name != "decode_b" + std::to_string(f.batch))
        return r.error(p + ".name", "'" + f.name + "' is not named for its batch " + std::to_string(f.batch) +
                                        " (decode_b" + std::to_string(f.batch) + ")");
    } else if (fv.find("batch")) {
      return r.error(p + ".batch", "is only for decode functions, not '" + f.name + "'");
    }
    const std::vector<JsonValue> *args, *launches, *results;
    KILN_RETURN_IF_ERROR(r.array(fv, p, "args", args));
    for (size_t a = 0; a < args->size(); ++a) {
      TensorDesc t;
      std::string ap = p + ".args[" + std::to_string(a) + "]";
      KILN_RETURN_IF_ERROR(r.string((*args)[a], ap, "name", t.name));
      KILN_RETURN_IF_ERROR(r.string((*args)[a], ap, "dtype", t.dtype));
      KILN_RETURN_IF_ERROR(r.ints((*args)[a], ap, "shape", -1, t.shape));
      f.args.push_back(std::move(t));
    }
    KILN_RETURN_IF_ERROR(r.array(fv, p, "launches", launches));
    for (size_t l = 0; l < launches->size(); ++l) {
      const JsonValue &lv = (*launches)[l];
      std::string lp = p + ".launches[" + std::to_string(l) + "]";
      LaunchDesc d;
      KILN_RETURN_IF_ERROR(r.integer(lv, lp, "kernel", 0, static_cast<int64_t>(m.kernels.size()) - 1, d.kernel));
      KILN_RETURN_IF_ERROR(r.integer(lv, lp, "kv_layer", 0, m.kv.layers - 1, d.kvLayer));
      if (lv.find("bytes"))
        KILN_RETURN_IF_ERROR(r.integer(lv, lp, "bytes", 0, kMax, d.bytes));
      if (lv.find("flops"))
        KILN_RETURN_IF_ERROR(r.integer(lv, lp, "flops", 0, kMax, d.flops));
      const std::vector<JsonValue> *ops;
      KILN_RETURN_IF_ERROR(r.array(lv, lp, "operands", ops));
      if (ops->size() > 16)
        return r.error(lp + ".operands", "has " + std::to_string(ops->size()) + " buffers; kernels take at most 16");
      KILN_RETURN_IF_ERROR(r.integer(lv, lp, "outputs", 0, static_cast<int64_t>(ops->size()), d.outputs));
      for (size_t o = 0; o < ops->size(); ++o) {
        OperandDesc od;
        KILN_RETURN_IF_ERROR(
            readOperand(r, (*ops)[o], lp + ".operands[" + std::to_string(o) + "]", f, m.weights.size(), od));
        d.operands.push_back(od);
      }
      f.launches.push_back(std::move(d));
    }
    KILN_RETURN_IF_ERROR(r.array(fv, p, "results", results));
    for (size_t o = 0; o < results->size(); ++o) {
      OperandDesc od;
      KILN_RETURN_IF_ERROR(
          readOperand(r, (*results)[o], p + ".results[" + std::to_string(o) + "]", f, m.weights.size(), od));
      f.results.push_back(od);
    }
    const std::vector<JsonValue> *types;
    KILN_RETURN_IF_ERROR(r.array(fv, p, "result_types", types));
    if (types->size() != f.results.size())
      return r.error(p + ".result_types", "must describe each of the " + std::to_string(f.results.size()) +
                                              " results");
    for (size_t a = 0; a < types->size(); ++a) {
      TensorDesc t;
      std::string ap = p + ".result_types[" + std::to_string(a) + "]";
      KILN_RETURN_IF_ERROR(r.string((*types)[a], ap, "name", t.name));
      KILN_RETURN_IF_ERROR(r.string((*types)[a], ap, "dtype", t.dtype));
      KILN_RETURN_IF_ERROR(r.ints((*types)[a], ap, "shape", -1, t.shape));
      f.resultTypes.push_back(std::move(t));
    }
    if (m.function(f.name))
      return r.error(p + ".name", "'" + f.name + "' appears twice");
    m.functions.push_back(std::move(f));
  }
  for (const char *needed : {"prefill", "decode"})
    if (!m.function(needed))
      return r.error("functions", std::string("has no '") + needed + "'");
  for (size_t i = 0; i < m.functions.size(); ++i)
    if (m.functions[i].batch > 0)
      m.decodeOrder.push_back(i);
  std::sort(m.decodeOrder.begin(), m.decodeOrder.end(),
            [&](size_t a, size_t b) { return m.functions[a].batch < m.functions[b].batch; });
  // A bucket runs the steps @decode would: the same arguments and results.
  const FunctionDesc &decode = *m.function("decode");
  for (const FunctionDesc *f : m.decodeBuckets()) {
    bool same = f->args.size() == decode.args.size() && f->resultTypes.size() == decode.resultTypes.size();
    for (size_t i = 0; same && i < f->args.size(); ++i)
      same = f->args[i].name == decode.args[i].name && f->args[i].dtype == decode.args[i].dtype;
    for (size_t i = 0; same && i < f->resultTypes.size(); ++i)
      same = f->resultTypes[i].dtype == decode.resultTypes[i].dtype;
    if (!same)
      return r.error("functions", "'" + f->name + "' does not take and return what 'decode' does");
  }
  return Status::ok();
}

const FunctionDesc *EngineManifest::decodeFor(int64_t batch) const {
  for (size_t i : decodeOrder) // every decode step: no allocation
    if (batch <= functions[i].batch)
      return &functions[i];
  return nullptr;
}

std::vector<const FunctionDesc *> EngineManifest::decodeBuckets() const {
  std::vector<const FunctionDesc *> out;
  for (size_t i : decodeOrder)
    out.push_back(&functions[i]);
  return out;
}

namespace {
/// "sm_90a" -> (9, 0, true).
bool parseArch(const std::string &s, int &major, int &minor, bool &specific) {
  if (s.size() < 5 || s.compare(0, 3, "sm_") != 0)
    return false;
  std::string digits = s.substr(3);
  specific = !digits.empty() && (digits.back() == 'a' || digits.back() == 'f');
  if (specific)
    digits.pop_back();
  if (digits.size() < 2 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  major = std::stoi(digits.substr(0, digits.size() - 1));
  minor = digits.back() - '0';
  return true;
}
} // namespace

Status selectTarget(const EngineManifest &m, std::string_view source, const std::string &gpuArch,
                    std::string &target) {
  int gMajor, gMinor;
  bool gSpecific;
  if (!parseArch(gpuArch, gMajor, gMinor, gSpecific))
    return Status::error("'" + gpuArch + "' is not a GPU architecture like sm_90");
  // Prefer the exact architecture, then the newest compatible one.
  int bestMinor = -1;
  for (const std::string &t : m.targets) {
    int major, minor;
    bool specific;
    if (!parseArch(t, major, minor, specific) || major != gMajor)
      continue;
    bool ok = specific ? minor == gMinor : minor <= gMinor;
    if (ok && (minor > bestMinor || (minor == bestMinor && specific))) {
      bestMinor = minor;
      target = t;
    }
  }
  if (bestMinor >= 0)
    return Status::ok();
  std::string held;
  for (const std::string &t : m.targets)
    held += (held.empty() ? "" : ", ") + t;
  return Status::error(std::string(source) + " holds kernels for " + held + ", which do not run on this " +
                       gpuArch + " GPU: recompile with --target sm_" + std::to_string(gMajor) +
                       std::to_string(gMinor) + (gMajor >= 9 ? "a" : "") +
                       " (the runtime re-JITs the stored CUDA sources when NVRTC is available)");
}

} // namespace kiln::format
