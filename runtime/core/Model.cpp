//===- Model.cpp - a loaded engine ----------------------------------------===//
#include "runtime/core/Model.h"

#include "runtime/format/OnnxWeights.h"
#include "runtime/format/Safetensors.h"
#include "runtime/kernels/host/Tensor.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace kiln::rt {

namespace {

/// Graph keys: batch << 32 | table width, and this bit when captured with
/// programmatic dependent launch.
constexpr uint64_t kOverlapKey = uint64_t(1) << 63;
constexpr uint64_t kSlotKey = uint64_t(1) << 62; // the second decode input buffer
constexpr uint64_t kFedKey = uint64_t(1) << 61;  // ids read from the previous step's next tokens

/// Whether `f` reads its input ids for the last time before any launch
/// writes over its next-token result (an arena range): then the next step
/// may read its ids where this one leaves its next tokens.
bool idsReadBeforeNextWritten(const format::FunctionDesc &f) {
  using Kind = format::OperandDesc::Kind;
  if (f.results.size() <= 2 || f.results[2].kind != Kind::Arena)
    return false;
  const format::ByteRange next = f.results[2].arena;
  int64_t ids = -1, lastRead = -1;
  for (size_t i = 0; i < f.args.size(); ++i)
    if (f.args[i].name == "input_ids")
      ids = static_cast<int64_t>(i);
  for (size_t l = 0; l < f.launches.size(); ++l)
    for (const format::OperandDesc &o : f.launches[l].operands)
      if (o.kind == Kind::Arg && o.index == ids)
        lastRead = static_cast<int64_t>(l);
  if (lastRead < 0)
    return false;
  for (int64_t l = 0; l <= lastRead; ++l) {
    const format::LaunchDesc &ld = f.launches[static_cast<size_t>(l)];
    size_t outputs = static_cast<size_t>(std::clamp<int64_t>(ld.outputs, 0, static_cast<int64_t>(ld.operands.size())));
    for (size_t i = ld.operands.size() - outputs; i < ld.operands.size(); ++i) {
      const format::OperandDesc &o = ld.operands[i];
      if (o.kind == Kind::Arena && o.arena.offset < next.offset + next.size &&
          next.offset < o.arena.offset + o.arena.size)
        return false;
    }
  }
  return true;
}

constexpr uint64_t kAlign = 256;
uint64_t aligned(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

/// The manifest's dtype name of a safetensors dtype.
std::string dtypeOfFile(const std::string &d) {
  if (d == "BF16") return "bf16";
  if (d == "F16") return "f16";
  if (d == "F32") return "f32";
  if (d == "F64") return "f64";
  if (d == "I64") return "i64";
  if (d == "I32") return "i32";
  if (d == "I8") return "i8";
  if (d == "BOOL") return "i1";
  return d;
}

std::string shapeText(const std::vector<int64_t> &s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i)
    t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

/// A [rows, cols] matrix of `es`-byte elements, transposed.
void transposeInto(const char *src, int64_t rows, int64_t cols, size_t es, char *dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst + (c * rows + r) * es, src + (r * cols + c) * es, es);
}

/// What the memory plan holds. Decode (and each of its buckets): every
/// activation a kernel reads from the arena fits its range at the
/// function's batch (max_batch for "decode"), or the manifest is
/// refused (edited past its plan, its buffers would overlap and give wrong
/// rows silently). Each function: the sequences and the rows (batch x
/// tokens) a step may take, from the per-sequence buffers ([batch, ...]
/// without tokens) and the per-row ones ([batch, tokens, ...]).
Status planLimits(const format::EngineManifest &man, const std::string &path,
                  std::map<std::string, std::pair<int64_t, int64_t>> &limits) {
  limits.clear();
  for (const format::FunctionDesc &f : man.functions) {
    const bool decode = f.batch > 0; // decode, or one of its buckets
    int64_t held = decode ? f.batch : std::max(man.maxNumTokens, man.maxBatch);
    int64_t heldRows = std::max(man.maxNumTokens, man.maxBatch);
    for (size_t li = 0; li < f.launches.size(); ++li) {
      const format::LaunchDesc &l = f.launches[li];
      const format::HostProgramDesc &hp = man.kernels[static_cast<size_t>(l.kernel)].host;
      for (size_t i = 0; i < l.operands.size() && i < hp.args.size(); ++i) {
        if (l.operands[i].kind != format::OperandDesc::Kind::Arena)
          continue;
        const format::HostProgramDesc::Arg &arg = hp.args[i];
        host::DType dt;
        if (!host::parseDType(arg.dtype, dt))
          continue; // the host program's own check names it
        int64_t row = static_cast<int64_t>(host::dtypeSize(dt));
        bool batch = false, tokens = false, other = false;
        for (size_t d = 0; d < arg.sizes.size(); ++d) {
          const std::string &sym = d < arg.symbols.size() ? arg.symbols[d] : std::string();
          if (sym.empty())
            row *= std::max<int64_t>(0, arg.sizes[d]);
          else if (sym == "batch")
            batch = true;
          else if (sym == "tokens")
            tokens = true;
          else
            other = true; // pages, blocks
        }
        if (!batch || other || row <= 0)
          continue;
        const int64_t rows = static_cast<int64_t>(l.operands[i].arena.size) / row;
        if (tokens && !decode) {
          heldRows = std::min(heldRows, rows);
          continue;
        }
        if (decode && rows < f.batch)
          return Status::error(path + ": the memory plan does not hold " + f.name + "'s largest step: launch " +
                               std::to_string(li) + " (" + man.kernels[static_cast<size_t>(l.kernel)].name +
                               ") reads " + std::to_string(row * f.batch) + " bytes at batch " +
                               std::to_string(f.batch) + " from an arena range of " +
                               std::to_string(l.operands[i].arena.size));
        held = std::min(held, rows);
      }
    }
    limits[f.name] = {std::max<int64_t>(1, held), std::max<int64_t>(1, heldRows)};
  }
  return Status::ok();
}

} // namespace

