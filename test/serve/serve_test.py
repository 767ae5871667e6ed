#!/usr/bin/env python3
"""kiln-serve on the tiny Llama (host device), through its HTTP API:

- /health, /v1/models, /metrics;
- a greedy completion's text is the tokenizer's text of kiln-run's tokens
  for the same prompt (pip's `tokenizers`, special tokens skipped);
- the same request streamed: its events add up to that text, then one event
  with the finish reason and usage, then [DONE];
- a stop string cuts the text before its first occurrence (finish_reason
  "stop"), streamed or not;
- a stop token id ends the output with that token;
- logprobs: each greedy token is the most likely of its top N, with its
  text and offset; streamed, the events' logprobs add up to the answer's;
- sixteen sampled requests sent at once (twice the engine's batch), each
  with its own seed, give each one's text alone (the batch does not change
  a request's tokens);
- errors: not JSON, an unknown or unsupported field, a wrong model, a prompt
  longer than the engine holds, ids outside the vocabulary, a 9 MB body,
  an unknown path -- each a 4xx with an OpenAI-style error naming the
  problem; the server goes on;
- a bounded load (240 requests from 16 clients, random lengths, streamed or
  not, stop strings, 10% of clients leaving mid-stream): every request a
  200, and after it nothing waits or runs and every KV page is back;
- /metrics: the counters and the time-to-first-token and inter-token
  latency histograms;
- a client that goes away mid-stream has its request cancelled;
- chat completions through a chat template ([INST]-style, --chat-template):
  the greedy answer equals a completion of the prompt Python's jinja2 renders
  from the same template (the fixture test/chat/templates/inst-style),
  streamed or not, with usage when stream_options asks; logprobs; the
  template's own error (roles out of order) and malformed chat requests
  answered 400; a server without a template answers chat 400 and still
  completes;
- n choices: choice i equals the request alone with seed + i, streamed or
  not, the usage summing them; without a seed they still differ;
- tools offered with --tool-call-parser hermes: an answer without a call is
  unchanged, and streamed whole at its end (the parsers themselves:
  unit.serve.ToolCalls.*);
- the official `openai` client against both endpoints, streamed and not;
- --api-key: 401 without the key, 200 with it;
- --max-waiting: past that many queued requests a new one gets 429 at once;
  vLLM's ignore_eos makes every admitted one run to max_tokens;
- SIGTERM: the server stops and exits 0.

  serve_test.py --bin build/bin --model test/models/hf/llama
"""
import argparse, http.client, json, os, random, re, shutil, signal, socket, subprocess, sys, tempfile, threading, \
    time
import urllib.error, urllib.request

