//===- Generate.cpp - pages, sampling and the step loop -------------------===//
#include "runtime/core/Generate.h"

#include <algorithm>
#include <limits>

namespace kiln::rt {

BlockManager::BlockManager(int64_t pages, int64_t pageSize) : pageSize_(pageSize) {
  // Hand out low pages first.
  for (int64_t p = pages - 1; p >= 0; --p)
    free_.push_back(static_cast<int32_t>(p));
}

Status BlockManager::reserve(int64_t seq, int64_t tokens) {
  std::vector<int32_t> &t = tables_[seq];
  int64_t need = (tokens + pageSize_ - 1) / pageSize_ - static_cast<int64_t>(t.size());
  if (need > static_cast<int64_t>(free_.size()))
    return Status::error("the KV cache is full: sequence " + std::to_string(seq) + " needs " + std::to_string(need) +
                         " more pages of " + std::to_string(pageSize_) + " tokens, " +
                         std::to_string(free_.size()) + " are free");
  for (int64_t i = 0; i < need; ++i) {
    t.push_back(free_.back());
    free_.pop_back();
  }
  return Status::ok();
}

void BlockManager::release(int64_t seq) {
  auto it = tables_.find(seq);
  if (it == tables_.end())
    return;
  for (auto p = it->second.rbegin(); p != it->second.rend(); ++p)
    free_.push_back(*p);
  tables_.erase(it);
}

const std::vector<int32_t> &BlockManager::table(int64_t seq) const {
  static const std::vector<int32_t> none;
  auto it = tables_.find(seq);
  return it == tables_.end() ? none : it->second;
}

namespace {

struct Sequence {
  size_t index;
  std::vector<int64_t> tokens; // prompt then generated
  int64_t generated = 0;
  bool done = false;
};

Status pick(const float *logits, int64_t vocab, const Sequence &s, const GenerateOptions &o,
            const std::vector<int64_t> &eos, host::Rng &rng, std::vector<float> &scratch, int64_t &token) {
  const float *row = logits;
  if (s.generated < o.minTokens && !eos.empty()) {
    scratch.assign(logits, logits + vocab);
    for (int64_t e : eos)
      if (e >= 0 && e < vocab)
        scratch[static_cast<size_t>(e)] = -std::numeric_limits<float>::infinity();
    row = scratch.data();
  }
  return host::sampleToken(row, vocab, o.sampling, rng, token);
}

} // namespace

Status generate(Model &model, const std::vector<std::vector<int64_t>> &prompts, const GenerateOptions &o,
                std::vector<std::vector<int64_t>> &outputs, std::vector<std::vector<float>> *firstLogits) {
  const format::EngineManifest &m = model.manifest();
  outputs.assign(prompts.size(), {});
  if (firstLogits)
    firstLogits->assign(prompts.size(), {});
  BlockManager blocks(model.pages(), model.pageSize());
  int64_t maxBlocks = (m.maxSeq + m.pageSize - 1) / m.pageSize;
  host::Rng rng(o.seed);
  std::vector<float> scratch;
  std::vector<Sequence> seqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      return Status::error("prompt " + std::to_string(i) + " is empty");
    if (static_cast<int64_t>(prompts[i].size()) + o.maxTokens > m.maxSeq)
      return Status::error("prompt " + std::to_string(i) + " of " + std::to_string(prompts[i].size()) +
                           " tokens plus " + std::to_string(o.maxTokens) + " new ones exceeds the engine's max_seq " +
                           std::to_string(m.maxSeq) + ": recompile with a larger --max-seq");
    seqs.push_back({i, prompts[i]});
  }
  auto finish = [&](Sequence &s, int64_t token) {
    outputs[s.index].push_back(token);
    s.tokens.push_back(token);
    ++s.generated;
    bool stop = s.generated >= o.maxTokens ||
                (s.generated > o.minTokens && !o.ignoreEos &&
                 (std::count(model.eos().begin(), model.eos().end(), token) ||
                  std::count(o.stop.begin(), o.stop.end(), token)));
    if (o.onToken && !o.onToken(s.index, token))
      stop = true;
    s.done = stop;
  };