Model::~Model() {
  if (!device_)
    return;
  for (DevPtr p : {weights_, arena_, workspace_, kv_, io_, ioDecode_, samplerBuf_})
    if (p)
      device_->free(p);
}

Status Model::bindWeights(const format::EngineFile &engine, const std::string &dir) {
  const format::EngineManifest &m = manifest_;
  uint64_t total = 0;
  std::vector<uint64_t> offsets;
  for (const format::WeightDesc &w : m.weights) {
    offsets.push_back(total);
    total += aligned(static_cast<uint64_t>(w.bytes));
  }
  KILN_RETURN_IF_ERROR(device_->alloc(total, weights_).withContext("binding " + std::to_string(total) +
                                                                     " bytes of weights"));
  deviceBytes_ += static_cast<int64_t>(total);
  for (uint64_t o : offsets)
    weightPtrs_.push_back(weights_ + o);

  if (m.weightsEmbedded) {
    const format::EngineSection *s = engine.find("weights");
    std::string_view all = engine.data(*s);
    for (size_t i = 0; i < m.weights.size(); ++i)
      KILN_RETURN_IF_ERROR(device_->upload(weightPtrs_[i], all.data() + m.weights[i].embedded->offset,
                                           m.weights[i].embedded->size));
    return Status::ok();
  }

  format::SafetensorsIndex index;
  KILN_RETURN_IF_ERROR(format::readWeightIndex(dir, index).withContext("reading the engine's weights"));
  std::vector<char> staged, raw;
  for (size_t i = 0; i < m.weights.size(); ++i) {
    const format::WeightDesc &w = m.weights[i];
    bool transpose = w.layout == "transpose" || w.layout == "transpose_concat_rows";
    staged.assign(static_cast<size_t>(w.bytes), 0);
    size_t at = 0;
    int64_t rows = w.shape.empty() ? 1 : w.shape.front();
    for (size_t si = 0; si < w.sources.size(); ++si) {
      const std::string &name = w.sources[si];
      // A source is a tensor of the files, or a weight dequantized from
      // packed ones (GPTQ/AWQ; the manifest's dequant_weights) straight
      // into the slot's dtype.
      const format::SafetensorsTensor *t = index.find(name);
      const format::DequantWeightDesc *dq = format::findDequantWeight(m.dequantWeights, name);
      host::Tensor computed;
      std::string where = dir;
      std::vector<int64_t> shape;
      size_t size = 0, elementSize = 0;
      if (dq) {
        host::DType dt;
        if (!host::parseDType(w.dtype, dt) || (dt != host::DType::F32 && dt != host::DType::F16 &&
                                               dt != host::DType::BF16))
          return Status::error("weight slot " + w.name + " is " + w.dtype + ": dequantized weights are f32, f16 or bf16");
        KILN_RETURN_IF_ERROR(format::readDequantWeight(index, *dq, dt, computed).withContext(dir));
        shape = computed.shape();
        size = computed.byteSize();
        elementSize = host::dtypeSize(dt);
      } else if (!t) {
        return Status::error(dir + " has no tensor '" + name + "', which the engine binds to weight slot " +
                             w.name + ": is this the model the engine was compiled from?");
      } else {
        if (dtypeOfFile(t->dtype) != w.dtype)
          return Status::error(t->file + ": tensor '" + name + "' is " + t->dtype + ", the engine expects " +
                               w.dtype + ": recompile the engine for this model");
        where = t->file;
        shape = t->shape;
        size = t->size;
        elementSize = t->elementSize;
      }
      // The shape each source must have: the slot's (identity), its rows of
      // the slot (concatenations), or the transpose of either.
      std::vector<int64_t> want = w.shape;
      if (w.sources.size() > 1 || !w.sourceRows.empty()) {
        int64_t r = si < w.sourceRows.size() ? w.sourceRows[si] : rows;
        if (!want.empty())
          want[0] = r;
      }
      if (transpose && want.size() == 2)
        std::swap(want[0], want[1]);
      if (shape != want)
        return Status::error(where + ": tensor '" + name + "' is " + shapeText(shape) + ", the engine binds " +
                             shapeText(want) + " for weight slot " + w.name + ": recompile the engine for this model");
      if (at + size > staged.size())
        return Status::error(where + ": tensor '" + name + "' does not fit weight slot " + w.name);
      const char *src = nullptr;
      if (dq) {
        src = static_cast<const char *>(computed.data());
      } else if (!transpose) {
        KILN_RETURN_IF_ERROR(format::readTensorData(*t, staged.data() + at));
      } else {
        raw.resize(size);
        KILN_RETURN_IF_ERROR(format::readTensorData(*t, raw.data()));
        src = raw.data();
      }
      if (src && transpose)
        transposeInto(src, shape[0], shape[1], elementSize, staged.data() + at);
      else if (src)
        std::memcpy(staged.data() + at, src, size);
      at += size;
    }
    if (at != staged.size())
      return Status::error(dir + ": the tensors bound to weight slot " + w.name + " hold " + std::to_string(at) +
                           " bytes, the engine expects " + std::to_string(staged.size()) + " " + shapeText(w.shape) +
                           ": recompile the engine for this model");
    KILN_RETURN_IF_ERROR(device_->upload(weightPtrs_[i], staged.data(), staged.size()));
  }
  return Status::ok();
}

