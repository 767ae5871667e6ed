//===- Bench.h - kiln-run --bench and --profile reports ---------*- C++ -*-===//
//
// The decode benchmark's summary line (tok/s, ms/token, achieved bandwidth
// and its share of the copy bandwidth measured on the device in the same
// run) and the per-kernel profile table (device time, bytes, FLOPs and the
// share of each kernel's roofline).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_KILN_RUN_BENCH_H
#define KILN_TOOLS_KILN_RUN_BENCH_H

#include "runtime/core/Generate.h"
#include "runtime/core/Model.h"

#include <string>

namespace kiln::tools {

struct BenchFigures {
  std::string engine, device;
  size_t prompt = 0, tokens = 0, batch = 1; // tokens: of the first prompt; batch: prompts decoding together
  // steps: decode steps timed, each giving `batch` tokens
  double prefillMs = 0, decodeSeconds = 0, steps = 0;
  bool graphs = true, overlap = true; // overlap: as the decode steps ran
  std::string overlapChoice;          // how Overlap::Auto chose, if it did
};

/// Prints the summary line; measures the device's copy bandwidth first.
void printBench(rt::Model &model, const BenchFigures &f, double copyBytesPerSecond);

/// Prints the profile of `steps` decode steps (model.profile() after them):
/// one row per kernel, slowest first. The roofline takes the bytes and FLOPs
/// the compiler planned for each kernel, the measured copy bandwidth, and the
/// tensor-core peak of the built-in target that matches the device (if any).
void printProfile(rt::Model &model, double steps, double copyBytesPerSecond,
                  const std::string &function = "decode");

/// Prompt `index` of a benchmark: `length` ids below 256 (they fit every
/// vocabulary kiln compiles) drawn from seed + 1 + index.
std::vector<int64_t> seededPrompt(uint64_t seed, int64_t index, int64_t length);

/// Opens `device` and loads `engine` on it (`describe`: the device's
/// description, if asked); on an error prints it and returns 1.
int openModel(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
              std::unique_ptr<rt::Model> &model, std::string *describe);

/// kiln-run --bench-prefill: for each length N, `batch` seeded prompts of N
/// tokens prefilled together (in chunks of max_num_tokens / batch tokens
/// per sequence when they do not fit one step), once to warm up and then
/// `reps` times; prints the median time to first token and the TFLOP/s of
/// a Llama-shaped model of the engine's config (2 x weights x tokens, the
/// LM head once per sequence, causal attention as N^2 / 2, as
/// peer_prefill.py counts). `profile`: the per-kernel table of one more
/// prefill of the last length. Returns the exit code.
int benchPrefill(rt::Model &model, const std::string &engine, const std::string &device,
                 const std::vector<int64_t> &lengths, int64_t batch, int64_t reps, bool profile, uint64_t seed);

/// kiln-run --bench --ab-overlap N: N decode runs with programmatic
/// dependent launch and N without, interleaved in one process on one set
/// of weights; prints each run and the medians. Returns the exit code.
int abOverlap(rt::Model &model, const std::vector<int64_t> &prompt, rt::GenerateOptions options, int runs);

/// kiln-run --check-batching: prompts derived from `prompt` (itself twice,
/// prefixes of it with other continuations, its reverse, a longer one) in
/// one generate() call, against each alone without prefix caching; greedy
/// tokens must be identical. Prints PASS/FAIL with what the scheduler did;
/// returns the exit code.
int checkBatching(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
                  rt::GenerateOptions options, const std::vector<int64_t> &prompt, double maxTieGap = -1);

/// kiln-run --check-sampling: the engine's GPU sampler against the host's
/// on the same logits (the model's for `prompt`, and synthetic rows with
/// ties, flat and spiky), over a grid of sampling parameters, penalties
/// and log-probabilities; PASS where at least `minAgreement` of the draws
/// agree, the log-probabilities are within 2e-3 and the top lists match.
int checkSampling(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
                  const std::vector<int64_t> &prompt, uint64_t seed, double minAgreement);

} // namespace kiln::tools

#endif
