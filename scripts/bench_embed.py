"""Embedding throughput through aeuf's cached encoder vs sentence-transformers called directly.

    python scripts/bench_embed.py [POOL] [--limit N] [--repeats 2]

Both encode the same prompt+response texts with the packaged all-MiniLM-L6-v2, alternating
in one process; aeuf's overhead is (t_aeuf / t_direct - 1). A second aeuf pass over the same
cache must embed zero texts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aeuf import embed, io  # noqa: E402
from aeuf.backends import sentence  # noqa: E402
from aeuf.bench.measure import machine_line  # noqa: E402
from aeuf.bench.output import markdown_table  # noqa: E402
from aeuf.config import FeatureConfig, InputConfig  # noqa: E402
from aeuf.run import featurize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool", nargs="?", default="dataset/prompts.csv")
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    texts = embed.pool_texts(io.read_pool(InputConfig(path=args.pool)))[: args.limit]
    cfg = FeatureConfig()
    part = embed.PARTS.get("minilm")
    model = sentence.load(cfg.encoder, cfg.max_length)
    model.encode(texts[:32], batch_size=cfg.batch_size)  # warm up
    direct, through, cached_counts = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        model.encode(texts, batch_size=cfg.batch_size, convert_to_numpy=True)
        direct.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as root:
            t = time.perf_counter()
            _, n = featurize.cached_encode(texts, part, cfg, Path(root), progress=False)
            through.append(time.perf_counter() - t)
            t = time.perf_counter()
            _, again = featurize.cached_encode(texts, part, cfg, Path(root), progress=False)
            cached = time.perf_counter() - t
            cached_counts.append(again)
    d, a = statistics.median(direct), statistics.median(through)
    print(f"{len(texts)} texts, median of {args.repeats}, {machine_line()}\n")
    print(markdown_table(("what", "result"), [
        ("direct `SentenceTransformer.encode`", f"{len(texts) / d:.1f} texts/s"),
        ("through aeuf, cache miss",
         f"{len(texts) / a:.1f} texts/s: overhead {100 * (a / d - 1):+.1f} %"),
        ("through aeuf, cache hit (second run)",
         f"{max(cached_counts)} texts embedded, {cached:.3f} s"),
    ]))


if __name__ == "__main__":
    main()
