//===- ChatTemplate.cpp - a model's chat template, loaded and applied -----===//
#include "runtime/chat/ChatTemplate.h"

#include "runtime/format/Json.h"

#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace kiln::chat {

namespace {

bool readText(const std::string &path, std::string &out) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return false;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

} // namespace

Status loadChatTemplate(const std::string &dir, ChatTemplate &out) {
  out = ChatTemplate();
  std::string source, configText;
  std::string origin;
  format::JsonValue config;
  const std::string configPath = dir + "/tokenizer_config.json";
  if (readText(configPath, configText)) {
    if (Status s = format::parseJson(configText, config); !s)
      return Status::error(configPath + ": " + s.message());
    // Special tokens: a string, or an AddedToken object with `content`.
    for (const char *name : {"bos_token", "eos_token", "pad_token", "unk_token"}) {
      const format::JsonValue *v = config.isObject() ? config.find(name) : nullptr;
      if (v && v->isObject())
        v = v->find("content");
      if (v && v->isString())
        out.tokens.emplace_back(name, jinja::Value::of(v->asString()));
    }
  }
  if (readText(dir + "/chat_template.jinja", source)) {
    origin = dir + "/chat_template.jinja";
  } else if (const format::JsonValue *t = config.isObject() ? config.find("chat_template") : nullptr) {
    origin = configPath;
    if (t->isString()) {
      source = t->asString();
    } else if (t->isArray()) {
      for (const format::JsonValue &named : t->asArray()) {
        const format::JsonValue *n = named.isObject() ? named.find("name") : nullptr;
        const format::JsonValue *body = named.isObject() ? named.find("template") : nullptr;
        if (n && n->isString() && n->asString() == "default" && body && body->isString())
          source = body->asString();
      }
      if (source.empty())
        return Status::error(configPath + ": chat_template lists no template named \"default\"");
    } else if (!t->isNull()) {
      return Status::error(configPath + ": chat_template must be a string or a list of named templates");
    }
  }
  if (source.empty())
    return Status::ok();
  if (Status s = jinja::Template::parse(source, out.program); !s)
    return Status::error(origin + ": " + s.message());
  out.origin = origin;
  return Status::ok();
}

Status setChatTemplateSource(ChatTemplate &t, const std::string &source, const std::string &origin) {
  jinja::Template program;
  if (Status s = jinja::Template::parse(source, program); !s)
    return Status::error(origin + ": " + s.message());
  t.program = std::move(program);
  t.origin = origin;
  return Status::ok();
}

Status applyChatTemplate(const ChatTemplate &t, const jinja::Value &messages, const jinja::Value &tools,
                         bool addGenerationPrompt, std::string &out) {
  if (!t.present())
    return Status::error("the model has no chat template");
  jinja::Dict context = t.tokens;
  context.emplace_back("messages", messages);
  context.emplace_back("tools", tools.defined() ? tools : jinja::Value::none());
  context.emplace_back("add_generation_prompt", jinja::Value::of(addGenerationPrompt));
  return t.program.render(context, out);
}

} // namespace kiln::chat
