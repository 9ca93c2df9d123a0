"""Generation and hidden-state feature throughput on the CPU, as ratios within one process.

  python scripts/bench_generate.py [--prompts 32] [--max-tokens 48] [--repeats 3] [--threads 1]
                                   [--temperature 0.8] [--feature-texts 32] [--server]

1. generation, transformers back-end, packaged SmolLM2-135M: `aeuf.run.jobs.gen_run.run_generation`
   (plan, chat template, aeuf's KV-cached decoding loop that logs each response as its row
   finishes, fsync'd log, parquet) vs the same batches through `model.generate` directly.
   Greedy (both sides produce the same tokens) and sampled (--temperature, default 0.8: aeuf
   samples every row with its own seeded generator, Gumbel-max over the nucleus, so a
   response does not depend on its batch; `model.generate` samples the batch from one seed).
   Tokens/s; ratio = aeuf's overhead, the sampled ratio includes the cost of per-row seeds.
2. with --server: the openai back-end against a local llama.cpp server vs the openai client
   called directly with the same bodies and concurrency.
3. hidden-state features: `hidden_states.encode` (decoder only, last non-pad token) vs a
   forward pass of the whole causal LM with output_hidden_states (what a naive extractor does).

Runs alternate between the two sides; medians are reported. The model is loaded once, before
timing. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from aeuf.backends import hf_models, hidden_states  # noqa: E402
from aeuf.config import EndpointConfig, GenerateConfig  # noqa: E402
from aeuf.generate import ModelSpec, plan  # noqa: E402
from aeuf.run.jobs.gen_run import run_generation  # noqa: E402

QUESTIONS = [
    "Explain why the sky is blue.", "Write a short poem about autumn.", "What is a prime number?",
    "Give three tips for learning a language.", "Summarise the plot of Hamlet.",
    "How do vaccines work?", "Describe a cat to someone who has never seen one.",
    "What is the difference between weather and climate?",
]


def prompts(n: int) -> list[str]:
    return [f"{QUESTIONS[i % len(QUESTIONS)]} (question {i})" for i in range(n)]


def direct_generate(texts: list[str], max_tokens: int, batch_size: int, temperature: float = 0.0) -> int:
    """Chat template + left padding + model.generate per batch (sampled from one seed per
    batch when temperature > 0); returns tokens generated."""
    tok, lm = hf_models.load("smollm2")
    tok.padding_side, total = "left", 0
    chats = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                     add_generation_prompt=True) for t in texts]
    for i in range(0, len(chats), batch_size):
        enc = tok(chats[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(i)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 0.95, "top_k": None} if temperature > 0 else {"do_sample": False}
        with torch.inference_mode():
            out = lm.generate(**enc, max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id, **sampling)
        total += _count(out[:, enc["input_ids"].shape[1]:].tolist(), tok.eos_token_id)
    tok.padding_side = "right"
    return total


def step_costs(batch_size: int, repeats: int = 30) -> tuple[float, float]:
    """(seconds of per-row seeded sampling, seconds of the forward pass) for one decoding step
    of `batch_size` rows, at the logits that follow real chat prompts: the direct cost of
    reproducible seeds (aeuf's sampler is `gen_transformers.sample`)."""
    from aeuf.backends.gen_transformers import _encode_left, _forward_names, sample

    tok, lm = hf_models.load("smollm2")
    cache_kw, keep_kw = _forward_names(lm)
    enc = _encode_left(tok, [hf_models.chat_text(tok, p) for p in prompts(batch_size)])
    with torch.inference_mode():
        res = lm(**enc, use_cache=True, **{keep_kw: 1})
    gens = [torch.Generator().manual_seed(i) for i in range(batch_size)]
    temp, top_p = torch.full((batch_size,), 0.8), torch.full((batch_size,), 0.95)
    logits, vocab, cache = res.logits[:, -1].float(), res.logits.shape[-1], getattr(res, cache_kw)
    nxt = logits.argmax(-1, keepdim=True)

    def sampling() -> int:
        u = torch.stack([torch.rand(vocab, generator=g) for g in gens])
        return len(sample(torch, logits, temp, top_p, u))

    def forward() -> int:  # one more token on the cache (context grows by one per call)
        with torch.inference_mode():
            lm(input_ids=nxt, use_cache=True, **{cache_kw: cache, keep_kw: 1})
        return 1

    with torch.inference_mode():
        s_runs, f_runs = alternate((sampling,), (forward,), repeats)
    return statistics.median(t for t, _ in s_runs), statistics.median(t for t, _ in f_runs)


def _count(rows: list[list[int]], eos: int) -> int:
    return sum(row.index(eos) + 1 if eos in row else len(row) for row in rows)


def aeuf_generate(texts: list[str], max_tokens: int, batch_size: int, temperature: float = 0.0) -> int:
    cfg = GenerateConfig(num_responses=1, temperature=temperature, top_p=0.95, max_tokens=max_tokens,
                         batch_size=batch_size)
    with tempfile.TemporaryDirectory() as d:
        s = run_generation([f"b{i}" for i in range(len(texts))], texts, [ModelSpec("smol", "smollm2")], cfg, d)
        return s.completion_tokens


def timed(fn, *args) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def alternate(a, b, repeats: int) -> tuple[list, list]:
    """(runs of a, runs of b): one untimed warm-up each, then `repeats` alternating timed runs."""
    a[0](*a[1:]), b[0](*b[1:])
    ra, rb = [], []
    for _ in range(repeats):
        ra.append(timed(*a))
        rb.append(timed(*b))
    return ra, rb


def per_second(runs) -> float:
    return statistics.median(n / t for t, n in runs)


def naive_features(texts: list[str], batch_size: int, max_length: int) -> int:
    """Whole causal LM forward with every layer's hidden states (logits included)."""
    tok, lm = hf_models.load("smollm2")
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                  max_length=max_length)
        with torch.inference_mode():
            lm(**enc, output_hidden_states=True).hidden_states[-1]
    return len(texts)


