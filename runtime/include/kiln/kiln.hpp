//===- kiln.hpp - a thin C++ wrapper over the C API --------------*- C++ -*-===//
//
// Owning handles over kiln.h. Calls return an error string, empty on
// success. Thread-safety is the C API's: a Model one call at a time, a
// Tokenizer from any number of threads.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_KILN_HPP
#define KILN_KILN_HPP

#include "kiln/kiln.h"

#include <cstdint>
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

private:
  struct Free {
    void operator()(kiln_model *m) const { kiln_model_free(m); }
  };
  std::unique_ptr<kiln_model, Free> m_;
};

} // namespace kiln::api

#endif
