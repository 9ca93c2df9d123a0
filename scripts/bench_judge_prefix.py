"""What a static system message saves on a judge with a prompt cache (the packaged local judge).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_judge_prefix.py [--requests 24] [--template overall]

The shipped template names the request's fence tag on the user message's first line, so the
system message is the same for every request and llama.cpp evaluates it once (it keeps the
previous request's tokens and evaluates only what follows the common prefix). The baseline is
the same template file with that tag line moved to the top of the system section (aeuf before
2026-12-07 had the nonce ~80 tokens in): every request is evaluated from its start.
Both go through aeuf's own judge oracle (make_oracle: plan, render, client, retry, parse), at
concurrency 1, on the same (prompt, response) texts of the bundled example (dataset/prompts.csv:
prompt i with its response i mod 4), interleaved in two blocks, against one
`python -m llama_cpp.server` on the packaged SmolLM2-135M GGUF, after a warm-up. Prints the
median seconds per judgement of each (an unparsable reply's retry included), their ratio, and
how many judgements got a rating.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

import pandas as pd

from aeuf.backends import llama_server
from aeuf.bench.measure import machine_line
from aeuf.config import EndpointConfig, OracleConfig
from aeuf.oracle import make_oracle
from aeuf.types import JudgeTask

EXAMPLE = "dataset/prompts.csv"
TAG_LINE = "Tag: {{tag}}\n\n"


def nonce_first(text: str) -> str:
    """The baseline template file: the user section's tag line moved to the top of the system
    section."""
    assert "--- user ---\n" + TAG_LINE in text, "the shipped template has no tag line"
    text = text.replace("--- user ---\n" + TAG_LINE, "--- user ---\n")
    return text.replace("--- system ---\n", "--- system ---\n" + TAG_LINE, 1)


def judge(url: str, template: str, tasks: list[JudgeTask]) -> list[tuple[float, bool]]:
    """(seconds, got a rating) per judgement, through aeuf's judge oracle at concurrency 1."""
    cfg = OracleConfig(name="judge", judge=EndpointConfig(base_url=url, model="smollm2"),
                       template=template, max_tokens=12, context_tokens=2048)
    oracle = make_oracle(cfg, has_gold=False)
    out, last = [], time.perf_counter()
    try:
        for answer in oracle.send([r for t in tasks for r in oracle.plan(t)]):
            now = time.perf_counter()
            out.append((now - last, answer.value is not None))
            last = now
    finally:
        oracle.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=24, help="judgements per variant")
    ap.add_argument("--template", default="overall", help="a built-in single-file template")
    args = ap.parse_args()
    shipped = resources.files("aeuf.oracle").joinpath("templates", f"{args.template}.txt")
    folder = Path(tempfile.mkdtemp(prefix="aeuf-prefix-"))
    before = folder / f"{args.template}.txt"
    before.write_text(nonce_first(shipped.read_text(encoding="utf-8")), encoding="utf-8")
    variants = {"nonce in the system message (before)": str(before),
                "static system message (shipped)": args.template}
    table = pd.read_csv(EXAMPLE).head(args.requests)
    tasks = [JudgeTask(f"t{i}", str(row.iloc[0]), (f"t{i}:0",), (str(row.iloc[1 + i % 4]),))
             for i, (_, row) in enumerate(table.iterrows())]
    server = llama_server.start(alias="smollm2", n_ctx=2048)
    try:
        judge(server.base_url, args.template, [JudgeTask("w", "Say hello.", ("w:0",), ("Hello.",))])
        runs: dict[str, list[tuple[float, bool]]] = {name: [] for name in variants}
        half = max(1, len(tasks) // 2)
        for block in (tasks[:half], tasks[half:]):
            for name, template in variants.items():
                runs[name] += judge(server.base_url, template, block)
    finally:
        server.stop()
    median = {name: statistics.median(t for t, _ in r) for name, r in runs.items()}
    print(f"{len(tasks)} judgements each, template {args.template}, {machine_line()}\n")
    print("| system message | median s/judgement | rated |\n|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {median[name]:.2f} | {sum(ok for _, ok in r)}/{len(r)} |")
    old, new = median.values()
    print(f"\nbefore / shipped: {old / new:.2f}x")


if __name__ == "__main__":
    main()
