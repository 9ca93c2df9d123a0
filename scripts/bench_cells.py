"""BAL-PM's prompt selection with `--knn_index cells` against the exact kNN graph and the
default faiss IVF graph (issue 22): graph time, greedy time, and how alike the picks are.

    python scripts/bench_cells.py [--prompts 50000] [--data clustered|gaussian]
                                  [--betas 0.01,0.1,1] [--indexes exact,ivf,cells]

One round as the main command runs it above knn_exact_max: a third of the pool picked at
once from a pool with none acquired; scores |N(0, 0.3)| (the scale of an ensemble's pair
std). For each index: seconds to build the structure, seconds for the greedy, and per beta
the share of its picks that the exact graph's greedy also picks, the mean score of its picks
and the mean distance from 2,000 seeded pool prompts to their nearest pick (coverage: lower
is more spread). Data as scripts/bench_knn.py. One process; compare rows of one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_knn import clustered, gaussian  # noqa: E402

from aeuf.acquire import knn_graph, select_prompts  # noqa: E402
from aeuf.bench.measure import machine_line  # noqa: E402
from aeuf.config import AcquireConfig  # noqa: E402


def coverage(x: np.ndarray, picks: np.ndarray, probe: np.ndarray) -> float:
    p = x[picks]
    d = (x[probe] ** 2).sum(1)[:, None] + (p ** 2).sum(1)[None] - 2.0 * x[probe] @ p.T
    return float(np.sqrt(np.maximum(d.min(axis=1), 0.0)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--data", default="clustered", choices=("clustered", "gaussian"))
    ap.add_argument("--betas", default="0.01,0.1,1")
    ap.add_argument("--indexes", default="exact,ivf,cells")
    ap.add_argument("--k", type=int, default=13)
    a = ap.parse_args()
    print(machine_line(), flush=True)
    P = a.prompts
    x = (clustered if a.data == "clustered" else gaussian)(P, a.dim)
    rng = np.random.default_rng(0)
    score = np.abs(rng.normal(0.0, 0.3, P))
    probe = rng.choice(P, 2000, replace=False)
    batch, none = P // 3, np.zeros(P, bool)
    exact_picks = {}
    for index in a.indexes.split(","):
        t = time.perf_counter()
        g = (knn_graph(x, a.k, exact_max=None) if index == "exact"
             else knn_graph(x, a.k, exact_max=1, index=index))
        built = time.perf_counter() - t
        for beta in (float(b) for b in a.betas.split(",")):
            cfg = AcquireConfig(knn_k=a.k, prompt_beta=beta)
            t = time.perf_counter()
            picks = select_prompts(score, x, none, batch, cfg, graph=g)
            greedy = time.perf_counter() - t
            if index == "exact":
                exact_picks[beta] = set(picks.tolist())
            same = (len(exact_picks[beta] & set(picks.tolist())) / batch
                    if beta in exact_picks else float("nan"))
            print(f"P {P:,} {a.data} {index:>5} beta {beta:<5}: build {built:7.1f} s, greedy "
                  f"{greedy:5.2f} s, picks shared with exact {same:.3f}, mean score "
                  f"{score[picks].mean():.4f}, coverage {coverage(x, picks, probe):.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
