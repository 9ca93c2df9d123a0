"""What the length-controlled gold (aeuf.bench.quality.lc_gold) does to a pool's halves:
within-prompt correlation of gold and LC gold with log length, how often the longest response
is the best, and the longer-vs-shorter pair's gap as a share of best-vs-worst's.

    PYTHONPATH=. .venv/bin/python scripts/bench_lc_gold.py ../shared/data/alpacaeval_dev.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from aeuf.bench.data import read_bench_pool, select_responses
from aeuf.bench.quality import lc_gold


def halves() -> dict:
    text = (Path(__file__).parent / "bench_models.sh").read_text().splitlines()
    return dict(line.split("=", 1) for line in text if line.startswith("HALF_"))


def within(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(axis=1, keepdims=True)).ravel()


def main(path: str) -> None:
    pool = read_bench_pool(path)
    for half, models in halves().items():
        p = select_responses(pool, tuple(models.split(",")))
        g = np.asarray(p.gold, np.float64)
        n = np.vectorize(len)(p.responses.astype(str))
        z, rows = within(np.log1p(n)), np.arange(len(g))
        longest, shortest = n.argmax(1), n.argmin(1)
        for name, lc in (("gold", g), ("lc, model kept", lc_gold(g, n, p.models)),
                         ("lc, length alone", lc_gold(g, n))):
            best = np.mean(lc[rows, longest] >= lc.max(1))
            gap = np.mean(lc[rows, longest] - lc[rows, shortest]) / np.mean(lc.max(1) - lc.min(1))
            print(f"{half} {name:17s} P={len(g)} corr(., log length)={np.corrcoef(within(lc), z)[0, 1]:.3f} "
                  f"longest is best {best:.3f} longer-vs-shorter gap {gap:.0%} of best-vs-worst")


if __name__ == "__main__":
    main(sys.argv[1])