Status Model::load(std::unique_ptr<Device> device, const std::string &path, const LoadOptions &o,
                   std::unique_ptr<Model> &out) {
  std::unique_ptr<Model> m(new Model());
  m->device_ = std::move(device);
  m->source_ = path;
  m->useGraphs_ = o.graphs;
  m->overlap_ = o.overlap != Overlap::Off;
  m->autoOverlap_ = o.overlap == Overlap::Auto;
  format::EngineFile engine;
  KILN_RETURN_IF_ERROR(format::readEngine(path, engine));
  KILN_RETURN_IF_ERROR(format::readManifest(engine, path, m->manifest_));
  const format::EngineManifest &man = m->manifest_;
  for (const char *fn : {"prefill", "decode"}) {
    const format::FunctionDesc *f = man.function(fn);
    if (f->resultTypes.size() != 3 || f->resultTypes[0].shape.empty())
      return Status::error(path + ": @" + fn + " must return (logits, kv_cache, next_tokens)");
  }
  m->vocab_ = man.function("decode")->resultTypes[0].shape.back();
  if (const format::JsonValue *e = man.config.find("eos_token_id")) {
    if (e->isInteger())
      m->eos_.push_back(e->asInt());
    else if (e->isArray())
      for (const format::JsonValue &x : e->asArray())
        if (x.isInteger())
          m->eos_.push_back(x.asInt());
  }

  KILN_RETURN_IF_ERROR(m->device_->prepareKernels(engine, man, m->note_).withContext(path));
  KILN_RETURN_IF_ERROR(m->bindWeights(engine, o.weights.empty() ? man.modelSource : o.weights));

  KILN_RETURN_IF_ERROR(planLimits(man, path, m->stepLimits_));

  // Arena (the functions run one at a time), workspace, I/O, KV pool.
  uint64_t arena = 0;
  for (const format::FunctionDesc &f : man.functions)
    arena = std::max<uint64_t>(arena, static_cast<uint64_t>(f.arenaBytes));
  KILN_RETURN_IF_ERROR(m->device_->alloc(arena, m->arena_).withContext("allocating the activation arena"));
  // Each kernel's workspace region, in kernel order, at the largest step.
  uint64_t ws = 0;
  for (const format::KernelDesc &k : man.kernels) {
    m->workspaceOffsets_.push_back(ws);
    ws += aligned(static_cast<uint64_t>(std::max<int64_t>(0, k.workspace.eval(man.maxBatch, man.maxNumTokens, 0, 0))));
  }
  if (ws > static_cast<uint64_t>(man.memory.workspace))
    return Status::error(path + ": the kernels' workspaces need " + std::to_string(ws) + " bytes, the manifest plans " +
                         std::to_string(man.memory.workspace));
  KILN_RETURN_IF_ERROR(m->device_->alloc(static_cast<size_t>(man.memory.workspace), m->workspace_));
  KILN_RETURN_IF_ERROR(m->device_->zero(m->workspace_, static_cast<size_t>(man.memory.workspace)));
  m->ioTokens_ = std::max(man.maxNumTokens, man.maxBatch);
  m->ioBlocks_ = (man.maxSeq + man.pageSize - 1) / man.pageSize;
  uint64_t io = 2 * aligned(m->ioTokens_ * 8) + aligned(m->ioTokens_ * m->ioBlocks_ * 4) + aligned(m->ioTokens_ * 4);
  KILN_RETURN_IF_ERROR(m->device_->alloc(io, m->io_));
  // A second input buffer for decode (batch <= max_batch), so a step's
  // inputs are uploaded while the one before runs.
  uint64_t ioDecode =
      2 * aligned(man.maxBatch * 8) + aligned(man.maxBatch * m->ioBlocks_ * 4) + aligned(man.maxBatch * 4);
  KILN_RETURN_IF_ERROR(m->device_->alloc(ioDecode, m->ioDecode_));
  m->deviceBytes_ += static_cast<int64_t>(arena + man.memory.workspace + io + ioDecode);
  // The GPU sampler, where the engine has one (engines before it sample on
  // the host) and the device is not the host's.
  if (o.deviceSampling && m->device_->arch() != "host" &&
      man.function("prefill")->resultTypes[0].dtype == man.function("decode")->resultTypes[0].dtype)
    for (size_t i = 0; i < man.kernels.size(); ++i)
      if (man.kernels[i].family == "sample")
        m->sampler_ = static_cast<int64_t>(i);
  m->feedInPlace_ = true;
  for (const format::FunctionDesc *d : man.decodeBuckets())
    m->feedInPlace_ &= idsReadBeforeNextWritten(*d);

  int64_t pageBytes = man.kv.bytesPerToken * man.pageSize;
  int64_t want = o.kvPages > 0 ? o.kvPages : man.maxBatch * m->ioBlocks_;
  size_t free = 0, total = 0;
  KILN_RETURN_IF_ERROR(m->device_->memoryInfo(free, total));
  int64_t fits = static_cast<int64_t>(static_cast<double>(free) * o.kvMemoryFraction) / std::max<int64_t>(1, pageBytes);
  if (fits < 1)
    return Status::error("no room for the KV cache: " + std::to_string(free) + " bytes free on " +
                         m->device_->describe() + ", a page takes " + std::to_string(pageBytes));
  if (want > fits) {
    if (o.kvPages > 0)
      return Status::error("a KV pool of " + std::to_string(want) + " pages (" + std::to_string(want * pageBytes) +
                           " bytes) does not fit the " + std::to_string(free) + " bytes free on " +
                           m->device_->describe());
    want = fits;
  }
  m->pages_ = want;
  m->blocks_ = std::make_unique<BlockManager>(m->pages_, man.pageSize);
  KILN_RETURN_IF_ERROR(m->device_->alloc(static_cast<size_t>(want * pageBytes), m->kv_)
                           .withContext("allocating the KV cache"));
  m->deviceBytes_ += want * pageBytes;
  out = std::move(m);
  return Status::ok();
}

