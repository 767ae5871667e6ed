//===- Serve.cpp - completion requests parsed, JSON answered --------------===//
#include "tools/kiln-serve/Serve.h"

#include "runtime/format/Json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kiln::serve {

namespace {

using format::JsonValue;

Status bad(const std::string &field, const std::string &why) {
  return Status::error("'" + field + "' " + why);
}

Status number(const JsonValue &v, const std::string &field, double lo, double hi, double &out) {
  if (!v.isNumber())
    return bad(field, "must be a number");
  out = v.asNumber();
  if (!(out >= lo && out <= hi)) {
    char range[64];
    std::snprintf(range, sizeof range, "must be in [%g, %g]", lo, hi);
    return bad(field, range);
  }
  return Status::ok();
}

Status integer(const JsonValue &v, const std::string &field, int64_t lo, int64_t &out) {
  if (!v.isInteger())
    return bad(field, "must be an integer");
  out = v.asInt();
  if (out < lo)
    return bad(field, "must be at least " + std::to_string(lo));
  return Status::ok();
}

} // namespace

namespace {

// A chat message as the template sees it: its fields, with content parts
// ([{"type": "text", "text": ...}, ...]) joined into one string.
Status chatMessage(const JsonValue &m, size_t index, jinja::Value &out) {
  const std::string at = "messages[" + std::to_string(index) + "]";
  if (!m.isObject())
    return bad(at, "must be an object");
  const JsonValue *role = m.find("role");
  if (!role || !role->isString() || role->asString().empty())
    return bad(at + ".role", "must be a non-empty string");
  out = jinja::Value::fromJson(m);
  const JsonValue *content = m.find("content");
  if (!content)
    return Status::ok();
  if (content->isArray()) {
    std::string text;
    for (const JsonValue &part : content->asArray()) {
      const JsonValue *type = part.isObject() ? part.find("type") : nullptr;
      const JsonValue *t = part.isObject() ? part.find("text") : nullptr;
      if (!type || !type->isString())
        return bad(at + ".content", "parts must be objects with a type");
      if (type->asString() != "text")
        return bad(at + ".content", "has a '" + type->asString() + "' part: kiln-serve takes text parts only");
      if (!t || !t->isString())
        return bad(at + ".content", "a text part needs a string 'text'");
      text += t->asString();
    }
    out.set("content", jinja::Value::of(text));
  } else if (!content->isString() && !content->isNull()) {
    return bad(at + ".content", "must be a string, null or an array of text parts");
  }
  return Status::ok();
}

Status parseRequest(const std::string &body, bool chat, CompletionRequest &out) {
  out = CompletionRequest{};
  out.chat = chat;
  out.options.maxTokens = 16;
  out.options.sampling.temperature = 1.0f;
  JsonValue root;
  if (Status s = format::parseJson(body, root); !s)
    return Status::error("the body is not JSON: " + s.message());
  if (!root.isObject())
    return Status::error("the body must be a JSON object");
  bool prompt = false;
  bool chatLogprobs = false;
  int64_t topLogprobs = -1;
  for (const auto &[key, v] : root.asObject()) {
    double d = 0;
    int64_t i = 0;
    if (chat && key == "messages") {
      prompt = true;
      if (!v.isArray() || v.asArray().empty())
        return bad(key, "must be a non-empty array of messages");
      jinja::List list;
      for (size_t m = 0; m < v.asArray().size(); ++m) {
        jinja::Value msg;
        if (Status s = chatMessage(v.asArray()[m], m, msg); !s)
          return s;
        list.push_back(std::move(msg));
      }
      out.messages = jinja::Value::of(std::move(list));
    } else if (chat && key == "tools") {
      if (!v.isArray() && !v.isNull())
        return bad(key, "must be an array of tools");
      for (const JsonValue &t : v.isArray() ? v.asArray() : std::vector<JsonValue>{})
        if (!t.isObject())
          return bad(key, "must be an array of objects");
      if (v.isArray() && !v.asArray().empty())
        out.tools = jinja::Value::fromJson(v);
    } else if (chat && key == "tool_choice") {
      if (!v.isString() || (v.asString() != "auto" && v.asString() != "none"))
        return bad(key, "must be \"auto\" or \"none\" (kiln-serve does not force a tool call)");
      out.toolChoiceNone = v.asString() == "none";
    } else if (chat && key == "logprobs") {
      if (!v.isBool() && !v.isNull())
        return bad(key, "must be true or false");
      chatLogprobs = v.isBool() && v.asBool();
    } else if (chat && key == "top_logprobs") {
      if (!v.isNull()) {
        if (!v.isInteger() || v.asInt() < 0 || v.asInt() > 20)
          return bad(key, "must be an integer from 0 to 20");
        topLogprobs = v.asInt();
      }
    } else if (chat && key == "stream_options") {
      if (!v.isNull()) {
        if (!v.isObject())
          return bad(key, "must be an object");
        for (const auto &[k, x] : v.asObject()) {
          if (k != "include_usage")
            return bad(key + "." + k, "is not supported by kiln-serve");
          if (!x.isBool())
            return bad(key + "." + k, "must be true or false");
          out.includeUsage = x.asBool();
        }
      }
    } else if (chat && key == "add_generation_prompt") {
      if (!v.isBool())
        return bad(key, "must be true or false");
      out.addGenerationPrompt = v.asBool();
    } else if (chat && key == "max_completion_tokens") {
      if (Status s = integer(v, key, 1, i); !s)
        return s;
      out.options.maxTokens = i;
    } else if (key == "model") {
      if (!v.isString())
        return bad(key, "must be a string");
      out.model = v.asString();
    } else if (!chat && key == "prompt") {
      prompt = true;
      if (v.isString()) {
        out.promptText = v.asString();
      } else if (v.isArray()) {
        out.idsGiven = true;
        for (const JsonValue &x : v.asArray()) {
          if (!x.isInteger() || x.asInt() < 0)
            return bad(key, "must be a string or an array of token ids (one prompt a request)");
          out.promptIds.push_back(x.asInt());
        }
      } else {
        return bad(key, "must be a string or an array of token ids");
      }
    } else if (key == "max_tokens") {
      if (Status s = integer(v, key, 1, i); !s)
        return s;
      out.options.maxTokens = i;
    } else if (key == "temperature") {
      if (Status s = number(v, key, 0, 2, d); !s)
        return s;
      out.options.sampling.temperature = static_cast<float>(d);
    } else if (key == "top_p") {
      if (Status s = number(v, key, 0, 1, d); !s)
        return s;
      if (d <= 0)
        return bad(key, "must be above 0");
      out.options.sampling.topP = static_cast<float>(d);
    } else if (key == "top_k") {
      // -1 (vLLM's "all") or a count; 0 is all too.
      if (!v.isInteger() || v.asInt() < -1)
        return bad(key, "must be an integer, -1 or more");
      out.options.sampling.topK = v.asInt() < 0 ? 0 : v.asInt();
    } else if (key == "min_p") {
      if (Status s = number(v, key, 0, 1, d); !s)
        return s;
      out.options.sampling.minP = static_cast<float>(d);
    } else if (key == "seed") {
      if (!v.isInteger())
        return bad(key, "must be an integer");
      out.options.seed = static_cast<uint64_t>(v.asInt());
      out.seedGiven = true;
    } else if (key == "stop") {
      if (v.isString()) {
        out.stop.push_back(v.asString());
      } else if (v.isArray()) {
        for (const JsonValue &x : v.asArray()) {
          if (!x.isString())
            return bad(key, "must be a string or an array of strings");
          out.stop.push_back(x.asString());
        }
      } else if (!v.isNull()) {
        return bad(key, "must be a string or an array of strings");
      }
      if (out.stop.size() > 16)
        return bad(key, "takes at most 16 strings");
      for (const std::string &s : out.stop)
        if (s.empty())
          return bad(key, "must not hold an empty string");
    } else if (key == "stop_token_ids") {
      // vLLM's extension: token ids that end the request (kept in the output).
      if (!v.isArray())
        return bad(key, "must be an array of token ids");
      for (const JsonValue &x : v.asArray()) {
        if (!x.isInteger() || x.asInt() < 0)
          return bad(key, "must be an array of token ids");
        out.options.stop.push_back(x.asInt());
      }
    } else if (key == "stream") {
      if (!v.isBool())
        return bad(key, "must be true or false");
      out.stream = v.asBool();
    } else if (key == "n") {
      if (!v.isInteger() || v.asInt() < 1 || v.asInt() > 16)
        return bad(key, "must be an integer from 1 to 16");
      out.n = v.asInt();
    } else if (key == "presence_penalty" || key == "frequency_penalty") {
      if (Status s = number(v, key, -2, 2, d); !s)
        return s;
      (key == "presence_penalty" ? out.options.sampling.presencePenalty : out.options.sampling.frequencyPenalty) =
          static_cast<float>(d);
    } else if (key == "repetition_penalty") {
      if (Status s = number(v, key, 0, 1e6, d); !s)
        return s;
      if (d <= 0)
        return bad(key, "must be above 0");
      out.options.sampling.repetitionPenalty = static_cast<float>(d);
    } else if (!chat && key == "logprobs") {
      if (!v.isNull()) {
        if (!v.isInteger() || v.asInt() < 0 || v.asInt() > 20)
          return bad(key, "must be an integer from 0 to 20");
        out.logprobs = v.asInt();
        out.options.logprobs = true;
        out.options.topLogprobs = v.asInt();
      }
    } else if (key == "ignore_eos") { // vLLM's: generate max_tokens whatever the model says
      if (!v.isBool())
        return bad(key, "must be true or false");
      out.options.ignoreEos = v.asBool();
    } else if (key == "min_tokens") { // vLLM's: no end of sequence before this many
      if (Status s = integer(v, key, 0, i); !s)
        return s;
      out.options.minTokens = i;
    } else if (key == "user") {
      // An end-user id for the caller's records: nothing to compute.
    } else {
      return bad(key, "is not supported by kiln-serve");
    }
  }
  if (!prompt)
    return Status::error(chat ? "'messages' is required" : "'prompt' is required");
  if (chat) {
    if (topLogprobs >= 0 && !chatLogprobs)
      return bad("top_logprobs", "needs 'logprobs': true");
    if (chatLogprobs) {
      out.logprobs = std::max<int64_t>(0, topLogprobs);
      out.options.logprobs = true;
      out.options.topLogprobs = out.logprobs;
    }
    if (out.includeUsage && !out.stream)
      return bad("stream_options", "needs 'stream': true");
  }
  if (chat)
    return Status::ok();
  if (!out.idsGiven && out.promptText.empty())
    return bad("prompt", "must not be empty");
  if (out.idsGiven && out.promptIds.empty())
    return bad("prompt", "must not be empty");
  return Status::ok();
}

} // namespace

