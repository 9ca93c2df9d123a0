"""The ensemble's step budget per fit: the main command's four warm-started fits (a quarter,
half, three quarters and all of the labels) under each --max_steps, on bench_scale's synthetic
pool: seconds per fit (ratios in this process) and held-out pair accuracy against gold.

    python scripts/bench_fit_budget.py --prompts 30000 --max-steps epochs,300 [--out bench_out/fit_budget]
        [--held-out 4000]

One label per training prompt (a random pair, labelled by gold); --held-out prompts held out,
each with one random pair. Prints one JSON line per fit and one per setting.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np
import pyarrow.parquet as pq
from bench_scale import make_data

from aeuf.config import HeadConfig
from aeuf.head import make_head
from aeuf.types import Comparisons


def problem(folder: Path, num_p: int):
    """features [P, 8, 384] (memory map), pairs a, b [P], labels [P], held-out prompts."""
    x = np.load(folder / "features.npy", mmap_mode="r").reshape(num_p, 8, -1)
    table = pq.read_table(folder / "pool.parquet")
    gold = np.stack([table[f"response_{j + 1}_score"].to_numpy() for j in range(8)], 1)
    rng = np.random.default_rng(0)
    perm = rng.permutation(num_p)
    a = rng.integers(0, 8, num_p)
    b = (a + rng.integers(1, 8, num_p)) % 8
    rows = np.arange(num_p)
    return x, a, b, (gold[rows, a] > gold[rows, b]).astype(np.float32), perm


def cap_for(setting: str, m: int) -> int | None:
    """--max_steps of one fit on m labels: a number, none, or `epochs`: whole epochs of 256
    until 300 steps (the schedule before the cap could end inside an epoch)."""
    if setting == "epochs":
        steps = -(-m // 256)
        return -(-300 // steps) * steps
    return None if setting == "none" else int(setting)


def run(x, a, b, y, perm, setting: str, held_out: int) -> dict:
    """Four warm-started fits; a fresh head (and compile) per fit, whatever the setting."""
    test, train = np.sort(perm[:held_out]), perm[held_out:]
    max_steps, state, xt, out = setting, None, np.asarray(x[test]), []
    for q in (1, 2, 3, 4):
        idx = train[: len(train) * q // 4]
        head = make_head(HeadConfig(name="ensemble", max_steps=cap_for(setting, idx.size)))
        state = state or head.init(x.shape[-1], key=jax.random.key(0))
        comps = Comparisons(idx.astype(np.int32), a[idx].astype(np.int32),
                            b[idx].astype(np.int32), y[idx])
        start = time.perf_counter()
        state = jax.block_until_ready(head.fit(state, x, comps, key=jax.random.key(q)))
        m = head.belief(state, xt, embed=False).mean
        rows = np.arange(test.size)
        acc = float(np.mean((m[rows, a[test]] > m[rows, b[test]]) == (y[test] > 0.5)))
        out.append({"M": int(idx.size), "fit_s": round(time.perf_counter() - start, 1),
                    "acc": round(acc, 4), "load": os.getloadavg()[0]})
        print(json.dumps({"max_steps": max_steps, **out[-1]}), flush=True)
    return {"max_steps": max_steps, "fit_s": round(sum(r["fit_s"] for r in out), 1),
            "acc": [r["acc"] for r in out]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=30_000)
    ap.add_argument("--max-steps", default="epochs,300",
                    help="comma-separated: a number, none (no cap) or epochs (whole epochs)")
    ap.add_argument("--out", default="bench_out/fit_budget")
    ap.add_argument("--held-out", type=int, default=4000)
    args = ap.parse_args()
    folder = make_data(Path(args.out) / f"data_{args.prompts}", args.prompts, 8, 384)
    data = problem(folder, args.prompts)
    rows = [run(*data, s, args.held_out) for s in args.max_steps.split(",")]
    base = rows[0]["fit_s"]
    for r in rows:
        print(json.dumps({**r, "fit_time_vs_first": round(r["fit_s"] / base, 2)}), flush=True)


if __name__ == "__main__":
    main()
