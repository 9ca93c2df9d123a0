"""BAL-PM's greedy at scale: the lazy max-heap (aeuf.acquire.prompts.select_prompts) against an
argmax over every prompt at every pick (the greedy before issue 22's change), same picks.

    python scripts/bench_greedy.py [--prompts 100000,1000000] [--fraction 0.333] [--k 13]

A round of the main command picks about a third of the pool (the schedule's rounds after the
first). The graph is a random k-regular-out graph (the greedy's cost depends on P, k and the
batch, not on where the neighbours lie), radii uniform, scores uniform. Both run in this
process; the ratio is the number to read (the machine differs between sessions).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import digamma

from aeuf.acquire import KnnGraph, select_prompts
from aeuf.bench.measure import machine_line
from aeuf.config import AcquireConfig


def random_graph(P: int, k: int, rng) -> KnnGraph:
    nb = rng.integers(0, P, size=(P, k))
    owners = np.argsort(nb.ravel(), kind="stable") // k
    starts = np.searchsorted(np.sort(nb.ravel()), np.arange(P + 1))
    return KnnGraph(rng.random(P), nb, owners, starts)


def argmax_greedy(score, g: KnnGraph, batch: int, beta: float) -> list[int]:
    """An argmax over all P prompts per pick: O(batch P)."""
    k = g.neighbors.shape[1]
    psi, n = digamma(np.arange(1, k + 2)), np.zeros(len(score), np.int64)
    log_r = np.log(2.0 * g.radius + 1e-4)
    obj = score + beta * (log_r - psi[n])
    picks = []
    for _ in range(batch):
        y = int(np.argmax(obj))
        picks.append(y)
        obj[y] = -np.inf
        xs = g.owners[g.starts[y]:g.starts[y + 1]]
        n[xs] += 1
        live = xs[np.isfinite(obj[xs])]
        obj[live] = score[live] + beta * (log_r[live] - psi[n[live]])
    return picks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", default="100000,1000000")
    ap.add_argument("--fraction", type=float, default=0.333)
    ap.add_argument("--k", type=int, default=13)
    a = ap.parse_args()
    print(machine_line())
    cfg = AcquireConfig()
    for P in (int(p) for p in a.prompts.split(",")):
        rng = np.random.default_rng(0)
        g, score, batch = random_graph(P, a.k, rng), rng.random(P), int(P * a.fraction)
        t = time.perf_counter()
        lazy = select_prompts(score, None, np.zeros(P, bool), batch, cfg, graph=g)
        t_lazy = time.perf_counter() - t
        t = time.perf_counter()
        old = argmax_greedy(score, g, batch, cfg.prompt_beta)
        t_old = time.perf_counter() - t
        same = lazy.tolist() == old
        print(f"P = {P:,}, batch {batch:,}: lazy heap {t_lazy:.2f} s, argmax per pick "
              f"{t_old:.2f} s ({t_old / t_lazy:.1f}x), same picks: {same}", flush=True)


if __name__ == "__main__":
    main()