Status Model::launchAll(const format::FunctionDesc &f, int64_t B, int64_t T, int64_t M, const Resolve &resolve) {
  for (const format::LaunchDesc &l : f.launches) {
    const format::KernelDesc &k = manifest_.kernels[static_cast<size_t>(l.kernel)];
    KernelArgs a;
    for (size_t i = 0; i < l.operands.size(); ++i)
      a.p[i] = resolve(l.operands[i]);
    a.ws = workspace_ + workspaceOffsets_[static_cast<size_t>(l.kernel)];
    a.batch = static_cast<int32_t>(B);
    a.tokens = static_cast<int32_t>(T);
    a.pages = static_cast<int32_t>(pages_);
    a.maxBlocks = static_cast<int32_t>(M);
    a.layer = static_cast<int32_t>(l.kvLayer);
    int64_t grid = std::clamp<int64_t>(k.grid.eval(B, T, pages_, M), 1, int64_t(1) << 30);
    LaunchConfig c{static_cast<unsigned>(grid), static_cast<unsigned>(k.threads), static_cast<unsigned>(k.smem),
                   overlap_ && k.dependentLaunch};
    if (profiling_) {
      double us = 0;
      KILN_RETURN_IF_ERROR(device_->timedLaunch(static_cast<size_t>(l.kernel), a, c, us));
      KernelTime &t = profile_[static_cast<size_t>(l.kernel)];
      ++t.calls;
      t.us += us;
      t.bytes += static_cast<double>(l.bytes >= 0 ? l.bytes : k.bytes);
      t.flops += static_cast<double>(l.flops >= 0 ? l.flops : k.flops);
    } else {
      KILN_RETURN_IF_ERROR(device_->launch(static_cast<size_t>(l.kernel), a, c));
    }
  }
  return Status::ok();
}

Status Model::copyPages(const std::vector<PageCopy> &copies) {
  // The pool is [layers, pages, 2, page_size, kv_heads, head_dim]: a page
  // of one layer (its K and V) is contiguous.
  const auto &kv = manifest_.kv;
  int64_t layerPage = kv.bytesPerToken * kv.pageSize / std::max<int64_t>(1, kv.layers);
  for (const PageCopy &c : copies) {
    if (c.from < 0 || c.to < 0 || c.from >= pages_ || c.to >= pages_)
      return Status::error("a KV page copy from " + std::to_string(c.from) + " to " + std::to_string(c.to) +
                           " is outside the pool of " + std::to_string(pages_) + " pages");
    for (int64_t l = 0; l < kv.layers; ++l)
      KILN_RETURN_IF_ERROR(device_->copy(kv_ + static_cast<DevPtr>((l * pages_ + c.to) * layerPage),
                                         kv_ + static_cast<DevPtr>((l * pages_ + c.from) * layerPage),
                                         static_cast<size_t>(layerPage)));
  }
  return Status::ok();
}

