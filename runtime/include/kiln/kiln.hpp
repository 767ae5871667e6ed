//===- kiln.hpp - a thin C++ wrapper over the C API --------------*- C++ -*-===//
//
// Owning handles over kiln.h. Calls return an error string, empty on
// success. Thread-safety is the C API's: a Model one call at a time, a
// Tokenizer from any number of threads, an Executor's submit, cancel and
// stats from any thread.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_KILN_HPP
#define KILN_KILN_HPP

#include "kiln/kiln.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace kiln::api {

namespace detail {
inline std::string take(kiln_status *s) {
  if (!s)
    return {};
  std::string m = kiln_status_message(s);
  kiln_status_free(s);
  return m;
}
} // namespace detail

class Tokenizer {
public:
  std::string load(const std::string &path) {
    kiln_tokenizer *t = nullptr;
    std::string e = detail::take(kiln_tokenizer_load(path.c_str(), &t));
    t_.reset(t);
    return e;
  }
  std::string encode(const std::string &text, std::vector<int64_t> &ids) const {
    size_t n = 0;
    std::string e = detail::take(kiln_tokenize(t_.get(), text.data(), text.size(), nullptr, 0, &n));
    if (!e.empty())
      return e;
    ids.resize(n);
    return detail::take(kiln_tokenize(t_.get(), text.data(), text.size(), ids.data(), ids.size(), &n));
  }
  std::string decode(const std::vector<int64_t> &ids, std::string &text) const {
    size_t n = 0;
    std::string e = detail::take(kiln_detokenize(t_.get(), ids.data(), ids.size(), nullptr, 0, &n));
    if (!e.empty())
      return e;
    std::vector<char> buf(n + 1);
    e = detail::take(kiln_detokenize(t_.get(), ids.data(), ids.size(), buf.data(), buf.size(), &n));
    text.assign(buf.data(), n);
    return e;
  }

private:
  struct Free {
    void operator()(kiln_tokenizer *t) const { kiln_tokenizer_free(t); }
  };
  std::unique_ptr<kiln_tokenizer, Free> t_;
};

/// A model directory's chat template (kiln_chat_template_*).
class ChatTemplate {
public:
  /// Loads `modelDir`'s template; without one, present() is false and the
  /// error empty.
  std::string load(const std::string &modelDir) {
    kiln_chat_template *c = nullptr;
    std::string e = detail::take(kiln_chat_template_load(modelDir.c_str(), &c));
    c_.reset(c);
    return e;
  }
  bool present() const { return c_ != nullptr; }
  /// The prompt text of `messagesJson` (and `toolsJson`, empty for none).
  std::string apply(const std::string &messagesJson, const std::string &toolsJson, bool addGenerationPrompt,
                    std::string &text) const {
    const char *tools = toolsJson.empty() ? nullptr : toolsJson.c_str();
    size_t n = 0;
    std::string e = detail::take(
        kiln_chat_template_apply(c_.get(), messagesJson.c_str(), tools, addGenerationPrompt, nullptr, 0, &n));
    if (!e.empty())
      return e;
    std::vector<char> buf(n + 1);
    e = detail::take(kiln_chat_template_apply(c_.get(), messagesJson.c_str(), tools, addGenerationPrompt,
                                              buf.data(), buf.size(), &n));
    text.assign(buf.data(), n);
    return e;
  }

private:
  struct Free {
    void operator()(kiln_chat_template *c) const { kiln_chat_template_free(c); }
  };
  std::unique_ptr<kiln_chat_template, Free> c_;
};

