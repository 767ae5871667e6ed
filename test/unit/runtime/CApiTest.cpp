//===- CApiTest.cpp - the C API: statuses, tokenizer, loader errors -------===//
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"
#include "test/unit/runtime/TestEngine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {
std::string messageOf(kiln_status *s) {
  std::string m = s ? kiln_status_message(s) : "";
  kiln_status_free(s);
  return m;
}
const std::string kTok = std::string(KILN_SOURCE_DIR) + "/test/fuzz/corpus/tokenizer/gpt2.json";
} // namespace

TEST(CApi, ErrorsComeBackAsStatuses) {
  kiln_model *m = reinterpret_cast<kiln_model *>(1);
  EXPECT_NE(messageOf(kiln_model_load(nullptr, nullptr, &m)).find("must not be NULL"), std::string::npos);
  kiln_load_options o;
  kiln_load_options_init(&o);
  o.device = "tpu";
  EXPECT_NE(messageOf(kiln_model_load("x.engine", &o, &m)).find("unknown device 'tpu'"), std::string::npos);
  EXPECT_EQ(m, nullptr);
  o.device = "host";
  o.overlap = "sideways";
  EXPECT_NE(messageOf(kiln_model_load("x.engine", &o, &m)).find("overlap 'sideways' is not auto, on or off"),
            std::string::npos);
  EXPECT_EQ(m, nullptr);
  kiln_tokenizer *t = nullptr;
  EXPECT_NE(messageOf(kiln_tokenizer_load("/nonexistent/tokenizer.json", &t)).find("cannot open"), std::string::npos);
  EXPECT_EQ(t, nullptr);
}

TEST(CApi, TokenizesAndDetokenizes) {
  kiln_tokenizer *t = nullptr;
  ASSERT_EQ(messageOf(kiln_tokenizer_load(kTok.c_str(), &t)), "");
  const char *text = "The quick brown fox, 12:45.";
  size_t n = 0;
  // Asking with no room gives the count.
  ASSERT_EQ(messageOf(kiln_tokenize(t, text, strlen(text), nullptr, 0, &n)), "");
  ASSERT_GT(n, 3u);
  std::vector<int64_t> ids(n);
  ASSERT_EQ(messageOf(kiln_tokenize(t, text, strlen(text), ids.data(), ids.size(), &n)), "");
  char back[256];
  size_t len = 0;
  ASSERT_EQ(messageOf(kiln_detokenize(t, ids.data(), ids.size(), back, sizeof(back), &len)), "");
  EXPECT_EQ(std::string(back, len), text);
  // Too small a buffer: truncated, NUL-terminated, the full length reported.
  char small[5];
  ASSERT_EQ(messageOf(kiln_detokenize(t, ids.data(), ids.size(), small, sizeof(small), &len)), "");
  EXPECT_EQ(len, strlen(text));
  EXPECT_EQ(std::string(small), "The ");
  int64_t bad = 1 << 20;
  EXPECT_NE(messageOf(kiln_detokenize(t, &bad, 1, back, sizeof(back), &len)).find("not in the vocabulary"),
            std::string::npos);
  kiln_tokenizer_free(t);

  kiln::api::Tokenizer cpp;
  ASSERT_EQ(cpp.load(kTok), "");
  std::vector<int64_t> ids2;
  ASSERT_EQ(cpp.encode(text, ids2), "");
  EXPECT_EQ(ids2, ids);
  std::string s;
  ASSERT_EQ(cpp.decode(ids2, s), "");
  EXPECT_EQ(s, text);
}

// The tiny Llama on the host device (its real weights, the manifest's host
// programs): prompts generated together through kiln_generate_batch give
// each prompt's tokens from kiln_generate alone, the callback sees every
// token of every request, and a prompt too long for the KV pool is refused
// on its own.
namespace {
struct Seen {
  std::vector<std::vector<int64_t>> tokens;
};
int record(void *user, size_t request, int64_t token) {
  auto *s = static_cast<Seen *>(user);
  s->tokens[request].push_back(token);
  return 1;
}
} // namespace

