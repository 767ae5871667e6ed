// libFuzzer: kiln-serve's request parsers (completions and chat) must refuse
// or accept any body,
// never crash or hang; what it accepts is in range, and a prompt or stop
// string written back as a JSON string parses to itself.
#include "runtime/format/Json.h"
#include "tools/kiln-serve/Serve.h"

#include <cstddef>
#include <cstdint>

namespace {
void roundTrips(const std::string &s) {
  kiln::format::JsonValue v;
  if (!kiln::format::parseJson(kiln::serve::jsonString(s), v) || !v.isString() || v.asString() != s)
    __builtin_trap();
}
} // namespace

namespace {
// A chat request's messages: a non-empty list of dicts, each with a
// non-empty string role and content a string or none if any.
void chatChecks(const kiln::serve::CompletionRequest &r) {
  using kiln::jinja::Value;
  if (r.messages.kind != Value::Kind::List || r.messages.list->empty())
    __builtin_trap();
  for (const Value &m : *r.messages.list) {
    const Value *role = m.get("role"), *content = m.get("content");
    if (!role || role->kind != Value::Kind::String || role->str().empty() ||
        (content && content->kind != Value::Kind::String && content->kind != Value::Kind::None))
      __builtin_trap();
  }
  if (r.tools.defined() && r.tools.kind != Value::Kind::List)
    __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::serve::CompletionRequest r;
  const std::string body(reinterpret_cast<const char *>(data), size);
  // The tool-call parsers take any answer: calls with names and JSON
  // arguments, or nothing changed.
  for (const char *parser : {"hermes", "json", "mistral"}) {
    std::vector<kiln::serve::ToolCall> calls;
    std::string content = "x";
    if (kiln::serve::parseToolCalls(parser, body, calls, content)) {
      kiln::format::JsonValue args;
      for (const auto &c : calls)
        if (c.name.empty() || !kiln::format::parseJson(c.arguments, args) || !args.isObject())
          __builtin_trap();
    } else if (!calls.empty() || content != "x") {
      __builtin_trap();
    }
  }
  if (kiln::serve::parseChat(body, r)) {
    chatChecks(r);
    if (r.options.maxTokens < 1 || r.stop.size() > 16 || (r.includeUsage && !r.stream) || r.n < 1 || r.n > 16)
      __builtin_trap();
  }
  if (!kiln::serve::parseCompletion(body, r))
    return 0;
  if (r.options.maxTokens < 1 || r.n < 1 || r.n > 16 || r.options.sampling.temperature < 0 ||
      r.options.sampling.temperature > 2 ||
      !(r.options.sampling.topP > 0 && r.options.sampling.topP <= 1) || r.stop.size() > 16 ||
      (r.idsGiven ? r.promptIds.empty() : r.promptText.empty()))
    __builtin_trap();
  roundTrips(r.promptText);
  for (const std::string &s : r.stop) {
    if (s.empty())
      __builtin_trap();
    roundTrips(s);
  }
  return 0;
}
