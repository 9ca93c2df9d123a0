"""Judge throughput against the local llama.cpp server, and the time aeuf adds to it.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_judge.py [--requests 24] [--pairs 20]

1. Overhead: the same kind of chat request sent by plain urllib (the baseline: the server's
   own latency as a client sees it) and by aeuf's client (openai package, limiter, retry
   loop, parsing of the body), interleaved in random order, each request with a different
   prompt so the server's prefix cache treats both alike. Because that difference drowns in
   the server's noise, the client's added time is also measured exactly against an instant
   in-process server that returns a fixed completion (median of 300 calls each way), and
   aeuf's per-request CPU for the oracle (plan: keys; body: render with a fresh nonce,
   control tokens neutralised, texts cut to the context; answer: parse + log-prob
   expectation) is timed apart, also the body of a 100,000-character response (cut in the
   middle). Share = (client overhead + oracle CPU) / llama latency.
2. Throughput: the judge oracle's send() at concurrency 1, 4 and 16 on fresh requests:
   judgements/s and HTTP requests/s (an unparsable reply costs one retry).
Prints a Markdown table. The machine's load average is printed: read the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aeuf.backends import llama_server
from aeuf.backends.openai_client import ClientSettings, open_client
from aeuf.bench.measure import machine_line
from aeuf.config import EndpointConfig, OracleConfig
from aeuf.oracle import make_oracle
from aeuf.oracle.judge import answer_from, chat_body, make_spec, plan_requests
from aeuf.types import JudgeTask

WORDS = "apple river stone cloud paper green quiet seven market window garden silver".split()


def tasks(n: int, seed: int) -> list[JudgeTask]:
    """n distinct one-response tasks of about equal length."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        out.append(JudgeTask(f"t{seed}-{i}", f"Write a short sentence using these words: {words}.",
                             (f"t{seed}-{i}:0",), (f"Here it is: {words}.",)))
    return out


