//===- Generate.cpp - pages, sampling and the step loop -------------------===//
#include "runtime/core/Generate.h"

#include <algorithm>
#include <deque>
#include <limits>

namespace kiln::rt {

namespace {

struct Sequence {
  size_t index;
  std::vector<int64_t> tokens; // prompt then generated
  uint64_t seed = 0;           // its draws: counterUniform(seed, position)
  int64_t generated = 0;
  int64_t prefilled = 0; // tokens whose KV is written (admitted and prefilling)
  int64_t target = 0;    // tokens to prefill: all it had when admitted
  bool done = false;
};

/// The next token of `s` from its logits: its draw is a function of its
/// seed and the position the token takes, whatever else runs.
Status pick(const float *logits, int64_t vocab, const Sequence &s, const GenerateOptions &o,
            const std::vector<int64_t> &eos, std::vector<float> &scratch, int64_t &token) {
  const float *row = logits;
  bool mask = s.generated < o.minTokens && !eos.empty();
  if (mask || o.sampling.penalised()) {
    scratch.assign(logits, logits + vocab);
    // Penalties over the prompt and the output (the output: the tokens
    // generated, the last `generated` of the sequence's).
    if (o.sampling.penalised()) {
      const int64_t *output = s.tokens.data() + (s.tokens.size() - static_cast<size_t>(s.generated));
      host::applyPenalties(scratch.data(), vocab, o.sampling, s.tokens.data(), s.tokens.size(), output,
                           static_cast<size_t>(s.generated));
    }
    if (mask)
      for (int64_t e : eos)
        if (e >= 0 && e < vocab)
          scratch[static_cast<size_t>(e)] = -std::numeric_limits<float>::infinity();
    row = scratch.data();
  }
  return host::sampleTokenWith(row, vocab, o.sampling,
                               host::counterUniform(s.seed, static_cast<uint64_t>(s.tokens.size())), token);
}

} // namespace

Status generate(Model &model, const std::vector<std::vector<int64_t>> &prompts, const GenerateOptions &o,
                std::vector<std::vector<int64_t>> &outputs, std::vector<std::vector<float>> *firstLogits,
                GenerateReport *report) {
  const format::EngineManifest &m = model.manifest();
  GenerateReport local;
  GenerateReport &r = report ? *report : local;
  r = GenerateReport();
  r.status.assign(prompts.size(), Status::ok());
  r.cachedTokens.assign(prompts.size(), 0);
  outputs.assign(prompts.size(), {});
  if (firstLogits)
    firstLogits->assign(prompts.size(), {});
  // The model's pages and prefix cache: what earlier calls computed is
  // reused. Every sequence of this call leaves it when the call returns,
  // whatever the return (the pages a failed call held go back).
  BlockManager &blocks = model.blocks();
  blocks.setPrefixCaching(o.prefixCaching);
  struct ReleaseAll {
    BlockManager &blocks;
    size_t n;
    ~ReleaseAll() {
      for (size_t i = 0; i < n; ++i)
        blocks.release(static_cast<int64_t>(i));
    }
  } releaseAll{blocks, prompts.size()};
  int64_t maxBlocks = (m.maxSeq + m.pageSize - 1) / m.pageSize;
  std::vector<float> scratch;
  std::vector<Sequence> seqs;
  KILN_RETURN_IF_ERROR(host::checkSamplingParams(o.sampling));
  if (!o.seeds.empty() && o.seeds.size() != prompts.size())
    return Status::error("seeds: " + std::to_string(o.seeds.size()) + " given for " +
                         std::to_string(prompts.size()) + " prompts (one each, or none)");
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty())
      return Status::error("prompt " + std::to_string(i) + " is empty");
    if (static_cast<int64_t>(prompts[i].size()) + o.maxTokens > m.maxSeq)
      return Status::error("prompt " + std::to_string(i) + " of " + std::to_string(prompts[i].size()) +
                           " tokens plus " + std::to_string(o.maxTokens) + " new ones exceeds the engine's max_seq " +
                           std::to_string(m.maxSeq) + ": recompile with a larger --max-seq");
    seqs.push_back({i, prompts[i], o.seeds.empty() ? o.seed : o.seeds[i]});
  }
  auto seqId = [](const Sequence &s) { return static_cast<int64_t>(s.index); };
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
  // A sequence leaves: the KV of all its tokens but the last (not yet
  // written) stays in the prefix cache for whoever begins alike.
  auto retire = [&](Sequence &s) {
    blocks.publish(seqId(s), s.tokens, static_cast<int64_t>(s.tokens.size()) - 1);
    blocks.release(seqId(s));
  };
  auto refuse = [&](Sequence &s, Status why) {
    r.status[s.index] = std::move(why);
    s.done = true;
    blocks.release(seqId(s));
  };
  auto applyCopies = [&](std::vector<PageCopy> &copies) -> Status {
    r.pageCopies += static_cast<int64_t>(copies.size());
    Status st = model.copyPages(copies);
    copies.clear();
    return st;
  };

  // Admits `s`: its cached prefix found, pages for all its tokens and the
  // next one reserved (a private copy of a shared page it will write);
  // nothing computed yet.
  auto admit = [&](Sequence &s) -> Status {
    int64_t n = static_cast<int64_t>(s.tokens.size());
    int64_t cached = 0;
    blocks.admit(seqId(s), s.tokens, n, cached);
    // At least the last token is computed (its logits give the next one):
    // when every page was cached, it is rewritten into a private copy of
    // the last page (prepareWrite below).
    cached = std::min(cached, n - 1);
    if (Status st = blocks.reserve(seqId(s), n + 1); !st) {
      blocks.release(seqId(s));
      return st;
    }
    std::vector<PageCopy> copies;
    if (Status st = blocks.prepareWrite(seqId(s), cached, n, copies); !st) {
      blocks.release(seqId(s));
      return st;
    }
    KILN_RETURN_IF_ERROR(applyCopies(copies));
    if (s.generated == 0)
      r.cachedTokens[s.index] = cached;
    r.prefillTokens += n - cached;
    s.prefilled = cached;
    s.target = n;
    return Status::ok();
  };
  // One prefill step of `rows` (admitted prompts), `c` tokens of each from
  // its first not yet written; a prompt whose last token that writes is
  // `complete` and samples its next token.
  int64_t sinceDecode = 0; // prefill tokens since the last decode step while sequences ran
  auto prefillStep = [&](const std::vector<Sequence *> &rows, int64_t c, bool othersRunning) -> Status {
    StepInput in;
    in.batch = static_cast<int64_t>(rows.size());
    in.tokens = c;
    in.maxBlocks = maxBlocks;
    in.blockTables.assign(static_cast<size_t>(in.batch * maxBlocks), 0);
    bool anyComplete = false;
    for (size_t b = 0; b < rows.size(); ++b) {
      Sequence &s = *rows[b];
      int64_t c0 = s.prefilled, c1 = c0 + c;
      in.ids.insert(in.ids.end(), s.tokens.begin() + c0, s.tokens.begin() + c1);
      for (int64_t p = c0; p < c1; ++p)
        in.positions.push_back(p);
      in.contextLens.push_back(static_cast<int32_t>(c1));
      const std::vector<int32_t> &t = blocks.table(seqId(s));
      std::copy(t.begin(), t.end(), in.blockTables.begin() + static_cast<int64_t>(b) * maxBlocks);
      anyComplete |= c1 == s.target;
    }
    StepOutput out;
    KILN_RETURN_IF_ERROR(model.step("prefill", in, out, anyComplete));
    ++r.prefillSteps;
    if (othersRunning) {
      sinceDecode += in.batch * c;
      r.longestPrefillBetweenDecodes = std::max(r.longestPrefillBetweenDecodes, sinceDecode);
    }
    for (size_t b = 0; b < rows.size(); ++b) {
      Sequence &s = *rows[b];
      s.prefilled += c;
      blocks.publish(seqId(s), s.tokens, s.prefilled); // its full pages written so far, for whoever begins alike
      if (s.prefilled < s.target)
        continue;
      const float *row = out.logits.data() + b * static_cast<size_t>(out.vocab);
      if (firstLogits && (*firstLogits)[s.index].empty())
        (*firstLogits)[s.index].assign(row, row + out.vocab);
      int64_t token;
      KILN_RETURN_IF_ERROR(pick(row, out.vocab, s, o, model.eos(), scratch, token));
      finish(s, token);
    }
    return Status::ok();
  };

  // The rows of a decode step from `running`: each sequence's last token
  // at its position, and its block table.
  auto decodeInput = [&](const std::vector<Sequence *> &rows) {
    StepInput in;
    in.batch = static_cast<int64_t>(rows.size());
    in.tokens = 1;
    in.maxBlocks = maxBlocks;
    in.blockTables.assign(static_cast<size_t>(in.batch * maxBlocks), 0);
    for (size_t b = 0; b < rows.size(); ++b) {
      Sequence &s = *rows[b];
      int64_t len = static_cast<int64_t>(s.tokens.size());
      in.ids.push_back(s.tokens.back());
      in.positions.push_back(len - 1);
      in.contextLens.push_back(static_cast<int32_t>(len));
      const std::vector<int32_t> &t = blocks.table(seqId(s));
      std::copy(t.begin(), t.end(), in.blockTables.begin() + static_cast<int64_t>(b) * maxBlocks);
    }
    return in;
  };
  // Greedy decoding of `running` (its pages for this step reserved) while
  // nothing changes it: step N + 1 is launched before step N's tokens are
  // back, its ids being N's argmax on the device. The host then only reads
  // tokens one step behind. When a sequence finishes, the step already
  // launched still runs for it; its row is discarded and the loop returns
  // to the caller once that step is read.
  std::vector<Sequence *> running; // in admission order
  // A decode step of `rows` read: its count, and each row's token (a
  // sequence that finishes leaves at once).
  auto stepped = [&](size_t rows) {
    sinceDecode = 0;
    ++r.decodeSteps;
    r.largestBatch = std::max<int64_t>(r.largestBatch, static_cast<int64_t>(rows));
  };
  auto accept = [&](Sequence &s, int64_t token) {
    finish(s, token);
    if (s.done)
      retire(s);
  };
  auto dropDone = [&]() {
    running.erase(std::remove_if(running.begin(), running.end(), [](Sequence *s) { return s->done; }),
                  running.end());
  };
  auto decodeAheadSteps = [&]() -> Status {
    std::vector<Sequence *> rows = running;
    KILN_RETURN_IF_ERROR(model.beginDecode(decodeInput(rows), false));
    bool ahead = true;
    while (true) {
      // Launch the next step now when every row is still going, one may
      // want another token, and each has the page for it. The step in
      // flight writes position tokens.size() - 1.
      bool next = ahead && std::any_of(rows.begin(), rows.end(),
                                       [&](Sequence *s) { return s->generated + 1 < o.maxTokens; });
      for (size_t b = 0; next && b < rows.size(); ++b) {
        Sequence &s = *rows[b];
        int64_t len = static_cast<int64_t>(s.tokens.size());
        std::vector<PageCopy> copies;
        Status st = blocks.reserve(seqId(s), len + 1);
        if (st)
          st = blocks.prepareWrite(seqId(s), len, len + 1, copies);
        KILN_RETURN_IF_ERROR(applyCopies(copies)); // ordered before the next step on the device
        if (!st && st.code() != StatusCode::kKvCacheFull)
          return st; // out of pages only ends the lookahead
        next = static_cast<bool>(st);
      }
      if (next) {
        StepInput in = decodeInput(rows);
        for (size_t b = 0; b < rows.size(); ++b)
          ++in.positions[b], ++in.contextLens[b];
        KILN_RETURN_IF_ERROR(model.beginDecode(in, /*feedIds=*/true));
        ++r.aheadSteps;
      }
      StepOutput out;
      KILN_RETURN_IF_ERROR(model.endDecode(out));
      stepped(rows.size());
      for (size_t b = 0; b < rows.size(); ++b) {
        Sequence &s = *rows[b];
        if (s.done) {
          ++r.discardedRows; // finished at the step before
          continue;
        }
        accept(s, out.next[b]);
        ahead &= !s.done;
      }
      if (!next)
        break;
    }
    dropDone();
    return Status::ok();
  };
  auto decodeAhead = [&]() -> Status {
    Status st = decodeAheadSteps();
    while (model.decodesInFlight() > 0) { // after an error: nothing left begun
      StepOutput unused;
      (void)model.endDecode(unused);
    }
    return st;
  };

  std::deque<Sequence *> waiting;
  std::deque<Sequence *> prefilling; // admitted, pages reserved, prompt not all written
  for (Sequence &s : seqs) {
    if (o.maxTokens <= 0)
      s.done = true;
    else
      waiting.push_back(&s);
  }
  // A prefilling sequence gives its pages back (what it has written stays
  // cached) and waits again at the front.
  auto requeue = [&](Sequence &s) {
    blocks.publish(seqId(s), s.tokens, s.prefilled);
    blocks.release(seqId(s));
    waiting.push_front(&s);
    ++r.preemptions;
  };
  // A prompt that begins with pages a prompt still prefilling has yet to
  // write waits for them (they are cached as each chunk writes them).
  auto awaitsPages = [&](const Sequence &s) {
    if (!o.prefixCaching)
      return false;
    for (const Sequence *q : prefilling) {
      size_t most = std::min(s.tokens.size(), q->tokens.size());
      int64_t common = std::mismatch(s.tokens.begin(), s.tokens.begin() + static_cast<long>(most), q->tokens.begin())
                           .first -
                       s.tokens.begin();
      if (common / m.pageSize > q->prefilled / m.pageSize)
        return true;
    }
    return false;
  };
  // Each iteration: admissions, then prefill of the admitted prompts within
  // the step's token budget (max_num_tokens less a decode token for each
  // running sequence, decode first; at least one token, so a prompt always
  // advances), then one decode step of the running sequences. A long prompt
  // is prefilled in chunks between decode steps instead of stalling them.
  while (!waiting.empty() || !prefilling.empty() || !running.empty()) {
    // Admit waiting prompts in order while a slot and their pages are free.
    while (!waiting.empty() && static_cast<int64_t>(running.size() + prefilling.size()) < m.maxBatch) {
      Sequence &s = *waiting.front();
      if (awaitsPages(s)) {
        ++r.prefixWaits;
        break;
      }
      Status st = admit(s);
      if (!st) {
        if (st.code() != StatusCode::kKvCacheFull)
          return st; // a device error, not a want of pages
        if (!running.empty() || !prefilling.empty()) {
          ++r.waits; // pages free up as admitted sequences finish
          break;
        }
        waiting.pop_front();
        refuse(s, Status::error(StatusCode::kRequestRefused,
                                "prompt " + std::to_string(s.index) + " of " + std::to_string(s.tokens.size()) +
                                " tokens does not fit the KV pool even alone: " + st.message()));
        continue;
      }
      waiting.pop_front();
      prefilling.push_back(&s);
    }
    // The admitted prompts advance together: `c` tokens of each of the
    // first k in one step (k c within the budget; c the least any of them
    // has left, so each row is whole and the shortest complete), as many
    // steps as the budget holds. k stops where the next prompt would leave
    // the step's prompts fewer than kMinChunk tokens each (or what they
    // have left): every prompt in a step re-reads its cached keys, and the
    // attention takes queries in tiles of 32 to 64, so 256 prompts two
    // tokens a step would read their keys 32 times as often as 8 prompts
    // 64 tokens a step, for the same tokens.
    constexpr int64_t kMinChunk = 64;
    int64_t budget = std::max<int64_t>(1, m.maxNumTokens - static_cast<int64_t>(running.size()));
    while (budget > 0 && !prefilling.empty()) {
      size_t most = std::min<size_t>({prefilling.size(), static_cast<size_t>(budget),
                                      static_cast<size_t>(std::max<int64_t>(1, model.stepSequences("prefill")))});
      size_t k = 1;
      for (int64_t need = std::min(kMinChunk, prefilling[0]->target - prefilling[0]->prefilled); k < most; ++k) {
        need += std::min(kMinChunk, prefilling[k]->target - prefilling[k]->prefilled);
        if (need > budget)
          break;
      }
      int64_t c = budget / static_cast<int64_t>(k);
      for (size_t i = 0; i < k; ++i)
        c = std::min(c, prefilling[i]->target - prefilling[i]->prefilled);
      std::vector<Sequence *> rows(prefilling.begin(), prefilling.begin() + static_cast<long>(k));
      KILN_RETURN_IF_ERROR(prefillStep(rows, c, !running.empty()));
      budget -= static_cast<int64_t>(k) * c;
      // Complete prompts (their first token sampled) leave for decode.
      std::deque<Sequence *> still;
      for (Sequence *s : prefilling) {
        if (s->prefilled < s->target) {
          still.push_back(s);
          continue;
        }
        if (s->done)
          retire(*s);
        else
          running.push_back(s);
      }
      prefilling.swap(still);
    }
    if (running.empty() || (o.prefillFirst && !prefilling.empty()))
      continue;

    // Pages for this step's token of each running sequence (a private copy
    // where that page is shared); when there are none, preempt the most
    // recently admitted other sequence, dropping any copies made for it.
    std::vector<std::vector<PageCopy>> copies(running.size());
    for (size_t b = 0; b < running.size();) {
      Sequence &s = *running[b];
      int64_t len = static_cast<int64_t>(s.tokens.size());
      Status st = blocks.reserve(seqId(s), len);
      if (st)
        st = blocks.prepareWrite(seqId(s), len - 1, len, copies[b]);
      if (st) {
        ++b;
        continue;
      }
      if (st.code() != StatusCode::kKvCacheFull)
        return st; // not a want of pages: never taken for one
      if (!prefilling.empty()) {
        // The most recently admitted prompt still prefilling goes first.
        requeue(*prefilling.back());
        prefilling.pop_back();
        continue;
      }
      if (running.size() == 1) {
        // Alone and still out of pages: it cannot grow any further.
        refuse(s, Status::error(StatusCode::kKvCacheFull, "sequence " + std::to_string(s.index) + " stopped after " +
                                                            std::to_string(s.generated) + " tokens: " + st.message()));
        running.clear();
        break;
      }
      size_t victim = running.size() - 1 == b ? b - 1 : running.size() - 1;
      Sequence &v = *running[victim];
      retire(v);
      waiting.push_front(&v);
      running.erase(running.begin() + static_cast<long>(victim));
      copies.erase(copies.begin() + static_cast<long>(victim));
      ++r.preemptions;
      if (victim < b)
        --b;
    }
    if (running.empty())
      continue;
    for (std::vector<PageCopy> &c : copies)
      KILN_RETURN_IF_ERROR(applyCopies(c));

    // Greedy decoding with nothing to mask takes the engine's own argmax
    // and leaves the logits on the device.
    bool needLogits = o.sampling.temperature > 0.0f || o.sampling.penalised();
    for (Sequence *s : running)
      needLogits |= s->generated < o.minTokens && !model.eos().empty() && !o.ignoreEos;
    if (!needLogits && o.lookahead && waiting.empty() && prefilling.empty()) {
      KILN_RETURN_IF_ERROR(decodeAhead());
      continue;
    }
    StepInput in = decodeInput(running);
    StepOutput out;
    KILN_RETURN_IF_ERROR(model.step("decode", in, out, needLogits));
    stepped(running.size());
    for (size_t b = 0; b < running.size(); ++b) {
      int64_t token = out.next[b];
      if (needLogits)
        KILN_RETURN_IF_ERROR(pick(out.logits.data() + b * static_cast<size_t>(out.vocab), out.vocab, *running[b], o,
                                  model.eos(), scratch, token));
      accept(*running[b], token);
    }
    dropDone();
  }
  for (const Status &st : r.status)
    if (!st)
      return st;
  return Status::ok();
}

} // namespace kiln::rt