TEST(CApi, GeneratesSeveralPromptsTogether) {
  std::string engine = kiln::test::writeTinyLlamaEngine("capi_batch", "\"max_batch\":4", "\"max_batch\":2",
                                                        "tiny_llama_b4.json");
  kiln_load_options lo;
  kiln_load_options_init(&lo);
  lo.device = "host";
  lo.weights = kiln::test::kTinyLlama.c_str();
  lo.kv_pages = 4; // 64 tokens: the 70-token prompt cannot fit
  lo.overlap = "off";
  kiln_model *m = nullptr;
  ASSERT_EQ(messageOf(kiln_model_load(engine.c_str(), &lo, &m)), "");
  kiln_generate_options go;
  kiln_generate_options_init(&go);
  go.max_tokens = 6;
  std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5}, {1, 2, 3, 4, 5, 6, 7, 8}, std::vector<int64_t>(70, 9),
                                               {42, 7}};
  std::vector<std::vector<int64_t>> out(prompts.size(), std::vector<int64_t>(6));
  std::vector<kiln_request> r(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i)
    r[i] = kiln_request{prompts[i].data(), prompts[i].size(), out[i].data(), out[i].size(), 0, nullptr, 0, 0, 0};
  Seen seen;
  seen.tokens.resize(prompts.size());
  ASSERT_EQ(messageOf(kiln_generate_batch(m, r.data(), r.size(), &go, record, &seen)), "");
  EXPECT_EQ(kiln_status_code(r[2].status), KILN_REQUEST_REFUSED);
  EXPECT_NE(messageOf(r[2].status).find("does not fit the KV pool even alone"), std::string::npos);
  EXPECT_EQ(r[2].count, 0u);
  for (size_t i : {0u, 1u, 3u}) {
    EXPECT_EQ(r[i].status, nullptr);
    ASSERT_GT(r[i].count, 0u);
    std::vector<int64_t> batched(out[i].begin(), out[i].begin() + static_cast<long>(r[i].count));
    EXPECT_EQ(seen.tokens[i], batched);
    std::vector<int64_t> alone(6);
    size_t n = 0;
    ASSERT_EQ(messageOf(kiln_generate(m, prompts[i].data(), prompts[i].size(), &go, alone.data(), alone.size(), &n)),
              "");
    alone.resize(n);
    EXPECT_EQ(batched, alone) << "prompt " << i;
  }
  kiln_status *bad = kiln_generate_batch(m, nullptr, 2, &go, nullptr, nullptr);
  EXPECT_EQ(kiln_status_code(bad), KILN_ERROR);
  EXPECT_NE(messageOf(bad).find("must not be NULL"), std::string::npos);
  EXPECT_EQ(kiln_status_code(nullptr), KILN_OK);
  kiln_model_free(m);

  // The C++ wrapper, the same requests.
  kiln::api::Model cpp;
  ASSERT_EQ(cpp.load(engine, &lo), "");
  std::vector<std::vector<int64_t>> got;
  std::vector<std::string> errors;
  ASSERT_EQ(cpp.generate(prompts, go, got, errors), "");
  EXPECT_NE(errors[2].find("does not fit the KV pool even alone"), std::string::npos);
  EXPECT_EQ(got[0], seen.tokens[0]);
  EXPECT_EQ(got[3], seen.tokens[3]);
  EXPECT_TRUE(got[2].empty());
}

