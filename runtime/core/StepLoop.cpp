//===- StepLoop.cpp - the continuous-batching step loop -------------------===//
#include "runtime/core/StepLoop.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::rt {

struct StepLoop::Sequence {
  size_t id = 0;
  RequestOptions opt;
  std::vector<int64_t> tokens; // prompt then generated
  int64_t generated = 0;
  int64_t prefilled = 0; // tokens whose KV is written (admitted and prefilling)
  int64_t target = 0;    // tokens to prefill: all it had when admitted
  bool done = false;
  bool admitted = false; // once admitted (a preempted request is admitted again)
  PenaltyTable penalties; // for the GPU sampler, as its tokens grow
  Record rec;
  int64_t seq() const { return static_cast<int64_t>(id); }
};

StepLoop::StepLoop(Model &model, const StepLoopOptions &options, TokenFn onToken)
    : model_(model), blocks_(model.blocks()), o_(options), onToken_(std::move(onToken)) {
  const format::EngineManifest &m = model.manifest();
  maxBlocks_ = (m.maxSeq + m.pageSize - 1) / m.pageSize;
  blocks_.setPrefixCaching(o_.prefixCaching);
}

StepLoop::~StepLoop() {
  while (model_.decodesInFlight() > 0) {
    StepOutput unused;
    (void)model_.endDecode(unused);
  }
  for (auto &[id, s] : seqs_)
    blocks_.release(s->seq());
}

