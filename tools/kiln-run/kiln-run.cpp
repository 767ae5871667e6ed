//===- kiln-run.cpp - run an engine (runtime only, no compiler) ------------===//
//
//   kiln-run ENGINE [--weights DIR] [--device auto|cuda|host] [--prompt TEXT [--tokenizer T]]
//            [--prompt-ids 1,2,3]
//            [--max-tokens N] [--min-tokens N] [--temperature T] [--top-k K]
//            [--top-p P] [--min-p P] [--seed S] [--kv-pages N]
//            [--repetition-penalty R] [--frequency-penalty F] [--presence-penalty P]
//   kiln-run ENGINE --golden golden.json [--tolerance 2e-2] [--min-identical N]
//   kiln-run ENGINE --prompt-ids ... --reference host [--tolerance 1e-2] [--min-identical 16]
//   kiln-run ENGINE --golden g.json --teacher-forced [--min-agreement 0.99] [--memory-report]
//     (for an engine whose logits are not f32, with the golden's
//     reference_bf16_tokens, the criterion counts the positions where
//     transformers bf16 keeps its own f32 argmax)
//   kiln-run ENGINE --golden g.json --reference host --teacher-forced --max-tie-gap 8e-3 --min-identical 0
//     (teacher-forced on the reference's greedy tokens; every disagreement
//     must be a near-tie: the wanted token's logit within the gap, relative
//     to the largest, of the argmax)
//   kiln-run ENGINE --golden g.json|--prompt-ids ... --check-batching [--kv-pages N]
//   kiln-run ENGINE --golden g.json|--prompt-ids ... --check-sampling [--min-agreement F] [--seed S]
//   kiln-run ENGINE --bench [--prompt-len 128] [--gen 256] [--batch 1] [--profile] [--no-graphs]
//            [--overlap auto|on|off] [--ab-overlap N] [--no-lookahead]
//   kiln-run ENGINE --bench-prefill 512,2048,4096 [--batch B] [--reps R] [--profile]
//
// Builds on a machine without MLIR (the GPU machine). --golden takes a
// transformers golden (test/models/hf/*/golden.json): its prompt, 32 greedy
// tokens with end-of-sequence masked, and last-position logits, which must
// agree within the tolerance relative to the largest logit; the tokens must
// be identical (the first N with --min-identical). --reference DEVICE runs the
// same engine and prompt on a second device (the host's reference kernels)
// and compares the same way. Prints one line and exits 1 on a mismatch.
// --check-batching runs six prompts made from the given one (the same again,
// shared prefixes, a different one) through one continuous-batching call,
// then each alone without prefix caching, and requires identical greedy
// tokens. --check-sampling draws with the engine's GPU sampler and with the
// host's from the same logits over a grid of sampling parameters
// (tools/kiln-run/SampleCheck.cpp); --host-sampling brings the logits back
// and samples on the host instead of on the GPU. --no-prefix-cache: no prompt reuses another's pages (a generation,
// or --check-batching's call together). --bench times greedy decode of a seeded random prompt (--batch N:
// N of them decoding together) and measures the
// device's copy bandwidth; --profile adds a per-kernel table (tools/kiln-run/Bench.h).
// --no-lookahead launches each greedy decode step only once the previous
// one's tokens are on the host (GenerateOptions::lookahead).
// --bench-prefill times the prefill of B seeded prompts of each length (in
// chunks of the engine's max_num_tokens when they do not fit one step):
// time to first token and TFLOP/s; --profile adds the per-kernel table of
// one prefill of the longest length (tools/kiln-run/Bench.h).
//
//===----------------------------------------------------------------------===//
#include "runtime/core/Generate.h"
#include "tools/kiln-run/Bench.h"
#include "runtime/format/Json.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace kiln;

