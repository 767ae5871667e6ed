"""A load benchmark for OpenAI-style completion servers (kiln serve, llama-server, vLLM).

Sends prompts of random token ids to POST /v1/completions, streamed, each
with `max_tokens` set and `ignore_eos` so that every request makes exactly
its output length; arrivals are Poisson at --rate requests/s, or all at
once (--rate inf: an offline burst). Measures each request's time to first
token (its first event with text), time per output token after the first
(TPOT) and the gaps between events (inter-token latency), and reports
request/s, output tok/s, TTFT, TPOT and ITL p50/p90/p99. Standard library
only (it runs on the GPU machine as it is).

  python3 serve.py --url http://127.0.0.1:8000 --num-prompts 512 --input-len 512 --output-len 256 \\
      --rate inf --vocab 128256 [--mix sharegpt] [--json OUT.json]

--mix sharegpt draws each request's lengths from a ShareGPT-like mix
instead (log-normal, input median ~250 tokens, output median ~200, capped
by --input-len and --output-len); the draws depend on --seed alone, so two
servers get the same requests.
"""
import argparse, http.client, json, math, random, sys, threading, time, urllib.parse


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    f, c = math.floor(k), math.ceil(k)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def requests(a):
    rng = random.Random(a.seed)
    out = []
    for _ in range(a.num_prompts):
        if a.mix == "sharegpt":
            n_in = min(a.input_len, max(4, int(rng.lognormvariate(math.log(250), 0.9))))
            n_out = min(a.output_len, max(4, int(rng.lognormvariate(math.log(200), 0.8))))
        else:
            n_in, n_out = a.input_len, a.output_len
        # Ids away from both ends of the vocabulary, where special tokens sit.
        lo, hi = min(1000, a.vocab // 10), max(a.vocab - 1000, a.vocab * 9 // 10)
        out.append(([rng.randrange(lo, hi) for _ in range(n_in)], n_out))
    return out


def rng_seed(rec):
    return rec.get("index", 0) + 1


def one(a, host, port, prompt, n_out, rec):
    body = {"prompt": prompt, "max_tokens": n_out, "temperature": a.temperature, "stream": True, "ignore_eos": True}
    if a.temperature > 0:
        body.update(top_p=a.top_p, seed=rng_seed(rec))
    if a.model:
        body["model"] = a.model
    t0 = time.perf_counter()
    rec.update(start=t0, events=[], tokens=None, error=None, n_out=n_out, n_in=len(prompt))
    try:
        conn = http.client.HTTPConnection(host, port, timeout=a.timeout)
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            rec["error"] = f"HTTP {r.status}: {r.read()[:200]!r}"
            return
        buf = b""
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            ev = json.loads(data)
            if "error" in ev:
                rec["error"] = str(ev["error"])[:200]
                break
            ch = ev.get("choices") or []
            if ch and ch[0].get("text"):
                rec["events"].append(time.perf_counter())
            if ev.get("usage"):
                rec["tokens"] = ev["usage"].get("completion_tokens")
        conn.close()
    except Exception as e:  # a failed request is counted and reported
        rec["error"] = repr(e)[:200]
    rec["end"] = time.perf_counter()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", default="")
    ap.add_argument("--num-prompts", type=int, default=512)
    ap.add_argument("--input-len", type=int, default=512)
    ap.add_argument("--output-len", type=int, default=256)
    ap.add_argument("--mix", choices=["fixed", "sharegpt"], default="fixed")
    ap.add_argument("--rate", type=float, default=float("inf"), help="requests/s (Poisson); inf: all at once")
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=0.0, help="0: greedy; above: sampled with --top-p and a seed per request")
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    reqs = requests(a)
    recs = [dict(index=i) for i in range(len(reqs))]
    gaps = random.Random(a.seed + 1)
    threads = []
    t0 = time.perf_counter()
    due = t0
    for (prompt, n_out), rec in zip(reqs, recs):
        if math.isfinite(a.rate):
            due += gaps.expovariate(a.rate)
            time.sleep(max(0.0, due - time.perf_counter()))
        t = threading.Thread(target=one, args=(a, u.hostname, u.port or 80, prompt, n_out, rec), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = [r for r in recs if not r.get("error") and r.get("events")]
    errors = [r["error"] for r in recs if r.get("error")]
    # Output tokens: the server's usage where it reports one, else the asked length (ignore_eos).
    out_tokens = sum(r["tokens"] if r.get("tokens") is not None else r["n_out"] for r in ok)
    in_tokens = sum(r["n_in"] for r in ok)
    ttft = [(r["events"][0] - r["start"]) * 1e3 for r in ok]
    tpot = [(r["end"] - r["events"][0]) * 1e3 / (n - 1) for r in ok
            for n in [r["tokens"] if r.get("tokens") is not None else r["n_out"]] if n > 1]
    itl = [(b - c) * 1e3 for r in ok for c, b in zip(r["events"], r["events"][1:])]
    short = sum(1 for r in ok if r.get("tokens") is not None and r["tokens"] != r["n_out"])
    res = {
        "label": a.label, "url": a.url, "num_prompts": a.num_prompts, "mix": a.mix, "input_len": a.input_len,
        "output_len": a.output_len, "rate": a.rate if math.isfinite(a.rate) else "inf",
        "completed": len(ok), "errors": len(errors), "short": short, "wall_s": round(wall, 3),
        "request_per_s": round(len(ok) / wall, 3), "output_tok_per_s": round(out_tokens / wall, 1),
        "total_tok_per_s": round((in_tokens + out_tokens) / wall, 1),
    }
    for name, xs in (("ttft_ms", ttft), ("tpot_ms", tpot), ("itl_ms", itl)):
        for p in (50, 90, 99):
            res[f"{name}_p{p}"] = round(percentile(xs, p), 2)
    print(f"{a.label or a.url}: {len(ok)}/{len(recs)} ok in {wall:.1f} s, {res['request_per_s']} req/s, "
          f"{res['output_tok_per_s']} output tok/s; TTFT p50/p90/p99 {res['ttft_ms_p50']}/{res['ttft_ms_p90']}/"
          f"{res['ttft_ms_p99']} ms; TPOT {res['tpot_ms_p50']}/{res['tpot_ms_p90']}/{res['tpot_ms_p99']} ms; "
          f"ITL {res['itl_ms_p50']}/{res['itl_ms_p90']}/{res['itl_ms_p99']} ms")
    if errors:
        print(f"{len(errors)} errors, e.g. {errors[0]}", file=sys.stderr)
    if short:
        print(f"{short} requests made fewer tokens than asked", file=sys.stderr)
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(res) + "\n")
    sys.exit(1 if errors or short or not ok else 0)


if __name__ == "__main__":
    main()