Status StepLoop::check(const Model &model, const std::vector<int64_t> &prompt, const RequestOptions &options) {
  const int64_t maxSeq = model.manifest().maxSeq;
  if (prompt.empty())
    return Status::error("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) + options.maxTokens > maxSeq)
    return Status::error(StatusCode::kRequestRefused,
                         "a prompt of " + std::to_string(prompt.size()) + " tokens plus " +
                             std::to_string(options.maxTokens) + " new ones exceeds the engine's max_seq " +
                             std::to_string(maxSeq) + ": recompile with a larger --max-seq");
  for (int64_t t : prompt)
    if (t < 0 || t >= model.vocab())
      return Status::error("token id " + std::to_string(t) + " is outside the vocabulary of " +
                           std::to_string(model.vocab()));
  KILN_RETURN_IF_ERROR(host::checkSamplingParams(options.sampling));
  if (options.topLogprobs < 0 || options.topLogprobs > 20)
    return Status::error("top logprobs: " + std::to_string(options.topLogprobs) + " is not between 0 and 20");
  return Status::ok();
}

Status StepLoop::add(std::vector<int64_t> prompt, const RequestOptions &options, size_t &id) {
  KILN_RETURN_IF_ERROR(check(model_, prompt, options));
  auto s = std::make_unique<Sequence>();
  s->id = id = next_++;
  s->opt = options;
  s->tokens = std::move(prompt);
  if (options.maxTokens <= 0)
    s->done = s->rec.finished = true;
  else
    waiting_.push_back(s.get());
  seqs_.emplace(id, std::move(s));
  return Status::ok();
}

void StepLoop::cancel(size_t id) {
  auto it = seqs_.find(id);
  if (it != seqs_.end() && !it->second->done)
    cancels_.push_back(id);
}

bool StepLoop::busy() const {
  return !waiting_.empty() || !prefilling_.empty() || !running_.empty() || !cancels_.empty();
}

const StepLoop::Record &StepLoop::record(size_t id) const { return seqs_.at(id)->rec; }

void StepLoop::forget(size_t id) {
  auto it = seqs_.find(id);
  if (it != seqs_.end() && it->second->done)
    seqs_.erase(it);
}

Status StepLoop::applyCopies(std::vector<PageCopy> &copies) {
  c_.pageCopies += static_cast<int64_t>(copies.size());
  Status st = model_.copyPages(copies);
  copies.clear();
  return st;
}

/// The next token of `s` from its logits: its draw is a function of its
/// seed and the position the token takes, whatever else runs.
Status StepLoop::pick(const float *logits, int64_t vocab, Sequence &s, int64_t &token) {
  const std::vector<int64_t> &eos = model_.eos();
  const host::SamplingParams &p = s.opt.sampling;
  const float *row = logits;
  bool mask = s.generated < s.opt.minTokens && !eos.empty();
  if (mask || p.penalised()) {
    scratch_.assign(logits, logits + vocab);
    // Penalties over the prompt and the output (the output: the tokens
    // generated, the last `generated` of the sequence's).
    if (p.penalised()) {
      const int64_t *output = s.tokens.data() + (s.tokens.size() - static_cast<size_t>(s.generated));
      host::applyPenalties(scratch_.data(), vocab, p, s.tokens.data(), s.tokens.size(), output,
                           static_cast<size_t>(s.generated));
    }
    if (mask)
      for (int64_t e : eos)
        if (e >= 0 && e < vocab)
          scratch_[static_cast<size_t>(e)] = -std::numeric_limits<float>::infinity();
    row = scratch_.data();
  }
  KILN_RETURN_IF_ERROR(host::sampleTokenWith(
      row, vocab, p, host::counterUniform(s.opt.seed, static_cast<uint64_t>(s.tokens.size())), token));
  if (s.opt.logprobs) {
    // The model's log-softmax at this position.
    std::vector<std::pair<int64_t, float>> top;
    float lp = host::logprobOf(logits, vocab, token, s.opt.topLogprobs, top);
    recordLogprobs(s, lp, std::move(top));
  }
  return Status::ok();
}

void StepLoop::recordLogprobs(Sequence &s, float logprob, std::vector<std::pair<int64_t, float>> top) {
  s.rec.logprobs.push_back(logprob);
  s.rec.topLogprobs.push_back(std::move(top));
}

SampleSpec StepLoop::sampleSpec(Sequence &s) const {
  const std::vector<int64_t> &eos = model_.eos();
  SampleSpec spec;
  spec.params = s.opt.sampling;
  spec.seed = s.opt.seed;
  spec.position = static_cast<uint64_t>(s.tokens.size()); // as pick() draws
  spec.logprobs = s.opt.logprobs;
  spec.topLogprobs = s.opt.logprobs ? s.opt.topLogprobs : 0;
  if (s.opt.sampling.penalised())
    s.penalties.extend(s.opt.sampling, s.tokens, s.tokens.size() - static_cast<size_t>(s.generated));
  if (s.opt.sampling.penalised() || (s.generated < s.opt.minTokens && !eos.empty()))
    spec.penalties = s.penalties.entries(s.generated < s.opt.minTokens ? eos : std::vector<int64_t>());
  return spec;
}

Status StepLoop::pickOnDevice(const std::vector<Sequence *> &rows, const std::vector<bool> &wanted,
                              std::vector<int64_t> &tokens) {
  std::vector<SampleSpec> specs(rows.size());
  for (size_t b = 0; b < rows.size(); ++b)
    if (wanted[b])
      specs[b] = sampleSpec(*rows[b]);
  std::vector<Sampled> got;
  KILN_RETURN_IF_ERROR(model_.sample(specs, got));
  tokens.assign(rows.size(), 0);
  for (size_t b = 0; b < rows.size(); ++b) {
    tokens[b] = got[b].token;
    if (wanted[b] && rows[b]->opt.logprobs)
      recordLogprobs(*rows[b], got[b].logprob, std::move(got[b].top));
  }
  return Status::ok();
}

void StepLoop::finish(Sequence &s, int64_t token) {
  s.rec.tokens.push_back(token);
  s.tokens.push_back(token);
  ++s.generated;
  const std::vector<int64_t> &eos = model_.eos();
  bool stop = s.generated >= s.opt.maxTokens ||
              (s.generated > s.opt.minTokens && !s.opt.ignoreEos &&
               (std::count(eos.begin(), eos.end(), token) || std::count(s.opt.stop.begin(), s.opt.stop.end(), token)));
  if (onToken_ && !onToken_(s.id, token))
    stop = true;
  s.done = stop;
}

// A sequence leaves: the KV of all its tokens but the last (not yet
// written) stays in the prefix cache for whoever begins alike.
void StepLoop::retire(Sequence &s) {
  blocks_.publish(s.seq(), s.tokens, static_cast<int64_t>(s.tokens.size()) - 1);
  blocks_.release(s.seq());
  s.rec.finished = true;
}

void StepLoop::accept(Sequence &s, int64_t token) {
  finish(s, token);
  if (s.done)
    retire(s);
}

void StepLoop::refuse(Sequence &s, Status why) {
  s.rec.status = std::move(why);
  s.done = s.rec.finished = true;
  blocks_.release(s.seq());
}

// A prefilling sequence gives its pages back (what it has written stays
// cached) and waits again at the front.
void StepLoop::requeue(Sequence &s) {
  blocks_.publish(s.seq(), s.tokens, s.prefilled);
  blocks_.release(s.seq());
  waiting_.push_front(&s);
  ++c_.preemptions;
}

void StepLoop::end(Sequence &s) {
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &s), waiting_.end());
  prefilling_.erase(std::remove(prefilling_.begin(), prefilling_.end(), &s), prefilling_.end());
  running_.erase(std::remove(running_.begin(), running_.end(), &s), running_.end());
}

