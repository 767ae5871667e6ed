//===- kiln-chat-template.cpp - a model's chat template, rendered ---------===//
//
//   kiln-chat-template MODEL_DIR CASES.json
//   kiln-chat-template --jinja TEMPLATE CONTEXTS.json
//
// The first applies MODEL_DIR's chat template (runtime/chat/ChatTemplate.h)
// to each case of CASES.json, a JSON array of {"messages": [...], "tools":
// [...] or absent, "add_generation_prompt": bool}; the second renders the
// Jinja file TEMPLATE with each object of CONTEXTS.json as its variables.
// Prints a JSON array with, for each, {"text": ...} or {"error": ...}.
// test/chat/jinja_test.py compares both with Python's jinja2.
//
//===----------------------------------------------------------------------===//
#include "runtime/chat/ChatTemplate.h"
#include "runtime/format/Json.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace {

// `s` as a JSON string (the renderer's tojson).
std::string quote(const std::string &s) {
  std::string out;
  (void)kiln::jinja::toJson(kiln::jinja::Value::of(s), out); // (a string always converts)
  return out;
}

bool readAll(const char *path, std::string &out) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return static_cast<bool>(f);
}

int fail(const std::string &m) {
  std::fprintf(stderr, "kiln-chat-template: %s\n", m.c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  using namespace kiln;
  bool raw = argc == 4 && std::strcmp(argv[1], "--jinja") == 0;
  if (argc != 3 && !raw) {
    std::fprintf(stderr, "usage: kiln-chat-template MODEL_DIR CASES.json\n"
                         "       kiln-chat-template --jinja TEMPLATE CONTEXTS.json\n");
    return 2;
  }
  std::string casesText;
  format::JsonValue cases;
  const char *casesPath = argv[raw ? 3 : 2];
  if (!readAll(casesPath, casesText) || !format::parseJson(casesText, cases) || !cases.isArray())
    return fail(std::string(casesPath) + " is not a JSON array");
  chat::ChatTemplate t;
  if (raw) {
    std::string source;
    if (!readAll(argv[2], source))
      return fail(std::string("cannot read ") + argv[2]);
    if (Status s = jinja::Template::parse(source, t.program); !s)
      return fail(s.message());
  } else {
    if (Status s = chat::loadChatTemplate(argv[1], t); !s)
      return fail(s.message());
    if (!t.present())
      return fail(std::string(argv[1]) + " has no chat template");
  }
  std::string out = "[";
  for (size_t i = 0; i < cases.asArray().size(); ++i) {
    const format::JsonValue &c = cases.asArray()[i];
    if (!c.isObject())
      return fail("case " + std::to_string(i) + " is not an object");
    std::string text;
    Status s = Status::ok();
    if (raw) {
      jinja::Value ctx = jinja::Value::fromJson(c);
      s = t.program.render(*ctx.dict, text);
    } else {
      const format::JsonValue *m = c.find("messages"), *tools = c.find("tools"), *g = c.find("add_generation_prompt");
      if (!m)
        return fail("case " + std::to_string(i) + " has no messages");
      s = chat::applyChatTemplate(t, jinja::Value::fromJson(*m),
                                  tools && !tools->isNull() ? jinja::Value::fromJson(*tools) : jinja::Value(),
                                  g && g->isBool() && g->asBool(), text);
    }
    out += i ? ",\n" : "\n";
    out += s ? "{\"text\": " + quote(text) + "}" : "{\"error\": " + quote(s.message()) + "}";
  }
  std::printf("%s\n]\n", out.c_str());
  return 0;
}
