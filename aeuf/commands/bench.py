"""`aeuf bench POOL`: the label-efficiency benchmark (simulated active learning, replay oracle).

POOL holds gold scores per response: a long table (prompt_id, instruction, model, response,
score: a win probability against a common reference; gold = logit(clip(score))) or any
pool aeuf reads with gold columns. The prompts are split into pool and test; every rule in
--rules, with every head in --heads, for --seeds seeds and each --label_mode, labels up to
--budget comparisons in rounds of --batch and is scored on all gold-ordered pairs of the
test prompts after each round. Features come from the aeuf feature cache (--features_cache),
so a second run embeds nothing.

Writes to --output_dir: summary.json (per label mode, head and rule: seeds, labels per
round, test accuracy / log-likelihood / best-of-N regret per round as mean and standard
error, area under the accuracy curve, labels saved vs random, paired differences vs random,
wall time; the no-learning baselines; the all-pairs ceiling per head and feature set),
report.md (the same as tables) and learning_curves_<mode>.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

from aeuf.errors import ConfigError


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in _names(text))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("pool", help="pool with gold scores (long table with a score column, or gold columns)")
    a("--rules", type=_names, default=("random", "dts", "deltaucb", "infomax"),
      help="acquisition rules, comma-separated (random is always run first)")
    a("--heads", type=_names, default=("ensemble", "bll"), help="reward heads, comma-separated")
    a("--features", default="minilm+stats+model", help="feature parts joined by '+'")
    a("--ceiling_features", type=_names, default=None,
      help="feature sets for the all-pairs ceilings, comma-separated (default: each part of "
           "--features alone and --features itself)")
    a("--precomputed", default=None, help="precomputed features for the 'file' part")
    a("--features_cache", default=None, help="feature cache folder (default OUTPUT_DIR/cache)")
    a("--seeds", type=int, default=5, help="seeds per rule (0..N-1)")
    a("--budget", type=int, default=400, help="labels (comparisons) per run")
    a("--batch", type=int, default=50, help="labels per round")
    a("--initial_batch", type=int, default=None, help="first round's labels (default --batch)")
    a("--initial_rule", default="random", help="model-free rule of the shared first round")
    a("--label_mode", type=_names, default=("deterministic", "bernoulli"),
      help="replay labels: deterministic, bernoulli, or both comma-separated")
    a("--prompt_selection", default="auto",
      help="auto (BAL-PM for belief rules, uniform for model-free ones), balpm or random")
    a("--test_fraction", type=float, default=0.25, help="share of prompts held out")
    a("--split_seed", type=int, default=0, help="seed of the pool/test split")
    a("--max_test_pairs", type=int, default=None, help="sample at most this many test pairs")
    a("--ceiling_pairs", type=int, default=20000, help="pool pairs the ceiling trains on")
    a("--ceiling_epochs", type=int, default=5, help="epochs of the ceiling fit")
    a("--members", type=int, default=None, help="ensemble members / posterior samples K")
    a("--hidden", type=_ints, default=None, help="ensemble hidden widths, e.g. 128,128")
    a("--epochs", type=int, default=None, help="head epochs per round")
    a("--num_annotations", type=int, default=None, help="responses shown per prompt")
    a("--beta", type=float, default=None, help="UCB/LCB width")
    a("--output_dir", default="bench_out", help="where summary.json, report.md, PNGs go")
    a("--no_progress", action="store_true", help="no progress lines")


def _given(args, names: dict) -> dict:
    return {field: getattr(args, flag) for flag, field in names.items() if getattr(args, flag) is not None}


def configs(args: argparse.Namespace):
    """(BenchConfig, HeadConfig, AcquireConfig, FeatureConfig) from the flags."""
    from aeuf.bench.simulate import BenchConfig
    from aeuf.config import AcquireConfig, FeatureConfig, HeadConfig

    rules = ("random", *(r for r in args.rules if r != "random"))
    bench = BenchConfig(
        rules=rules, heads=args.heads, seeds=args.seeds, budget=args.budget, batch=args.batch,
        initial_batch=args.initial_batch, initial_rule=args.initial_rule,
        label_modes=args.label_mode, prompt_selection=args.prompt_selection,
        test_fraction=args.test_fraction, split_seed=args.split_seed,
        max_test_pairs=args.max_test_pairs, ceiling_pairs=args.ceiling_pairs,
        ceiling_epochs=args.ceiling_epochs)
    head = HeadConfig(**_given(args, {"members": "members", "hidden": "hidden", "epochs": "epochs"}))
    acq = AcquireConfig(**_given(args, {"num_annotations": "num_annotations", "beta": "beta"}))
    feat = FeatureConfig(features=args.features, precomputed=args.precomputed)
    return bench, head, acq, feat


def check_names(bench, feat) -> None:
    """ConfigError (one line, listing valid names) for an unknown rule, head, part or mode."""
    from aeuf import embed
    from aeuf.acquire import RULES
    from aeuf.bench.simulate import LABEL_MODES
    from aeuf.head import HEADS

    for r in (*bench.rules, bench.initial_rule):
        RULES.get(r)
    for h in bench.heads:
        HEADS.get(h)
    for m in bench.label_modes:
        if m not in LABEL_MODES:
            raise ConfigError(f"unknown label mode '{m}': choose one of {', '.join(LABEL_MODES)}")
    embed.parse_parts(feat.features)
    if bench.seeds < 1:
        raise ConfigError("--seeds must be >= 1")


def ceiling_sets(args, feat) -> tuple[str, ...]:
    """--ceiling_features, or each part of --features alone plus the whole set."""
    from aeuf import embed

    if args.ceiling_features:
        return args.ceiling_features
    parts = embed.parse_parts(feat.features)
    return tuple(dict.fromkeys([*parts, feat.features]))


def load_data(args, bench, feat, cache: Path, progress: bool):
    """Read the pool and build (or load from the cache) every feature set: -> BenchData."""
    from aeuf.run import featurize
    from aeuf.bench.data import read_bench_pool
    from aeuf.bench.runner import BenchData

    pool = read_bench_pool(args.pool)
    features, info = featurize.build_features(pool, feat, cache, progress=progress)
    pfeat = featurize.prompt_features(pool, features, feat, cache, progress=progress)
    sets = {}
    for name in ceiling_sets(args, feat):
        cfg = dataclasses.replace(feat, features=name)
        sets[name] = features if name == feat.features else featurize.build_features(
            pool, cfg, cache, progress=progress)[0]
    lengths = np.vectorize(len, otypes=[np.int64])(pool.responses.astype(str))
    return BenchData(features, pfeat, np.asarray(pool.gold, np.float64), lengths, sets), info


def _say(progress: bool):
    start = time.perf_counter()

    def on_run(mode, head, rule, seed, curve):
        if progress:
            print(f"aeuf bench: [{time.perf_counter() - start:6.0f}s] {mode:13s} {head:8s} "
                  f"{rule:13s} seed {seed}: acc {curve.accuracy[-1]:.3f} at {curve.labels[-1]} "
                  f"labels ({curve.fit_s + curve.select_s:.1f}s)", file=sys.stderr, flush=True)

    return on_run


def run(args: argparse.Namespace) -> int:
    from aeuf.bench.report import summarise, write_report
    from aeuf.bench.runner import run_benchmark
    from aeuf.config import to_dict

    bench, head, acq, feat = configs(args)
    check_names(bench, feat)
    out = Path(args.output_dir)
    cache = Path(args.features_cache) if args.features_cache else out / "cache"
    progress = not args.no_progress
    t0 = time.perf_counter()
    data, info = load_data(args, bench, feat, cache, progress)
    t1 = time.perf_counter()
    results = run_benchmark(data, bench, head, acq, on_run=_say(progress))
    config = {"pool": str(args.pool), "bench": to_dict(bench), "head": to_dict(head),
              "acquire": to_dict(acq), "features": to_dict(feat), "feature_dims": info.dims,
              "newly_embedded": info.encoded, "features_s": round(t1 - t0, 1),
              "benchmark_s": round(time.perf_counter() - t1, 1), "cpu_count": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    files = write_report(summarise(results, config), out, feat.features)
    print(f"aeuf bench: done in {time.perf_counter() - t0:.0f}s; wrote "
          f"{', '.join(str(p) for p in files.values())}", file=sys.stderr)
    return 0