void StepLoop::applyCancels() {
  for (size_t id : cancels_) {
    auto it = seqs_.find(id);
    if (it == seqs_.end() || it->second->done)
      continue;
    Sequence &s = *it->second;
    bool admitted = std::count(prefilling_.begin(), prefilling_.end(), &s) ||
                    std::count(running_.begin(), running_.end(), &s);
    end(s);
    if (admitted) {
      // What it wrote stays cached: its prompt's prefilled pages, or all
      // but its last token.
      bool running = s.prefilled >= s.target;
      blocks_.publish(s.seq(), s.tokens, running ? static_cast<int64_t>(s.tokens.size()) - 1 : s.prefilled);
    }
    blocks_.release(s.seq());
    s.done = s.rec.finished = s.rec.cancelled = true;
  }
  cancels_.clear();
}

// Admits `s`: its cached prefix found, pages for all its tokens and the
// next one reserved (a private copy of a shared page it will write);
// nothing computed yet.
Status StepLoop::admit(Sequence &s) {
  int64_t n = static_cast<int64_t>(s.tokens.size());
  int64_t cached = 0;
  blocks_.admit(s.seq(), s.tokens, n, cached);
  // At least the last token is computed (its logits give the next one):
  // when every page was cached, it is rewritten into a private copy of
  // the last page (prepareWrite below).
  cached = std::min(cached, n - 1);
  if (Status st = blocks_.reserve(s.seq(), n + 1); !st) {
    blocks_.release(s.seq());
    return st;
  }
  std::vector<PageCopy> copies;
  if (Status st = blocks_.prepareWrite(s.seq(), cached, n, copies); !st) {
    blocks_.release(s.seq());
    return st;
  }
  KILN_RETURN_IF_ERROR(applyCopies(copies));
  if (s.generated == 0 && !s.admitted) {
    s.rec.cachedTokens = cached;
    c_.promptTokens += n;
    c_.cachedTokens += cached;
  }
  s.admitted = true;
  c_.prefillTokens += n - cached;
  s.prefilled = cached;
  s.target = n;
  return Status::ok();
}

// A prompt that begins with pages a prompt still prefilling has yet to
// write waits for them (they are cached as each chunk writes them).
bool StepLoop::awaitsPages(const Sequence &s) const {
  if (!o_.prefixCaching)
    return false;
  const int64_t page = model_.pageSize();
  for (const Sequence *q : prefilling_) {
    size_t most = std::min(s.tokens.size(), q->tokens.size());
    int64_t common =
        std::mismatch(s.tokens.begin(), s.tokens.begin() + static_cast<long>(most), q->tokens.begin()).first -
        s.tokens.begin();
    if (common / page > q->prefilled / page)
      return true;
  }
  return false;
}