bool parseOverlap(const std::string &text, Overlap &out) {
  if (text != "auto" && text != "on" && text != "off")
    return false;
  out = text == "auto" ? Overlap::Auto : text == "on" ? Overlap::On : Overlap::Off;
  return true;
}

Status Model::capture(const format::FunctionDesc &f, int64_t B, int64_t T, int64_t M, const Resolve &resolve,
                      uint64_t key) {
  KILN_RETURN_IF_ERROR(device_->beginGraph());
  Status launched = launchAll(f, B, T, M, resolve);
  Status ended = device_->endGraph(key);
  KILN_RETURN_IF_ERROR(launched);
  return ended;
}

Status Model::chooseOverlap(const format::FunctionDesc &f, int64_t B, int64_t T, int64_t M, const Resolve &resolve,
                            uint64_t key) {
  autoOverlap_ = false;
  bool any = false;
  for (const format::LaunchDesc &l : f.launches)
    any |= manifest_.kernels[static_cast<size_t>(l.kernel)].dependentLaunch;
  if (!any || !device_->supportsDependentLaunch())
    return Status::ok();
  uint64_t keys[2] = {key, key | kOverlapKey}; // [off, on]
  for (int on = 0; on < 2; ++on) {
    overlap_ = on;
    if (!device_->hasGraph(keys[on]))
      KILN_RETURN_IF_ERROR(capture(f, B, T, M, resolve, keys[on]));
    KILN_RETURN_IF_ERROR(device_->runGraph(keys[on])); // warm
  }
  // Four rounds of four replays each, in the order on off off on on off
  // off on (drift in clocks or temperature falls on both alike).
  double us[2] = {0, 0};
  for (int r = 0; r < 8; ++r) {
    int on = (r + r / 2) % 2 == 0;
    double t = 0;
    KILN_RETURN_IF_ERROR(device_->timeGraph(keys[on], 4, t));
    us[on] += t;
  }
  overlap_ = us[1] <= us[0];
  char text[160];
  std::snprintf(text, sizeof text, "programmatic dependent launch %s: %.1f us per decode step with it, %.1f without",
                overlap_ ? "on" : "off", us[1] / 16, us[0] / 16);
  overlapChoice_ = text;
  return Status::ok();
}

void Model::setOverlap(bool on) {
  overlap_ = on;
  autoOverlap_ = false;
}

void Model::setProfiling(bool on) {
  if (on && !profiling_)
    profile_.assign(manifest_.kernels.size(), KernelTime());
  profiling_ = on;
}

