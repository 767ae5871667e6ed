//===- kiln-serve.cpp - an OpenAI-style HTTP server on the runtime -----------===//
//
//   kiln-serve ENGINE [--weights DIR] [--tokenizer FILE] [--host 127.0.0.1]
//              [--port 8000] [--device auto|cuda|host] [--api-key KEY]
//              [--model-name NAME] [--chat-template FILE] [--max-waiting N]
//              [--tool-call-parser hermes|json|mistral]
//
// GET /health, GET /v1/models, GET /metrics (Prometheus text), POST
// /v1/completions and POST /v1/chat/completions (stream: server-sent events
// ending in `data: [DONE]`). Chat requests go through the model's chat
// template (runtime/chat: the tokenizer's directory, or --chat-template); a
// model without one answers them 400 and still serves completions.
// Requests run through one rt::Executor: continuous batching, the prefix
// cache, per-request sampling and seeds; their text comes from
// tok::TextStream (stop strings, whole characters). Binds to loopback unless
// told otherwise; SIGINT/SIGTERM stop accepting, let running requests end,
// then free the device. A client that goes away mid-stream cancels its
// request. One line per request on stderr.
//
//===----------------------------------------------------------------------===//
#include "tools/kiln-serve/Serve.h"

#include "runtime/chat/ChatTemplate.h"
#include "runtime/core/Device.h"
#include "runtime/core/Executor.h"
#include "runtime/core/Model.h"
#include "runtime/format/Engine.h"
#include "runtime/format/Manifest.h"
#include "runtime/tokenizer/TextStream.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <sstream>
#include <string>
#include <thread>

using namespace kiln;
using serve::chatLogprobsJson;
using serve::logprobsJson;
using serve::TokenLp;

namespace {

const char *kUsage = "usage: kiln-serve ENGINE [--weights DIR] [--tokenizer FILE] [--host 127.0.0.1] [--port 8000]\n"
                     "                  [--device auto|cuda|host] [--api-key KEY] [--model-name NAME]\n"
                     "                  [--chat-template FILE] [--max-waiting N] [--tool-call-parser hermes|json|mistral]\n";

int usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

std::vector<TokenLp> tokenLps(const rt::Executor::Outcome &o) {
  std::vector<TokenLp> out(o.tokens.size());
  for (size_t i = 0; i < o.tokens.size(); ++i) {
    out[i].token = o.tokens[i];
    out[i].logprob = i < o.logprobs.size() ? o.logprobs[i] : 0.0f;
    if (i < o.topLogprobs.size())
      out[i].top = o.topLogprobs[i];
  }
  return out;
}

/// One choice of a request in flight (a sequence of its own): the
/// executor's thread fills it, the HTTP thread answering drains it, under
/// its request's mutex.
struct Choice {
  Choice(const tok::Tokenizer &t, std::vector<std::string> stops, std::vector<int64_t> keepSpecial)
      : text(t, std::move(stops), true, std::move(keepSpecial)) {}
  std::deque<std::string> chunks; // text ready, not yet sent
  // With logprobs: each chunk's tokens (those made since the chunk before),
  // and those that made no text of their own before the end.
  std::deque<std::vector<TokenLp>> chunkLps;
  std::vector<TokenLp> pendingLps; // the executor's thread: since the last chunk
  std::vector<TokenLp> finalLps;
  size_t lpOffset = 0; // the HTTP thread: bytes of the tokens whose logprobs went out
  std::string held;            // the HTTP thread: a streamed answer held for its tool calls
  std::vector<TokenLp> heldLps;
  bool done = false;
  tok::TextStream text;            // the executor's thread only
  rt::Executor::Outcome outcome;
  Status textError = Status::ok();
  uint64_t id = 0;
  // The executor's thread only: when the last token came (the request's
  // arrival before the first), for the latency histograms.
  std::chrono::steady_clock::time_point last;
  bool first = true;
  bool opened = false; // the HTTP thread: a stream's first delta sent
  bool finished = false; // the HTTP thread: its finish event sent
};

/// A request in flight: its `n` choices.
struct Live {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Choice>> choices;
  bool allDone() const {
    for (const auto &c : choices)
      if (!c->done)
        return false;
    return true;
  }
};

/// A Prometheus histogram of seconds (cumulative buckets, sum, count).
class Histogram {
public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double seconds) {
    std::lock_guard<std::mutex> l(mu_);
    size_t i = 0;
    while (i < bounds_.size() && seconds > bounds_[i])
      ++i;
    ++counts_[i];
    sum_ += seconds;
    ++count_;
  }
  std::string text(const char *name, const char *help) const {
    std::lock_guard<std::mutex> l(mu_);
    std::string out = std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
    int64_t cumulative = 0;
    char buf[64];
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += counts_[i];
      if (i < bounds_.size())
        std::snprintf(buf, sizeof buf, "%g", bounds_[i]);
      out += std::string(name) + "_bucket{le=\"" + (i < bounds_.size() ? buf : "+Inf") + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    std::snprintf(buf, sizeof buf, "%.9g", sum_);
    return out + name + "_sum " + buf + "\n" + name + "_count " + std::to_string(count_) + "\n";
  }

private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;
  double sum_ = 0;
  int64_t count_ = 0;
};

