//===- kiln_c.cpp - the C API over the runtime ----------------------------===//
#include "kiln/kiln.h"

#include "runtime/chat/ChatTemplate.h"
#include "runtime/core/Executor.h"
#include "runtime/format/Json.h"
#include "runtime/core/Generate.h"
#include "runtime/tokenizer/TextStream.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

struct kiln_status {
  kiln_code code;
  std::string message;
};
struct kiln_model {
  std::unique_ptr<kiln::rt::Model> model;
  std::string device;
};
struct kiln_tokenizer {
  kiln::tok::Tokenizer tokenizer;
};
struct kiln_chat_template {
  kiln::chat::ChatTemplate chat;
};
struct kiln_executor {
  std::unique_ptr<kiln::rt::Executor> executor;
};

namespace {
kiln_status *fail(const std::string &m, kiln_code code = KILN_ERROR) {
  return new (std::nothrow) kiln_status{code, m};
}
kiln_code codeOf(const kiln::Status &s) {
  switch (s.code()) {
  case kiln::StatusCode::kOk: return KILN_OK;
  case kiln::StatusCode::kKvCacheFull: return KILN_KV_CACHE_FULL;
  case kiln::StatusCode::kRequestRefused: return KILN_REQUEST_REFUSED;
  case kiln::StatusCode::kDevice: return KILN_DEVICE_ERROR;
  case kiln::StatusCode::kError: break;
  }
  return KILN_ERROR;
}
// `s` into the caller's buffer: its length in `len`, as much as fits with a
// NUL into `capacity` bytes.
void copyText(const std::string &s, char *text, size_t capacity, size_t *len) {
  *len = s.size();
  if (capacity) {
    size_t k = std::min(capacity - 1, s.size());
    if (k)
      std::memcpy(text, s.data(), k);
    text[k] = '\0';
  }
}

kiln_status *wrap(const kiln::Status &s) { return s ? nullptr : fail(s.message(), codeOf(s)); }
} // namespace

