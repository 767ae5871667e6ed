"""kiln's Jinja subset (runtime/chat/Jinja.cpp) against Python's jinja2.

Two parts, both through tools/kiln-chat-template:
  1. snippets: small templates over the constructs chat templates use
     (whitespace control, loops and `loop`, scoping, namespace, filters,
     tests, slices, methods, tojson, Python's str() of values), each
     rendered by both over the same context; the texts must be equal, or
     both must fail;
  2. chat templates: the fixtures in test/chat/templates (in the styles of
     Llama 3, ChatML with tools and reasoning (Qwen2/Qwen3), Mistral
     [INST] and a tool-calling template with a system prompt) applied to
     conversations with both, as transformers' apply_chat_template sets
     jinja2 up: trim_blocks, lstrip_blocks, loop controls, a json.dumps
     tojson, raise_exception, strftime_now, the tokenizer's special tokens.

  python3 jinja_test.py BUILD_BIN_DIR
"""
import json, os, subprocess, sys, tempfile
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))


class Generation(Extension):
    """{% generation %}...{% endgeneration %}: the body as is (transformers
    marks the assistant's tokens with it)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


ENV = environment()


def py_render(source, ctx):
    try:
        return {"text": ENV.from_string(source).render(**ctx)}
    except Exception as e:  # any failure: kiln must fail too
        return {"error": f"{type(e).__name__}: {e}"}


def kiln(bin_dir, args, cases):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cases, f)
    try:
        p = subprocess.run([os.path.join(bin_dir, "kiln-chat-template"), *args, f.name], capture_output=True,
                           text=True, timeout=60)
    finally:
        os.unlink(f.name)
    return p


MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": " What's 2+2? \n"}]
CTX = {"messages": MSGS, "n": 3, "x": 2.5, "s": "  Hello World  ", "items": [3, 1, 2], "empty": [],
       "d": {"b": 1, "a": [1, 2, {"c": None}], "s": "q\"uote\n\u00e9"}, "t": True, "none": None,
       "words": ["a", "b", "c"], "big": 12345678901234, "tiny": 1e-7, "neg": -7}

# (template, context or None for CTX). The renderers must agree on each.
SNIPPETS = [
    "plain text only",
    "{{ 1 + 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 3 * 'ab' }}",
    "{{ x }} {{ x * 2 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ tiny }} {{ 1.0 }} {{ 100.0 / 3 }} {{ big * 1.0 }}",
    "{{ none }} {{ t }} {{ not t }} {{ undefined_thing }}|{{ items }} {{ words }} {{ d }}",
    "{{ 'a' ~ 1 ~ none ~ t }} {{ 'x' + 'y' }} {{ items + [4] }}",
    "{% for m in messages %}{{ loop.index }}/{{ loop.length }} {{ m.role }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% for m in messages %}{{ loop.index0 }}{{ loop.first }}{{ loop.revindex }}{{ loop.revindex0 }}"
    "{% if loop.previtem is defined %}<{{ loop.previtem.role }}{% endif %}"
    "{% if loop.nextitem is defined %}>{{ loop.nextitem.role }}{% endif %};{% endfor %}",
    "{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.content | trim }}|{% endfor %}",
    "{% for i in empty %}x{% else %}empty{% endfor %} {% for k in d %}{{ k }}{% endfor %} "
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for c in 'h\u00e9!' %}[{{ c }}]{% endfor %}",
    "{% set x = 1 %}{% for i in range(3) %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(total=0, seen=false) %}{% for i in items %}{% set ns.total = ns.total + i %}"
    "{% if i == 2 %}{% set ns.seen = true %}{% endif %}{% endfor %}{{ ns.total }} {{ ns.seen }}",
    "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for i in range(1, 10, 3) %}{{ i }}{% endfor %} {% for i in range(5, 0, -2) %}{{ i }}{% endfor %}",
    "{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %} {{ 'yes' if t else 'no' }} {{ 'a' if none }}.",
    "{{ s | trim }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxhixx'.strip('x') }}|{{ s | upper }}|"
    "{{ s | lower }}|{{ 'hello world' | title }}|{{ 'hELLO' | capitalize }}",
    "{{ items | length }} {{ 'h\u00e9llo' | length }} {{ d | length }} {{ items | first }} {{ items | last }} "
    "{{ words | join(', ') }} {{ items | join }} {{ items | sum }} {{ items | min }} {{ items | max }} "
    "{{ items | sort }} {{ items | reverse | list }} {{ 'abc' | reverse }} {{ [1, 2, 1, 3] | unique | list }}",
    "{{ missing | default('dflt') }} {{ '' | default('e', true) }} {{ none | default('n') }} {{ missing | d('x') }}",
    "{{ '42' | int + 1 }} {{ 'x' | int }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 3 | float }} {{ 7 | string }}",
    "{{ 'a-b-c'.split('-') }} {{ ' a  b '.split() }} {{ 'a-b-c'.split('-', 1) }} {{ 'a.b'.replace('.', '::') }} "
    "{{ 'aaa' | replace('a', 'b', 2) }} {{ 'hello'.startswith('he') }} {{ 'hello'.endswith(('x', 'lo')) }} "
    "{{ 'hello'.find('l') }} {{ 'hello'.count('l') }} {{ '-'.join(words) }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }}",
    "{{ words[0] }}{{ words[-1] }}{{ words[1:] }}{{ words[:-1] }}{{ words[::-1] }}{{ 'hello'[1:3] }}"
    "{{ 'hello'[::2] }}{{ words[5] }}|{{ messages[0]['role'] }}{{ messages[-1].content }}",
    "{{ 'a' in 'cat' }} {{ 2 in items }} {{ 'b' in d }} {{ 'z' not in d }} {{ 5 not in items }}",
    "{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ none is none }} {{ n is number }} "
    "{{ s is string }} {{ d is mapping }} {{ items is iterable }} {{ n is odd }} {{ n is even }} "
    "{{ 9 is divisibleby(3) }} {{ t is true }} {{ t is false }} {{ n is integer }} {{ x is float }} "
    "{{ 'ab' is lower }} {{ n is not none }} {{ messages[0].role is eq('system') }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} "
    "{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='role') | join(',') }} "
    "{{ [0, 1, 2, '', 'x'] | select | list }} {{ items | select('odd') | list }} {{ items | reject('odd') | list }}",
    "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ messages[:2] | tojson }}|{{ d | tojson(sort_keys=true) }}"
    "|{{ [1.5, 1e-7, true, none, 'x'] | tojson(separators=(',', ':')) }}|{{ {} | tojson }}|{{ [] | tojson(indent=4) }}",
    "{{ d | items | list }} {{ d.keys() | list }} {{ d.values() | list | length }} {{ d.get('b') }} "
    "{{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ d | dictsort }}",
    "{{ 'line1\nline2\n\nline4' | indent(2) }}|{{ 'a\nb' | indent(4, true) }}|{{ 'one two  three' | wordcount }}",
    "{{ (1, 2) }} {{ [1, [2, 'x']] }} {{ {'k': 'v', 'n': none} }} {{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }}",
    "{% set greeting %}Hello {{ messages[1].role }}!{% endset %}[{{ greeting }}]",
    "{% generation %}gen {{ n }}{% endgeneration %}",
    "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user, not ' "
    "~ messages[0].role) }}{% endif %}never",
    "{{ undefined_thing.attr }}",
    "{{ 1 / 0 }}",
    "{{ items + 'x' }}",
    "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
    "{{ [3, 1, 2] | sort | first }} {{ messages | map(attribute='content') | map('trim') | join('|') }}",
    "{{ n > 2 and n < 5 }} {{ n > 5 or 'fallback' }} {{ none or 0 or 'last' }} {{ 1 and 2 }} {{ (n + 1) * 2 }}",
    "{{- '  stripped  ' -}}  \n  {{ 'tight' }}\n  {%- if t %} left{% endif -%}\n  right",
    # trim_blocks and lstrip_blocks
    "line one\n  {% if t %}\n    inside\n  {% endif %}\nline after\n{# a comment #}\nend\n",
    "a\n    {%+ if t %}kept indent{% endif %}\nb\n  {% if t +%}\nno trim after\n{% endif %}",
    "{% raw %}{{ not evaluated }} {% if %}{% endraw %} after",
    "{{ 'x'\n  ~ 'y' }}\n{%\n  set z = 3\n%}\n{{ z }}",
    "{{ 'ünïcödé ✓' | upper }} {{ 'ÀB' | lower }} {{ 'é' * 3 }} {{ 'ΑΒΓ жук' | lower }} {{ 'привет мир' | title }} "
    "{{ 'éCOLE' | capitalize }} {{ 'hello-world x2y(ab' | title }} {{ 'x2y ab-c'.title() }}",
    "{% for m in messages %}{% if loop.index0 % 2 == 0 %}{{ m.role[0] | upper }}{% endif %}{% endfor %}",
    "{{ range(3) | list }} {{ x | round }} {{ 3.5 | round }} {{ 2.567 | round(1) }} {{ 2.5 | round(0, 'floor') }} "
    "{{ -3 | abs }} {{ -2.5 | abs }}",
]

# Constructs refused at parse time by kiln (and not needed by chat templates):
# the renderer must say so, naming them.
REFUSED = [
    ("{% macro m() %}x{% endmacro %}", "macro"),
    ("{% include 'other' %}", "include"),
    ("{{ x | urlencode }}", "urlencode"),
    ("{{ x is sameas_unknown }}", "sameas_unknown"),
]

CHATS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hey."}, {"role": "user", "content": "Tell me a joke.\n"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
     {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nd"}, {"role": "user", "content": "e"}],
    [{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Paris?"},
     {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
         "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
     {"role": "tool", "content": "{\"temp\": 21}", "name": "get_weather"},
     {"role": "assistant", "content": "It is 21 C."}, {"role": "user", "content": "Thanks!"}],
    [{"role": "assistant", "content": "I start"}, {"role": "user", "content": "odd order"}],
    [{"role": "user", "content": "unicode: \u00e9\u4e2d\U0001F600 \"quotes\" \\ back"}],
]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}]


def special_tokens(model_dir):
    path = os.path.join(model_dir, "tokenizer_config.json")
    out = {}
    if os.path.exists(path):
        cfg = json.load(open(path))
        for k in ("bos_token", "eos_token", "pad_token", "unk_token"):
            v = cfg.get(k)
            if isinstance(v, dict):
                v = v.get("content")
            if isinstance(v, str):
                out[k] = v
    return out


def chat_source(model_dir):
    p = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(p):
        return open(p).read()
    t = json.load(open(os.path.join(model_dir, "tokenizer_config.json")))["chat_template"]
    if isinstance(t, list):  # named templates: transformers takes "default"
        t = next(x["template"] for x in t if x["name"] == "default")
    return t


def main():
    bin_dir = sys.argv[1]
    failures = []
    cases = [CTX] * len(SNIPPETS)
    for i, src in enumerate(SNIPPETS):
        with tempfile.NamedTemporaryFile("w", suffix=".jinja", delete=False) as f:
            f.write(src)
        try:
            p = kiln(bin_dir, ["--jinja", f.name], [CTX])
        finally:
            os.unlink(f.name)
        want = py_render(src, CTX)
        if p.returncode != 0:
            got = {"error": p.stderr.strip()}
        else:
            got = json.loads(p.stdout)[0]
        if ("error" in want) != ("error" in got) or got.get("text") != want.get("text"):
            failures.append(f"snippet {i}: {src!r}\n  jinja2: {want}\n  kiln:   {got}")
    for src, name in REFUSED:
        with tempfile.NamedTemporaryFile("w", suffix=".jinja", delete=False) as f:
            f.write(src)
        try:
            p = kiln(bin_dir, ["--jinja", f.name], [CTX])
        finally:
            os.unlink(f.name)
        if p.returncode == 0 or name not in p.stderr:
            failures.append(f"refused {src!r}: exit {p.returncode}, {p.stderr.strip()!r} does not name '{name}'")
    templates = os.path.join(HERE, "templates")
    rendered = 0
    for name in sorted(os.listdir(templates)):
        model_dir = os.path.join(templates, name)
        source, toks = chat_source(model_dir), special_tokens(model_dir)
        chat_cases = []
        for msgs in CHATS:
            for tools in (None, TOOLS):
                for gen in (False, True):
                    c = {"messages": msgs, "add_generation_prompt": gen}
                    if tools:
                        c["tools"] = tools
                    chat_cases.append(c)
        p = kiln(bin_dir, [model_dir], chat_cases)
        if p.returncode != 0:
            failures.append(f"{name}: kiln-chat-template failed: {p.stderr.strip()}")
            continue
        got = json.loads(p.stdout)
        for c, g in zip(chat_cases, got):
            want = py_render(source, dict(toks, messages=c["messages"], tools=c.get("tools"),
                                          add_generation_prompt=c["add_generation_prompt"]))
            if ("error" in want) != ("error" in g) or g.get("text") != want.get("text"):
                failures.append(f"{name}: {json.dumps(c)[:200]}\n  jinja2: {want}\n  kiln:   {g}")
            rendered += "text" in g
    for f in failures:
        print("FAIL", f)
    print(f"{len(SNIPPETS)} snippets, {len(REFUSED)} refusals, {rendered} chat renders; {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