struct Server {
  Histogram ttft{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram itl{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
  rt::Model *model = nullptr;
  const tok::Tokenizer *tokenizer = nullptr;
  const chat::ChatTemplate *chat = nullptr;
  rt::Executor *executor = nullptr;
  std::string name, apiKey;
  int64_t maxWaiting = 0; // requests queued beyond which a new one gets 429 (0: no bound)
  std::string toolParser;  // --tool-call-parser: hermes, json, or none
  std::atomic<uint64_t> counter{0};
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> requests{0}, errors{0}, promptTokens{0}, completionTokens{0};
};

void sendError(httplib::Response &res, int code, const std::string &message, const std::string &type) {
  res.status = code;
  res.set_content(serve::errorBody(message, type), "application/json");
}

bool authorised(const Server &s, const httplib::Request &req, httplib::Response &res) {
  if (s.apiKey.empty() || req.get_header_value("Authorization") == "Bearer " + s.apiKey)
    return true;
  sendError(res, 401, "a valid API key is required (Authorization: Bearer KEY)", "authentication_error");
  return false;
}

const char *finishReason(const Choice &l, int64_t maxTokens) {
  if (l.text.stopped())
    return "stop";
  return static_cast<int64_t>(l.outcome.tokens.size()) >= maxTokens ? "length" : "stop";
}

/// POST /v1/completions, or with `chat` /v1/chat/completions: the same
/// request's life, in either endpoint's shapes.
void generate(Server &s, const httplib::Request &req, httplib::Response &res, bool chat) {
  auto t0 = std::chrono::steady_clock::now();
  ++s.requests;
  const char *path = chat ? "/v1/chat/completions" : "/v1/completions";
  auto log = [&](int code, size_t prompt, size_t completion) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "kiln-serve: POST %s %d, %zu prompt + %zu completion tokens, %.1f ms\n", path, code,
                 prompt, completion, ms);
  };
  auto fail = [&](int code, const std::string &message, const std::string &type) {
    ++s.errors;
    sendError(res, code, message, type);
    log(code, 0, 0);
  };
  if (s.stopping)
    return fail(503, "the server is shutting down", "server_error");
  if (s.maxWaiting > 0 && s.executor->stats().waiting >= s.maxWaiting) {
    res.set_header("Retry-After", "1");
    return fail(429,
                "the server's queue is full (" + std::to_string(s.maxWaiting) +
                    " requests waiting for a batch slot): retry later",
                "rate_limit_error");
  }
  serve::CompletionRequest cr;
  if (Status st = chat ? serve::parseChat(req.body, cr) : serve::parseCompletion(req.body, cr); !st)
    return fail(400, st.message(), "invalid_request_error");
  if (!cr.model.empty() && cr.model != s.name)
    return fail(404, "model '" + cr.model + "' is not served here (this server serves '" + s.name + "')",
                "invalid_request_error");
  if (chat) {
    // The conversation through the chat template, as text; its special
    // tokens' text (a BOS among them) become those tokens in the encoding.
    if (!s.chat->present())
      return fail(400,
                  "the model has no chat template (tokenizer_config.json's chat_template or chat_template.jinja): "
                  "use /v1/completions, or start kiln serve with --chat-template FILE",
                  "invalid_request_error");
    if (Status st = chat::applyChatTemplate(*s.chat, cr.messages, cr.tools, cr.addGenerationPrompt, cr.promptText);
        !st)
      return fail(400, st.message(), "invalid_request_error");
    if (cr.promptText.empty())
      return fail(400, "the chat template made an empty prompt of these messages", "invalid_request_error");
  }
  std::vector<int64_t> prompt = cr.promptIds;
  if (!cr.idsGiven)
    if (Status st = s.tokenizer->encode(cr.promptText, prompt); !st)
      return fail(400, "prompt: " + st.message(), "invalid_request_error");
  // n choices: sequences of their own over one prompt (the prefix cache
  // shares its pages), choice i sampled with seed + i (a seed drawn here
  // when the request names none, so that the choices differ).
  auto live = std::make_shared<Live>();
  const int64_t n = cr.n;
  // Mistral's tool calls begin with special tokens, which the text keeps
  // for the parser (vLLM's mistral parser turns skip_special_tokens off).
  std::vector<int64_t> keepSpecial;
  if (chat && s.toolParser == "mistral" && cr.tools.defined() && !cr.toolChoiceNone)
    for (const char *marker : {"[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"})
      if (int64_t id = s.tokenizer->tokenId(marker); id >= 0)
        keepSpecial.push_back(id);
  uint64_t seed = cr.options.seed;
  if (!cr.seedGiven && n > 1)
    seed = (static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) << 8) ^ s.counter;
  for (int64_t i = 0; i < n; ++i) {
    live->choices.push_back(std::make_unique<Choice>(*s.tokenizer, cr.stop, keepSpecial));
    live->choices.back()->last = t0;
  }
  Server *timing = &s;
  for (int64_t i = 0; i < n; ++i) {
    Choice *c = live->choices[static_cast<size_t>(i)].get();
    // Time to first token from the request's arrival, then the gaps between
    // tokens (on the executor's thread, as each token is made).
    rt::Executor *ex = s.executor;
    const bool streamLps = cr.stream && cr.logprobs >= 0;
    rt::Executor::TokenFn onToken = [live, c, timing, ex, streamLps](uint64_t, int64_t token) {
      auto now = std::chrono::steady_clock::now();
      (c->first ? timing->ttft : timing->itl).observe(std::chrono::duration<double>(now - c->last).count());
      c->first = false;
      c->last = now;
      if (streamLps) {
        TokenLp lp;
        lp.token = token;
        if (ex->tokenLogprobs(lp.logprob, lp.top))
          c->pendingLps.push_back(std::move(lp));
      }
      std::string ready;
      bool stopped = false;
      if (Status st = c->text.push(token, ready, stopped); !st) {
        std::lock_guard<std::mutex> l(live->mu);
        c->textError = st;
        return false;
      }
      if (!ready.empty()) {
        std::lock_guard<std::mutex> l(live->mu);
        c->chunks.push_back(std::move(ready));
        c->chunkLps.push_back(std::move(c->pendingLps));
        c->pendingLps.clear();
        live->cv.notify_all();
      }
      return !stopped;
    };
    rt::Executor::DoneFn onDone = [live, c](uint64_t, const rt::Executor::Outcome &o) {
      std::string rest = c->text.finish();
      std::lock_guard<std::mutex> l(live->mu);
      if (!rest.empty()) {
        c->chunks.push_back(std::move(rest));
        c->chunkLps.push_back(std::move(c->pendingLps));
      } else {
        c->finalLps = std::move(c->pendingLps);
      }
      c->pendingLps.clear();
      c->outcome = o;
      c->done = true;
      live->cv.notify_all();
    };
    rt::RequestOptions options = cr.options;
    options.seed = seed + static_cast<uint64_t>(i);
    if (Status st = s.executor->submit(prompt, options, onToken, onDone, c->id); !st) {
      for (int64_t j = 0; j < i; ++j)
        s.executor->cancel(live->choices[static_cast<size_t>(j)]->id);
      return fail(st.code() == StatusCode::kDevice ? 500 : 400, st.message(),
                  st.code() == StatusCode::kDevice ? "server_error" : "invalid_request_error");
    }
  }
  std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++s.counter);
  long long created = static_cast<long long>(std::time(nullptr));
  auto headOf = [&](const char *object) {
    return "{\"id\": " + serve::jsonString(id) + ", \"object\": \"" + object + "\", \"created\": " +
           std::to_string(created) + ", \"model\": " + serve::jsonString(s.name);
  };
  std::string head = headOf(chat ? "chat.completion.chunk" : "text_completion");
  // One choice in this endpoint's shape: a stream's chunk (`delta`) or the
  // whole answer; `first`: the chunk that opens the assistant's message.
  auto choice = [chat](size_t index, const std::string &text, const std::string &logprobs,
                       const std::string &finish, bool delta, bool first, const std::string &toolCalls = "") {
    return chat ? serve::chatChoiceJson(index, text, logprobs, finish, delta, !delta || first, toolCalls)
                : serve::choiceJson(index, text, logprobs, finish);
  };
  // A chat answer with tools offered is searched for the calls the model
  // wrote (--tool-call-parser); a streamed one is then held to its end.
  const std::string parser =
      chat && !s.toolParser.empty() && cr.tools.defined() && !cr.toolChoiceNone ? s.toolParser : "";
  auto callsOf = [parser, id](size_t index, std::string &text, std::string &calls, bool delta) {
    std::vector<serve::ToolCall> found;
    std::string content;
    if (parser.empty() || !serve::parseToolCalls(parser, text, found, content))
      return false;
    text = content;
    calls = serve::toolCallsJson(found, "call_" + id + "_" + std::to_string(index) + "_", delta);
    return true;
  };
  int64_t maxTokens = cr.options.maxTokens;
  size_t promptLen = prompt.size();
  // A choice's error, if any: its request's own, or its text's.
  auto failure = [](const Choice &c) {
    return !c.outcome.status ? c.outcome.status : c.textError;
  };
  if (!cr.stream) {
    std::unique_lock<std::mutex> l(live->mu);
    live->cv.wait(l, [&] { return live->allDone(); });
    std::string choices;
    size_t tokens = 0;
    for (size_t i = 0; i < live->choices.size(); ++i) {
      const Choice &c = *live->choices[i];
      if (Status st = failure(c); !st) {
        l.unlock();
        return fail(st.code() == StatusCode::kDevice ? 500 : 400, st.message(),
                    st.code() == StatusCode::kDevice ? "server_error" : "invalid_request_error");
      }
      std::string text;
      for (const std::string &piece : c.chunks)
        text += piece;
      tokens += c.outcome.tokens.size();
      std::string logprobs = "null";
      if (cr.logprobs >= 0) {
        size_t offset = 0;
        if (Status st = (chat ? chatLogprobsJson : logprobsJson)(*s.tokenizer, tokenLps(c.outcome), cr.logprobs,
                                                                 offset, logprobs);
            !st) {
          l.unlock();
          return fail(500, "logprobs: " + st.message(), "server_error");
        }
      }
      std::string calls;
      bool called = callsOf(i, text, calls, false);
      choices += (i ? ", " : "") +
                 choice(i, text, logprobs, called ? "tool_calls" : finishReason(c, maxTokens), false, false, calls);
    }
    s.promptTokens += static_cast<int64_t>(promptLen);
    s.completionTokens += static_cast<int64_t>(tokens);
    res.set_content((chat ? headOf("chat.completion") : head) + ", \"choices\": [" + choices + "], \"usage\": " +
                        serve::usageJson(promptLen, tokens) + "}",
                    "application/json");
    log(200, promptLen, tokens);
    return;
  }
  // Streaming: an event per piece of text of a choice (chat: its first also
  // opens the assistant's message), then one with its finish reason; once
  // every choice is done the usage -- with the last finish event for
  // completions, in a chunk of its own for chat when stream_options asks
  // for it -- then [DONE]. The provider runs on this request's HTTP thread.
  rt::Executor *ex = s.executor;
  Server *sp = &s;
  bool includeUsage = cr.includeUsage;
  res.set_chunked_content_provider(
      "text/event-stream",
      [live, head, maxTokens, promptLen, failure, sp, choice, chat, includeUsage, path, wantLps = cr.logprobs,
       tokenizer = s.tokenizer, hold = !parser.empty(), callsOf](size_t, httplib::DataSink &sink) {
        // A chunk's logprobs object (null without logprobs).
        auto lpJson = [&](Choice &c, const std::vector<TokenLp> &lps) {
          std::string j = "null";
          if (wantLps >= 0 && !lps.empty() &&
              !(chat ? chatLogprobsJson : logprobsJson)(*tokenizer, lps, wantLps, c.lpOffset, j))
            j = "null"; // (a token the tokenizer cannot decode: its logprobs left out of the stream)
          return j;
        };
        std::unique_lock<std::mutex> l(live->mu);
        auto ready = [&] {
          for (const auto &c : live->choices)
            if (!c->chunks.empty() || (c->done && !c->finished))
              return true;
          return false;
        };
        while (!ready()) {
          live->cv.wait_for(l, std::chrono::milliseconds(100));
          if (sink.is_writable && !sink.is_writable())
            return false; // the client went away: the releaser cancels
        }
        std::string out;
        Status st = Status::ok();
        for (size_t i = 0; i < live->choices.size(); ++i) {
          Choice &c = *live->choices[i];
          while (hold && !c.chunks.empty()) {
            c.held += c.chunks.front();
            c.chunks.pop_front();
            if (!c.chunkLps.empty()) {
              c.heldLps.insert(c.heldLps.end(), c.chunkLps.front().begin(), c.chunkLps.front().end());
              c.chunkLps.pop_front();
            }
          }
          while (!c.chunks.empty()) {
            std::string lps = c.chunkLps.empty() ? "null" : lpJson(c, c.chunkLps.front());
            out += "data: " + head + ", \"choices\": [" + choice(i, c.chunks.front(), lps, "", true, !c.opened) +
                   "]}\n\n";
            c.opened = true;
            c.chunks.pop_front();
            if (!c.chunkLps.empty())
              c.chunkLps.pop_front();
          }
        }
        const bool all = live->allDone();
        size_t tokens = 0, unfinished = 0;
        for (const auto &c : live->choices) {
          tokens += c->outcome.tokens.size();
          unfinished += !c->finished;
        }
        for (size_t i = 0; i < live->choices.size(); ++i) {
          Choice &c = *live->choices[i];
          if (!c.done || c.finished)
            continue;
          c.finished = true;
          --unfinished;
          if (Status e = failure(c); !e) {
            st = e;
            continue;
          }
          // A held answer: its text and the calls found in it, in one chunk.
          std::string finish = finishReason(c, maxTokens);
          if (hold) {
            std::string calls;
            c.heldLps.insert(c.heldLps.end(), c.finalLps.begin(), c.finalLps.end());
            c.finalLps.clear();
            if (callsOf(i, c.held, calls, true))
              finish = "tool_calls";
            if (!c.held.empty() || !calls.empty()) {
              out += "data: " + head + ", \"choices\": [" +
                     choice(i, c.held, lpJson(c, c.heldLps), "", true, !c.opened, calls) + "]}\n\n";
              c.opened = true;
            }
          }
          // Completions: the last choice to finish carries the usage.
          bool usageHere = !chat && all && unfinished == 0;
          out += "data: " + head + ", \"choices\": [" +
                 choice(i, "", lpJson(c, c.finalLps), finish, true, chat && !c.opened) + "]" +
                 (usageHere ? ", \"usage\": " + serve::usageJson(promptLen, tokens) : "") + "}\n\n";
          c.opened = true;
        }
        l.unlock();
        if (all) {
          if (!st)
            out += "data: " + serve::errorBody(st.message(), "server_error") + "\n\n";
          else if (chat && includeUsage)
            out += "data: " + head + ", \"choices\": [], \"usage\": " + serve::usageJson(promptLen, tokens) +
                   "}\n\n";
          out += "data: [DONE]\n\n";
        }
        if (!out.empty() && !sink.write(out.data(), out.size()))
          return false;
        if (all) {
          sp->promptTokens += static_cast<int64_t>(promptLen);
          sp->completionTokens += static_cast<int64_t>(tokens);
          std::fprintf(stderr, "kiln-serve: POST %s 200 (stream), %zu prompt + %zu completion tokens\n", path,
                       promptLen, tokens);
          sink.done();
        }
        return true;
      },
      [live, ex, path](bool success) {
        if (!success) {
          for (const auto &c : live->choices)
            ex->cancel(c->id);
          std::fprintf(stderr, "kiln-serve: POST %s: the client went away; request cancelled\n", path);
        }
      });
}