class Model {
public:
  std::string load(const std::string &engine, const kiln_load_options *options = nullptr) {
    kiln_model *m = nullptr;
    std::string e = detail::take(kiln_model_load(engine.c_str(), options, &m));
    m_.reset(m);
    return e;
  }
  std::string generate(const std::vector<int64_t> &prompt, const kiln_generate_options &options,
                       std::vector<int64_t> &out) {
    out.resize(static_cast<size_t>(options.max_tokens > 0 ? options.max_tokens : 0));
    size_t n = 0;
    std::string e = detail::take(
        kiln_generate(m_.get(), prompt.data(), prompt.size(), &options, out.data(), out.size(), &n));
    out.resize(e.empty() ? n : 0);
    return e;
  }
  /// Several prompts with continuous batching (kiln_generate_batch): `out`
  /// gets each one's tokens and `errors` each one's error ("" when it
  /// completed); the result is the error that stopped everything, or "".
  std::string generate(const std::vector<std::vector<int64_t>> &prompts, const kiln_generate_options &options,
                       std::vector<std::vector<int64_t>> &out, std::vector<std::string> &errors) {
    size_t room = static_cast<size_t>(options.max_tokens > 0 ? options.max_tokens : 0);
    out.assign(prompts.size(), std::vector<int64_t>(room));
    std::vector<kiln_request> r(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i)
      r[i] = kiln_request{prompts[i].data(), prompts[i].size(), out[i].data(), room, 0, nullptr, 0, 0, 0};
    std::string e = detail::take(kiln_generate_batch(m_.get(), r.data(), r.size(), &options, nullptr, nullptr));
    errors.assign(prompts.size(), "");
    for (size_t i = 0; i < r.size(); ++i) {
      errors[i] = detail::take(r[i].status);
      out[i].resize(e.empty() ? r[i].count : 0);
    }
    return e;
  }
  int64_t vocabSize() const { return kiln_model_vocab_size(m_.get()); }
  std::string device() const { return kiln_model_device(m_.get()); }
  kiln_model *get() { return m_.get(); }

private:
  struct Free {
    void operator()(kiln_model *m) const { kiln_model_free(m); }
  };
  std::unique_ptr<kiln_model, Free> m_;
};

/// The model's step loop on a thread of its own (kiln_executor): requests
/// submitted and cancelled from any thread while others run; `onToken`
/// (return false to end the request) and `onDone` (error "" when it
/// completed or was cancelled) are called on the executor's thread. The
/// Model must outlive it and takes no other call while it runs.
class Executor {
public:
  using TokenFn = std::function<bool(uint64_t request, int64_t token)>;
  /// `logprobs`: each token's, where the options asked (else empty).
  using DoneFn = std::function<void(uint64_t request, const std::string &error, const std::vector<int64_t> &tokens,
                                    const std::vector<float> &logprobs, bool cancelled)>;
  std::string start(Model &model) {
    kiln_executor *e = nullptr;
    std::string err = detail::take(kiln_executor_start(model.get(), &e));
    e_.reset(e);
    return err;
  }
  /// The request's text as it becomes ready (options.tokenizer set; see
  /// kiln_generate_options' on_text), before onDone.
  using TextFn = std::function<void(uint64_t request, const std::string &text)>;
  std::string submit(const std::vector<int64_t> &prompt, const kiln_generate_options &options, TokenFn onToken,
                     DoneFn onDone, uint64_t &request, TextFn onText = nullptr) {
    auto *c = new Callbacks{std::move(onToken), std::move(onDone), std::move(onText)};
    kiln_generate_options o = options;
    if (c->onText)
      o.on_text = &Callbacks::text;
    std::string err = detail::take(kiln_request_submit(e_.get(), prompt.data(), prompt.size(), &o,
                                                       &Callbacks::token, &Callbacks::done, c, &request));
    if (!err.empty())
      delete c; // refused: no callback will come
    return err;
  }
  void cancel(uint64_t request) { kiln_request_cancel(e_.get(), request); }
  kiln_executor_stats stats() const {
    kiln_executor_stats s;
    kiln_executor_stats_get(e_.get(), &s);
    return s;
  }
  void drain() { kiln_executor_drain(e_.get()); }

private:
  struct Callbacks {
    TokenFn onToken;
    DoneFn onDone;
    TextFn onText;
    static void text(void *user, uint64_t request, const char *t, size_t len) {
      auto *c = static_cast<Callbacks *>(user);
      if (c->onText)
        c->onText(request, std::string(t, len));
    }
    static int token(void *user, uint64_t request, int64_t t) {
      auto *c = static_cast<Callbacks *>(user);
      return !c->onToken || c->onToken(request, t) ? 1 : 0;
    }
    static void done(void *user, uint64_t request, const kiln_status *status, const int64_t *tokens,
                     const float *logprobs, size_t count, int cancelled) {
      std::unique_ptr<Callbacks> c(static_cast<Callbacks *>(user)); // on_done comes once: the last call
      if (c->onDone)
        c->onDone(request, status ? kiln_status_message(status) : "", std::vector<int64_t>(tokens, tokens + count),
                  logprobs ? std::vector<float>(logprobs, logprobs + count) : std::vector<float>(), cancelled != 0);
    }
  };
  struct Free {
    void operator()(kiln_executor *e) const { kiln_executor_free(e); }
  };
  std::unique_ptr<kiln_executor, Free> e_;
};

} // namespace kiln::api

#endif
