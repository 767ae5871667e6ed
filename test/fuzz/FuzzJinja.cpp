// libFuzzer: any chat template (runtime/chat/Jinja.h) either fails to parse,
// renders, or stops with an error -- never a crash, a hang or unbounded
// memory -- over a conversation with tools.
#include "runtime/chat/Jinja.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace kiln::jinja;
  Template t;
  if (!Template::parse(std::string(reinterpret_cast<const char *>(data), size), t))
    return 0;
  auto msg = [](const char *role, const char *content) {
    return Value::of(Dict{{"role", Value::of(role)}, {"content", Value::of(content)}});
  };
  Value call = Value::of(Dict{{"type", Value::of("function")},
                              {"function", Value::of(Dict{{"name", Value::of("f")},
                                                          {"arguments", Value::of(Dict{{"x", Value::of(1.5)}})}})}});
  Value assistant = msg("assistant", "<think>a</think>b");
  assistant.set("tool_calls", Value::of(List{call}));
  Dict ctx = {{"messages", Value::of(List{msg("system", "s"), msg("user", "u\xc3\xa9"), assistant, msg("tool", "{}")})},
              {"tools", Value::of(List{call})},
              {"add_generation_prompt", Value::of(true)},
              {"bos_token", Value::of("<s>")},
              {"eos_token", Value::of("</s>")}};
  std::string out;
  if (!t.render(ctx, out) && !out.empty())
    __builtin_trap(); // a failed render leaves nothing
  return 0;
}