// Sampled tokens are a function of the request's prompt and seed alone
// (Philox at each token's position): a prompt sampled alone and beside
// others in batches of two, in any order, gives the same tokens (one
// shared generator gave each request the draws the earlier ones left);
// another seed gives other tokens.
TEST(CApi, SampledTokensDoNotDependOnTheBatch) {
  std::string engine = kiln::test::writeTinyLlamaEngine("capi_sampled", "\"max_batch\":4", "\"max_batch\":2",
                                                        "tiny_llama_b4.json");
  kiln_load_options lo;
  kiln_load_options_init(&lo);
  lo.device = "host";
  lo.weights = kiln::test::kTinyLlama.c_str();
  lo.overlap = "off";
  kiln_model *m = nullptr;
  ASSERT_EQ(messageOf(kiln_model_load(engine.c_str(), &lo, &m)), "");
  kiln_generate_options go;
  kiln_generate_options_init(&go);
  go.max_tokens = 12;
  go.temperature = 1.5f;
  go.top_p = 0.98f;
  go.seed = 1234;
  go.min_tokens = 12; // the end-of-sequence ids masked: 12 tokens each
  const std::vector<int64_t> a = {5, 17, 3, 99, 42};
  auto alone = [&](const std::vector<int64_t> &p, uint64_t seed) {
    go.seed = seed;
    std::vector<int64_t> out(12);
    size_t n = 0;
    EXPECT_EQ(messageOf(kiln_generate(m, p.data(), p.size(), &go, out.data(), out.size(), &n)), "");
    out.resize(n);
    go.seed = 1234;
    return out;
  };
  std::vector<int64_t> want = alone(a, 1234);
  ASSERT_EQ(want.size(), 12u);
  std::vector<std::vector<int64_t>> orders[] = {
      {{1, 2, 3}, a, {8, 8, 8, 8, 8, 8, 8}}, {a, {7}, {2, 4, 6, 8}}, {{9, 9}, {3, 1, 4, 1, 5}, {2, 7}, a}};
  for (const auto &prompts : orders) {
    std::vector<std::vector<int64_t>> out(prompts.size(), std::vector<int64_t>(12));
    std::vector<kiln_request> r(prompts.size());
    size_t at = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      r[i] = kiln_request{prompts[i].data(), prompts[i].size(), out[i].data(), out[i].size(), 0, nullptr, 0, 0, 0};
      if (prompts[i] == a)
        at = i;
    }
    ASSERT_EQ(messageOf(kiln_generate_batch(m, r.data(), r.size(), &go, nullptr, nullptr)), "");
    out[at].resize(r[at].count);
    EXPECT_EQ(out[at], want) << "beside " << prompts.size() - 1 << " others, at " << at;
  }
  // Other seeds sample other tokens (12 tokens at temperature 1.5).
  int differ = 0;
  for (uint64_t seed : {1u, 2u, 3u})
    differ += alone(a, seed) != want;
  EXPECT_GE(differ, 2);
  // Seeds per request: the same prompt three times in one call, two with
  // seeds of their own, the third with the options' -- each the tokens it
  // gets alone with that seed; the repeats, admitted once the first has
  // written the page they share, report the tokens they took from the
  // prefix cache.
  {
    const std::vector<int64_t> p = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
    std::vector<std::vector<int64_t>> out(3, std::vector<int64_t>(12));
    std::vector<kiln_request> r(3);
    const uint64_t seeds[3] = {7, 8, 1234};
    for (size_t i = 0; i < 3; ++i)
      r[i] = kiln_request{p.data(), p.size(), out[i].data(), out[i].size(), 0, nullptr, seeds[i], i < 2, 99};
    ASSERT_EQ(messageOf(kiln_generate_batch(m, r.data(), r.size(), &go, nullptr, nullptr)), "");
    for (size_t i = 0; i < 3; ++i) {
      out[i].resize(r[i].count);
      EXPECT_EQ(out[i], alone(p, seeds[i])) << "request " << i << ", seed " << seeds[i];
    }
    EXPECT_NE(out[0], out[1]) << "seeds 7 and 8 sampled the same 12 tokens";
    // The repeats wait for the first one's page, then take it: 16 tokens.
    EXPECT_EQ(r[0].cached_tokens, 0u);
    EXPECT_EQ(r[1].cached_tokens, 16u);
    EXPECT_EQ(r[2].cached_tokens, 16u);
  }
  kiln_model_free(m);
}

