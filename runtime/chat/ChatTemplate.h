//===- ChatTemplate.h - a model's chat template, loaded and applied -*- C++ -*-===//
//
// What transformers' apply_chat_template does before tokenizing: the model
// directory's template (chat_template.jinja, as transformers 5 writes it,
// else tokenizer_config.json's `chat_template`: a string, or a list of
// named templates of which "default" is taken) rendered with `messages`,
// `tools`, `add_generation_prompt` and the tokenizer's `bos_token`,
// `eos_token`, `pad_token` and `unk_token` (runtime/chat/Jinja.h).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CHAT_CHATTEMPLATE_H
#define KILN_RUNTIME_CHAT_CHATTEMPLATE_H

#include "runtime/chat/Jinja.h"
#include "runtime/support/Status.h"

#include <string>

namespace kiln::format {
class JsonValue;
}

namespace kiln::chat {

struct ChatTemplate {
  jinja::Template program;
  std::string origin;                            // the file it came from
  jinja::Dict tokens;                            // bos_token, eos_token, ... as the template sees them
  bool present() const { return !program.empty(); }
};

/// Loads `dir`'s chat template into `out`. A directory without one leaves
/// `out` empty (present() false) and is no error; a template that does not
/// parse, or a tokenizer_config.json that is not JSON, is.
Status loadChatTemplate(const std::string &dir, ChatTemplate &out);

/// Replaces `t`'s template with `source` (a Jinja file's text, from
/// `origin`), keeping the special tokens loadChatTemplate found.
Status setChatTemplateSource(ChatTemplate &t, const std::string &source, const std::string &origin);

/// Renders `messages` (a list of dicts with a string `role`), with `tools`
/// (a list; undefined or none for none) and `addGenerationPrompt`.
Status applyChatTemplate(const ChatTemplate &t, const jinja::Value &messages, const jinja::Value &tools,
                         bool addGenerationPrompt, std::string &out);

} // namespace kiln::chat

#endif
