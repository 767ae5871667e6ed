#!/usr/bin/env python3
"""kiln-serve on the tiny Llama (host device), through its HTTP API:

- /health, /v1/models, /metrics;
- a greedy completion's text is the tokenizer's text of kiln-run's tokens
  for the same prompt (pip's `tokenizers`, special tokens skipped);
- the same request streamed: its events add up to that text, then one event
  with the finish reason and usage, then [DONE];
- a stop string cuts the text before its first occurrence (finish_reason
  "stop"), streamed or not;
- eight sampled requests sent at once, each with its own seed, give each
  one's text alone (the batch does not change a request's tokens);
- errors: not JSON, an unknown or unsupported field, a wrong model, a prompt
  longer than the engine holds, ids outside the vocabulary -- each a 4xx
  with an OpenAI-style error naming the problem; the server goes on;
- a client that goes away mid-stream has its request cancelled;
- --api-key: 401 without the key, 200 with it;
- SIGTERM: the server stops and exits 0.

  serve_test.py --bin build/bin --model test/models/hf/llama
"""
import argparse, http.client, json, os, random, re, signal, socket, subprocess, sys, tempfile, threading, time
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
    p, url = start(a.bin, engine, tok_path)
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

        # Sampled requests at once, each as it is alone.
        reqs = [{"prompt": [rng.randrange(3, 500) for _ in range(3 + i)], "max_tokens": 20, "temperature": 0.9,
                 "top_p": 0.95, "seed": 100 + i} for i in range(8)]
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
                ({"prompt": "a", "logprobs": 2}, None, 400, "'logprobs' is not supported"),
                ({"prompt": "a", "frobnicate": 1}, None, 400, "'frobnicate' is not supported"),
                ({"prompt": "a", "n": 2}, None, 400, "'n' must be 1"),
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
        code, _ = call(url, "/health")
        check(code == 200, "the server goes on after bad requests")
        code, metrics = call(url, "/metrics")
        m = re.search(r"^kiln_requests_completed_total (\d+)$", metrics, re.M)
        check(code == 200 and m and int(m[1]) >= 20, f"/metrics completed: {m and m[1]}")
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
    finally:
        p.send_signal(signal.SIGINT)
        check(p.wait(timeout=30) == 0, "SIGINT: exit 0")
    if failures:
        sys.exit(f"{len(failures)} failures")
    print("PASS kiln-serve")


if __name__ == "__main__":
    main()