// The executor through the C API and kiln.hpp: requests submitted from two
// threads while others run, one cancelled once it has a token; each
// completed request's tokens are kiln_generate's for its prompt alone,
// on_done comes once per request, and the statistics add up.
TEST(CApi, AnExecutorTakesRequestsWhileOthersRun) {
  std::string engine = kiln::test::writeTinyLlamaEngine("capi_exec", "", "", "tiny_llama_b4.json");
  kiln_load_options lo;
  kiln_load_options_init(&lo);
  lo.device = "host";
  lo.weights = kiln::test::kTinyLlama.c_str();
  lo.overlap = "off";
  kiln::api::Model model;
  ASSERT_EQ(model.load(engine, &lo), "");
  kiln_generate_options go;
  kiln_generate_options_init(&go);
  go.max_tokens = 8;
  go.temperature = 0.7f;
  go.seed = 11;
  std::vector<std::vector<int64_t>> prompts;
  for (int i = 0; i < 6; ++i)
    prompts.push_back({1 + i, 2 + 2 * i, 3 + 3 * i, 4, 5 + i});
  std::vector<std::vector<int64_t>> want(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i)
    ASSERT_EQ(model.generate(prompts[i], go, want[i]), "");

  std::mutex mu;
  std::map<uint64_t, std::vector<int64_t>> done;
  std::map<uint64_t, bool> cancelled;
  std::map<uint64_t, size_t> which;
  uint64_t longId = 0;
  {
    kiln::api::Executor ex;
    ASSERT_EQ(ex.start(model), "");
    // A long request, cancelled from this thread once its first token is out.
    std::promise<void> first;
    std::atomic<bool> once{false};
    kiln_generate_options longOpts = go;
    longOpts.max_tokens = 100;
    ASSERT_EQ(ex.submit({7, 7, 7}, longOpts,
                        [&](uint64_t, int64_t) {
                          if (!once.exchange(true))
                            first.set_value();
                          return true;
                        },
                        [&](uint64_t id, const std::string &err, const std::vector<int64_t> &t,
                            const std::vector<float> &lp, bool c) {
                          EXPECT_TRUE(lp.empty()) << "no logprobs asked";
                          std::lock_guard<std::mutex> l(mu);
                          EXPECT_EQ(err, "");
                          done[id] = t;
                          cancelled[id] = c;
                        },
                        longId),
              "");
    first.get_future().wait();
    ex.cancel(longId);
    kiln_generate_options withLogprobs = go;
    withLogprobs.logprobs = 1;
    auto submit = [&](size_t i) {
      uint64_t id = 0;
      ASSERT_EQ(ex.submit(prompts[i], withLogprobs, nullptr,
                          [&](uint64_t rid, const std::string &err, const std::vector<int64_t> &t,
                              const std::vector<float> &lp, bool c) {
                            EXPECT_EQ(lp.size(), t.size()) << "each token's log-probability";
                            for (float x : lp)
                              EXPECT_LE(x, 0.0f);
                            std::lock_guard<std::mutex> l(mu);
                            EXPECT_EQ(err, "");
                            done[rid] = t;
                            cancelled[rid] = c;
                          },
                          id),
                "");
      std::lock_guard<std::mutex> l(mu);
      which[id] = i;
    };
    std::thread a([&] {
      for (size_t i : {0, 2, 4})
        submit(i);
    });
    std::thread b([&] {
      for (size_t i : {1, 3, 5})
        submit(i);
    });
    a.join();
    b.join();
    uint64_t refused = 0;
    EXPECT_NE(ex.submit({}, go, nullptr, nullptr, refused), "");
    ex.drain();
    kiln_executor_stats s = ex.stats();
    EXPECT_EQ(s.completed, 6);
    EXPECT_EQ(s.cancelled, 1);
    EXPECT_EQ(s.failed, 0);
    EXPECT_EQ(s.waiting + s.prefilling + s.running, 0);
    EXPECT_EQ(s.kv_pages_used, 0);
    EXPECT_GT(s.kv_pages, 0);
  }
  ASSERT_EQ(done.size(), 7u);
  EXPECT_TRUE(cancelled[longId]);
  EXPECT_LT(done[longId].size(), 100u);
  for (auto &[id, i] : which) {
    EXPECT_FALSE(cancelled[id]);
    EXPECT_EQ(done[id], want[i]) << "prompt " << i;
  }
}