  // Prefill each prompt alone, in chunks the engine takes.
  for (Sequence &s : seqs) {
    if (o.maxTokens <= 0) {
      s.done = true;
      continue;
    }
    KILN_RETURN_IF_ERROR(blocks.reserve(static_cast<int64_t>(s.index), static_cast<int64_t>(s.tokens.size()) + 1));
    int64_t n = static_cast<int64_t>(s.tokens.size());
    StepOutput out;
    for (int64_t c0 = 0; c0 < n; c0 += m.maxNumTokens) {
      int64_t c1 = std::min(n, c0 + m.maxNumTokens);
      StepInput in;
      in.batch = 1;
      in.tokens = c1 - c0;
      in.maxBlocks = maxBlocks;
      in.ids.assign(s.tokens.begin() + c0, s.tokens.begin() + c1);
      for (int64_t p = c0; p < c1; ++p)
        in.positions.push_back(p);
      in.blockTables.assign(static_cast<size_t>(maxBlocks), 0);
      const std::vector<int32_t> &t = blocks.table(static_cast<int64_t>(s.index));
      std::copy(t.begin(), t.end(), in.blockTables.begin());
      in.contextLens = {static_cast<int32_t>(c1)};
      KILN_RETURN_IF_ERROR(model.step("prefill", in, out, c1 == n));
    }
    if (firstLogits)
      (*firstLogits)[s.index] = out.logits;
    int64_t token;
    KILN_RETURN_IF_ERROR(pick(out.logits.data(), out.vocab, s, o, model.eos(), rng, scratch, token));
    finish(s, token);
  }

  // Decode every unfinished sequence together, at most max_batch at a time.
  while (true) {
    std::vector<Sequence *> active;
    for (Sequence &s : seqs)
      if (!s.done && static_cast<int64_t>(active.size()) < m.maxBatch)
        active.push_back(&s);
    if (active.empty())
      break;
    StepInput in;
    in.batch = static_cast<int64_t>(active.size());
    in.tokens = 1;
    in.maxBlocks = maxBlocks;
    in.blockTables.assign(static_cast<size_t>(in.batch * maxBlocks), 0);
    for (size_t b = 0; b < active.size(); ++b) {
      Sequence &s = *active[b];
      int64_t len = static_cast<int64_t>(s.tokens.size());
      KILN_RETURN_IF_ERROR(blocks.reserve(static_cast<int64_t>(s.index), len));
      in.ids.push_back(s.tokens.back());
      in.positions.push_back(len - 1);
      in.contextLens.push_back(static_cast<int32_t>(len));
      const std::vector<int32_t> &t = blocks.table(static_cast<int64_t>(s.index));
      std::copy(t.begin(), t.end(), in.blockTables.begin() + static_cast<int64_t>(b) * maxBlocks);
    }
    // Greedy decoding with nothing to mask takes the engine's own argmax
    // and leaves the logits on the device.
    bool needLogits = o.sampling.temperature > 0.0f;
    for (Sequence *s : active)
      needLogits |= s->generated < o.minTokens && !model.eos().empty() && !o.ignoreEos;
    StepOutput out;
    KILN_RETURN_IF_ERROR(model.step("decode", in, out, needLogits));
    for (size_t b = 0; b < active.size(); ++b) {
      int64_t token;
      if (needLogits)
        KILN_RETURN_IF_ERROR(pick(out.logits.data() + b * static_cast<size_t>(out.vocab), out.vocab, *active[b], o,
                                  model.eos(), rng, scratch, token));
      else
        token = out.next[b];
      finish(*active[b], token);
      if (active[b]->done)
        blocks.release(static_cast<int64_t>(active[b]->index));
    }
  }
  return Status::ok();
}

} // namespace kiln::rt