// One prefill step of `rows` (admitted prompts), `c` tokens of each from
// its first not yet written; a prompt whose last token that writes is
// complete and samples its next token.
Status StepLoop::prefillStep(const std::vector<Sequence *> &rows, int64_t c, bool othersRunning) {
  StepInput in;
  in.batch = static_cast<int64_t>(rows.size());
  in.tokens = c;
  in.maxBlocks = maxBlocks_;
  in.blockTables.assign(static_cast<size_t>(in.batch * maxBlocks_), 0);
  bool anyComplete = false;
  for (size_t b = 0; b < rows.size(); ++b) {
    Sequence &s = *rows[b];
    int64_t c0 = s.prefilled, c1 = c0 + c;
    in.ids.insert(in.ids.end(), s.tokens.begin() + c0, s.tokens.begin() + c1);
    for (int64_t p = c0; p < c1; ++p)
      in.positions.push_back(p);
    in.contextLens.push_back(static_cast<int32_t>(c1));
    const std::vector<int32_t> &t = blocks_.table(s.seq());
    std::copy(t.begin(), t.end(), in.blockTables.begin() + static_cast<int64_t>(b) * maxBlocks_);
    anyComplete |= c1 == s.target;
  }
  // The first tokens: drawn on the device where the model can, else from
  // the logits brought back.
  const bool onDevice = anyComplete && model_.samplesOnDevice() && !o_.firstLogits;
  StepOutput out;
  KILN_RETURN_IF_ERROR(model_.step("prefill", in, out, anyComplete && !onDevice));
  std::vector<int64_t> drawn;
  if (onDevice) {
    std::vector<bool> complete;
    for (const Sequence *s : rows)
      complete.push_back(s->prefilled + c >= s->target);
    KILN_RETURN_IF_ERROR(pickOnDevice(rows, complete, drawn));
  }
  ++c_.prefillSteps;
  if (othersRunning) {
    sinceDecode_ += in.batch * c;
    c_.longestPrefillBetweenDecodes = std::max(c_.longestPrefillBetweenDecodes, sinceDecode_);
  }
  for (size_t b = 0; b < rows.size(); ++b) {
    Sequence &s = *rows[b];
    s.prefilled += c;
    blocks_.publish(s.seq(), s.tokens, s.prefilled); // its full pages written so far, for whoever begins alike
    if (s.prefilled < s.target)
      continue;
    int64_t token;
    if (onDevice) {
      token = drawn[b];
    } else {
      const float *row = out.logits.data() + b * static_cast<size_t>(out.vocab);
      if (o_.firstLogits && s.rec.firstLogits.empty())
        s.rec.firstLogits.assign(row, row + out.vocab);
      KILN_RETURN_IF_ERROR(pick(row, out.vocab, s, token));
    }
    finish(s, token);
  }
  return Status::ok();
}

// The rows of a decode step: each sequence's last token at its position,
// and its block table.
StepInput StepLoop::decodeInput(const std::vector<Sequence *> &rows) const {
  StepInput in;
  in.batch = static_cast<int64_t>(rows.size());
  in.tokens = 1;
  in.maxBlocks = maxBlocks_;
  in.blockTables.assign(static_cast<size_t>(in.batch * maxBlocks_), 0);
  for (size_t b = 0; b < rows.size(); ++b) {
    const Sequence &s = *rows[b];
    int64_t len = static_cast<int64_t>(s.tokens.size());
    in.ids.push_back(s.tokens.back());
    in.positions.push_back(len - 1);
    in.contextLens.push_back(static_cast<int32_t>(len));
    const std::vector<int32_t> &t = blocks_.table(s.seq());
    std::copy(t.begin(), t.end(), in.blockTables.begin() + static_cast<int64_t>(b) * maxBlocks_);
  }
  return in;
}

// A decode step of `rows` read: its count.
void StepLoop::stepped(size_t rows) {
  sinceDecode_ = 0;
  ++c_.decodeSteps;
  c_.largestBatch = std::max<int64_t>(c_.largestBatch, static_cast<int64_t>(rows));
}

void StepLoop::dropDone() {
  running_.erase(std::remove_if(running_.begin(), running_.end(), [](Sequence *s) { return s->done; }),
                 running_.end());
}

