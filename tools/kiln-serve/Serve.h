//===- Serve.h - kiln-serve: OpenAI-style completions over HTTP -*- C++ -*-===//
//
// The request side of the server, apart from the sockets: a JSON body of
// POST /v1/completions parsed into the runtime's request options (every
// field kiln does not compute refused by name), and the JSON it answers
// with. kiln-serve.cpp puts these behind cpp-httplib.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TOOLS_KILN_SERVE_SERVE_H
#define KILN_TOOLS_KILN_SERVE_SERVE_H

#include "runtime/chat/Jinja.h"
#include "runtime/core/StepLoop.h"
#include "runtime/support/Status.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::serve {

/// One completion request, as parsed.
struct CompletionRequest {
  std::string model;              // empty: the server's
  std::string promptText;         // a text prompt, or
  std::vector<int64_t> promptIds; // token ids (when `idsGiven`)
  bool idsGiven = false;
  std::vector<std::string> stop;  // stop strings
  bool stream = false;
  int64_t n = 1;          // choices: sequences of their own over the prompt (up to 16)
  bool seedGiven = false; // `seed` was given (choice i samples with seed + i)
  int64_t logprobs = -1; // -1: none; N: each token's log-probability and the N most likely (up to 20)
  rt::RequestOptions options;
  // A chat request (POST /v1/chat/completions): its messages and tools as
  // the chat template sees them (a message's content parts joined into one
  // text), whether the template opens the assistant's turn, and whether a
  // stream ends with a usage chunk (stream_options.include_usage).
  bool chat = false;
  jinja::Value messages, tools;
  bool addGenerationPrompt = true;
  bool includeUsage = false;
  bool toolChoiceNone = false; // tool_choice "none": the answer is not searched for calls
};

/// Parses `body` (JSON) into `out`: prompt (a string or an array of token
/// ids), max_tokens (default 16), temperature (default 1), top_p, top_k,
/// min_p, seed, stop (a string or up to 16 strings), stop_token_ids
/// (vLLM's: ids that end the request), stream, n (1 to 16), logprobs (0 to
/// 20), presence_penalty, frequency_penalty,
/// repetition_penalty, vLLM's ignore_eos and min_tokens; `user` is ignored. Anything else -- echo, best_of,
/// suffix, logit_bias, an unknown field -- is refused with an error naming
/// it.
Status parseCompletion(const std::string &body, CompletionRequest &out);

/// Parses a chat request's `body`: messages (required: objects with a
/// string role, and content a string, null, or text parts), tools (an
/// array, handed to the chat template), tool_choice ("auto" or "none": kiln
/// does not constrain the output to a call), max_tokens or
/// max_completion_tokens, logprobs (true/false) with top_logprobs (0 to
/// 20), stream_options.include_usage, add_generation_prompt (vLLM's), and
/// the sampling fields of parseCompletion. Refused by name: anything else
/// (response_format, functions, an image part, ...).
Status parseChat(const std::string &body, CompletionRequest &out);

/// A function call a model wrote in its answer: the function's name and
/// its arguments as JSON text.
struct ToolCall {
  std::string name, arguments;
};

/// The tool calls in a chat answer `text` in the format `parser` names --
/// "hermes": `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
/// blocks (Qwen, Hermes); "json": the whole answer one JSON object
/// `{"name": ..., "parameters" or "arguments": {...}}`, or several
/// separated by ';' (Llama 3.1); "mistral": `[TOOL_CALLS]` then a JSON
/// array of calls, or `NAME[ARGS]{...}` per call (Mistral's v11 tokenizer
/// on; `[CALL_ID]ID` after the name dropped) -- and in `content` the text outside them,
/// trimmed. False, with nothing changed, where the text holds no
/// well-formed call (it is then an ordinary answer).
bool parseToolCalls(const std::string &parser, const std::string &text, std::vector<ToolCall> &calls,
                    std::string &content);

/// `s` as a JSON string literal (quotes included; `s` is UTF-8).
std::string jsonString(const std::string &s);
/// {"index": ..., "text": ..., "logprobs": ..., "finish_reason": ...}: one
/// choice of an answer or event (`logprobs` JSON; `finish` empty: null).
std::string choiceJson(size_t index, const std::string &text, const std::string &logprobs, const std::string &finish);
/// A chat choice: {"index": ..., "message": {"role": "assistant",
/// "content": ...}, ...} or, for a stream's chunk (`delta`), {"index": ...,
/// "delta": {...}, ...} whose delta holds the role (`role`) and the text, if
/// any.
/// With `toolCalls` (a JSON array, toolCallsJson's) the message holds them,
/// and its content is null when `text` is empty.
std::string chatChoiceJson(size_t index, const std::string &text, const std::string &logprobs,
                           const std::string &finish, bool delta, bool role, const std::string &toolCalls = "");
/// `calls` as a chat message's `tool_calls` (ids idPrefix0, idPrefix1, ...;
/// `delta`: each with its index, as a stream's chunk carries them).
std::string toolCallsJson(const std::vector<ToolCall> &calls, const std::string &idPrefix, bool delta);
/// {"prompt_tokens": ..., "completion_tokens": ..., "total_tokens": ...}.
std::string usageJson(size_t prompt, size_t completion);
/// {"error": {"message": ..., "type": ...}}.
std::string errorBody(const std::string &message, const std::string &type);

/// A generated token with its log-probability and its most likely
/// alternatives (most first).
struct TokenLp {
  int64_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int64_t, float>> top;
};

/// The legacy completions' `logprobs` object for `lps`: each token's text,
/// its log-probability, the `top` most likely with theirs (null for 0), and
/// each token's byte offset in the text of the tokens before it (the first
/// at `offset`, which ends past the last).
Status logprobsJson(const tok::Tokenizer &t, const std::vector<TokenLp> &lps, int64_t top, size_t &offset,
                    std::string &out);
/// The chat completions' `logprobs` object: {"content": [{"token",
/// "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}.
Status chatLogprobsJson(const tok::Tokenizer &t, const std::vector<TokenLp> &lps, int64_t top, size_t &,
                        std::string &out);

} // namespace kiln::serve

#endif