from tokenizers import Tokenizer

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def start(bin_dir, engine, tokenizer, *extra):
    p = subprocess.Popen([f"{bin_dir}/kiln-serve", engine, "--device", "host", "--port", "0", "--tokenizer", tokenizer,
                          *extra], stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        sys.exit(f"kiln-serve did not start: {line}{p.stderr.read()}")
    # Keep draining its log so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, f"http://127.0.0.1:{m[1]}"


def call(url, path, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def complete(url, body):
    code, text = call(url, "/v1/completions", body)
    return code, json.loads(text)


def stream(url, body):
    code, text = call(url, "/v1/completions", dict(body, stream=True))
    events = [e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: ")]
    return code, events


def rendered_matches(url, convo, tmpl_src, tokens, what):
    """A greedy chat answer equals the completion of jinja2's rendering of
    the conversation; returns the chat answer and the completion."""
    import jinja_test
    rendered = jinja_test.ENV.from_string(tmpl_src).render(**tokens, messages=convo, tools=None,
                                                           add_generation_prompt=True)
    greedy = {"max_tokens": 12, "temperature": 0}
    code, want = complete(url, dict(greedy, prompt=rendered))
    check(code == 200, f"{what}: completion of the rendered chat: {code} {want}")
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo))
    r = json.loads(text)
    check(code == 200 and r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-"),
          f"{what}: chat: {code} {r}")
    if code == 200:
        check(r["choices"][0]["message"] == {"role": "assistant", "content": want["choices"][0]["text"]},
              f"{what}: chat answer {r['choices'][0]['message']} != the completion of jinja2's prompt "
              f"{want['choices'][0]['text']!r}")
        check(r["usage"] == want["usage"], f"{what}: chat usage {r['usage']} != {want['usage']}")
    return r, want


def chat_checks(url, tmpl_src, tokens):
    """/v1/chat/completions against /v1/completions of jinja2's rendering."""
    convo = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"},
             {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Name three colours."}]
    r, want = rendered_matches(url, convo, tmpl_src, tokens, "[INST]")
    code = 200 if "choices" in r else 400
    greedy = {"max_tokens": 12, "temperature": 0}
    if code != 200:
        return
    msg = r["choices"][0]["message"]
    check(r["choices"][0]["finish_reason"] == want["choices"][0]["finish_reason"], "chat finish reason")
    # Content as text parts gives the same prompt.
    parts = [dict(m, content=[{"type": "text", "text": m["content"][:3]}, {"type": "text", "text": m["content"][3:]}])
             for m in convo]
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=parts))
    check(code == 200 and json.loads(text)["choices"][0]["message"] == msg, f"text parts: {code} {text[:200]}")
    # n = 2, greedy: two equal answers, indexed.
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo, n=2))
    two = json.loads(text)
    check(code == 200 and [c["index"] for c in two["choices"]] == [0, 1] and
          all(c["message"] == msg for c in two["choices"]) and
          two["usage"]["completion_tokens"] == 2 * r["usage"]["completion_tokens"], f"chat n=2: {code} {text[:300]}")
    # Streamed: role first, deltas adding up, the finish reason, the usage chunk.
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo, stream=True,
                                                        stream_options={"include_usage": True}))
    events = [e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: ")]
    check(code == 200 and events[-1] == "[DONE]", f"chat stream: {code} {events[-2:]}")
    chunks = [json.loads(e) for e in events[:-1]]
    check(all(c["object"] == "chat.completion.chunk" for c in chunks), "chunk objects")
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    check(deltas and deltas[0].get("role") == "assistant" and all("role" not in d for d in deltas[1:]),
          f"the role in the first delta only: {deltas[:2]}")
    check("".join(d.get("content", "") for d in deltas) == msg["content"], "chat deltas add up to the answer")
    check(chunks[-2]["choices"][0]["finish_reason"] == r["choices"][0]["finish_reason"], f"{chunks[-2]}")
    check(chunks[-1]["choices"] == [] and chunks[-1]["usage"] == r["usage"], f"usage chunk {chunks[-1]}")
    # logprobs: the chat shape, greedy tokens the most likely of their top 2.
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo, logprobs=True, top_logprobs=2))
    lp = json.loads(text)["choices"][0]["logprobs"] if code == 200 else None
    check(lp and len(lp["content"]) == r["usage"]["completion_tokens"] and
          all(len(e["top_logprobs"]) == 2 and e["logprob"] >= e["top_logprobs"][1]["logprob"] - 1e-5 and
              bytes(e["bytes"]).decode("utf-8", "replace") == e["token"] for e in lp["content"]),
          f"chat logprobs: {code} {str(lp)[:300]}")
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo, logprobs=True, top_logprobs=2,
                                                        stream=True))
    events = [e[len("data: "):] for e in text.split("\n\n") if e.startswith("data: ")]
    streamed = [x for e in events[:-1] for c in json.loads(e)["choices"] if c["logprobs"]
                for x in c["logprobs"]["content"]] if code == 200 else None
    check(lp and streamed == lp["content"], f"chat streamed logprobs {str(streamed)[:200]}")
    # Tools offered (the [INST] template shows none of them) with the hermes
    # parser: an answer without a call is the same answer, streamed whole at
    # its end (held for calls) or not; no tool_calls.
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo, tools=tools))
    t = json.loads(text)
    check(code == 200 and t["choices"][0]["message"] == msg and
          t["choices"][0]["finish_reason"] == r["choices"][0]["finish_reason"], f"tools, no call: {code} {text[:300]}")
    code, text = call(url, "/v1/chat/completions", dict(greedy, messages=convo, tools=tools, stream=True))
    events = [json.loads(e[len("data: "):]) for e in text.split("\n\n") if e.startswith("data: ") and
              e != "data: [DONE]"]
    deltas = [c["choices"][0]["delta"] for c in events]
    check(code == 200 and "".join(d.get("content", "") for d in deltas) == msg["content"] and
          not any("tool_calls" in d for d in deltas) and len(events) <= 2,
          f"tools, streamed and held: {code} {events}")
    # The template's own refusal, and malformed chat requests: 400 naming it.
    bad = [({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}, "alternate"),
           ({"messages": []}, "messages"),
           ({"messages": "hi"}, "messages"),
           ({"prompt": "hi"}, "prompt"),
           ({"messages": [{"content": "no role"}]}, "role"),
           ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "image_url"),
           ({"messages": [{"role": "user", "content": 5}]}, "content"),
           ({"messages": convo, "tool_choice": "required"}, "tool_choice"),
           ({"messages": convo, "top_logprobs": 2}, "logprobs"),
           ({"messages": convo, "response_format": {"type": "json_object"}}, "response_format"),
           ({"messages": convo, "stream_options": {"include_usage": True}}, "stream_options")]
    for body, word in bad:
        code, text = call(url, "/v1/chat/completions", body)
        msg = json.loads(text).get("error", {}).get("message", "") if text.startswith("{") else text
        check(code == 400 and word in msg, f"chat {json.dumps(body)[:80]}: {code} {msg!r} should name {word!r}")