def raw_call(base_url: str, body: dict) -> float:
    req = urllib.request.Request(f"{base_url}/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        json.loads(r.read())
    return time.perf_counter() - t0


class _Instant(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive replies wait on delayed ACKs (40 ms)
    reply = json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Rating: 4\nRationale: fine."}}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 8}}).encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *args) -> None:
        pass


def client_overhead(cfg: OracleConfig, n: int = 300) -> float:
    """Median seconds aeuf's client adds per call over plain urllib, on an instant server."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Instant)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    spec = make_spec(cfg)
    body = chat_body(spec, plan_requests(spec, tasks(1, seed=5)[0])[0], cfg.answer_format)
    client = open_client(ClientSettings(base_url=url))
    raw, ours = [], []
    for _ in range(n):
        raw.append(raw_call(url, body))
        t0 = time.perf_counter()
        client.complete(body)
        ours.append(time.perf_counter() - t0)
    client.close()
    httpd.shutdown()
    return statistics.median(ours) - statistics.median(raw)


def overhead(url: str, cfg: OracleConfig, pairs: int) -> dict:
    spec = make_spec(cfg)
    reqs = [plan_requests(spec, t)[0] for t in tasks(2 * pairs, seed=1)]
    client = open_client(ClientSettings(base_url=url))
    raw, ours, results = [], [], []
    order = ["raw", "aeuf"] * pairs
    random.Random(0).shuffle(order)
    for who, req in zip(order, reqs):
        if who == "raw":
            raw.append(raw_call(url, chat_body(spec, req, cfg.answer_format)))
        else:
            t0 = time.perf_counter()
            results.append((req, client.complete(chat_body(spec, req, cfg.answer_format))))
            ours.append(time.perf_counter() - t0)
    client.close()
    t0 = time.perf_counter()
    for _ in range(10):
        for req, res in results:
            answer_from(spec, req, [res])
    parse_us = (time.perf_counter() - t0) / (10 * len(results)) * 1e6
    return {"raw": statistics.median(raw), "aeuf": statistics.median(ours),
            "client_s": client_overhead(cfg),
            "raw_mean": statistics.mean(raw), "aeuf_mean": statistics.mean(ours),
            "parse_us": parse_us} | oracle_cpu(cfg)


def oracle_cpu(cfg: OracleConfig) -> dict:
    """Per-request CPU of the oracle without a server: plan (keys), body (render with a fresh
    nonce, neutralise, cut), and the body of a 100,000-character response (cut)."""
    spec = make_spec(cfg)
    reqs = [plan_requests(spec, t)[0] for t in tasks(200, seed=1)]
    t0 = time.perf_counter()
    for t in tasks(200, seed=2):
        plan_requests(spec, t)
    plan_us = (time.perf_counter() - t0) / 200 * 1e6
    t0 = time.perf_counter()
    for req in reqs:
        chat_body(spec, req, cfg.answer_format)
    body_us = (time.perf_counter() - t0) / len(reqs) * 1e6
    long = dataclasses.replace(tasks(1, seed=3)[0], responses=("word " * 20_000,))
    req = plan_requests(spec, long)[0]
    t0 = time.perf_counter()
    for _ in range(20):
        chat_body(spec, req, cfg.answer_format)
    long_ms = (time.perf_counter() - t0) / 20 * 1e3
    return {"plan_us": plan_us, "body_us": body_us, "long_ms": long_ms}


def throughput(url: str, cfg: OracleConfig, concurrency: int, n: int) -> dict:
    oracle = make_oracle(dataclasses.replace(cfg, judge=dataclasses.replace(cfg.judge, concurrency=concurrency)), has_gold=False)
    reqs = [r for t in tasks(n, seed=100 + concurrency) for r in oracle.plan(t)]
    t0 = time.perf_counter()
    answers = list(oracle.send(reqs))
    wall = time.perf_counter() - t0
    oracle.close()
    calls = sum(1 + ("--- retry ---" in a.raw) for a in answers)
    return {"c": concurrency, "judgements_s": len(answers) / wall, "http_s": calls / wall,
            "parsed": sum(a.value is not None for a in answers) / len(answers)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=24, help="judgements per concurrency level")
    ap.add_argument("--pairs", type=int, default=20, help="raw/aeuf request pairs for overhead")
    ap.add_argument("--max_tokens", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    ap.add_argument("--answer_format", default="json_object",
                    help="lines or json_object (llama-cpp-python's JSON mode)")
    ap.add_argument("--cpu_only", action="store_true",
                    help="only the oracle's own CPU per request (no server)")
    args = ap.parse_args()
    if args.cpu_only:
        cfg = OracleConfig(name="judge", judge=EndpointConfig(model="m"), context_tokens=8192,
                           answer_format=args.answer_format)
        c = oracle_cpu(cfg)
        print(f"| oracle CPU per request | plan (keys) {c['plan_us']:.0f} µs | body (render, "
              f"nonce, neutralise, cut) {c['body_us']:.0f} µs | body of a 100,000-character "
              f"response {c['long_ms']:.2f} ms |")
        return
    server = llama_server.start(alias="smollm2", n_threads=args.threads)
    cfg = OracleConfig(name="judge", judge=EndpointConfig(base_url=server.base_url, model="smollm2"),
                       max_tokens=args.max_tokens, context_tokens=2048,
                       answer_format=args.answer_format)
    try:
        spec = make_spec(cfg)
        raw_call(server.base_url, chat_body(spec, plan_requests(spec, tasks(1, seed=9)[0])[0],
                                            cfg.answer_format))
        o = overhead(server.base_url, cfg, args.pairs)
        rows = [throughput(server.base_url, cfg, c, args.requests) for c in (1, 4, 16)]
    finally:
        server.stop()
    print(f"{machine_line()}; "
          f"max_tokens {args.max_tokens}; llama.cpp threads {args.threads or 'default'}\n")
    cpu = (o["plan_us"] + o["body_us"] + o["parse_us"]) * 1e-6
    print(f"| per request | seconds (median of {args.pairs}) |")
    print("|---|---|")
    print(f"| llama.cpp server, plain urllib client | {o['raw']:.3f} |")
    print(f"| llama.cpp server, aeuf client | {o['aeuf']:.3f} |")
    print(f"| aeuf client over plain urllib, instant server (median of 300) | "
          f"{o['client_s'] * 1e3:.2f} ms |")
    print(f"| aeuf oracle CPU: plan (keys) / body (render, nonce, neutralise, cut) / answer "
          f"(parse + expectation) | {o['plan_us']:.0f} µs / {o['body_us']:.0f} µs / "
          f"{o['parse_us']:.0f} µs |")
    print(f"| body of a 100,000-character response (cut to the context) | "
          f"{o['long_ms']:.1f} ms |")
    print(f"| share of the time aeuf adds to the server's latency | "
          f"{100 * (o['client_s'] + cpu) / o['raw']:.2f}% |\n")
    print("| concurrency | judgements/s | HTTP requests/s | parsed |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['c']} | {r['judgements_s']:.2f} | {r['http_s']:.2f} | {100 * r['parsed']:.0f}% |")


if __name__ == "__main__":
    main()