Status Model::launchStep(const std::string &name, const StepInput &in, bool feedIds, int slot,
                         const format::FunctionDesc *&f, std::vector<DevPtr> &results) {
  const bool decode = name == "decode";
  f = manifest_.function(name);
  if (!f)
    return Status::error(source_ + " has no function '" + name + "'");
  int64_t B = in.batch, T = in.tokens, M = in.maxBlocks;
  if (B < 1 || T < 1 || M < 1)
    return Status::error(name + ": a step needs at least one sequence, token and block");
  if (decode && T != 1)
    return Status::error("decode takes one token per sequence, not " + std::to_string(T));
  if (B * T > ioTokens_ || B > std::max(manifest_.maxBatch, manifest_.maxNumTokens))
    return Status::error(name + " of " + std::to_string(B) + " x " + std::to_string(T) +
                         " tokens exceeds what the engine was compiled for (max_batch " +
                         std::to_string(manifest_.maxBatch) + ", max_num_tokens " +
                         std::to_string(manifest_.maxNumTokens) + ")");
  if (decode && B > manifest_.maxBatch)
    return Status::error("a decode step of " + std::to_string(B) + " sequences exceeds max_batch " +
                         std::to_string(manifest_.maxBatch));
  // A decode step runs through the smallest bucket that holds it.
  if (decode)
    f = manifest_.decodeFor(B);
  if (auto held = stepLimits_.find(f->name); held != stepLimits_.end()) {
    if (B > held->second.first)
      return Status::error(name + " of " + std::to_string(B) + " sequences a step exceeds the " +
                           std::to_string(held->second.first) + " the engine's memory plan holds");
    if (B * T > held->second.second)
      return Status::error(name + " of " + std::to_string(B) + " x " + std::to_string(T) + " tokens exceeds the " +
                           std::to_string(held->second.second) + " rows the engine's memory plan holds");
  }
  if (M > ioBlocks_)
    return Status::error("block tables of " + std::to_string(M) + " pages exceed the engine's " +
                         std::to_string(ioBlocks_) + " (max_seq " + std::to_string(manifest_.maxSeq) + ")");
  if (feedIds && (!decode || lastBatch_ != B))
    return Status::error("decode: ids fed from the previous step need a decode step of the same " +
                         std::to_string(B) + " sequences just before");
  if (static_cast<int64_t>(in.ids.size()) != B * T || static_cast<int64_t>(in.positions.size()) != B * T ||
      static_cast<int64_t>(in.blockTables.size()) != B * M || static_cast<int64_t>(in.contextLens.size()) != B)
    return Status::error(name + ": input sizes do not match " + std::to_string(B) + " x " + std::to_string(T));
  for (int64_t b = 0; b < B; ++b) {
    int64_t len = in.contextLens[b];
    if (len < 0 || len > M * pageSize())
      return Status::error(name + ": sequence " + std::to_string(b) + " has context length " + std::to_string(len) +
                           ", beyond its " + std::to_string(M) + " pages");
    for (int64_t j = 0; j < (len + pageSize() - 1) / pageSize(); ++j)
      if (in.blockTables[b * M + j] < 0 || in.blockTables[b * M + j] >= pages_)
        return Status::error(name + ": sequence " + std::to_string(b) + " maps page " + std::to_string(j) + " to " +
                             std::to_string(in.blockTables[b * M + j]) + ", outside the pool of " +
                             std::to_string(pages_));
    for (int64_t t = 0; t < T; ++t) {
      int64_t id = in.ids[b * T + t], pos = in.positions[b * T + t];
      if (!feedIds && pos >= 0 && (id < 0 || id >= vocab_))
        return Status::error(name + ": token id " + std::to_string(id) + " is outside the vocabulary of " +
                             std::to_string(vocab_));
      if (pos >= len)
        return Status::error(name + ": position " + std::to_string(pos) + " is not below context length " +
                             std::to_string(len));
    }
  }

  // The pages this step writes leave the prefix cache unless they came
  // from it privately (generate's own writes: prepareWrite copies any
  // shared or cached page first, so nothing is taken out then): a caller
  // with its own pages must not leave cached KV that is no longer it.
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0, last = -1; t < T; ++t)
      if (int64_t pos = in.positions[b * T + t]; pos >= 0 && pos / pageSize() != last) {
        last = pos / pageSize(); // a row's positions run in order: once a page
        blocks_->forget(in.blockTables[b * M + last]);
      }

  // A decode step of a given bucket and table width always launches the
  // same kernels with the same arguments (inputs live at fixed addresses):
  // the first one is captured as a graph, later ones replay it. A graph's
  // step is padded to its bucket's batch with rows that compute nothing
  // anyone reads (position -1: no KV written, no key attended; id 0; no
  // pages), so one graph serves every batch the bucket holds.
  bool graph = useGraphs_ && !profiling_ && decode && device_->supportsGraphs();
  const int64_t rows = graph ? f->batch : B;

  // The inputs packed for this step's sizes, in one copy: ids, positions,
  // block tables, context lengths.
  uint64_t oPos = aligned(static_cast<uint64_t>(rows * T) * 8),
           oBt = oPos + aligned(static_cast<uint64_t>(rows * T) * 8),
           oCl = oBt + aligned(static_cast<uint64_t>(rows * M) * 4), total = oCl + static_cast<uint64_t>(rows) * 4;
  staging_.assign(total, 0);
  std::memcpy(staging_.data(), in.ids.data(), in.ids.size() * 8);
  std::memcpy(staging_.data() + oPos, in.positions.data(), in.positions.size() * 8);
  std::memcpy(staging_.data() + oBt, in.blockTables.data(), in.blockTables.size() * 4);
  std::memcpy(staging_.data() + oCl, in.contextLens.data(), in.contextLens.size() * 4);
  if (rows > B) {
    std::fill_n(reinterpret_cast<int64_t *>(staging_.data() + oPos) + B * T, (rows - B) * T, int64_t(-1));
    std::fill_n(reinterpret_cast<int32_t *>(staging_.data() + oBt) + B * M, (rows - B) * M, int32_t(-1));
  }
  DevPtr io = slot ? ioDecode_ : io_; // slot 1: decode only, checked within max_batch above
  KILN_RETURN_IF_ERROR(slot ? device_->uploadAside(io, staging_.data(), total)
                            : device_->upload(io, staging_.data(), total));
  DevPtr ids = io, pos = io + oPos, bt = io + oBt, cl = io + oCl;
  if (feedIds && feedInPlace_)
    ids = lastNext_;
  else if (feedIds)
    KILN_RETURN_IF_ERROR(device_->copy(ids, lastNext_, static_cast<size_t>(B) * 8));

  std::vector<DevPtr> args;
  for (const format::TensorDesc &a : f->args) {
    if (a.name == "input_ids") args.push_back(ids);
    else if (a.name == "positions") args.push_back(pos);
    else if (a.name == "block_tables") args.push_back(bt);
    else if (a.name == "context_lens") args.push_back(cl);
    else if (a.name == "kv_cache") args.push_back(kv_);
    else return Status::error(source_ + ": @" + name + " takes an argument '" + a.name + "' the runtime cannot bind");
  }
  auto resolve = [&](const format::OperandDesc &o) -> DevPtr {
    switch (o.kind) {
    case format::OperandDesc::Kind::Arg: return args[static_cast<size_t>(o.index)];
    case format::OperandDesc::Kind::Weight: return weightPtrs_[static_cast<size_t>(o.index)];
    case format::OperandDesc::Kind::Arena: return arena_ + o.arena.offset;
    }
    return 0;
  };
  uint64_t key = (static_cast<uint64_t>(rows) << 32) | static_cast<uint64_t>(M);
  if (graph && autoOverlap_)
    KILN_RETURN_IF_ERROR(chooseOverlap(*f, rows, T, M, resolve, key));
  if (overlap_)
    key |= kOverlapKey;
  if (slot)
    key |= kSlotKey;
  if (feedIds && feedInPlace_)
    key |= kFedKey;
  if (!graph) {
    KILN_RETURN_IF_ERROR(launchAll(*f, B, T, M, resolve));
  } else {
    if (!device_->hasGraph(key))
      KILN_RETURN_IF_ERROR(capture(*f, rows, T, M, resolve, key));
    KILN_RETURN_IF_ERROR(device_->runGraph(key));
  }
  results.clear();
  for (const format::OperandDesc &r : f->results)
    results.push_back(resolve(r));
  lastNext_ = results.size() > 2 ? results[2] : 0;
  lastLogits_ = results.empty() ? 0 : results[0];
  lastRows_ = B;
  lastBatch_ = decode ? B : 0;
  return Status::ok();
}

