// The chat template renderer's bounds (runtime/chat/JinjaDetail.h): a
// template is a program from a model's files, so one that loops, nests or
// grows its values without end must stop with an error naming why -- never
// run out of memory, overflow the stack, leak or hang -- while the long
// conversations a server really renders go through. (What it renders is
// checked against Python's jinja2 by test/chat/jinja_test.py.)
#include "runtime/chat/ChatTemplate.h"
#include "runtime/chat/Jinja.h"
#include "runtime/format/Json.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace kiln::jinja;
using kiln::Status;

namespace {

Status renderText(const std::string &source, std::string &out, Dict ctx = {}) {
  Template t;
  if (Status s = Template::parse(source, t); !s)
    return s;
  return t.render(ctx, out);
}

std::string rendered(const std::string &source, Dict ctx = {}) {
  std::string out;
  Status s = renderText(source, out, std::move(ctx));
  EXPECT_TRUE(s.isOk()) << source << ": " << s.message();
  return out;
}

void expectRefused(const std::string &source, const std::string &why) {
  std::string out = "poison";
  Status s = renderText(source, out);
  EXPECT_FALSE(s.isOk()) << source;
  EXPECT_NE(s.message().find(why), std::string::npos) << source << ": " << s.message();
  EXPECT_TRUE(out.empty()) << source;
}

} // namespace

TEST(Jinja, RunawayTemplatesStopWithTheirReason) {
  // Each found by fuzz_jinja or written to the same pattern: a value grown
  // past every bound within a few steps.
  const std::pair<const char *, const char *> cases[] = {
      // joined over its own characters until the list of them is too long
      {"{{ ('ab' * 3000)|join('0123456789')|join('0123456789')|join('-')|list|length }}", "characters made into a list"},
      {"{% for c in 'x' * 60000000 %}{% endfor %}", "characters made into a list"},
      // nested one level a loop iteration (through a namespace)
      {"{% set n = namespace(l=[]) %}{% for i in range(100000) %}{% set n.l = [n.l] %}{% endfor %}{{ n.l }}",
       "nested over 200 deep"},
      {"{% set n = namespace(d={}) %}{% for i in range(3000) %}{% set n.d = dict(a=n.d) %}{% endfor %}",
       "nested over 200 deep"},
      // a list holding itself twice a level: printing it doubles a level
      {"{% set n = namespace(a=[1]) %}{% for i in range(150) %}{% set n.a = [n.a, n.a] %}{% endfor %}{{ n.a }}",
       "size limit"},
      // ... and comparing two such (2^150 steps)
      {"{% set n = namespace(a=[1], b=[1]) %}{% for i in range(150) %}{% set n.a = [n.a, n.a] %}"
       "{% set n.b = [n.b, n.b] %}{% endfor %}{{ n.a == n.b }}",
       "worked through over"},
      // quadratic filters over a long list
      {"{{ range(1000000)|unique|length }}", "worked through over"},
      {"{{ range(1000000)|map('string')|sort|length }}", "worked through over"},
      // a list of long strings grown a loop iteration
      {"{% set n = namespace(l=[]) %}{% set s = 'x' * 60000000 %}{% for i in range(100) %}"
       "{% set n.l = n.l + [s ~ i] %}{% endfor %}",
       "worked through over"},
      {"{{ ('a ' * 30000000).split()|length }}", "pieces"},
      {"{{ 'x' * 70000000 }}", "over the output limit"},
      {"{{ ('x' * 40000000) ~ ('y' * 40000000) }}", "size limit"},
      {"{{ ('a\\n' * 30000000)|indent(8) }}", "size limit"},
      {"{% set s = 'x' * 60000000 %}{% for i in range(1000) %}{{ s|length }}{% endfor %}", "worked through over"},
      {"{% for i in range(5000000) %}{% endfor %}", "ran too long"},
      {"{% for i in range(1000000) %}{% endfor %}", "worked through over"}, // its loop variables
      // strip with a long set of characters over a long text: each byte
      // looked up in a table (it was a search of the set a byte: 10^15 steps)
      {"{{ ('a' * 60000000).strip('b' * 60000000 ~ 'a')|length }}{{ 'x' * 70000000 }}", "over the output limit"},
      // a namespace has no JSON form (Python's json.dumps refuses it too)
      {"{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns|tojson }}", "not JSON serializable"},
  };
  for (const auto &[source, why] : cases)
    expectRefused(source, why);
}