def aeuf_features(texts: list[str], batch_size: int, max_length: int) -> int:
    return len(hidden_states.encode(texts, "smollm2", batch_size=batch_size, max_length=max_length))


def bench_server(texts: list[str], max_tokens: int, repeats: int) -> tuple[float, float]:
    from aeuf.backends import llama_server
    from aeuf.backends.gen_openai import body
    from aeuf.backends.generation import make_backend
    from aeuf.backends.openai_client import ClientSettings, complete_many, open_client

    server = llama_server.start(n_threads=1)
    try:
        cfg = GenerateConfig(backend="openai", endpoint=EndpointConfig(base_url=server.base_url, concurrency=1), num_responses=1,
                             temperature=0.0, max_tokens=max_tokens)
        reqs = plan([f"s{i}" for i in range(len(texts))], texts, [ModelSpec("s", server.model)], cfg)
        client = open_client(ClientSettings(base_url=server.base_url))

        def direct() -> int:
            return sum(r.completion_tokens for _, r in complete_many(client, [body(server.model, q) for q in reqs], 1))

        def via() -> int:
            return sum(g.completion_tokens for g in make_backend(cfg).generate(server.model, reqs))

        a, b = alternate((via,), (direct,), repeats)
        return per_second(a), per_second(b)
    finally:
        server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.8, help="the sampled comparison")
    ap.add_argument("--feature-texts", type=int, default=32, help="0: skip the feature comparison")
    ap.add_argument("--server", action="store_true", help="also bench the openai back-end on llama.cpp")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hf_models.load("smollm2")
    texts = prompts(args.prompts)
    gen = (args.max_tokens, args.batch_size)
    aeuf_runs, direct_runs = alternate((aeuf_generate, texts, *gen), (direct_generate, texts, *gen), args.repeats)
    hot = (*gen, args.temperature)
    aeuf_hot, direct_hot = alternate((aeuf_generate, texts, *hot), (direct_generate, texts, *hot), args.repeats)
    load = os.getloadavg()[0]
    print(f"| threads {args.threads}, load avg {load:.1f}, {args.prompts} prompts x {args.max_tokens} new tokens, batch {args.batch_size} | | |")
    print("|---|---|---|")
    print(_row("generation, transformers back-end, greedy (tokens/s)", per_second(aeuf_runs), per_second(direct_runs)))
    print(_row(f"generation, sampled T={args.temperature}: per-row seeds vs one seed per batch (tokens/s)",
               per_second(aeuf_hot), per_second(direct_hot)))
    s_cost, f_cost = step_costs(args.batch_size)
    print(f"| one decoding step, batch {args.batch_size}: per-row seeded sampling vs a forward pass of one "
          f"token (ms) | {1e3 * s_cost:.2f} vs {1e3 * f_cost:.2f} | ratio {s_cost / f_cost:.2f} |")
    if args.feature_texts:
        pairs = [f"{t}\n\n{'A detailed answer. ' * (8 + i % 16)}" for i, t in enumerate(prompts(args.feature_texts))]
        feat = (pairs, args.batch_size, 256)
        ours, naive = alternate((aeuf_features, *feat), (naive_features, *feat), args.repeats)
        print(_row(f"hidden-state features, {args.feature_texts} texts of 60-200 tokens (texts/s)", per_second(ours), per_second(naive)))
    if args.server:
        print(_row("generation, openai back-end on llama.cpp (tokens/s)", *bench_server(texts[:8], args.max_tokens, args.repeats)))
    return 0


def _row(what: str, ours: float, ref: float) -> str:
    return f"| {what} | aeuf {ours:.1f} vs direct {ref:.1f} | ratio {ours / ref:.2f} |"


if __name__ == "__main__":
    raise SystemExit(main())