Status parseCompletion(const std::string &body, CompletionRequest &out) { return parseRequest(body, false, out); }

Status parseChat(const std::string &body, CompletionRequest &out) { return parseRequest(body, true, out); }

namespace {

std::string trimmed(const std::string &s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

// One call's JSON object: a string name, and its arguments (an object, or a
// string holding one) under `arguments` or `parameters`.
bool oneCall(const std::string &text, ToolCall &out) {
  JsonValue v;
  if (!format::parseJson(text, v) || !v.isObject())
    return false;
  const JsonValue *name = v.find("name");
  const JsonValue *args = v.find("arguments");
  if (!args)
    args = v.find("parameters");
  if (!name || !name->isString() || name->asString().empty() || !args)
    return false;
  out.name = name->asString();
  if (args->isString()) {
    JsonValue inner;
    if (!format::parseJson(args->asString(), inner) || !inner.isObject())
      return false;
    out.arguments = args->asString();
    return true;
  }
  if (!args->isObject())
    return false;
  return static_cast<bool>(jinja::toJson(jinja::Value::fromJson(*args), out.arguments));
}

} // namespace

bool parseToolCalls(const std::string &parser, const std::string &text, std::vector<ToolCall> &calls,
                    std::string &content) {
  std::vector<ToolCall> found;
  std::string rest;
  if (parser == "hermes") {
    const std::string open = "<tool_call>", close = "</tool_call>";
    size_t at = 0;
    for (;;) {
      size_t o = text.find(open, at);
      if (o == std::string::npos) {
        rest += text.substr(at);
        break;
      }
      size_t c = text.find(close, o + open.size());
      if (c == std::string::npos)
        return false; // an unfinished call: the answer as it is
      rest += text.substr(at, o - at);
      ToolCall call;
      if (!oneCall(trimmed(text.substr(o + open.size(), c - o - open.size())), call))
        return false;
      found.push_back(std::move(call));
      at = c + close.size();
    }
  } else if (parser == "json") {
    std::string t = trimmed(text);
    if (t.empty() || t[0] != '{')
      return false;
    // Calls separated by ';' (a ';' inside a call's strings is no separator:
    // each piece must parse).
    size_t start = 0;
    for (size_t i = 0; i <= t.size(); ++i) {
      if (i < t.size() && t[i] != ';')
        continue;
      ToolCall call;
      if (oneCall(trimmed(t.substr(start, i - start)), call)) {
        found.push_back(std::move(call));
        start = i + 1;
      } else if (i == t.size()) {
        if (!trimmed(t.substr(start)).empty() || found.empty())
          return false; // (a trailing ';' ends the last call)
      }
    }
  } else if (parser == "mistral") {
    // [TOOL_CALLS] (a special token, in the text because the stream keeps
    // special tokens for this parser), then either a JSON array of calls
    // (Mistral's v3 tokenizer: Mistral-7B-Instruct-v0.3, Mixtral 8x22B) or,
    // from its v11 tokenizer on, NAME[ARGS]{...} for each call (each
    // perhaps after [TOOL_CALLS] again). The text before the first is
    // content; nothing may follow the calls. A model's own call ids
    // ([CALL_ID]) are dropped: the server names the calls.
    const std::string open = "[TOOL_CALLS]", args = "[ARGS]";
    size_t o = text.find(open);
    if (o == std::string::npos)
      return false;
    rest = text.substr(0, o);
    std::string t = trimmed(text.substr(o + open.size()));
    if (!t.empty() && t[0] == '[') {
      format::JsonValue v;
      if (!format::parseJson(t, v) || !v.isArray())
        return false;
      for (const format::JsonValue &item : v.asArray()) {
        std::string one;
        if (!item.isObject() || !jinja::toJson(jinja::Value::fromJson(item), one))
          return false;
        ToolCall call;
        if (!oneCall(one, call))
          return false;
        found.push_back(std::move(call));
      }
    } else {
      while (!t.empty()) {
        size_t a = t.find(args);
        if (a == std::string::npos)
          return false;
        ToolCall call;
        call.name = trimmed(t.substr(0, a));
        // NAME[CALL_ID]ID (the model's own call id: the server names calls
        // itself).
        if (size_t id = call.name.find("[CALL_ID]"); id != std::string::npos)
          call.name = trimmed(call.name.substr(0, id));
        if (call.name.empty() || call.name.find_first_of(" \t\n{}[]\"") != std::string::npos)
          return false;
        // The arguments: the longest JSON object that parses, up to the
        // next [TOOL_CALLS] or the end.
        std::string after = t.substr(a + args.size());
        size_t next = after.find(open);
        std::string body = trimmed(after.substr(0, next));
        format::JsonValue v;
        if (!format::parseJson(body, v) || !v.isObject() ||
            !jinja::toJson(jinja::Value::fromJson(v), call.arguments))
          return false;
        found.push_back(std::move(call));
        t = next == std::string::npos ? std::string() : trimmed(after.substr(next + open.size()));
      }
    }
  } else {
    return false;
  }
  if (found.empty())
    return false;
  calls = std::move(found);
  content = trimmed(rest);
  return true;
}

std::string jsonString(const std::string &s) {
  std::string out;
  (void)jinja::toJson(jinja::Value::of(s), out); // (a string always converts)
  return out;
}

std::string choiceJson(size_t index, const std::string &text, const std::string &logprobs, const std::string &finish) {
  return "{\"index\": " + std::to_string(index) + ", \"text\": " + jsonString(text) + ", \"logprobs\": " + logprobs +
         ", \"finish_reason\": " + (finish.empty() ? "null" : jsonString(finish)) + "}";
}

std::string toolCallsJson(const std::vector<ToolCall> &calls, const std::string &idPrefix, bool delta) {
  std::string out = "[";
  for (size_t i = 0; i < calls.size(); ++i)
    out += (i ? ", {" : "{") + (delta ? "\"index\": " + std::to_string(i) + ", " : std::string()) +
           "\"id\": " + jsonString(idPrefix + std::to_string(i)) + ", \"type\": \"function\", \"function\": {\"name\": " +
           jsonString(calls[i].name) + ", \"arguments\": " + jsonString(calls[i].arguments) + "}}";
  return out + "]";
}

std::string chatChoiceJson(size_t index, const std::string &text, const std::string &logprobs,
                           const std::string &finish, bool delta, bool role, const std::string &toolCalls) {
  std::string body;
  if (role)
    body = "\"role\": \"assistant\"";
  if (!toolCalls.empty() && text.empty() && !delta)
    body += std::string(body.empty() ? "" : ", ") + "\"content\": null";
  else if (!delta || !text.empty() || role)
    body += std::string(body.empty() ? "" : ", ") + "\"content\": " + jsonString(text);
  if (!toolCalls.empty())
    body += std::string(body.empty() ? "" : ", ") + "\"tool_calls\": " + toolCalls;
  return "{\"index\": " + std::to_string(index) + ", \"" + (delta ? "delta" : "message") + "\": {" + body +
         "}, \"logprobs\": " + logprobs + ", \"finish_reason\": " + (finish.empty() ? "null" : jsonString(finish)) +
         "}";
}

std::string usageJson(size_t prompt, size_t completion) {
  return "{\"prompt_tokens\": " + std::to_string(prompt) + ", \"completion_tokens\": " +
         std::to_string(completion) + ", \"total_tokens\": " + std::to_string(prompt + completion) + "}";
}

std::string errorBody(const std::string &message, const std::string &type) {
  return "{\"error\": {\"message\": " + jsonString(message) + ", \"type\": " + jsonString(type) + "}}";
}

Status logprobsJson(const tok::Tokenizer &t, const std::vector<TokenLp> &lps, int64_t top, size_t &offset,
                    std::string &out) {
  std::string tokens, values, tops, offsets;
  for (size_t i = 0; i < lps.size(); ++i) {
    std::string piece;
    KILN_RETURN_IF_ERROR(t.decode({lps[i].token}, piece));
    const char *sep = i ? ", " : "";
    tokens += sep + jsonString(piece);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", lps[i].logprob);
    values += sep + std::string(buf);
    if (top > 0) {
      std::string entry;
      for (size_t k = 0; k < lps[i].top.size() && static_cast<int64_t>(k) < top; ++k) {
        std::string name;
        KILN_RETURN_IF_ERROR(t.decode({lps[i].top[k].first}, name));
        std::snprintf(buf, sizeof buf, "%.7g", lps[i].top[k].second);
        entry += (k ? ", " : "") + jsonString(name) + ": " + buf;
      }
      tops += sep + std::string("{") + entry + "}";
    }
    offsets += sep + std::to_string(offset);
    offset += piece.size();
  }
  out = "{\"tokens\": [" + tokens + "], \"token_logprobs\": [" + values + "], \"top_logprobs\": " +
        (top > 0 ? "[" + tops + "]" : std::string("null")) + ", \"text_offset\": [" + offsets + "]}";
  return Status::ok();
}

Status chatLogprobsJson(const tok::Tokenizer &t, const std::vector<TokenLp> &lps, int64_t top, size_t &,
                        std::string &out) {
  auto entry = [&](int64_t id, float logprob, std::string &e) -> Status {
    std::string piece;
    KILN_RETURN_IF_ERROR(t.decode({id}, piece));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", logprob);
    std::string bytes;
    for (unsigned char c : piece)
      bytes += (bytes.empty() ? "" : ", ") + std::to_string(c);
    e = "\"token\": " + jsonString(piece) + ", \"logprob\": " + buf + ", \"bytes\": [" + bytes + "]";
    return Status::ok();
  };
  std::string content;
  for (size_t i = 0; i < lps.size(); ++i) {
    std::string e, tops;
    KILN_RETURN_IF_ERROR(entry(lps[i].token, lps[i].logprob, e));
    for (size_t k = 0; k < lps[i].top.size() && static_cast<int64_t>(k) < top; ++k) {
      std::string te;
      KILN_RETURN_IF_ERROR(entry(lps[i].top[k].first, lps[i].top[k].second, te));
      tops += (k ? ", {" : "{") + te + "}";
    }
    content += (i ? ", {" : "{") + e + ", \"top_logprobs\": [" + tops + "]}";
  }
  out = "{\"content\": [" + content + "]}";
  return Status::ok();
}

} // namespace kiln::serve
