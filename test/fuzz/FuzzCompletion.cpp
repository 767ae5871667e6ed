// libFuzzer: kiln-serve's request parser must refuse or accept any body,
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

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::serve::CompletionRequest r;
  if (!kiln::serve::parseCompletion(std::string(reinterpret_cast<const char *>(data), size), r))
    return 0;
  if (r.options.maxTokens < 1 || r.options.sampling.temperature < 0 || r.options.sampling.temperature > 2 ||
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