// Greedy decoding of the running sequences (their pages for this step
// reserved) while nothing changes them: step N + 1 is launched before step
// N's tokens are back, its ids being N's argmax on the device. The host
// then only reads tokens one step behind. When a sequence finishes (or
// `interrupt` says new work came), the step already launched still runs;
// rows of finished sequences are discarded and the loop returns once that
// step is read.
Status StepLoop::decodeAheadSteps(const std::function<bool()> &interrupt) {
  std::vector<Sequence *> rows = running_;
  KILN_RETURN_IF_ERROR(model_.beginDecode(decodeInput(rows), false));
  bool ahead = true;
  while (true) {
    // Launch the next step now when every row is still going, one may
    // want another token, and each has the page for it. The step in
    // flight writes position tokens.size() - 1.
    bool next = ahead && !(interrupt && interrupt()) && std::any_of(rows.begin(), rows.end(), [](Sequence *s) {
                  return s->generated + 1 < s->opt.maxTokens;
                });
    for (size_t b = 0; next && b < rows.size(); ++b) {
      Sequence &s = *rows[b];
      int64_t len = static_cast<int64_t>(s.tokens.size());
      std::vector<PageCopy> copies;
      Status st = blocks_.reserve(s.seq(), len + 1);
      if (st)
        st = blocks_.prepareWrite(s.seq(), len, len + 1, copies);
      KILN_RETURN_IF_ERROR(applyCopies(copies)); // ordered before the next step on the device
      if (!st && st.code() != StatusCode::kKvCacheFull)
        return st; // out of pages only ends the lookahead
      next = static_cast<bool>(st);
    }
    if (next) {
      StepInput in = decodeInput(rows);
      for (size_t b = 0; b < rows.size(); ++b)
        ++in.positions[b], ++in.contextLens[b];
      KILN_RETURN_IF_ERROR(model_.beginDecode(in, /*feedIds=*/true));
      ++c_.aheadSteps;
    }
    StepOutput out;
    KILN_RETURN_IF_ERROR(model_.endDecode(out));
    stepped(rows.size());
    for (size_t b = 0; b < rows.size(); ++b) {
      Sequence &s = *rows[b];
      if (s.done) {
        ++c_.discardedRows; // finished at the step before
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
}

Status StepLoop::decodeAhead(const std::function<bool()> &interrupt) {
  Status st = decodeAheadSteps(interrupt);
  while (model_.decodesInFlight() > 0) { // after an error: nothing left begun
    StepOutput unused;
    (void)model_.endDecode(unused);
  }
  return st;
}

// One iteration: cancellations, admissions, then prefill of the admitted
// prompts within the step's token budget (max_num_tokens less a decode
// token for each running sequence, decode first; at least one token, so a
// prompt always advances), then one decode step of the running sequences.
// A long prompt is prefilled in chunks between decode steps instead of
// stalling them.
Status StepLoop::step(const std::function<bool()> &interrupt) {
  const format::EngineManifest &m = model_.manifest();
  applyCancels();
  // Admit waiting prompts in order while a slot and their pages are free.
  while (!waiting_.empty() && static_cast<int64_t>(running_.size() + prefilling_.size()) < m.maxBatch) {
    Sequence &s = *waiting_.front();
    if (awaitsPages(s)) {
      ++c_.prefixWaits;
      break;
    }
    Status st = admit(s);
    if (!st) {
      if (st.code() != StatusCode::kKvCacheFull)
        return st; // a device error, not a want of pages
      if (!running_.empty() || !prefilling_.empty()) {
        ++c_.waits; // pages free up as admitted sequences finish
        break;
      }
      waiting_.pop_front();
      refuse(s, Status::error(StatusCode::kRequestRefused,
                              "prompt " + std::to_string(s.id) + " of " + std::to_string(s.tokens.size()) +
                                  " tokens does not fit the KV pool even alone: " + st.message()));
      continue;
    }
    waiting_.pop_front();
    prefilling_.push_back(&s);
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
  int64_t budget = std::max<int64_t>(1, m.maxNumTokens - static_cast<int64_t>(running_.size()));
  while (budget > 0 && !prefilling_.empty()) {
    size_t most = std::min<size_t>({prefilling_.size(), static_cast<size_t>(budget),
                                    static_cast<size_t>(std::max<int64_t>(1, model_.stepSequences("prefill")))});
    size_t k = 1;
    for (int64_t need = std::min(kMinChunk, prefilling_[0]->target - prefilling_[0]->prefilled); k < most; ++k) {
      need += std::min(kMinChunk, prefilling_[k]->target - prefilling_[k]->prefilled);
      if (need > budget)
        break;
    }
    int64_t c = budget / static_cast<int64_t>(k);
    for (size_t i = 0; i < k; ++i)
      c = std::min(c, prefilling_[i]->target - prefilling_[i]->prefilled);
    std::vector<Sequence *> rows(prefilling_.begin(), prefilling_.begin() + static_cast<long>(k));
    KILN_RETURN_IF_ERROR(prefillStep(rows, c, !running_.empty()));
    budget -= static_cast<int64_t>(k) * c;
    // Complete prompts (their first token sampled) leave for decode.
    std::deque<Sequence *> still;
    for (Sequence *s : prefilling_) {
      if (s->prefilled < s->target) {
        still.push_back(s);
        continue;
      }
      if (s->done)
        retire(*s);
      else
        running_.push_back(s);
    }
    prefilling_.swap(still);
  }
  if (running_.empty() || (o_.prefillFirst && !prefilling_.empty()))
    return Status::ok();

  // Pages for this step's token of each running sequence (a private copy
  // where that page is shared); when there are none, preempt the most
  // recently admitted other sequence, dropping any copies made for it.
  std::vector<std::vector<PageCopy>> copies(running_.size());
  for (size_t b = 0; b < running_.size();) {
    Sequence &s = *running_[b];
    int64_t len = static_cast<int64_t>(s.tokens.size());
    Status st = blocks_.reserve(s.seq(), len);
    if (st)
      st = blocks_.prepareWrite(s.seq(), len - 1, len, copies[b]);
    if (st) {
      ++b;
      continue;
    }
    if (st.code() != StatusCode::kKvCacheFull)
      return st; // not a want of pages: never taken for one
    if (!prefilling_.empty()) {
      // The most recently admitted prompt still prefilling goes first.
      requeue(*prefilling_.back());
      prefilling_.pop_back();
      continue;
    }
    if (running_.size() == 1) {
      // Alone and still out of pages: it cannot grow any further.
      refuse(s, Status::error(StatusCode::kKvCacheFull, "sequence " + std::to_string(s.id) + " stopped after " +
                                                          std::to_string(s.generated) + " tokens: " + st.message()));
      running_.clear();
      break;
    }
    size_t victim = running_.size() - 1 == b ? b - 1 : running_.size() - 1;
    Sequence &v = *running_[victim];
    blocks_.publish(v.seq(), v.tokens, static_cast<int64_t>(v.tokens.size()) - 1);
    blocks_.release(v.seq());
    waiting_.push_front(&v);
    running_.erase(running_.begin() + static_cast<long>(victim));
    copies.erase(copies.begin() + static_cast<long>(victim));
    ++c_.preemptions;
    if (victim < b)
      --b;
  }
  if (running_.empty())
    return Status::ok();
  for (std::vector<PageCopy> &c : copies)
    KILN_RETURN_IF_ERROR(applyCopies(c));

  // Greedy decoding with nothing to mask or penalise takes the engine's own
  // argmax and leaves the logits on the device.
  bool needLogits = false;
  for (Sequence *s : running_)
    needLogits |= s->opt.sampling.temperature > 0.0f || s->opt.sampling.penalised() || s->opt.logprobs ||
                  (s->generated < s->opt.minTokens && !model_.eos().empty() && !s->opt.ignoreEos);
  if (!needLogits && o_.lookahead && waiting_.empty() && prefilling_.empty())
    return decodeAhead(interrupt);
  StepInput in = decodeInput(running_);
  StepOutput out;
  const bool onDevice = needLogits && model_.samplesOnDevice() && !o_.firstLogits;
  KILN_RETURN_IF_ERROR(model_.step("decode", in, out, needLogits && !onDevice));
  stepped(running_.size());
  std::vector<int64_t> drawn;
  if (onDevice)
    KILN_RETURN_IF_ERROR(pickOnDevice(running_, std::vector<bool>(running_.size(), true), drawn));
  for (size_t b = 0; b < running_.size(); ++b) {
    Sequence &s = *running_[b];
    int64_t token = out.next[b];
    if (onDevice)
      token = drawn[b];
    else if (needLogits)
      KILN_RETURN_IF_ERROR(pick(out.logits.data() + b * static_cast<size_t>(out.vocab), out.vocab, s, token));
    accept(s, token);
  }
  dropDone();
  return Status::ok();
}

} // namespace kiln::rt