Status Model::step(const std::string &name, const StepInput &in, StepOutput &out, bool wantLogits) {
  if (!inFlight_.empty())
    return Status::error(name + ": " + std::to_string(inFlight_.size()) + " decode steps begun and not ended");
  const format::FunctionDesc *f = nullptr;
  std::vector<DevPtr> results;
  KILN_RETURN_IF_ERROR(launchStep(name, in, false, 0, f, results));
  int64_t B = in.batch;
  out.vocab = vocab_;
  out.next.assign(static_cast<size_t>(B), 0);
  KILN_RETURN_IF_ERROR(device_->download(out.next.data(), results[2], static_cast<size_t>(B) * 8));
  out.logits.clear();
  if (wantLogits) {
    const format::TensorDesc &lt = f->resultTypes[0];
    host::DType dt;
    if (!host::parseDType(lt.dtype, dt) || !host::isFloat(dt))
      return Status::error(source_ + ": logits of dtype " + lt.dtype);
    size_t es = host::dtypeSize(dt);
    host::Tensor t(dt, {B, vocab_});
    KILN_RETURN_IF_ERROR(device_->download(t.data(), results[0], static_cast<size_t>(B * vocab_) * es));
    out.logits = t.toF32();
  }
  return Status::ok();
}

Status Model::beginDecode(const StepInput &in, bool feedIds) {
  if (inFlight_.size() >= 2)
    return Status::error("decode: two steps are in flight already; end one first");
  const format::FunctionDesc *f = nullptr;
  std::vector<DevPtr> results;
  KILN_RETURN_IF_ERROR(launchStep("decode", in, feedIds, nextSlot_, f, results));
  nextSlot_ ^= 1;
  InFlight s{0, in.batch};
  KILN_RETURN_IF_ERROR(device_->downloadBegin(results[2], static_cast<size_t>(in.batch) * 8, s.ticket));
  inFlight_.push_back(s);
  return Status::ok();
}

Status Model::endDecode(StepOutput &out) {
  if (inFlight_.empty())
    return Status::error("decode: no step in flight to end");
  InFlight s = inFlight_.front();
  inFlight_.erase(inFlight_.begin());
  out.vocab = vocab_;
  out.logits.clear();
  out.next.assign(static_cast<size_t>(s.batch), 0);
  return device_->downloadEnd(s.ticket, out.next.data(), static_cast<size_t>(s.batch) * 8);
}

