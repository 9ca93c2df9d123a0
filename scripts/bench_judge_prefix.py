"""What a static system message saves on a judge with a prompt cache (the packaged local judge).

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/bench_judge_prefix.py [--requests 10] [--template overall]

The shipped template names the request's fence tag on the user message's first line, so the
system message is the same for every request and llama.cpp evaluates it once (it keeps the
previous request's tokens and evaluates only what differs after the common prefix). The
baseline is the same template with that tag line moved to the top of the system message, as
aeuf shipped before (the nonce was ~80 tokens in): every request is evaluated from its start.
Both send the same (prompt, response) texts of the bundled example (dataset/prompts.csv: prompt
i with its response i mod 4, cut to 1,000 tokens together) with a fresh nonce each, interleaved
in blocks,
to one `python -m llama_cpp.server` on the packaged SmolLM2-135M GGUF, after a warm-up.
Prints the median seconds per request of each, their ratio, and how many replies of each the
rating parser read (the tag line must not lead the judge to answer with something else).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
import urllib.request

import pandas as pd

from aeuf.backends import llama_server
from aeuf.bench.measure import machine_line
from aeuf.oracle.fence import new_nonce
from aeuf.oracle.parsers import parse_rating
from aeuf.oracle.prompts import Template, load_templates, render

EXAMPLE = "dataset/prompts.csv"


def nonce_first(template: Template) -> Template:
    """The baseline: the tag line at the top of the system message instead of the user's."""
    tag_line, _, user = template.user.partition("\n")
    return dataclasses.replace(template, system=f"{tag_line}\n{template.system}", user=user)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10, help="per variant")
    ap.add_argument("--template", default="overall")
    args = ap.parse_args()
    shipped = load_templates(args.template)[0]
    variants = {"nonce in the system message (before)": nonce_first(shipped),
                "static system message (shipped)": shipped}
    table = pd.read_csv(EXAMPLE).head(args.requests)
    texts = [(str(row.iloc[0]), str(row.iloc[1 + i % 4])) for i, (_, row) in enumerate(table.iterrows())]
    server = llama_server.start(alias="smollm2", n_ctx=2048)

    def ask(template: Template, text: tuple[str, str]) -> tuple[float, bool]:
        messages = render(template, text[0], (text[1],), nonce=new_nonce(), tokens=1000)
        body = json.dumps({"model": "smollm2", "messages": messages, "max_tokens": 12,
                           "temperature": 0}).encode()
        req = urllib.request.Request(f"{server.base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        reply = json.loads(urllib.request.urlopen(req, timeout=600).read())
        seconds = time.perf_counter() - start
        return seconds, parse_rating(reply["choices"][0]["message"]["content"] or "") is not None

    try:
        ask(shipped, ("Say hello.", "Hello."))
        seconds: dict[str, list[tuple[float, bool]]] = {name: [] for name in variants}
        half = max(1, args.requests // 2)
        for block in (texts[:half], texts[half:]):
            for name, template in variants.items():
                seconds[name] += [ask(template, r) for r in block]
    finally:
        server.stop()
    median = {name: statistics.median(t for t, _ in s) for name, s in seconds.items()}
    parsed = {name: sum(ok for _, ok in s) for name, s in seconds.items()}
    print(f"{args.requests} requests each, template {args.template}, {machine_line()}\n")
    print("| system message | median s/request | replies parsed |\n|---|---|---|")
    for name, m in median.items():
        print(f"| {name} | {m:.2f} | {parsed[name]}/{len(seconds[name])} |")
    before, shipped_s = median.values()
    print(f"\nbefore / shipped: {before / shipped_s:.2f}x")


if __name__ == "__main__":
    main()