extern "C" {

kiln_code kiln_status_code(const kiln_status *s) { return s ? s->code : KILN_OK; }
const char *kiln_status_message(const kiln_status *s) { return s ? s->message.c_str() : "ok"; }
void kiln_status_free(kiln_status *s) { delete s; }

void kiln_load_options_init(kiln_load_options *o) {
  if (o)
    *o = kiln_load_options{nullptr, nullptr, 0, nullptr};
}

kiln_status *kiln_model_load(const char *path, const kiln_load_options *o, kiln_model **out) {
  if (!path || !out)
    return fail("kiln_model_load: the engine path and the output must not be NULL");
  *out = nullptr;
  kiln_load_options defaults;
  kiln_load_options_init(&defaults);
  if (!o)
    o = &defaults;
  kiln::rt::LoadOptions lo;
  if (o->overlap && !kiln::rt::parseOverlap(o->overlap, lo.overlap))
    return fail(std::string("kiln_model_load: overlap '") + o->overlap + "' is not auto, on or off");
  std::unique_ptr<kiln::rt::Device> dev;
  if (kiln::Status s = kiln::rt::openDevice(o->device ? o->device : "cuda", dev); !s)
    return wrap(s);
  std::string describe = dev->describe();
  if (o->weights)
    lo.weights = o->weights;
  lo.kvPages = o->kv_pages;
  auto m = std::make_unique<kiln_model>();
  if (kiln::Status s = kiln::rt::Model::load(std::move(dev), path, lo, m->model); !s)
    return wrap(s);
  m->device = describe;
  *out = m.release();
  return nullptr;
}

void kiln_model_free(kiln_model *m) { delete m; }
int64_t kiln_model_vocab_size(const kiln_model *m) { return m ? m->model->vocab() : 0; }
int64_t kiln_model_max_seq(const kiln_model *m) { return m ? m->model->manifest().maxSeq : 0; }
const char *kiln_model_device(const kiln_model *m) { return m ? m->device.c_str() : ""; }

void kiln_generate_options_init(kiln_generate_options *o) {
  if (o)
    *o = kiln_generate_options{32,  0,    0.0f, 0,    1.0f, 0,       nullptr, 0, nullptr,
                               nullptr, 0.0f, 1.0f, 0.0f, 0.0f, 0, nullptr, nullptr, 0, nullptr};
}

namespace {
/// Stop strings and on_text are an executor request's: refused elsewhere.
kiln_status *refuseText(const kiln_generate_options *o, const char *fn) {
  if (o && (o->num_stop_strings || o->on_text))
    return fail(std::string(fn) + ": stop strings and on_text are for executor requests (kiln_request_submit)");
  return nullptr;
}

kiln::rt::GenerateOptions generateOptions(const kiln_generate_options *o) {
  kiln_generate_options defaults;
  kiln_generate_options_init(&defaults);
  if (!o)
    o = &defaults;
  kiln::rt::GenerateOptions g;
  g.maxTokens = o->max_tokens;
  g.minTokens = o->min_tokens;
  g.sampling.temperature = o->temperature;
  g.sampling.minP = o->min_p;
  g.sampling.repetitionPenalty = o->repetition_penalty;
  g.sampling.frequencyPenalty = o->frequency_penalty;
  g.sampling.presencePenalty = o->presence_penalty;
  g.sampling.topK = o->top_k;
  g.sampling.topP = o->top_p;
  g.seed = o->seed;
  if (o->stop_tokens)
    g.stop.assign(o->stop_tokens, o->stop_tokens + o->num_stop_tokens);
  return g;
}
} // namespace

kiln_status *kiln_generate_batch(kiln_model *m, kiln_request *r, size_t n, const kiln_generate_options *o,
                                 kiln_request_callback onToken, void *user) {
  if (!m || (!r && n))
    return fail("kiln_generate_batch: the model and the requests must not be NULL");
  if (kiln_status *st = refuseText(o, "kiln_generate_batch"))
    return st;
  std::vector<std::vector<int64_t>> prompts, out;
  for (size_t i = 0; i < n; ++i) {
    r[i].count = 0;
    r[i].status = nullptr;
    r[i].cached_tokens = 0;
    if (!r[i].prompt || (!r[i].tokens && r[i].capacity))
      return fail("kiln_generate_batch: request " + std::to_string(i) + " has a NULL prompt or tokens");
    prompts.emplace_back(r[i].prompt, r[i].prompt + r[i].prompt_len);
  }
  kiln::rt::GenerateOptions g = generateOptions(o);
  // Seeds per request where any request names its own.
  if (std::any_of(r, r + n, [](const kiln_request &q) { return q.has_seed != 0; }))
    for (size_t i = 0; i < n; ++i)
      g.seeds.push_back(r[i].has_seed ? r[i].seed : g.seed);
  if (onToken)
    g.onToken = [onToken, user](size_t i, int64_t t) { return onToken(user, i, t) != 0; };
  kiln::rt::GenerateReport report;
  kiln::Status s = kiln::rt::generate(*m->model, prompts, g, out, nullptr, &report);
  for (size_t i = 0; i < n && i < report.status.size(); ++i) {
    if (!report.status[i])
      r[i].status = wrap(report.status[i]);
    r[i].cached_tokens = static_cast<size_t>(report.cachedTokens[i]);
  }
  // A request's own end (refused, out of pages) is in its status; anything
  // else -- bad prompts, the device -- stops the batch and is returned,
  // whatever the requests' statuses say.
  if (!s && s.code() != kiln::StatusCode::kRequestRefused && s.code() != kiln::StatusCode::kKvCacheFull)
    return wrap(s);
  for (size_t i = 0; i < n && i < out.size(); ++i) {
    r[i].count = out[i].size();
    if (size_t k = std::min(r[i].capacity, out[i].size()))
      std::memcpy(r[i].tokens, out[i].data(), k * sizeof(int64_t));
  }
  return nullptr;
}

kiln_status *kiln_generate(kiln_model *m, const int64_t *prompt, size_t n, const kiln_generate_options *o,
                           int64_t *tokens, size_t capacity, size_t *count) {
  if (!m || !prompt || !count || (!tokens && capacity))
    return fail("kiln_generate: the model, prompt and count must not be NULL");
  if (kiln_status *st = refuseText(o, "kiln_generate"))
    return st;
  kiln::rt::GenerateOptions g = generateOptions(o);
  if (o && o->on_token)
    g.onToken = [o](size_t, int64_t t) { return o->on_token(o->user, t) != 0; };
  std::vector<std::vector<int64_t>> out;
  if (kiln::Status s = kiln::rt::generate(*m->model, {std::vector<int64_t>(prompt, prompt + n)}, g, out); !s)
    return wrap(s);
  *count = out[0].size();
  if (size_t n = std::min(capacity, out[0].size()))
    std::memcpy(tokens, out[0].data(), n * sizeof(int64_t));
  return nullptr;
}

kiln_status *kiln_executor_start(kiln_model *m, kiln_executor **out) {
  if (!m || !out)
    return fail("kiln_executor_start: the model and the output must not be NULL");
  *out = nullptr;
  auto e = std::make_unique<kiln_executor>();
  kiln::rt::StepLoopOptions lo;
  if (kiln::Status s = kiln::rt::Executor::start(*m->model, lo, e->executor); !s)
    return wrap(s);
  *out = e.release();
  return nullptr;
}

void kiln_executor_free(kiln_executor *e) { delete e; }

kiln_status *kiln_request_submit(kiln_executor *e, const int64_t *prompt, size_t n, const kiln_generate_options *o,
                                 kiln_stream_callback onToken, kiln_done_callback onDone, void *user,
                                 uint64_t *request) {
  if (!e || (!prompt && n) || !request)
    return fail("kiln_request_submit: the executor, the prompt and the request id must not be NULL");
  kiln::rt::GenerateOptions g = generateOptions(o);
  kiln::rt::RequestOptions r;
  r.sampling = g.sampling;
  r.maxTokens = g.maxTokens;
  r.minTokens = g.minTokens;
  r.stop = g.stop;
  r.seed = g.seed;
  r.logprobs = o && o->logprobs != 0;
  // The request's text (stop strings, on_text): a stream the token
  // callback feeds on the executor's thread. A token the tokenizer has no
  // text for ends the request with that error.
  struct Text {
    std::unique_ptr<kiln::tok::TextStream> stream;
    void (*onText)(void *, uint64_t, const char *, size_t) = nullptr;
    kiln::Status error = kiln::Status::ok();
  };
  std::shared_ptr<Text> text;
  if (o && (o->num_stop_strings || o->on_text)) {
    if (!o->tokenizer)
      return fail("kiln_request_submit: stop strings and on_text need the options' tokenizer");
    if (o->num_stop_strings && !o->stop_strings)
      return fail("kiln_request_submit: num_stop_strings is " + std::to_string(o->num_stop_strings) +
                  " but stop_strings is NULL");
    std::vector<std::string> stops;
    for (size_t i = 0; i < o->num_stop_strings; ++i) {
      if (!o->stop_strings[i] || !*o->stop_strings[i])
        return fail("kiln_request_submit: stop string " + std::to_string(i) + " is NULL or empty");
      stops.emplace_back(o->stop_strings[i]);
    }
    text = std::make_shared<Text>();
    text->stream = std::make_unique<kiln::tok::TextStream>(o->tokenizer->tokenizer, std::move(stops));
    text->onText = o->on_text;
  }
  kiln::rt::Executor::TokenFn tok;
  if (onToken || text)
    tok = [onToken, user, text](uint64_t id, int64_t t) {
      if (onToken && onToken(user, id, t) == 0)
        return false;
      if (!text)
        return true;
      std::string ready;
      bool stopped = false;
      if (kiln::Status s = text->stream->push(t, ready, stopped); !s) {
        text->error = s;
        return false;
      }
      if (text->onText && !ready.empty())
        text->onText(user, id, ready.data(), ready.size());
      return !stopped;
    };
  kiln::rt::Executor::DoneFn done;
  if (onDone || text)
    done = [onDone, user, text](uint64_t id, const kiln::rt::Executor::Outcome &out) {
      kiln::Status status = out.status;
      if (text) {
        std::string rest = text->stream->finish();
        if (text->onText && !rest.empty())
          text->onText(user, id, rest.data(), rest.size());
        if (status && !text->error)
          status = text->error;
      }
      if (!onDone)
        return;
      kiln_status *st = wrap(status);
      onDone(user, id, st, out.tokens.data(), out.logprobs.size() == out.tokens.size() && !out.logprobs.empty()
                                                  ? out.logprobs.data()
                                                  : nullptr,
             out.tokens.size(), out.cancelled ? 1 : 0);
      kiln_status_free(st);
    };
  return wrap(e->executor->submit(std::vector<int64_t>(prompt, prompt + n), r, std::move(tok), std::move(done),
                                  *request));
}

void kiln_request_cancel(kiln_executor *e, uint64_t request) {
  if (e)
    e->executor->cancel(request);
}

void kiln_executor_stats_get(const kiln_executor *e, kiln_executor_stats *out) {
  if (!out)
    return;
  *out = kiln_executor_stats{};
  if (!e)
    return;
  kiln::rt::ExecutorStats s = e->executor->stats();
  *out = kiln_executor_stats{s.waiting,      s.prefilling,   s.running,   s.kvPages,   s.kvPagesUsed,
                             s.promptTokens, s.cachedTokens, s.completed, s.cancelled, s.failed,
                             s.decodeSteps,  s.generatedTokens};
}

void kiln_executor_drain(kiln_executor *e) {
  if (e)
    e->executor->drain();
}

kiln_status *kiln_tokenizer_load(const char *path, kiln_tokenizer **out) {
  if (!path || !out)
    return fail("kiln_tokenizer_load: the path and the output must not be NULL");
  *out = nullptr;
  auto t = std::make_unique<kiln_tokenizer>();
  if (kiln::Status s = kiln::tok::Tokenizer::load(path, t->tokenizer); !s)
    return wrap(s);
  *out = t.release();
  return nullptr;
}

void kiln_tokenizer_free(kiln_tokenizer *t) { delete t; }

kiln_status *kiln_tokenize(const kiln_tokenizer *t, const char *text, size_t len, int64_t *ids, size_t capacity,
                           size_t *count) {
  if (!t || (!text && len) || !count || (!ids && capacity))
    return fail("kiln_tokenize: NULL argument");
  std::vector<int64_t> v;
  if (kiln::Status s = t->tokenizer.encode(std::string_view(text ? text : "", len), v); !s)
    return wrap(s);
  *count = v.size();
  if (size_t n = std::min(capacity, v.size()))
    std::memcpy(ids, v.data(), n * sizeof(int64_t));
  return nullptr;
}

kiln_status *kiln_detokenize(const kiln_tokenizer *t, const int64_t *ids, size_t n, char *text, size_t capacity,
                             size_t *len) {
  if (!t || (!ids && n) || !len || (!text && capacity))
    return fail("kiln_detokenize: NULL argument");
  std::string s;
  if (kiln::Status st = t->tokenizer.decode(std::vector<int64_t>(ids, ids + n), s); !st)
    return wrap(st);
  copyText(s, text, capacity, len);
  return nullptr;
}

kiln_status *kiln_chat_template_load(const char *model_dir, kiln_chat_template **chat) {
  if (!model_dir || !chat)
    return fail("kiln_chat_template_load: NULL argument");
  *chat = nullptr;
  auto c = std::make_unique<kiln_chat_template>();
  if (kiln::Status st = kiln::chat::loadChatTemplate(model_dir, c->chat); !st)
    return wrap(st);
  if (c->chat.present())
    *chat = c.release();
  return nullptr;
}

void kiln_chat_template_free(kiln_chat_template *chat) { delete chat; }

kiln_status *kiln_chat_template_apply(const kiln_chat_template *chat, const char *messages_json,
                                      const char *tools_json, int add_generation_prompt, char *text,
                                      size_t capacity, size_t *len) {
  if (!chat || !messages_json || !len || (!text && capacity))
    return fail("kiln_chat_template_apply: NULL argument");
  kiln::format::JsonValue messages, tools;
  if (kiln::Status st = kiln::format::parseJson(messages_json, messages); !st)
    return fail("kiln_chat_template_apply: messages are not JSON: " + st.message());
  if (!messages.isArray())
    return fail("kiln_chat_template_apply: messages must be a JSON array");
  for (size_t i = 0; i < messages.asArray().size(); ++i) {
    const kiln::format::JsonValue &m = messages.asArray()[i];
    const kiln::format::JsonValue *role = m.isObject() ? m.find("role") : nullptr;
    if (!role || !role->isString())
      return fail("kiln_chat_template_apply: message " + std::to_string(i) + " has no string role");
  }
  if (tools_json) {
    if (kiln::Status st = kiln::format::parseJson(tools_json, tools); !st)
      return fail("kiln_chat_template_apply: tools are not JSON: " + st.message());
    if (!tools.isArray())
      return fail("kiln_chat_template_apply: tools must be a JSON array");
  }
  std::string s;
  if (kiln::Status st = kiln::chat::applyChatTemplate(
          chat->chat, kiln::jinja::Value::fromJson(messages),
          tools_json ? kiln::jinja::Value::fromJson(tools) : kiln::jinja::Value(), add_generation_prompt != 0, s);
      !st)
    return wrap(st);
  copyText(s, text, capacity, len);
  return nullptr;
}

} // extern "C"