Status Model::sample(const std::vector<SampleSpec> &specs, std::vector<Sampled> &out, DevPtr logits) {
  if (sampler_ < 0)
    return Status::error("sample: this model samples on the host (the engine has no sampler, or the device is the "
                         "host)");
  if (!inFlight_.empty())
    return Status::error("sample: decode steps are in flight");
  const int64_t B = static_cast<int64_t>(specs.size());
  if (!logits && (!lastLogits_ || B != lastRows_))
    return Status::error("sample: " + std::to_string(B) + " rows, the last step left " + std::to_string(lastRows_));
  if (B == 0 || B > ioTokens_)
    return Status::error("sample: " + std::to_string(B) + " rows");
  if (!logits)
    logits = lastLogits_;
  // The buffer: rows, then the outputs (tokens, log-probabilities, top
  // entries: one download), then the penalty entries.
  const uint64_t R = static_cast<uint64_t>(ioTokens_); // the most rows a step has (at least max_batch)
  const uint64_t oTok = aligned(R * sizeof(SampleRow)), oLp = oTok + aligned(R * 8), oTop = oLp + aligned(R * 4),
                 oPen = oTop + aligned(R * kMaxTopLogprobs * sizeof(SampleTop));
  size_t entries = 0;
  bool anyLogprobs = false;
  for (const SampleSpec &s : specs) {
    KILN_RETURN_IF_ERROR(host::checkSamplingParams(s.params));
    if (s.topLogprobs < 0 || s.topLogprobs > kMaxTopLogprobs)
      return Status::error("sample: top logprobs " + std::to_string(s.topLogprobs) + " outside [0, " +
                           std::to_string(kMaxTopLogprobs) + "]");
    entries += s.penalties.size();
    anyLogprobs |= s.logprobs;
  }
  if (entries > static_cast<size_t>(INT32_MAX))
    return Status::error("sample: too many penalty entries");
  const uint64_t need = oPen + std::max<uint64_t>(entries, 1024) * sizeof(SamplePenalty);
  if (need > samplerBytes_) {
    if (samplerBuf_)
      device_->free(samplerBuf_);
    samplerBuf_ = 0;
    samplerBytes_ = 0;
    uint64_t bytes = std::max<uint64_t>(need, oPen + 2 * (need - oPen));
    KILN_RETURN_IF_ERROR(device_->alloc(bytes, samplerBuf_).withContext("allocating the sampler's buffer"));
    samplerBytes_ = bytes;
  }
  sampleStaging_.assign(oTok, 0);
  std::vector<SamplePenalty> pens;
  pens.reserve(entries);
  for (size_t b = 0; b < specs.size(); ++b) {
    const SampleSpec &s = specs[b];
    SampleRow r{};
    r.temperature = s.params.temperature;
    r.topP = s.params.topP;
    r.minP = s.params.minP;
    r.repetition = s.params.repetitionPenalty;
    r.frequency = s.params.frequencyPenalty;
    r.presence = s.params.presencePenalty;
    r.topK = static_cast<int32_t>(std::clamp<int64_t>(s.params.topK, 0, INT32_MAX));
    r.penBegin = static_cast<int32_t>(pens.size());
    pens.insert(pens.end(), s.penalties.begin(), s.penalties.end());
    r.penEnd = static_cast<int32_t>(pens.size());
    r.topN = s.logprobs ? static_cast<int32_t>(s.topLogprobs) : 0;
    r.seed = s.seed;
    r.position = s.position;
    r.flags = s.logprobs ? kSampleLogprobs : 0;
    std::memcpy(sampleStaging_.data() + b * sizeof(SampleRow), &r, sizeof r);
  }
  KILN_RETURN_IF_ERROR(device_->upload(samplerBuf_, sampleStaging_.data(), B * sizeof(SampleRow)));
  if (!pens.empty())
    KILN_RETURN_IF_ERROR(device_->upload(samplerBuf_ + oPen, pens.data(), pens.size() * sizeof(SamplePenalty)));
  KernelArgs a;
  a.p[0] = logits;
  a.p[1] = samplerBuf_;
  a.p[2] = samplerBuf_ + oPen;
  a.p[3] = samplerBuf_ + oTok;
  a.p[4] = samplerBuf_ + oLp;
  a.p[5] = samplerBuf_ + oTop;
  a.batch = static_cast<int32_t>(B);
  a.tokens = static_cast<int32_t>(vocab_);
  a.pages = static_cast<int32_t>(kMaxTopLogprobs);
  const format::KernelDesc &k = manifest_.kernels[static_cast<size_t>(sampler_)];
  LaunchConfig c;
  c.grid = static_cast<unsigned>(B);
  c.block = static_cast<unsigned>(k.threads);
  c.smem = static_cast<unsigned>(k.smem);
  KILN_RETURN_IF_ERROR(device_->launch(static_cast<size_t>(sampler_), a, c));
  // Back: the tokens, and with log-probabilities everything up to the top entries.
  sampleStaging_.assign(anyLogprobs ? oPen - oTok : B * 8, 0);
  KILN_RETURN_IF_ERROR(device_->download(sampleStaging_.data(), samplerBuf_ + oTok, sampleStaging_.size()));
  out.assign(specs.size(), Sampled());
  for (size_t b = 0; b < specs.size(); ++b) {
    int64_t t;
    std::memcpy(&t, sampleStaging_.data() + b * 8, 8);
    if (t < 0 || t >= vocab_)
      return Status::error(t == -1 ? "logits contain NaN (row " + std::to_string(b) + " of the step)"
                                   : "the sampler gave token " + std::to_string(t) + " outside the vocabulary");
    out[b].token = t;
    if (!specs[b].logprobs)
      continue;
    std::memcpy(&out[b].logprob, sampleStaging_.data() + (oLp - oTok) + b * 4, 4);
    for (int64_t j = 0; j < specs[b].topLogprobs && j < vocab_; ++j) {
      SampleTop e;
      std::memcpy(&e, sampleStaging_.data() + (oTop - oTok) + (b * kMaxTopLogprobs + j) * sizeof(SampleTop),
                  sizeof e);
      out[b].top.push_back({e.token, e.logprob});
    }
  }
  return Status::ok();
}

} // namespace kiln::rt