TEST(CApi, AnExecutorRequestStopsAtAStopStringAndStreamsItsText) {
  std::string engine = kiln::test::writeTinyLlamaEngine("capi_stop", "", "", "tiny_llama_b4.json");
  kiln_load_options lo;
  kiln_load_options_init(&lo);
  lo.device = "host";
  lo.weights = kiln::test::kTinyLlama.c_str();
  lo.overlap = "off";
  kiln::api::Model model;
  ASSERT_EQ(model.load(engine, &lo), "");
  kiln_tokenizer *tok = nullptr;
  ASSERT_EQ(messageOf(kiln_tokenizer_load((kiln::test::kTinyLlama + "/tokenizer.json").c_str(), &tok)), "");
  kiln_generate_options go;
  kiln_generate_options_init(&go);
  go.max_tokens = 40;
  go.temperature = 0.9f;
  go.seed = 5;
  const std::vector<int64_t> prompt = {12, 40, 7, 300, 99};
  // The request's whole text, alone: the stop string is a piece of it.
  std::vector<int64_t> all;
  ASSERT_EQ(model.generate(prompt, go, all), "");
  ASSERT_GE(all.size(), 10u);
  std::vector<char> buf(4096);
  size_t len = 0;
  ASSERT_EQ(messageOf(kiln_detokenize(tok, all.data(), all.size(), buf.data(), buf.size(), &len)), "");
  std::string whole(buf.data(), len);
  whole = whole.substr(0, whole.find("<|")); // an end-of-sequence token's text, which the stream leaves out
  ASSERT_GE(whole.size(), 12u) << whole;
  std::string stop = whole.substr(whole.size() / 2, 3);
  size_t cut = whole.find(stop);
  {
    // kiln_generate refuses them.
    kiln_generate_options bad = go;
    const char *stops[] = {"x"};
    bad.tokenizer = tok;
    bad.stop_strings = stops;
    bad.num_stop_strings = 1;
    std::vector<int64_t> out;
    EXPECT_NE(model.generate(prompt, bad, out).find("for executor requests"), std::string::npos);
  }
  kiln::api::Executor ex;
  ASSERT_EQ(ex.start(model), "");
  std::mutex mu;
  std::string streamed;
  std::vector<int64_t> tokens;
  std::string error = "not called";
  bool cancelled = true;
  kiln_generate_options so = go;
  const char *stops[] = {stop.c_str()};
  so.tokenizer = tok;
  so.stop_strings = stops;
  so.num_stop_strings = 1;
  uint64_t id = 0;
  ASSERT_EQ(ex.submit(prompt, so, nullptr,
                      [&](uint64_t, const std::string &err, const std::vector<int64_t> &t, const std::vector<float> &,
                          bool c) {
                        std::lock_guard<std::mutex> l(mu);
                        error = err;
                        tokens = t;
                        cancelled = c;
                      },
                      id,
                      [&](uint64_t, const std::string &text) {
                        std::lock_guard<std::mutex> l(mu);
                        EXPECT_EQ(error, "not called") << "text comes before on_done";
                        streamed += text;
                      }),
            "");
  // Refused at submit: stop strings without a tokenizer, an empty one.
  kiln_generate_options noTok = so;
  noTok.tokenizer = nullptr;
  uint64_t r = 0;
  EXPECT_NE(ex.submit(prompt, noTok, nullptr, nullptr, r).find("need the options' tokenizer"), std::string::npos);
  const char *empty[] = {""};
  kiln_generate_options emptyStop = so;
  emptyStop.stop_strings = empty;
  EXPECT_NE(ex.submit(prompt, emptyStop, nullptr, nullptr, r).find("stop string 0 is NULL or empty"),
            std::string::npos);
  ex.drain();
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(error, "");
  EXPECT_FALSE(cancelled);
  EXPECT_EQ(streamed, whole.substr(0, cut)) << "stop '" << stop << "' in '" << whole << "'";
  // The same tokens as alone, up to the one that completed the stop string.
  ASSERT_LE(tokens.size(), all.size());
  ASSERT_FALSE(tokens.empty());
  EXPECT_EQ(tokens, std::vector<int64_t>(all.begin(), all.begin() + static_cast<long>(tokens.size())));
  ASSERT_EQ(messageOf(kiln_detokenize(tok, tokens.data(), tokens.size(), buf.data(), buf.size(), &len)), "");
  std::string upTo(buf.data(), len);
  EXPECT_NE(upTo.find(stop), std::string::npos);
  std::vector<int64_t> fewer(tokens.begin(), tokens.end() - 1);
  ASSERT_EQ(messageOf(kiln_detokenize(tok, fewer.data(), fewer.size(), buf.data(), buf.size(), &len)), "");
  EXPECT_EQ(std::string(buf.data(), len).find(stop), std::string::npos) << "ended at the first token that completed it";
  kiln_tokenizer_free(tok);
}