std::string metrics(const Server &s) {
  rt::ExecutorStats st = s.executor->stats();
  std::string out;
  auto metric = [&](const char *name, const char *type, const char *help, int64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  metric("kiln_http_requests_total", "counter", "Completion requests received.", s.requests);
  metric("kiln_http_request_errors_total", "counter", "Completion requests answered with an error.", s.errors);
  metric("kiln_prompt_tokens_total", "counter", "Prompt tokens of completed requests.", s.promptTokens);
  metric("kiln_generation_tokens_total", "counter", "Tokens generated for completed requests.", s.completionTokens);
  metric("kiln_requests_waiting", "gauge", "Requests queued, not admitted.", st.waiting);
  metric("kiln_requests_prefilling", "gauge", "Requests computing their prompt.", st.prefilling);
  metric("kiln_requests_running", "gauge", "Requests decoding.", st.running);
  metric("kiln_kv_pages", "gauge", "Pages of the KV pool.", st.kvPages);
  metric("kiln_kv_pages_used", "gauge", "KV pages held by requests.", st.kvPagesUsed);
  metric("kiln_prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         st.cachedTokens);
  metric("kiln_requests_completed_total", "counter", "Requests that completed.", st.completed);
  metric("kiln_requests_cancelled_total", "counter", "Requests cancelled.", st.cancelled);
  metric("kiln_requests_failed_total", "counter", "Requests refused or cut short.", st.failed);
  metric("kiln_decode_steps_total", "counter", "Decode steps run.", st.decodeSteps);
  out += s.ttft.text("kiln_time_to_first_token_seconds", "From a request's arrival to its first token.");
  out += s.itl.text("kiln_inter_token_latency_seconds", "Between a request's consecutive tokens.");
  return out;
}

} // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::printf("kiln-serve: an OpenAI-style HTTP server on an engine (docs/serving.md)\n\n%s", kUsage);
      return 0;
    }
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::printf("kiln-serve %s\n", KILN_VERSION_STRING);
    return 0;
  }
  if (argc < 2 || argv[1][0] == '-')
    return usage();
  std::string engine = argv[1], host = "127.0.0.1", device = "auto", tokenizerPath, name, apiKey, chatTemplatePath;
  int64_t maxWaiting = 0;
  std::string toolParser;
  int port = 8000;
  rt::LoadOptions lo;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!v)
      return usage();
    ++i;
    if (a == "--weights") lo.weights = v;
    else if (a == "--tokenizer") tokenizerPath = v;
    else if (a == "--host") host = v;
    else if (a == "--device") device = v;
    else if (a == "--api-key") apiKey = v;
    else if (a == "--model-name") name = v;
    else if (a == "--chat-template") chatTemplatePath = v;
    else if (a == "--tool-call-parser") {
      toolParser = v;
      if (toolParser != "hermes" && toolParser != "json" && toolParser != "mistral") {
        std::fprintf(stderr, "kiln-serve: --tool-call-parser takes hermes (<tool_call> blocks: Qwen, Hermes), json "
                             "(the answer a JSON call: Llama 3.1) or mistral ([TOOL_CALLS])\n");
        return 2;
      }
    }
    else if (a == "--max-waiting") {
      char *end = nullptr;
      long long n = std::strtoll(v, &end, 10);
      if (!end || *end || n < 0) {
        std::fprintf(stderr, "kiln-serve: --max-waiting takes a count, 0 or more (0: no bound)\n");
        return 2;
      }
      maxWaiting = n;
    }
    else if (a == "--port") {
      char *end = nullptr;
      long p = std::strtol(v, &end, 10);
      if (!end || *end || p < 0 || p > 65535) {
        std::fprintf(stderr, "kiln-serve: --port takes 0 to 65535 (0: any free port)\n");
        return 2;
      }
      port = static_cast<int>(p);
    } else {
      std::fprintf(stderr, "kiln-serve: bad argument '%s'\n", a.c_str());
      return usage();
    }
  }
  // The tokenizer: --tokenizer, or the one the engine's model came with.
  format::EngineFile ef;
  format::EngineManifest em;
  Status st = format::readEngine(engine, ef);
  if (st)
    st = format::readManifest(ef, engine, em);
  if (!st) {
    std::fprintf(stderr, "kiln-serve: %s\n", st.message().c_str());
    return 1;
  }
  if (tokenizerPath.empty()) {
    std::optional<std::string> path = em.tokenizerPath(lo.weights);
    if (!path) {
      std::fprintf(stderr, "kiln-serve: %s was compiled from a model without tokenizer.json: pass --tokenizer\n",
                   engine.c_str());
      return 1;
    }
    tokenizerPath = *path;
  }
  tok::Tokenizer tokenizer;
  if (st = tok::Tokenizer::load(tokenizerPath, tokenizer); !st) {
    std::fprintf(stderr, "kiln-serve: %s\n", st.message().c_str());
    return 1;
  }
  // The chat template: the tokenizer's directory's (with its special
  // tokens), or --chat-template's file.
  chat::ChatTemplate chatTemplate;
  std::string tokDir = tokenizerPath.find('/') == std::string::npos
                           ? "."
                           : tokenizerPath.substr(0, tokenizerPath.find_last_of('/'));
  st = chat::loadChatTemplate(tokDir, chatTemplate);
  if (st && !chatTemplatePath.empty()) {
    std::ifstream f(chatTemplatePath, std::ios::binary);
    std::stringstream text;
    text << f.rdbuf();
    st = f ? chat::setChatTemplateSource(chatTemplate, text.str(), chatTemplatePath)
           : Status::error("cannot read the chat template " + chatTemplatePath);
  }
  if (!st) {
    std::fprintf(stderr, "kiln-serve: %s\n", st.message().c_str());
    return 1;
  }
  if (name.empty()) {
    name = em.modelSource.empty() ? engine : em.modelSource;
    while (name.size() > 1 && name.back() == '/')
      name.pop_back();
    name = name.substr(name.find_last_of('/') + 1);
  }
  // SIGINT and SIGTERM go to a thread of their own (blocked everywhere
  // else, the executor's and the HTTP workers' threads included).
  // (`kiln serve` ignores SIGINT while it waits for this process: an
  // ignored disposition survives exec, so it is reset first.)
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<rt::Device> d;
  std::string fallback;
  st = rt::openDevice(device, d, &fallback);
  if (st && !fallback.empty())
    std::fprintf(stderr, "kiln-serve: --device auto: no usable GPU (%s); running on the host\n", fallback.c_str());
  std::unique_ptr<rt::Model> model;
  if (st)
    st = rt::Model::load(std::move(d), engine, lo, model);
  std::unique_ptr<rt::Executor> executor;
  if (st)
    st = rt::Executor::start(*model, rt::StepLoopOptions{}, executor);
  if (!st) {
    std::fprintf(stderr, "kiln-serve: %s\n", st.message().c_str());
    return 1;
  }
  Server s;
  s.model = model.get();
  s.tokenizer = &tokenizer;
  s.chat = &chatTemplate;
  s.executor = executor.get();
  s.name = name;
  s.apiKey = apiKey;
  s.maxWaiting = maxWaiting;
  s.toolParser = toolParser;

  httplib::Server http;
  // A request holds an HTTP worker thread while it runs (its stream, or
  // the wait for its whole text): room for twice the engine's batch, so
  // that the executor's batch can fill while as many more queue.
  size_t workers = static_cast<size_t>(std::max<int64_t>(16, 2 * model->manifest().maxBatch));
  http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http.set_payload_max_length(8u << 20);
  // Errors httplib answers itself (a body over the limit, an unknown path,
  // a malformed request) in the same JSON shape as the handlers' own.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request &, httplib::Response &res) {
    if (!res.body.empty())
      return httplib::Server::HandlerResponse::Unhandled;
    std::string what = res.status == 413   ? "the request body is over 8 MB"
                       : res.status == 404 ? "no such endpoint"
                       : res.status == 405 ? "method not allowed"
                                           : "bad request";
    res.set_content(serve::errorBody(what, res.status >= 500 ? "server_error" : "invalid_request_error"),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.Get("/health", [&](const httplib::Request &, httplib::Response &res) {
    Status h = executor->health();
    if (h && !s.stopping)
      res.set_content("{\"status\": \"ok\"}", "application/json");
    else
      sendError(res, 503, h ? "shutting down" : h.message(), "server_error");
  });
  http.Get("/metrics", [&](const httplib::Request &, httplib::Response &res) {
    res.set_content(metrics(s), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [&](const httplib::Request &req, httplib::Response &res) {
    if (!authorised(s, req, res))
      return;
    res.set_content("{\"object\": \"list\", \"data\": [{\"id\": " + serve::jsonString(s.name) +
                        ", \"object\": \"model\", \"owned_by\": \"kiln\", \"max_model_len\": " +
                        std::to_string(model->manifest().maxSeq) + "}]}",
                    "application/json");
  });
  http.Post("/v1/completions", [&](const httplib::Request &req, httplib::Response &res) {
    if (authorised(s, req, res))
      generate(s, req, res, false);
  });
  http.Post("/v1/chat/completions", [&](const httplib::Request &req, httplib::Response &res) {
    if (authorised(s, req, res))
      generate(s, req, res, true);
  });
  int bound = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    std::fprintf(stderr, "kiln-serve: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "kiln-serve: %s: no new requests; running ones end, then the server stops\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM");
    s.stopping = true;
    http.stop();
  });
  std::fprintf(stderr, "kiln-serve: %s on %s, listening on http://%s:%d (chat template: %s)\n", name.c_str(),
               model->device().describe().c_str(), host.c_str(), bound,
               chatTemplate.present() ? chatTemplate.origin.c_str() : "none");
  std::fflush(stderr);
  bool ok = http.listen_after_bind();
  if (!s.stopping) {
    // The listener failed on its own: wake the signal thread.
    std::fprintf(stderr, "kiln-serve: the listener stopped\n");
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  executor->drain();
  executor.reset();
  model.reset();
  std::fprintf(stderr, "kiln-serve: stopped\n");
  return ok || s.stopping ? 0 : 1;
}
