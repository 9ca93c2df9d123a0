"""Learning curves of the reward heads on random pairs of a pool with gold scores.

    python scripts/head_curves.py [POOL] [--features stats+model] [--cache bench_out/cache]
        [--heads "ensemble;bll"] [--seeds 3] [--labels 50,100,...,400] [--mode deterministic]
        [--cold] [--json OUT.json]

A head is `name` or `name:field=value,field=value` (HeadConfig fields), e.g.
`--heads "bll;bll:prior_precision=10,newton_steps=20;ensemble"` (heads separated by ';'); a label after `@` names it.

Protocol (as `aeuf bench`'s random rule): the benchmark's seeded split of the prompts into a
pool and a test set (25%, split seed 0); per seed, the pool prompts in a random order, one
uniformly random pair per prompt, labelled by gold (deterministic: 1[g_a > g_b], 1/2 on a
tie; bernoulli: Bernoulli(sigmoid(g_a - g_b))). The head is refitted at every label count,
warm-started from the previous count's state (`--cold`: a fresh init each time). Printed per
head and label count, mean +- standard error over seeds: held-out pair accuracy, test
log-likelihood (against y, or sigmoid(g_a - g_b) in bernoulli mode), ECE (10 equal-mass
bins), Brier, and the coverage of the central 90% interval of r_a - r_b over g_a - g_b.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

METRICS = ("acc", "ll", "ece", "brier", "cover", "cover_s", "width")


def parse_head(spec: str):
    """'name:k=v,k=v@label' -> (label, HeadConfig)."""
    from aeuf.config import HeadConfig, field_type

    label = spec
    if "@" in spec:
        spec, label = spec.split("@", 1)
    name, _, rest = spec.partition(":")
    kw = {"name": name}
    for item in filter(None, rest.split(",")):
        k, v = item.split("=", 1)
        t = field_type(HeadConfig, k)
        if t is bool:
            kw[k] = v.lower() in ("1", "true", "yes")
        elif "tuple" in str(t):
            kw[k] = tuple(int(h) for h in v.split("x"))
        elif t in (int, float, str):
            kw[k] = t(v)
        else:
            kw[k] = float(v) if v.replace(".", "").replace("e-", "").isdigit() else v
    return label, HeadConfig(**kw)


def load(path: str, features: str, cache: str):
    """(features f32[P, R, D], gold f64[P, R]) of the whole pool."""
    from aeuf.bench.devpool import load_pool
    from aeuf.config import FeatureConfig
    from aeuf.run.featurize import build_features

    pool = load_pool(path)
    x, _ = build_features(pool, FeatureConfig(features=features), Path(cache), progress=False)
    return x, np.asarray(pool.gold, np.float64)


def random_labels(gold, seed: int, mode: str):
    """One random pair per pool prompt, prompts in a random order: -> Comparisons [P]."""
    from aeuf.types import Comparisons

    rng = np.random.default_rng([seed, 17])
    num_p, num_r = gold.shape
    prompt = rng.permutation(num_p)
    a = rng.integers(0, num_r, num_p)
    b = (a + rng.integers(1, num_r, num_p)) % num_r
    d = gold[prompt, a] - gold[prompt, b]
    if mode == "bernoulli":
        p = (rng.random(num_p) < 1.0 / (1.0 + np.exp(-d))).astype(np.float64)
    else:
        p = np.where(d == 0, 0.5, (d > 0).astype(np.float64))
    return Comparisons(*(v.astype(t) for v, t in zip((prompt, a, b, p), ("i4", "i4", "i4", "f4"))))


def evaluate(head, state, xt, gt, pairs, labels, key) -> dict:
    """Held-out metrics of one state."""
    from aeuf.bench.calibration import calibration
    from aeuf.bench.metrics import log_likelihood, pair_accuracy, pair_probs

    bel = head.belief(state, xt, key=key, num_samples=16)
    prob = pair_probs(bel.samples, pairs)
    cal = calibration(bel.mean, bel.samples, bel.pair_var, prob, labels, gt, pairs.prompt,
                      pairs.a, pairs.b)
    return {"acc": pair_accuracy(bel.mean, pairs), "ll": log_likelihood(prob, labels),
            "ece": cal.ece, "brier": cal.brier, "cover": cal.coverage,
            "cover_s": cal.coverage_samples, "width": cal.width}


def curve(cfg, x, gold, pool, test, counts, seed: int, mode: str, cold: bool) -> list[dict]:
    import jax

    from aeuf.bench.metrics import held_out_pairs
    from aeuf.head import make_head
    from aeuf.types import Comparisons

    head = make_head(cfg)
    xp, gp, xt, gt = x[pool], gold[pool], x[test], gold[test]
    pairs = held_out_pairs(gt)
    labels = pairs.y if mode == "deterministic" else pairs.q
    comps = random_labels(gp, seed, mode)
    base = jax.random.key(seed)
    s0 = head.init(x.shape[2], key=jax.random.fold_in(base, 0))
    state, out = s0, []
    for t, n in enumerate(counts):
        sub = Comparisons(*(np.asarray(f)[:n] for f in comps))
        t0 = time.perf_counter()
        state = head.fit(s0 if cold else state, xp, sub, key=jax.random.fold_in(base, 100 + t))
        jax.block_until_ready(state)
        row = evaluate(head, state, xt, gt, pairs, labels, jax.random.fold_in(base, 200 + t))
        out.append({**row, "fit_s": time.perf_counter() - t0})
    return out


def summarise(name, counts, runs) -> list[str]:
    lines = [f"## {name}", "labels | " + " | ".join(METRICS)]
    for i, n in enumerate(counts):
        cells = []
        for m in METRICS:
            v = np.array([r[i][m] for r in runs])
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
            cells.append(f"{v.mean():.3f}±{se:.3f}")
        lines.append(f"{n} | " + " | ".join(cells))
    fit = np.mean([sum(r[i]["fit_s"] for i in range(len(counts))) for r in runs])
    lines.append(f"(fit + eval seconds per curve: {fit:.1f})")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pool", nargs="?", default=None,
                    help="the dev pool (default: $AEUF_DEV_POOL, else bench_out/alpacaeval_dev.parquet)")
    ap.add_argument("--features", default="stats+model")
    ap.add_argument("--cache", default="bench_out/cache")
    ap.add_argument("--heads", default="ensemble;bll", help="';'-separated head specs")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--labels", default="50,100,150,200,250,300,350,400")
    ap.add_argument("--mode", default="deterministic", choices=("deterministic", "bernoulli"))
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from aeuf.bench.simulate import split_prompts

    x, gold = load(args.pool, args.features, args.cache)
    pool, test = split_prompts(gold.shape[0], 0.25, 0)
    counts = [int(c) for c in args.labels.split(",")]
    specs = args.heads.split(";")
    res = {}
    print(f"features {args.features} D={x.shape[2]} pool {len(pool)} test {len(test)} "
          f"mode {args.mode} cold={args.cold} load {os.getloadavg()[0]:.1f}", flush=True)
    for spec in specs:
        name, cfg = parse_head(spec)
        runs = [curve(cfg, x, gold, pool, test, counts, s, args.mode, args.cold)
                for s in range(args.seeds)]
        res[name] = {"config": dataclasses.asdict(cfg), "runs": runs}
        print("\n".join(summarise(name, counts, runs)), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "counts": counts,
                                               "heads": res}, indent=1))
    return res


if __name__ == "__main__":
    sys.exit(main() and 0)