def n_checks(url):
    """n choices: choice i is the request alone with seed + i, streamed or not."""
    body = {"prompt": [7, 8, 9, 10, 11], "max_tokens": 10, "temperature": 1.0, "seed": 40, "n": 3}
    code, r = complete(url, body)
    check(code == 200 and [c["index"] for c in r["choices"]] == [0, 1, 2], f"n=3: {code} {r}")
    if code != 200:
        return
    texts = [c["text"] for c in r["choices"]]
    total = 0
    for i in range(3):
        code, one = complete(url, dict(body, n=1, seed=40 + i))
        check(code == 200 and one["choices"][0]["text"] == texts[i],
              f"choice {i} of n=3 is the request alone with seed {40 + i}: {texts[i]!r} {one['choices'][0]['text']!r}")
        total += one["usage"]["completion_tokens"]
    check(r["usage"] == {"prompt_tokens": 5, "completion_tokens": total, "total_tokens": 5 + total},
          f"n=3 usage {r['usage']} (choices made {total})")
    check(len(set(texts)) > 1, f"sampled choices differ: {texts}")
    code, events = stream(url, body)
    chunks = [json.loads(e) for e in events[:-1]] if code == 200 else []
    got = ["", "", ""]
    for c in chunks:
        for ch in c["choices"]:
            got[ch["index"]] += ch["text"]
    finishes = [ch["index"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    check(code == 200 and got == texts and sorted(finishes) == [0, 1, 2] and chunks[-1].get("usage") == r["usage"],
          f"n=3 streamed: {got} vs {texts}, finishes {finishes}, last {chunks[-1] if chunks else None}")
    # Without a seed the choices still differ.
    code, r = complete(url, {"prompt": [7, 8, 9, 10, 11], "max_tokens": 10, "temperature": 1.0, "n": 4})
    check(code == 200 and len({c["text"] for c in r["choices"]}) > 1, f"n=4 without a seed: {r}")


def openai_checks(url):
    """The official client against both endpoints, streamed and not."""
    from openai import OpenAI
    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
    models = client.models.list()
    check(models.data[0].id == "llama", f"openai models: {models}")
    c = client.completions.create(model="llama", prompt="Once upon", max_tokens=10, temperature=0)
    code, raw = complete(url, {"prompt": "Once upon", "max_tokens": 10, "temperature": 0})
    check(c.choices[0].text == raw["choices"][0]["text"] and c.usage.completion_tokens == raw["usage"]["completion_tokens"],
          f"openai completion {c.choices[0].text!r} != {raw['choices'][0]['text']!r}")
    s = client.completions.create(model="llama", prompt="Once upon", max_tokens=10, temperature=0, stream=True)
    check("".join(e.choices[0].text for e in s if e.choices) == c.choices[0].text, "openai streamed completion")
    msgs = [{"role": "user", "content": "Tell me a story."}]
    r = client.chat.completions.create(model="llama", messages=msgs, max_tokens=10, temperature=0, seed=1)
    check(r.choices[0].message.role == "assistant" and r.choices[0].finish_reason in ("stop", "length") and
          r.usage.completion_tokens >= 1, f"openai chat: {r}")
    s = client.chat.completions.create(model="llama", messages=msgs, max_tokens=10, temperature=0, seed=1,
                                       stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    for e in s:
        if e.choices:
            text += e.choices[0].delta.content or ""
        if e.usage:
            usage = e.usage
    check(text == r.choices[0].message.content, f"openai streamed chat {text!r} != {r.choices[0].message.content!r}")
    check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, f"openai stream usage {usage}")
    try:
        client.chat.completions.create(model="other", messages=msgs)
        check(False, "openai: an unknown model was answered")
    except Exception as e:
        check(getattr(e, "status_code", None) == 404, f"openai unknown model: {e!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kiln-serve-")
    engine = f"{tmp}/llama.engine"
    subprocess.run([f"{a.bin}/kiln", "compile", a.model, "--max-batch", "8", "--max-seq", "128", "--quiet", "-o",
                    engine], check=True)
    tok_path = f"{a.model}/tokenizer.json"
    tok = Tokenizer.from_file(tok_path)
    # The tokenizer beside the [INST]-style fixture's tokenizer_config.json
    # (its chat template among named ones, its special tokens).
    chat_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chat")
    sys.path.insert(0, chat_dir)
    import jinja_test
    os.makedirs(f"{tmp}/tok")
    shutil.copy(tok_path, f"{tmp}/tok/tokenizer.json")
    shutil.copy(f"{chat_dir}/templates/inst-style/tokenizer_config.json", f"{tmp}/tok/")
    p, url = start(a.bin, engine, f"{tmp}/tok/tokenizer.json", "--tool-call-parser", "hermes")
    try:
        code, body = call(url, "/health")
        check(code == 200 and json.loads(body)["status"] == "ok", f"/health: {code} {body}")
        code, body = call(url, "/v1/models")
        check(code == 200 and json.loads(body)["data"][0]["id"] == "llama", f"/v1/models: {code} {body}")

        # Greedy, against kiln-run's tokens for the same prompt.
        rng = random.Random(3)
        prompt = [rng.randrange(3, 500) for _ in range(9)]
        run = subprocess.run([f"{a.bin}/kiln-run", engine, "--device", "host", "--prompt-ids",
                              ",".join(map(str, prompt)), "--max-tokens", "24"], capture_output=True, text=True,
                             check=True)
        ids = [int(x) for x in run.stdout.splitlines()[0].split(",")]
        want = tok.decode(ids, skip_special_tokens=True)
        greedy = {"prompt": prompt, "max_tokens": 24, "temperature": 0}
        code, r = complete(url, greedy)
        check(code == 200, f"greedy completion: {code} {r}")
        text = r["choices"][0]["text"]
        check(text == want, f"greedy text {text!r} is not the tokenizer's text of kiln-run's tokens {want!r}")
        check(r["usage"] == {"prompt_tokens": 9, "completion_tokens": len(ids), "total_tokens": 9 + len(ids)},
              f"usage {r['usage']}")
        check(r["choices"][0]["finish_reason"] == ("length" if len(ids) == 24 else "stop"), f"finish {r}")

        n_checks(url)
        chat_checks(url, jinja_test.chat_source(f"{tmp}/tok"), jinja_test.special_tokens(f"{tmp}/tok"))
        openai_checks(url)

        # logprobs: greedy, so each token is the most likely of its top 3.
        code, r = complete(url, dict(greedy, logprobs=3))
        lp = r["choices"][0]["logprobs"] if code == 200 else None
        check(lp and len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) ==
              len(lp["text_offset"]) == len(ids), f"logprobs shape: {lp}")
        if lp:
            check(r["choices"][0]["text"] == text, "the text with logprobs")
            check(all(x <= 0 for x in lp["token_logprobs"]), "log-probabilities are at most 0")
            # (A JSON object keeps one of two tokens with the same text: the
            # chosen one is at least as likely as every entry.)
            check(all(1 <= len(tp) <= 3 and x >= max(tp.values()) - 1e-5
                      for tp, x in zip(lp["top_logprobs"], lp["token_logprobs"])),
                  f"greedy tokens are the most likely: {lp['top_logprobs'][:2]} {lp['token_logprobs'][:2]}")
            check(lp["tokens"] == [tok.decode([i]) for i in ids], "each token's text")
            check(lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"]), "offsets")
        # Streamed, each event carries its tokens' logprobs: together they are the whole answer's.
        code, events = stream(url, dict(greedy, logprobs=3))
        parts = [json.loads(e)["choices"][0]["logprobs"] for e in events[:-1]] if code == 200 else []
        joined = {k: [x for p in parts if p for x in p[k]] for k in ("tokens", "token_logprobs", "top_logprobs",
                                                                     "text_offset")}
        check(lp and joined == lp, f"streamed logprobs {str(joined)[:200]} != {str(lp)[:200]}")
        code, r = complete(url, dict(greedy, logprobs=0))
        check(code == 200 and r["choices"][0]["logprobs"]["top_logprobs"] is None, f"logprobs 0: {r}")

        code, events = stream(url, greedy)
        check(code == 200 and events[-1] == "[DONE]", f"stream: {code} {events[-2:]}")
        chunks = [json.loads(e) for e in events[:-1]]
        streamed = "".join(c["choices"][0]["text"] for c in chunks)
        check(streamed == text, f"streamed {streamed!r} != {text!r}")
        check(chunks[-1]["choices"][0]["finish_reason"] == r["choices"][0]["finish_reason"], f"last event {chunks[-1]}")
        check(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]), "finish reason only at the end")
        check(len(chunks) > 3, f"the text came in {len(chunks)} events")

        # A stop string: a piece of the greedy text without U+FFFD.
        clean = [i for i in range(2, len(text) - 3) if "\ufffd" not in text[i:i + 2]]
        check(bool(clean), f"no stop string to pick from {text!r}")
        if clean:
            stop = text[clean[len(clean) // 2]:clean[len(clean) // 2] + 2]
            cut = text[:text.find(stop)]
            code, r = complete(url, dict(greedy, stop=[stop, "\u2603never"]))
            check(code == 200 and r["choices"][0]["text"] == cut and r["choices"][0]["finish_reason"] == "stop",
                  f"stop {stop!r}: {r} (want {cut!r})")
            code, events = stream(url, dict(greedy, stop=stop))
            got = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
            check(got == cut, f"streamed stop {stop!r}: {got!r} (want {cut!r})")

        # A stop token id (vLLM's stop_token_ids): the output ends with it.
        k = next((i for i in range(3, len(ids)) if ids[i] not in ids[:i]), None)
        check(k is not None, f"no token to stop at in {ids}")
        if k is not None:
            code, r = complete(url, dict(greedy, stop_token_ids=[ids[k]]))
            want_k = tok.decode(ids[:k + 1], skip_special_tokens=True)
            check(code == 200 and r["usage"]["completion_tokens"] == k + 1 and r["choices"][0]["text"] == want_k
                  and r["choices"][0]["finish_reason"] == "stop", f"stop_token_ids [{ids[k]}]: {r}")

        # Sampled requests at once (twice the engine's batch), each as it is
        # alone.
        reqs = [{"prompt": [rng.randrange(3, 500) for _ in range(3 + i)], "max_tokens": 20, "temperature": 0.9,
                 "top_p": 0.95, "seed": 100 + i} for i in range(16)]
        alone = [complete(url, q)[1]["choices"][0]["text"] for q in reqs]
        together = [None] * len(reqs)

        def send(i):
            together[i] = complete(url, reqs[i])[1]["choices"][0]["text"]

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(reqs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(together == alone, f"sampled requests together differ from alone: {together} vs {alone}")

        # A client that goes away mid-stream: its request is cancelled (the
        # engine has room for 125 more tokens; the client leaves after the
        # first event).
        host, port = url[len("http://"):].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("POST", "/v1/completions", json.dumps({"prompt": [7, 8, 9], "max_tokens": 125, "stream": True,
                                                            "temperature": 0}))
        resp = conn.getresponse()
        first = resp.read(6)  # through the chunked encoding
        check(first.startswith(b"data: "), f"the first event: {first!r}")
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        cancelled = None
        for _ in range(100):
            m = re.search(r"^kiln_requests_cancelled_total (\d+)$", call(url, "/metrics")[1], re.M)
            cancelled = int(m[1]) if m else None
            if cancelled:
                break
            time.sleep(0.05)
        check(cancelled == 1, f"the request of a client gone mid-stream is cancelled: {cancelled}")

        # Errors, each a 4xx naming the problem.
        for body, raw, want_code, needle in [
                (None, b"{not json", 400, "not JSON"),
                ({"prompt": "a", "echo": True}, None, 400, "'echo' is not supported"),
                ({"prompt": "a", "logprobs": 21}, None, 400, "'logprobs' must be an integer from 0 to 20"),
                ({"prompt": "a", "frobnicate": 1}, None, 400, "'frobnicate' is not supported"),
                ({"prompt": "a", "n": 17}, None, 400, "'n' must be an integer from 1 to 16"),
                ({"prompt": "a", "temperature": 3}, None, 400, "'temperature' must be in"),
                ({"max_tokens": 3}, None, 400, "'prompt' is required"),
                ({"prompt": "a", "model": "gpt-4"}, None, 404, "model 'gpt-4' is not served here"),
                ({"prompt": [5] * 120, "max_tokens": 20}, None, 400, "max_seq"),
                ({"prompt": [5, 100000]}, None, 400, "100000"),
        ]:
            code, text = call(url, "/v1/completions", body, raw=raw)
            try:
                message = json.loads(text)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = text
            check(code == want_code and needle in message, f"{body or raw}: {code} {message!r} (want {needle!r})")
        code, text = call(url, "/v1/completions", raw=b'{"prompt": "' + b"a" * (9 << 20) + b'"}')
        check(code == 413 and "over 8 MB" in json.loads(text)["error"]["message"], f"a 9 MB body: {code} {text[:200]}")
        code, text = call(url, "/v1/nothing")
        check(code == 404 and "no such endpoint" in json.loads(text)["error"]["message"], f"/v1/nothing: {code} {text}")
        code, _ = call(url, "/health")
        check(code == 200, "the server goes on after bad requests")

        # A bounded load: 240 requests from 16 clients, random lengths,
        # streamed or not, some with stop strings, some clients leaving
        # mid-stream. Every request that stays gets a 200; at the end
        # nothing waits or runs and every KV page is back.
        lrng = random.Random(9)
        load = []
        for i in range(240):
            q = {"prompt": [lrng.randrange(3, 500) for _ in range(lrng.randrange(1, 40))],
                 "max_tokens": lrng.randrange(1, 60), "temperature": lrng.choice([0, 0.8]), "seed": i}
            if lrng.random() < 0.2:
                q["stop"] = [lrng.choice(["e", "a", " ", "\n"])]
            load.append((q, lrng.random() < 0.4, lrng.random() < 0.1))
        results = []

        def client(part):
            for q, streamed, leave in part:
                if leave:
                    h, pt = url[len("http://"):].split(":")
                    c = http.client.HTTPConnection(h, int(pt), timeout=60)
                    c.request("POST", "/v1/completions", json.dumps(dict(q, stream=True)))
                    resp = c.getresponse()
                    resp.read(6)
                    c.sock.shutdown(socket.SHUT_RDWR)
                    c.close()
                    results.append(200)
                elif streamed:
                    code, events = stream(url, q)
                    results.append(code if events and events[-1] == "[DONE]" else -1)
                else:
                    results.append(complete(url, q)[0])

        clients = [threading.Thread(target=client, args=(load[i::16],)) for i in range(16)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        check(results.count(200) == len(load), f"load: {len(load) - results.count(200)} of {len(load)} not 200")
        state = {}
        for _ in range(200):
            metrics = call(url, "/metrics")[1]
            state = {k: int(v) for k, v in re.findall(r"^kiln_(requests_waiting|requests_prefilling|requests_running|"
                                                      r"kv_pages_used) (\d+)$", metrics, re.M)}
            if len(state) == 4 and not any(state.values()):
                break
            time.sleep(0.05)
        check(len(state) == 4 and not any(state.values()), f"after the load: {state}")
        code, metrics = call(url, "/metrics")
        m = re.search(r"^kiln_requests_completed_total (\d+)$", metrics, re.M)
        check(code == 200 and m and int(m[1]) >= 200, f"/metrics completed: {m and m[1]}")
        m = re.search(r"^kiln_time_to_first_token_seconds_count (\d+)$", metrics, re.M)
        inf = re.search(r'^kiln_time_to_first_token_seconds_bucket\{le="\+Inf"\} (\d+)$', metrics, re.M)
        check(m and inf and int(m[1]) >= 200 and m[1] == inf[1], "time-to-first-token histogram")
        check(re.search(r"^kiln_inter_token_latency_seconds_count [1-9]\d*$", metrics, re.M),
              "inter-token latency histogram")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "hung"
        check(rc == 0, f"SIGTERM: exit {rc}")

    p, url = start(a.bin, engine, tok_path, "--api-key", "s3cret")
    try:
        code, _ = call(url, "/v1/models")
        check(code == 401, f"no key: {code}")
        code, _ = call(url, "/v1/completions", {"prompt": "a"}, headers={"Authorization": "Bearer wrong"})
        check(code == 401, f"wrong key: {code}")
        code, _ = call(url, "/v1/completions", {"prompt": "a", "max_tokens": 2},
                       headers={"Authorization": "Bearer s3cret"})
        check(code == 200, f"with the key: {code}")
        # No chat template (the tiny model has none): chat is a clear 400.
        code, text = call(url, "/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}]},
                          headers={"Authorization": "Bearer s3cret"})
        check(code == 400 and "no chat template" in text, f"chat without a template: {code} {text}")
    finally:
        p.send_signal(signal.SIGINT)
        check(p.wait(timeout=30) == 0, "SIGINT: exit 0")
    # --chat-template: a Jinja file (the Llama 3-style fixture) for a model
    # without one.
    llama3 = os.path.join(chat_dir, "templates", "llama3-style", "chat_template.jinja")
    p, url = start(a.bin, engine, tok_path, "--chat-template", llama3, "--max-waiting", "2")
    try:
        rendered_matches(url, [{"role": "user", "content": "Hi"}], open(llama3).read(), {}, "--chat-template")
        # --max-waiting 2: with 8 running and 2 queued, the next requests get
        # 429 (Retry-After) at once; the rest complete; then there is room.
        codes, lock = [], threading.Lock()

        def long_request(i):
            code, text = call(url, "/v1/completions", {"prompt": [5 + i, 6, 7, 8], "max_tokens": 100,
                                                       "ignore_eos": True, "temperature": 0})
            with lock:
                codes.append((code, text))
        ts = [threading.Thread(target=long_request, args=(i,)) for i in range(24)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        full = [t for c, t in codes if c == 429]
        check(full and all(c in (200, 429) for c, _ in codes) and
              all(json.loads(t)["error"]["type"] == "rate_limit_error" and "queue is full" in t for t in full),
              f"--max-waiting: {[c for c, _ in codes]}")
        check(all(json.loads(t)["usage"]["completion_tokens"] == 100 for c, t in codes if c == 200),
              "ignore_eos: every admitted request made its 100 tokens")
        code, _ = call(url, "/v1/completions", {"prompt": "a", "max_tokens": 2})
        check(code == 200, f"after the queue drained: {code}")
    finally:
        p.send_signal(signal.SIGINT)
        check(p.wait(timeout=30) == 0, "SIGINT: exit 0")
    if failures:
        sys.exit(f"{len(failures)} failures")
    print("PASS kiln-serve")


if __name__ == "__main__":
    main()
