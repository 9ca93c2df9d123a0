"""What the `llm` feature part (last-token hidden states of a causal LM; the packaged
SmolLM2-135M by default) costs against `minilm` on the same texts, in one process.

    python scripts/bench_llm_part.py [POOL] [--limit 64] [--llm smollm2] [--repeats 2]

Both parts encode the same prompt+response texts (embed.pool_texts) through aeuf's encoders,
alternating; prints texts/s of each, their ratio, and what the llm part would take for a pool
of --project texts (the dev pool's half: 805 prompts x 8 = 6,440) at the rate measured here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aeuf import embed, io  # noqa: E402
from aeuf.bench.measure import machine_line  # noqa: E402
from aeuf.bench.output import markdown_table  # noqa: E402
from aeuf.config import FeatureConfig, InputConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", nargs="?", default="dataset/prompts.csv")
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--llm", default="smollm2")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--project", type=int, default=6440)
    args = ap.parse_args()
    texts = embed.pool_texts(io.read_pool(InputConfig(path=args.pool)))[: args.limit]
    cfg = FeatureConfig(llm_encoder=args.llm)
    parts = {name: embed.PARTS.get(name) for name in ("minilm", "llm")}
    for part in parts.values():  # warm up: load the model, compile
        part.encode(texts[:4], cfg)
    seconds: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(args.repeats):
        for name, part in parts.items():
            t = time.perf_counter()
            part.encode(texts, cfg)
            seconds[name].append(time.perf_counter() - t)
    rate = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
    print(f"{len(texts)} texts, median of {args.repeats}, {machine_line()}\n")
    print(markdown_table(("part", "texts/s", "x minilm's time", f"{args.project} texts"), [
        (name, f"{rate[name]:.1f}", f"{rate['minilm'] / rate[name]:.1f}",
         f"{args.project / rate[name] / 60:.0f} min") for name in parts
    ]))


if __name__ == "__main__":
    main()
