"""Spending the strong judge only where it teaches: self-labelling and a judge cascade,
measured on replay pools in the benchmark's every-prompt regime (`once`).

    PYTHONPATH=. .venv/bin/python scripts/bench_selflabel.py \
        [POOL] --seeds 5 --out bench_out/selflabel

Pools: the AlpacaEval dev pool (805 prompts x 16 models) is split, by a seeded draw, into
two halves of its models: "dev" = every prompt x models A (where settings such as the cheap
margin were chosen) and "unseen" = every prompt x models B (its responses were looked at
only for the reported numbers). Every run is the main command's round engine (aeuf.run.round.engine) on
--features stats+model with the ensemble head and the dts rule, every prompt labelled once
in rounds of --batch_size; the strong judge is the replay oracle with deterministic gold
labels (its own accuracy is 1 by construction); a cheap judge is simulated as gold plus
per-response logistic noise of scale s (aeuf.oracle.cheap.simulated_judge), so its pair
accuracy on untied gold pairs falls as s grows.

Configurations: strong (every pair to the strong judge), self-labelling at 0.90 / 0.95 /
0.99 (check slice 10%, delta 0.05), the cascade at two noise scales (cheap margin in gold
utility units), and the cascade with self-labelling at 0.95. Per run: strong pairs per
prompt, cheap pairs per prompt, exported-label accuracy against gold (decided rows whose
chosen has the strictly higher gold; a row on a gold tie counts as wrong, and, beside it,
the same on rows whose gold is not tied), the accuracy of the self-labelled rows alone on
untied gold (the guarantee's definition: the oracle's ties are left out of the calibration),
gold gap, best-of-N hit rate (aeuf.bench.quality), and whether the self-label guarantee held
(self-label accuracy on untied gold >= the target).
Writes OUT/runs.jsonl (one line per run) and OUT/report.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from aeuf.bench.devpool import dev_pool_path
from aeuf.bench.measure import machine_line
from aeuf.bench.quality import dataset_quality
from aeuf.bench.simulate import BenchConfig, Task, oracle_judge, replay_judge, run_config
from aeuf.config import FeatureConfig
from aeuf.io.pool import pool_from_long
from aeuf.oracle.cheap import simulated_judge
from aeuf.run import featurize
from aeuf.run.cascade import cascade_judge
from aeuf.run.round import engine
from aeuf.run.round.selflabel import HEAD

STRONG = "strong"
CHEAP = "cheap"


def split_pools(path: str, seed: int) -> dict:
    """name -> ResponsePool: every prompt x models A ("dev"), x models B ("unseen")."""
    df = pd.read_parquet(path)
    m = np.random.default_rng(seed).permutation(np.array(sorted(df.model.unique())))
    halves = {"dev": m[: len(m) // 2], "unseen": m[len(m) // 2:]}
    return {name: pool_from_long(df[df.model.isin(ms)], path) for name, ms in halves.items()}


def make_task(pool, features: str, cache: Path) -> Task:
    feat, _ = featurize.build_features(pool, FeatureConfig(features=features), cache,
                                       progress=False)
    pfeat = featurize.prompt_features(pool, feat, FeatureConfig(features=features), cache,
                                      progress=False)
    empty = np.zeros((0,) + feat.shape[1:], np.float32)
    return Task(pool, feat, pfeat, empty, np.zeros((0, pool.shape[1])), None)


def counted(judge, counter: dict, name: str):
    def wrapped(plan, tasks):
        counter[name] = counter.get(name, 0) + len(tasks)
        return judge(plan, tasks)

    return wrapped


def play(task: Task, cfg, judge) -> tuple[list, list]:
    """Every round of one run: -> (labelled, progress)."""
    ctx = engine.make_context(cfg, task.features, task.prompt_features, graph=task.graph)
    state = engine.initial_state(task.features.shape[0])
    labelled, progress = [], []
    for t, size in enumerate(engine.sizes_of(ctx)):
        state, plan, outcome = engine.play(ctx, task.pool, state, t, size, judge, STRONG)
        state = jax.block_until_ready(engine.refit(ctx, state, t))
        labelled += outcome.labelled
        progress.append({"round": t, **outcome.routes._asdict(),
                         "threshold": outcome.threshold, "agreement": outcome.agreement})
    return labelled, progress


def run_one(task: Task, bench: BenchConfig, seed: int, spec: dict) -> dict:
    cfg = run_config(bench, "dts", "ensemble", seed, "deterministic")
    loop = dataclasses.replace(cfg.loop, self_label_accuracy=spec.get("target"))
    cfg = dataclasses.replace(cfg, loop=loop)
    counts: dict = {}
    strong = counted(replay_judge(cfg.oracle), counts, STRONG)
    judge = strong
    if spec.get("noise") is not None:
        cheap = counted(oracle_judge(simulated_judge(spec["noise"], seed)), counts, CHEAP)
        judge = cascade_judge(cheap, strong, spec["margin"], (CHEAP, STRONG))
    t0 = time.perf_counter()
    labelled, progress = play(task, cfg, judge)
    return summarise(task, labelled, progress, counts, spec) | {
        "seed": seed, "seconds": round(time.perf_counter() - t0, 1)}


def gold_pair(x, gold: np.ndarray) -> tuple[float, float]:
    return gold[x.prompt, x.slots[x.chosen]], gold[x.prompt, x.slots[x.rejected]]


def accuracy(rows: list, gold: np.ndarray, *, untied: bool = False) -> float | None:
    """Share of exported (decided) rows whose chosen has the strictly higher gold; a row on
    a gold tie counts as wrong, or (untied=True) is left out."""
    pairs = [gold_pair(x, gold) for x in rows if not x.tie]
    if untied:
        pairs = [(c, r) for c, r in pairs if c != r]
    return float(np.mean([c > r for c, r in pairs])) if pairs else None


def summarise(task: Task, labelled: list, progress: list, counts: dict, spec: dict) -> dict:
    gold = np.asarray(task.pool.gold, np.float64)
    P = gold.shape[0]
    q = dataset_quality(labelled, gold, shown=0, tokens=0.0)
    head = [x for x in labelled if x.judge == HEAD]
    cheap = [x for x in labelled if x.judge == CHEAP]
    acc_head = accuracy(head, gold, untied=True)  # the guarantee's own definition
    target = spec.get("target")
    exported = [x for x in labelled if not x.tie]
    on_ties = [c == r for c, r in (gold_pair(x, gold) for x in exported)]
    return {"config": spec["name"], "strong_per_prompt": counts.get(STRONG, 0) / P,
            "cheap_per_prompt": counts.get(CHEAP, 0) / P, "accuracy": q["correct"],
            "accuracy_untied": accuracy(labelled, gold, untied=True),
            "rows_on_gold_ties": float(np.mean(on_ties)) if on_ties else 0.0,
            "self_labelled": len(head) / P, "self_label_accuracy": acc_head,
            "self_label_accuracy_ties_wrong": accuracy(head, gold),
            "self_labelled_on_gold_ties": float(np.mean([c == r for c, r in (
                gold_pair(x, gold) for x in head)])) if head else 0.0,
            "cheap_only": len(cheap) / P, "cheap_only_accuracy": accuracy(cheap, gold),
            "guarantee_held": None if target is None or acc_head is None else acc_head >= target,
            "gold_gap": q["gold_gap"], "best_of_n": q["best_of_n"], "ties": q["ties"],
            "unlabelled": q["unanswered"], "rounds": progress}


CONFIGS = [
    {"name": "strong (every pair)"},
    {"name": "self-label 0.90", "target": 0.90},
    {"name": "self-label 0.95", "target": 0.95},
    {"name": "self-label 0.99", "target": 0.99},
]


def cascades(scales, margin: float) -> list[dict]:
    out = [{"name": f"cascade, noise {s}", "noise": s, "margin": margin} for s in scales]
    s = scales[0]
    out.append({"name": f"cascade, noise {s} + self-label 0.95", "noise": s, "margin": margin,
                "target": 0.95})
    return out


def table(rows: list[dict], pool: str) -> list[str]:
    """Markdown rows: mean over seeds of each metric, per config, for one pool."""
    base = {r["seed"]: r["strong_per_prompt"] for r in rows
            if r["pool"] == pool and r["config"] == CONFIGS[0]["name"]}
    out = []
    for name in dict.fromkeys(r["config"] for r in rows if r["pool"] == pool):
        rs = [r for r in rows if r["pool"] == pool and r["config"] == name]
        saved = [1 - r["strong_per_prompt"] / base[r["seed"]] for r in rs if r["seed"] in base]
        held = [r["guarantee_held"] for r in rs if r["guarantee_held"] is not None]
        out.append("| {} | {} | {:.2f} | {:.2f} | {} | {} | {} | {} | {} | {:.2f} | {:.3f} | {} |".format(
            pool, name, _m(rs, "strong_per_prompt"), _m(rs, "cheap_per_prompt"),
            f"{np.mean(saved):.0%}" if saved else "—", _fmt(rs, "accuracy"),
            _fmt(rs, "accuracy_untied"),
            _fmt(rs, "self_labelled"), _fmt(rs, "self_label_accuracy"),
            _m(rs, "gold_gap"), _m(rs, "best_of_n"),
            f"{sum(held)}/{len(held)}" if held else "—"))
    return out


def _m(rs, key) -> float:
    vals = [r[key] for r in rs if r[key] is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _fmt(rs, key) -> str:
    vals = [r[key] for r in rs if r[key] is not None]
    if not vals:
        return "—"
    lo, hi = min(vals), max(vals)
    return f"{np.mean(vals):.3f} ({lo:.3f}–{hi:.3f})"


HEADER = ["| pool | config | strong pairs / prompt | cheap pairs / prompt | strong calls saved "
          "| exported accuracy, gold ties wrong (min–max) | on untied gold (min–max) "
          "| self-labelled share | self-label accuracy, untied gold | gold gap | best-of-N hit "
          "| guarantee held (seeds) |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool", nargs="?", default=None,
                    help="the dev pool (default: $AEUF_DEV_POOL, else bench_out/alpacaeval_dev.parquet)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--split_seed", type=int, default=0)
    ap.add_argument("--batch_size", type=int, default=50,
                    help="prompts per round; 0: the main command's rounds (a first round of "
                         "50, then three equal rounds)")
    ap.add_argument("--features", default="stats+model")
    ap.add_argument("--noise", default="1.0,2.0", help="cheap judge noise scales")
    ap.add_argument("--margin", type=float, default=2.0, help="cheap margin (gold units)")
    ap.add_argument("--pools", default="dev,unseen")
    ap.add_argument("--configs", default="all", help="'all' or indices into the list")
    ap.add_argument("--out", default="bench_out/selflabel")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bench = BenchConfig(regime="once", features=FeatureConfig(features=args.features))
    bench = dataclasses.replace(bench, loop=dataclasses.replace(bench.loop,
                                                                batch_size=args.batch_size or None))
    specs = CONFIGS + cascades([float(x) for x in args.noise.split(",")], args.margin)
    if args.configs != "all":
        specs = [specs[int(i)] for i in args.configs.split(",")]
    pools = split_pools(str(dev_pool_path(args.pool)), args.split_seed)
    rows = []
    with open(out / "runs.jsonl", "a") as log:
        for name in args.pools.split(","):
            task = make_task(pools[name], args.features, out / "cache")
            for spec in specs:
                for seed in range(args.seeds):
                    r = run_one(task, bench, seed, spec) | {"pool": name}
                    rows.append(r)
                    log.write(json.dumps(r) + "\n")
                    log.flush()
                    print(f"{name} {spec['name']:36s} seed {seed}: strong {r['strong_per_prompt']:.2f}"
                          f"/prompt, acc {r['accuracy']:.3f}, self {r['self_labelled']:.2f} "
                          f"({r['seconds']}s)", file=sys.stderr, flush=True)
    lines = HEADER + [x for name in args.pools.split(",") for x in table(rows, name)]
    info = (f"{machine_line()}; pools: "
            + ", ".join(f"{k} {v.shape[0]}x{v.shape[1]}" for k, v in pools.items()))
    (out / "report.md").write_text("\n".join(lines + ["", info]) + "\n")
    print("\n".join(lines + ["", info]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