namespace {

const char *kUsage =
               "usage: kiln-run ENGINE [--weights DIR] [--device auto|cuda|host] [--prompt TEXT [--tokenizer T]]\n"
               "                [--prompt-ids 1,2,3] [--max-tokens N]\n"
               "                [--min-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S]\n"
               "                [--repetition-penalty R] [--frequency-penalty F] [--presence-penalty P]\n"
               "                [--kv-pages N] [--golden golden.json | --reference host] [--tolerance X]\n"
               "                [--min-identical N] [--teacher-forced [--min-agreement F] [--max-tie-gap G]] [--memory-report]\n"
               "                [--check-batching] [--check-sampling] [--host-sampling] [--no-prefix-cache] [--bench [--prompt-len N] [--gen M] [--batch B] [--profile]] [--no-graphs]\n"
               "                [--overlap auto|on|off] [--ab-overlap N] [--no-lookahead]\n"
               "                [--bench-prefill 512,2048 [--reps R]]\n";

int usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

bool parseIds(const std::string &s, std::vector<int64_t> &out) {
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char *end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (!end || *end)
      return false;
    out.push_back(v);
  }
  return !out.empty();
}

} // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("kiln-run: run an engine on a device (generate, check against goldens, benchmark)\n\n%s", kUsage);
      return 0;
    }
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("kiln-run %s\n", KILN_VERSION_STRING);
    return 0;
  }
  if (argc < 2)
    return usage();
  if (argv[1][0] == '-') {
    std::fprintf(stderr, "kiln-run: unknown option '%s' before the engine (kiln-run --help lists them)\n", argv[1]);
    return 2;
  }
  std::string engine = argv[1], device = "auto", golden, prompt, text, tokenizerPath;
  rt::LoadOptions lo;
  rt::GenerateOptions go;
  double tolerance = 2e-2;
  int64_t minIdentical = -1;
  std::string reference;
  bool memoryReport = false, teacherForced = false, bench = false, profile = false, checkBatching = false,
       checkSampling = false;
  int abRuns = 0;
  int64_t promptLen = 128, benchBatch = 1, prefillReps = 5;
  std::vector<int64_t> prefillLens;
  double minAgreement = 0.99, maxTieGap = -1;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
    const char *v = nullptr;
    if (a == "--weights" && (v = next())) lo.weights = v;
    else if (a == "--device" && (v = next())) device = v;
    else if (a == "--golden" && (v = next())) golden = v;
    else if (a == "--prompt-ids" && (v = next())) prompt = v;
    else if (a == "--prompt" && (v = next())) text = v;
    else if (a == "--tokenizer" && (v = next())) tokenizerPath = v;
    else if (a == "--max-tokens" && (v = next())) go.maxTokens = std::atoll(v);
    else if (a == "--min-tokens" && (v = next())) go.minTokens = std::atoll(v);
    else if (a == "--temperature" && (v = next())) go.sampling.temperature = std::strtof(v, nullptr);
    else if (a == "--top-k" && (v = next())) go.sampling.topK = std::atoll(v);
    else if (a == "--top-p" && (v = next())) go.sampling.topP = std::strtof(v, nullptr);
    else if (a == "--min-p" && (v = next())) go.sampling.minP = std::strtof(v, nullptr);
    else if (a == "--repetition-penalty" && (v = next())) go.sampling.repetitionPenalty = std::strtof(v, nullptr);
    else if (a == "--frequency-penalty" && (v = next())) go.sampling.frequencyPenalty = std::strtof(v, nullptr);
    else if (a == "--presence-penalty" && (v = next())) go.sampling.presencePenalty = std::strtof(v, nullptr);
    else if (a == "--seed" && (v = next())) go.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--kv-pages" && (v = next())) lo.kvPages = std::atoll(v);
    else if (a == "--tolerance" && (v = next())) tolerance = std::strtod(v, nullptr);
    else if (a == "--min-identical" && (v = next())) minIdentical = std::atoll(v);
    else if (a == "--reference" && (v = next())) reference = v;
    else if (a == "--memory-report") memoryReport = true;
    else if (a == "--bench") bench = true;
    else if (a == "--no-graphs") lo.graphs = false;
    else if (a == "--no-lookahead") go.lookahead = false;
    else if (a == "--overlap" && (v = next())) {
      if (!rt::parseOverlap(v, lo.overlap))
        return usage();
    }
    else if (a == "--profile") bench = profile = true;
    else if (a == "--ab-overlap" && (v = next())) bench = true, abRuns = std::atoi(v);
    else if (a == "--prompt-len" && (v = next())) promptLen = std::atoll(v);
    else if (a == "--bench-prefill" && (v = next())) {
      if (!parseIds(v, prefillLens) || prefillLens.empty() ||
          std::any_of(prefillLens.begin(), prefillLens.end(), [](int64_t n) { return n < 1; })) {
        std::fprintf(stderr, "kiln-run: --bench-prefill takes prompt lengths like 512,2048\n");
        return 2;
      }
    }
    else if (a == "--reps" && (v = next())) prefillReps = std::atoll(v);
    else if (a == "--batch" && (v = next())) bench = true, benchBatch = std::atoll(v);
    else if (a == "--gen" && (v = next())) go.maxTokens = std::atoll(v);
    else if (a == "--teacher-forced") teacherForced = true;
    else if (a == "--check-batching") checkBatching = true;
    else if (a == "--check-sampling") checkSampling = true;
    else if (a == "--host-sampling") lo.deviceSampling = false;
    else if (a == "--no-prefix-cache") go.prefixCaching = false;
    else if (a == "--min-agreement" && (v = next())) minAgreement = std::strtod(v, nullptr);
    else if (a == "--max-tie-gap" && (v = next())) maxTieGap = std::strtod(v, nullptr);
    else {
      std::fprintf(stderr, "kiln-run: bad argument '%s'\n", a.c_str());
      return usage();
    }
  }
  std::vector<int64_t> ids, want, wantBf16;
  std::vector<double> wantLogits;
  if (!golden.empty()) {
    std::ifstream f(golden);
    std::stringstream ss;
    ss << f.rdbuf();
    format::JsonValue g;
    if (!f || !format::parseJson(ss.str(), g) || !g.find("prompt") || !g.find("greedy_tokens")) {
      std::fprintf(stderr, "kiln-run: %s is not a golden (prompt, greedy_tokens, last_logits)\n", golden.c_str());
      return 1;
    }
    for (const auto &x : g.find("prompt")->asArray())
      ids.push_back(x.asInt());
    for (const auto &x : g.find("greedy_tokens")->asArray())
      want.push_back(x.asInt());
    if (const format::JsonValue *l = g.find("last_logits"))
      for (const auto &x : l->asArray())
        wantLogits.push_back(x.asNumber());
    // test/gpu/golden_long.py: transformers' own bf16 teacher-forced
    // predictions at each position, to tell precision near-ties.
    if (const format::JsonValue *b = g.find("reference_bf16_tokens"); b && b->isArray())
      for (const auto &x : b->asArray())
        wantBf16.push_back(x.asInt());
    go.maxTokens = go.minTokens = static_cast<int64_t>(want.size());
  } else if (!prompt.empty() && !parseIds(prompt, ids)) {
    std::fprintf(stderr, "kiln-run: --prompt-ids takes comma-separated token ids\n");
    return 2;
  }
  // A text prompt: the model's tokenizer.json (the engine names it) or --tokenizer.
  tok::Tokenizer tokenizer;
  bool haveTokenizer = false;
  if (!text.empty() || !tokenizerPath.empty()) {
    if (tokenizerPath.empty()) {
      format::EngineFile ef;
      format::EngineManifest em;
      Status s = format::readEngine(engine, ef);
      if (s)
        s = format::readManifest(ef, engine, em);
      if (!s) {
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
        return 1;
      }
      std::optional<std::string> path = em.tokenizerPath(lo.weights);
      if (!path) {
        std::fprintf(stderr, "kiln-run: %s was compiled from a model without tokenizer.json: pass --tokenizer or "
                             "--prompt-ids\n", engine.c_str());
        return 1;
      }
      tokenizerPath = *path;
    }
    if (Status s = tok::Tokenizer::load(tokenizerPath, tokenizer); !s) {
      std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
      return 1;
    }
    haveTokenizer = true;
    if (!text.empty()) {
      ids.clear();
      if (Status s = tokenizer.encode(text, ids); !s) {
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
        return 1;
      }
    }
  }
  if (!prefillLens.empty()) {
    std::string describe;
    std::unique_ptr<rt::Model> model;
    if (int rc = tools::openModel(engine, device, lo, model, &describe))
      return rc;
    return tools::benchPrefill(*model, engine, describe, prefillLens, benchBatch, prefillReps, profile, go.seed);
  }
  std::vector<std::vector<int64_t>> batchPrompts; // --bench: all the prompts, ids first
  if (bench) {
    // Benchmarks time the computation: the model's prefix cache would serve
    // the timed run's prompts from the warm-up's pages (and keep the
    // prefill kernels out of --profile).
    go.prefixCaching = false;
    if (benchBatch < 1) {
      std::fprintf(stderr, "kiln-run: --batch takes a count of at least 1\n");
      return 2;
    }
    // Seeded random prompts (ids below 256 fit every vocabulary kiln
    // compiles); every token generated, end-of-sequence or not.
    for (int64_t b = 0; b < benchBatch; ++b)
      batchPrompts.push_back(tools::seededPrompt(go.seed, b, promptLen));
    ids = batchPrompts[0];
    go.ignoreEos = true;
  }
  if (ids.empty()) {
    std::fprintf(stderr, "kiln-run: give --prompt, --prompt-ids, --golden or --bench\n");
    return 2;
  }
  if (checkBatching)
    return tools::checkBatching(engine, device, lo, go, ids, maxTieGap);
  if (checkSampling)
    return tools::checkSampling(engine, device, lo, ids, go.seed, minAgreement);

  struct Run {
    std::vector<int64_t> tokens;
    std::vector<float> logits;
    double agreement = -1;
    double maxGap = 0; // the largest teacher-forced disagreement's logit gap
  };
  // teacher: the --teacher-forced pass runs on this device (not on a
  // --reference one).
  auto runOn = [&](const std::string &dev, Run &r, bool teacher) -> int {
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<rt::Device> d;
    std::string fallback;
    if (Status s = rt::openDevice(dev, d, &fallback); !s) {
      std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
      return 1;
    }
    if (!fallback.empty())
      std::fprintf(stderr, "kiln-run: --device auto: no usable GPU (%s); running on the host\n", fallback.c_str());
    std::string describe = d->describe();
    size_t free0 = 0, total = 0;
    (void)d->memoryInfo(free0, total);
    std::unique_ptr<rt::Model> model;
    if (Status s = rt::Model::load(std::move(d), engine, lo, model); !s) {
      std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
      return 1;
    }
    double loadS = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::vector<int64_t>> out;
    std::vector<std::vector<float>> first;
    auto t1 = std::chrono::steady_clock::now();
    std::vector<std::chrono::steady_clock::time_point> stamps;
    rt::GenerateOptions g = go;
    std::vector<size_t> stampRequest; // which prompt each stamp's token is of
    if (bench) {
      if (benchBatch > model->manifest().maxBatch) {
        std::fprintf(stderr, "kiln-run: --batch %lld exceeds the engine's max_batch %lld: recompile with --max-batch\n",
                     static_cast<long long>(benchBatch), static_cast<long long>(model->manifest().maxBatch));
        return 1;
      }
      // The batch decodes together from its first step, as
      // llama-batched-bench times it: no decode while a prompt prefills.
      g.prefillFirst = true;
      g.onToken = [&](size_t request, int64_t) {
        stamps.push_back(std::chrono::steady_clock::now());
        stampRequest.push_back(request);
        return true;
      };
      // Warm up (module load, first-launch costs) on a short run.
      rt::GenerateOptions w = g;
      w.maxTokens = 4;
      std::vector<std::vector<int64_t>> o2;
      (void)rt::generate(*model, batchPrompts, w, o2);
      stamps.clear();
      stampRequest.clear();
      t1 = std::chrono::steady_clock::now();
    }
    if (Status s = rt::generate(*model, bench ? batchPrompts : std::vector<std::vector<int64_t>>{ids}, g, out,
                                bench ? nullptr : &first);
        !s) {
      std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
      return 1;
    }
    double genS = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    std::fprintf(stderr, "kiln-run: %s on %s: %s; loaded in %.2f s, %zu tokens in %.3f s\n", engine.c_str(),
                 describe.c_str(), model->note().c_str(), loadS, out[0].size(), genS);
    if (memoryReport) {
      size_t free1 = 0;
      (void)model->device().memoryInfo(free1, total);
      const auto &mem = model->manifest().memory;
      int64_t planned = lo.graphs ? mem.total : mem.total - mem.graphs;
      int64_t used = static_cast<int64_t>(free0) - static_cast<int64_t>(free1);
      std::printf("memory: device %lld bytes in use after the run, the model holds %lld, the manifest plans %lld "
                  "(%s the %lld-byte graph reserve): %+.2f%%\n",
                  static_cast<long long>(used), static_cast<long long>(model->deviceBytes()),
                  static_cast<long long>(planned), lo.graphs ? "with" : "without", static_cast<long long>(mem.graphs),
                  100.0 * (static_cast<double>(used) - static_cast<double>(planned)) / static_cast<double>(planned));
    }
    if (teacher && teacherForced && !want.empty()) {
      // Feed the golden tokens and count how often the engine's argmax is
      // the golden next token.
      const auto &man = model->manifest();
      rt::BlockManager blocks(model->pages(), model->pageSize());
      int64_t maxBlocks = (man.maxSeq + man.pageSize - 1) / man.pageSize;
      std::vector<int64_t> seq = ids;
      seq.insert(seq.end(), want.begin(), want.end());
      if (Status st = blocks.reserve(0, static_cast<int64_t>(seq.size())); !st) {
        std::fprintf(stderr, "kiln-run: %s\n", st.message().c_str());
        return 1;
      }
      rt::StepInput in;
      in.batch = 1;
      in.tokens = static_cast<int64_t>(ids.size());
      in.maxBlocks = maxBlocks;
      in.ids = ids;
      for (int64_t p = 0; p < in.tokens; ++p)
        in.positions.push_back(p);
      in.blockTables.assign(static_cast<size_t>(maxBlocks), 0);
      std::copy(blocks.table(0).begin(), blocks.table(0).end(), in.blockTables.begin());
      in.contextLens = {static_cast<int32_t>(in.tokens)};
      rt::StepOutput so;
      // The golden masks end-of-sequence (it generated a fixed number of
      // tokens), so the engine's prediction is its argmax without EOS too.
      auto predicted = [&]() {
        const std::vector<int64_t> &eos = model->eos();
        int64_t best = -1;
        for (int64_t j = 0; j < so.vocab; ++j)
          if (std::find(eos.begin(), eos.end(), j) == eos.end() &&
              (best < 0 || so.logits[static_cast<size_t>(j)] > so.logits[static_cast<size_t>(best)]))
            best = j;
        return best;
      };
      if (Status st = model->step("prefill", in, so, true); !st) {
        std::fprintf(stderr, "kiln-run: %s\n", st.message().c_str());
        return 1;
      }
      std::vector<int64_t> pred = {predicted()};
      // Where the argmax is not the wanted token: how far below it the
      // wanted token's logit lies, relative to the largest |logit| (a
      // near-tie parts within the dtype's rounding; a wrong kernel does not).
      std::vector<std::pair<size_t, double>> gaps;
      auto noteGap = [&](size_t i) {
        if (pred[i] == want[i] || want[i] < 0 || want[i] >= so.vocab)
          return;
        double scale = 0;
        for (int64_t j = 0; j < so.vocab; ++j)
          scale = std::max(scale, std::fabs(static_cast<double>(so.logits[static_cast<size_t>(j)])));
        double gap = so.logits[static_cast<size_t>(pred[i])] - so.logits[static_cast<size_t>(want[i])];
        gaps.push_back({i, gap / std::max(scale, 1e-30)});
        r.maxGap = std::max(r.maxGap, gaps.back().second);
      };
      noteGap(0);
      for (size_t i = 0; i + 1 < want.size(); ++i) {
        int64_t pos = static_cast<int64_t>(ids.size() + i);
        in.tokens = 1;
        in.ids = {want[i]};
        in.positions = {pos};
        in.contextLens = {static_cast<int32_t>(pos + 1)};
        if (Status st = model->step("decode", in, so, true); !st) {
          std::fprintf(stderr, "kiln-run: %s\n", st.message().c_str());
          return 1;
        }
        pred.push_back(predicted());
        noteGap(pred.size() - 1);
      }
      size_t agree = 0, stable = 0, stableAgree = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        agree += pred[i] == want[i];
        if (wantBf16.size() == want.size() && wantBf16[i] == want[i]) {
          ++stable;
          stableAgree += pred[i] == want[i];
        }
      }
      std::printf("teacher-forced top-1 agreement: %zu/%zu (%.1f%%)\n", agree, want.size(),
                  100.0 * static_cast<double>(agree) / static_cast<double>(want.size()));
      if (!gaps.empty()) {
        std::printf("teacher-forced disagreements (position: the wanted token's logit below the argmax, of the "
                    "largest):");
        for (auto [i, g] : gaps)
          std::printf(" %zu: %.2e", i, g);
        std::printf("\n");
      }
      r.agreement = static_cast<double>(agree) / static_cast<double>(want.size());
      // An engine computing in f32 answers to the f32 golden everywhere.
      const format::FunctionDesc *dec = man.function("decode");
      bool reduced = !dec || dec->resultTypes.empty() || dec->resultTypes[0].dtype != "f32";
      if (reduced && wantBf16.size() == want.size()) {
        // Where transformers' own bf16 parts from its f32 golden the top two
        // logits are within bf16 noise; the criterion counts the others.
        std::printf("teacher-forced top-1 agreement where transformers bf16 keeps its f32 argmax: %zu/%zu "
                    "(%.1f%%; transformers bf16 itself: %zu/%zu)\n",
                    stableAgree, stable, 100.0 * static_cast<double>(stableAgree) / std::max<double>(1, stable),
                    stable, want.size());
        r.agreement = static_cast<double>(stableAgree) / std::max<double>(1, static_cast<double>(stable));
      }
    }
    r.tokens = out[0];
    if (!first.empty())
      r.logits = first[0];
    // Decode starts once every prompt has its first token (the prefills
    // are done); the tokens after that are the decode steps' output.
    size_t decodeFrom = 0;
    if (bench) {
      std::vector<bool> seen(batchPrompts.size(), false);
      size_t n = 0;
      for (; decodeFrom < stamps.size(); ++decodeFrom) {
        n += !seen[stampRequest[decodeFrom]];
        seen[stampRequest[decodeFrom]] = true;
        if (n == seen.size())
          break;
      }
    }
    if (bench && decodeFrom + 1 < stamps.size()) {
      tools::BenchFigures f;
      f.engine = engine;
      f.device = describe;
      f.prompt = ids.size();
      f.tokens = out[0].size();
      f.batch = batchPrompts.size();
      f.prefillMs = std::chrono::duration<double, std::milli>(stamps[decodeFrom] - t1).count();
      f.decodeSeconds = std::chrono::duration<double>(stamps.back() - stamps[decodeFrom]).count();
      f.steps = static_cast<double>(stamps.size() - 1 - decodeFrom) / static_cast<double>(f.batch);
      f.graphs = lo.graphs;
      f.overlap = model->overlap();
      f.overlapChoice = model->overlapChoice();
      double copy = 0;
      if (Status s = model->device().copyBandwidth(copy); !s)
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
      tools::printBench(*model, f, copy);
      if (abRuns > 0 && tools::abOverlap(*model, ids, go, abRuns))
        return 1;
      if (profile) {
        // The batch's decode steps, each kernel timed on its own.
        rt::GenerateOptions p = g;
        p.onToken = nullptr;
        p.maxTokens = std::min<int64_t>(go.maxTokens, 64);
        std::vector<std::vector<int64_t>> o3;
        model->setProfiling(true);
        if (Status s = rt::generate(*model, batchPrompts, p, o3); !s) {
          std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
          return 1;
        }
        model->setProfiling(false);
        tools::printProfile(*model, std::max<double>(1.0, static_cast<double>(o3[0].size()) - 1.0), copy);
      }
    }
    return 0;
  };
  // The reference runs first: with --teacher-forced its greedy tokens are
  // what this device is teacher-forced on.
  Run ref;
  if (!reference.empty()) {
    if (int rc = runOn(reference, ref, false))
      return rc;
    if (teacherForced) {
      want = ref.tokens;
      wantBf16.clear();
    }
  }
  Run run;
  if (int rc = runOn(device, run, true))
    return rc;
  if (bench)
    return 0;
  std::vector<std::vector<int64_t>> out{run.tokens};
  std::vector<std::vector<float>> first{run.logits};
  if (!reference.empty()) {
    want = ref.tokens;
    wantLogits.assign(ref.logits.begin(), ref.logits.end());
    golden = reference + " device";
  }
  if (golden.empty()) {
    for (size_t i = 0; i < out[0].size(); ++i)
      std::printf("%s%lld", i ? "," : "", static_cast<long long>(out[0][i]));
    std::printf("\n");
    if (haveTokenizer) {
      std::string decoded;
      if (Status s = tokenizer.decode(out[0], decoded, true); !s) {
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
        return 1;
      }
      std::printf("%s%s\n", text.c_str(), decoded.c_str());
    }
    return 0;
  }
  double worst = 0, scale = 0;
  if (wantLogits.size() == first[0].size()) {
    for (size_t j = 0; j < wantLogits.size(); ++j) {
      double d = std::fabs(first[0][j] - wantLogits[j]);
      worst = std::isnan(d) ? INFINITY : std::max(worst, d);
      scale = std::max(scale, std::fabs(wantLogits[j]));
    }
  } else {
    worst = INFINITY;
  }
  size_t same = 0;
  while (same < want.size() && same < out[0].size() && want[same] == out[0][same])
    ++same;
  size_t needed = minIdentical < 0 ? want.size() : std::min(want.size(), static_cast<size_t>(minIdentical));
  // --max-tie-gap: every teacher-forced disagreement a near-tie, its
  // wanted token's logit within that much (of the largest) of the argmax.
  bool ties = !teacherForced || maxTieGap < 0 || run.maxGap <= maxTieGap;
  if (teacherForced && maxTieGap >= 0)
    std::printf("teacher-forced disagreements within %.2e of the argmax: %s (largest %.2e)\n", maxTieGap,
                ties ? "all" : "NOT all", run.maxGap);
  bool ok = same >= needed && worst / std::max(scale, 1e-30) <= tolerance &&
            (!teacherForced || run.agreement >= minAgreement) && ties;
  std::printf("%s %s: logits max error %.3e of the largest, greedy tokens %zu/%zu identical\n",
              ok ? "PASS" : "FAIL", golden.c_str(), worst / std::max(scale, 1e-30), same, want.size());
  std::printf("  tokens:");
  for (int64_t t : out[0])
    std::printf(" %lld", static_cast<long long>(t));
  std::printf("\n");
  if (!ok) {
    std::printf("  want:");
    for (int64_t t : want)
      std::printf(" %lld", static_cast<long long>(t));
    std::printf("\n  got: ");
    for (int64_t t : out[0])
      std::printf(" %lld", static_cast<long long>(t));
    std::printf("\n");
  }
  return ok ? 0 : 1;
}