// A model directory's chat template through the C API (and its C++
// wrapper): the [INST]-style fixture's named default template with its
// special tokens; a directory without one; bad messages; the template's own
// error.
TEST(CApi, AChatTemplateRendersAConversation) {
  kiln::api::ChatTemplate chat;
  ASSERT_EQ(chat.load(KILN_SOURCE_DIR "/test/chat/templates/inst-style"), "");
  ASSERT_TRUE(chat.present());
  std::string text;
  ASSERT_EQ(chat.apply(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                          {"role": "assistant", "content": " Hello! "}, {"role": "user", "content": "More"}])",
                       "", true, text),
            "");
  EXPECT_EQ(text, "<s>[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nMore[/INST]");
  // The C call reports the length and truncates to the capacity.
  size_t len = 0;
  char small[6];
  kiln_chat_template *raw = nullptr;
  ASSERT_EQ(kiln_chat_template_load(KILN_SOURCE_DIR "/test/chat/templates/inst-style", &raw), nullptr);
  ASSERT_EQ(kiln_chat_template_apply(raw, R"([{"role": "user", "content": "Hi"}])", nullptr, 1, small, sizeof small,
                                     &len),
            nullptr);
  EXPECT_EQ(len, std::string("<s>[INST] Hi[/INST]").size());
  EXPECT_STREQ(small, "<s>[I");
  // Errors name the problem; nothing is written.
  auto error = [&](const char *messages, const char *tools) {
    kiln_status *st = kiln_chat_template_apply(raw, messages, tools, 1, nullptr, 0, &len);
    std::string m = st ? kiln_status_message(st) : "";
    kiln_status_free(st);
    return m;
  };
  EXPECT_NE(error("[{\"role\": ", nullptr).find("messages are not JSON"), std::string::npos);
  EXPECT_NE(error("{}", nullptr).find("messages must be a JSON array"), std::string::npos);
  EXPECT_NE(error("[{\"content\": \"x\"}]", nullptr).find("message 0 has no string role"), std::string::npos);
  EXPECT_NE(error("[]", "{}").find("tools must be a JSON array"), std::string::npos);
  EXPECT_NE(error("[{\"role\": \"assistant\", \"content\": \"x\"}]", nullptr).find("must alternate"),
            std::string::npos);
  kiln_chat_template_free(raw);
  // A directory without a template: no error, nothing loaded.
  kiln::api::ChatTemplate none;
  EXPECT_EQ(none.load(KILN_SOURCE_DIR "/test/models/hf/llama"), "");
  EXPECT_FALSE(none.present());
}