TEST(Jinja, NamespacesHoldingThemselvesOrLongChainsEndCleanly) {
  // Under ASan/LSan (the CI's first build) a cycle left behind is a leak and
  // a chain freed recursively a stack overflow.
  EXPECT_EQ(rendered("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns.me.me.a }} {{ ns == ns.me }}"), "1 True");
  EXPECT_EQ(rendered("{% set a = namespace() %}{% set b = namespace(a=a) %}{% set a.b = b %}{{ a.b.a.b is defined }}"),
            "True");
  EXPECT_EQ(rendered("{% set n = namespace(p=none) %}{% for i in range(50000) %}"
                     "{% set n.p = namespace(p=n.p, i=i) %}{% endfor %}{{ n.p.p.i }}"),
            "49998");
}

TEST(Jinja, LongValuesAreSharedNotCopied) {
  // A 40 MB message looked up, passed and compared on each of 2,000 loop
  // iterations: copies would be 80 GB of work; shared, it renders.
  std::string big(40u << 20, 'x');
  Dict ctx = {{"big", Value::of(big)}};
  EXPECT_EQ(rendered("{% set n = namespace(k=0) %}{% for i in range(2000) %}{% set b = big %}"
                     "{% if b is string and loop.previtem is defined %}{% set n.k = n.k + 1 %}{% endif %}"
                     "{% endfor %}{{ n.k }} {{ (big == big) }}",
                     ctx),
            "1999 True");
}

TEST(Jinja, LongConversationsRenderWithinTheBounds) {
  // 2,000 messages of 1 to 4 KB of random text (about 5 MB, a million-token
  // context) through a ChatML template with tools and reasoning: the bounds
  // leave room for it, and every message arrives whole.
  kiln::chat::ChatTemplate t;
  ASSERT_TRUE(kiln::chat::loadChatTemplate(KILN_SOURCE_DIR "/test/chat/templates/chatml-tools", t).isOk());
  std::mt19937 rng(7);
  List messages;
  size_t total = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string text(1024 + rng() % 3072, ' ');
    for (char &c : text)
      c = static_cast<char>('a' + rng() % 26);
    total += text.size();
    messages.push_back(Value::of(Dict{{"role", Value::of(i % 2 ? "assistant" : "user")}, {"content", Value::of(text)}}));
  }
  std::string out = "poison";
  Status s = kiln::chat::applyChatTemplate(t, Value::of(std::move(messages)), Value(), true, out);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_GT(out.size(), total);
}

TEST(Jinja, JsonObjectsOfManyKeysConvertInOrder) {
  // A request's object of 200,000 keys: converted at once, not key by key
  // (a quadratic search before), in the request's order.
  std::string text = "{";
  for (int i = 0; i < 200000; ++i)
    text += (i ? ", \"k" : "\"k") + std::to_string((i * 7919) % 200000) + "\": " + std::to_string(i);
  text += "}";
  kiln::format::JsonValue j;
  ASSERT_TRUE(kiln::format::parseJson(text, j).isOk());
  Value v = Value::fromJson(j);
  ASSERT_EQ(v.kind, Value::Kind::Dict);
  ASSERT_EQ(v.dict->size(), 200000u);
  EXPECT_EQ((*v.dict)[1].first, "k7919");
  EXPECT_EQ((*v.dict)[199999].second.integer, 199999);
  std::string out;
  ASSERT_TRUE(toJson(v, out).isOk());
  EXPECT_EQ(out.substr(0, 22), "{\"k0\": 0, \"k7919\": 1, ");
}
