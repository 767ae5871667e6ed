// kiln-serve's tool-call parsers (tools/kiln-serve/Serve.h): the calls a
// model writes in its answer, in the Hermes and JSON formats, come out as
// OpenAI tool calls; anything malformed stays an ordinary answer.
#include "tools/kiln-serve/Serve.h"

#include <gtest/gtest.h>

using kiln::serve::parseToolCalls;
using kiln::serve::ToolCall;

TEST(ToolCalls, HermesBlocksAreCallsAndTheRestIsContent) {
  std::vector<ToolCall> calls;
  std::string content;
  ASSERT_TRUE(parseToolCalls("hermes",
                             "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
                             "\"Paris\", \"days\": [1, 2.5]}}\n</tool_call>\n<tool_call>{\"name\": \"now\", "
                             "\"arguments\": \"{}\"}</tool_call>",
                             calls, content));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments, "{\"city\": \"Paris\", \"days\": [1, 2.5]}");
  EXPECT_EQ(calls[1].name, "now");
  EXPECT_EQ(calls[1].arguments, "{}");
  EXPECT_EQ(content, "Let me check.");
}

TEST(ToolCalls, JsonAnswersAreCalls) {
  std::vector<ToolCall> calls;
  std::string content = "unchanged";
  ASSERT_TRUE(parseToolCalls("json", " {\"name\": \"f\", \"parameters\": {\"s\": \"a;b\"}}; {\"name\": \"g\", "
                                     "\"arguments\": {}};\n",
                             calls, content));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "f");
  EXPECT_EQ(calls[0].arguments, "{\"s\": \"a;b\"}");
  EXPECT_EQ(calls[1].name, "g");
  EXPECT_EQ(content, "");
}

TEST(ToolCalls, MalformedCallsAreOrdinaryAnswers) {
  for (const auto &[parser, text] : std::vector<std::pair<std::string, std::string>>{
           {"hermes", "no calls here"},
           {"hermes", "<tool_call>{\"name\": \"f\", \"arguments\": {}}"},        // unfinished
           {"hermes", "<tool_call>{\"name\": \"f\"}</tool_call>"},              // no arguments
           {"hermes", "<tool_call>{\"name\": 3, \"arguments\": {}}</tool_call>"}, // a name that is no string
           {"hermes", "<tool_call>not json</tool_call>"},
           {"hermes", "<tool_call>{\"name\": \"f\", \"arguments\": \"[1]\"}</tool_call>"}, // arguments not an object
           {"json", "The answer is {\"name\": \"f\", \"arguments\": {}}"},
           {"json", "{\"name\": \"f\", \"arguments\": {}}; garbage"},
           {"json", "{\"names\": \"f\"}"},
           {"other", "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"},
       }) {
    std::vector<ToolCall> calls{{"kept", "{}"}};
    std::string content = "kept";
    EXPECT_FALSE(parseToolCalls(parser, text, calls, content)) << parser << ": " << text;
    EXPECT_EQ(calls.size(), 1u);
    EXPECT_EQ(content, "kept");
  }
}

TEST(ToolCalls, MistralCallsAfterTheirMarker) {
  std::vector<ToolCall> calls;
  std::string content;
  // Mistral's v3 tokenizer: a JSON array of calls.
  ASSERT_TRUE(parseToolCalls("mistral",
                             "Sure. [TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, "
                             "{\"name\": \"now\", \"arguments\": {}}]",
                             calls, content));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_EQ(calls[1].name, "now");
  EXPECT_EQ(calls[1].arguments, "{}");
  EXPECT_EQ(content, "Sure.");
  // v11 on: NAME[ARGS]{...} per call, each after its own marker or not, a
  // call id dropped.
  ASSERT_TRUE(parseToolCalls("mistral",
                             "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\", \"days\": [1, 2]}"
                             "[TOOL_CALLS]lookup[CALL_ID]a1B2c3D4e[ARGS]{\"q\": \"x [ARGS] y\"}",
                             calls, content));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments, "{\"city\": \"Rome\", \"days\": [1, 2]}");
  EXPECT_EQ(calls[1].name, "lookup");
  EXPECT_EQ(calls[1].arguments, "{\"q\": \"x [ARGS] y\"}");
  EXPECT_EQ(content, "");
  for (const std::string text : {
           "no marker {\"name\": \"f\", \"arguments\": {}}",
           "[TOOL_CALLS] [{\"name\": \"f\"}]",                  // no arguments
           "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}", // unfinished array
           "[TOOL_CALLS]f[ARGS]{\"a\": 1",                        // unfinished object
           "[TOOL_CALLS]f{\"a\": 1}",                             // no [ARGS]
           "[TOOL_CALLS]two words[ARGS]{}",                       // not a name
           "[TOOL_CALLS]f[ARGS][1, 2]",                           // arguments not an object
           "[TOOL_CALLS]",                                        // nothing after the marker
       }) {
    std::vector<ToolCall> kept{{"kept", "{}"}};
    std::string c = "kept";
    EXPECT_FALSE(parseToolCalls("mistral", text, kept, c)) << text;
    EXPECT_EQ(kept.size(), 1u);
    EXPECT_EQ(c, "kept");
  }
}
