//===- Generate.cpp - pages, sampling and the step loop -------------------===//
#include "runtime/core/Generate.h"

#include "runtime/core/StepLoop.h"

namespace kiln::rt {

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
  }
  // One step loop for the call: request i is prompt i. The model's pages
  // and prefix cache outlive it (what earlier calls computed is reused);
  // every page this call's requests hold goes back when it ends, whatever
  // it returns.
  StepLoopOptions lo;
  lo.prefixCaching = o.prefixCaching;
  lo.lookahead = o.lookahead;
  lo.prefillFirst = o.prefillFirst;
  lo.firstLogits = firstLogits != nullptr;
  StepLoop loop(model, lo, o.onToken);
  for (size_t i = 0; i < prompts.size(); ++i) {
    RequestOptions ro;
    ro.sampling = o.sampling;
    ro.maxTokens = o.maxTokens;
    ro.minTokens = o.minTokens;
    ro.stop = o.stop;
    ro.ignoreEos = o.ignoreEos;
    ro.seed = o.seeds.empty() ? o.seed : o.seeds[i];
    size_t id = 0;
    KILN_RETURN_IF_ERROR(loop.add(prompts[i], ro, id));
  }
  Status st = Status::ok();
  while (st && loop.busy())
    st = loop.step();
  const StepLoopCounters &c = loop.counters();
  r.prefillTokens = c.prefillTokens;
  r.decodeSteps = c.decodeSteps;
  r.largestBatch = c.largestBatch;
  r.aheadSteps = c.aheadSteps;
  r.discardedRows = c.discardedRows;
  r.preemptions = c.preemptions;
  r.waits = c.waits;
  r.pageCopies = c.pageCopies;
  r.prefillSteps = c.prefillSteps;
  r.prefixWaits = c.prefixWaits;
  r.longestPrefillBetweenDecodes = c.longestPrefillBetweenDecodes;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const StepLoop::Record &rec = loop.record(i);
    outputs[i] = rec.tokens;
    r.status[i] = rec.status;
    r.cachedTokens[i] = rec.cachedTokens;
    if (firstLogits)
      (*firstLogits)[i] = rec.firstLogits;
  }
  KILN_RETURN_IF_ERROR(st);
  for (const Status &s : r.status)
    if (!s)
      return s;
  return Status::ok();
}

} // namespace kiln::rt
