"""`aeuf bench POOL`: the label-efficiency benchmark, run by the main command's own round engine.

POOL holds gold scores per response: a long table (prompt_id, instruction, model, response,
score: a win probability against a common reference; gold = logit(clip(score))) or any
pool aeuf reads with gold columns. Each (rule, head, seed, label mode) is the run `aeuf`
would make with the same settings and `--oracle replay` (same keys, same choices).

Both regimes split the prompts into pool and test (--test_fraction). `budget`: every rule
labels --budget prompts of the pool in rounds of --batch_size (a budget above the pool takes
several passes, never repeating a judged pair) and the head is scored on all gold-ordered
pairs of the test prompts after each round. `once`: every pool prompt is labelled once (the
README's main command), the exported pairs are scored on gold, beside no-call baselines
(--baselines), and a fresh head trained on them is scored on the test prompts.

Writes to --output_dir: summary.json (flat rows, every field described in its "fields"),
report.md, learning_curves_<mode>.png (budget) or dataset_quality_<mode>.png (once), and
choices/<mode>_<head>_<rule>_<seed>.json (what each round chose, by prompt and response
id). Features come from the feature cache every aeuf run shares (--features_cache).
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

from aeuf.commands.flags import add_flags, build, flags_of
from aeuf.errors import ConfigError


def _bench_flags():
    from aeuf.bench.simulate import BenchConfig

    return BenchConfig, list(flags_of(BenchConfig))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cls, flags = _bench_flags()
    parser.add_argument("pool", help="pool with gold scores (long table with a score column, "
                                     "or gold columns)")
    add_flags(parser, flags, cls())
    parser.add_argument("--output_dir", default="bench_out",
                        help="where summary.json, report.md and the PNGs go (default: bench_out)")
    parser.add_argument("--no_progress", action="store_true", help="no progress lines")


def config_of(args: argparse.Namespace):
    """BenchConfig from the flags (random always runs first; the once regime also runs
    west_of_n, the reference of its gold gaps), checked."""
    cls, flags = _bench_flags()
    bench = build(cls, args, flags)
    extra = ("west_of_n",) if bench.regime == "once" else ()
    rules = tuple(dict.fromkeys(("random", *bench.rules, *extra)))
    bench = dataclasses.replace(bench, rules=rules)
    check_names(bench)
    return bench


def check_names(bench) -> None:
    """ConfigError (one line, listing valid names) for an unknown rule, head, part or mode."""
    from aeuf import embed
    from aeuf.acquire import RULES
    from aeuf.bench.heuristics import BASELINES
    from aeuf.bench.simulate import LABEL_MODES
    from aeuf.head import HEADS

    for r in (*bench.rules, bench.loop.initial_rule):
        RULES.get(r)
    for b in bench.baselines:
        BASELINES.get(b)
    for h in bench.heads:
        HEADS.get(h)
    for m in bench.label_modes:
        if m not in LABEL_MODES:
            raise ConfigError(f"unknown label mode '{m}': choose one of {', '.join(LABEL_MODES)}")
    embed.parse_parts(bench.features.features)
    if bench.seeds < 1:
        raise ConfigError("--seeds must be >= 1")


def ceiling_sets(bench) -> tuple[str, ...]:
    """--ceiling_features, or each part of --features alone plus the whole set."""
    from aeuf import embed

    if bench.ceiling_features:
        return bench.ceiling_features
    parts = embed.parse_parts(bench.features.features)
    return tuple(dict.fromkeys([*parts, bench.features.features]))


def load_data(pool_path: str, bench, cache: Path, progress: bool):
    """Read the pool, split it and build (or load from the cache) every feature set."""
    from aeuf.bench.data import read_bench_pool, select_responses, without_gold
    from aeuf.bench.runner import BenchData
    from aeuf.bench.simulate import split_prompts
    from aeuf.run import featurize

    pool = select_responses(read_bench_pool(pool_path), bench.models, bench.num_responses)
    if (n := without_gold(pool)) and progress:
        print(f"aeuf bench: {n} responses of {pool_path} have no gold score; they are left out "
              "(never chosen for the oracle, never scored)", file=sys.stderr)
    split = split_prompts(pool.shape[0], bench.test_fraction, bench.split_seed)

    def build_set(feat):
        return featurize.build_features(pool, feat, cache, progress=progress,
                                        fit_prompts=split[0])

    features, info = build_set(bench.features)
    sub = pool.take(split[0])
    pfeat = featurize.prompt_features(sub, features[split[0]], bench.features, cache,
                                      progress=progress)
    sets = {}
    if bench.regime == "budget":
        for name in ceiling_sets(bench):
            feat = dataclasses.replace(bench.features, features=name)
            sets[name] = features if name == bench.features.features else build_set(feat)[0]
    lengths = np.vectorize(len, otypes=[np.int64])(pool.responses.astype(str))
    return BenchData(pool, split, features, pfeat, lengths, sets), info


def _say(progress: bool):
    start = time.perf_counter()

    def on_run(mode, head, rule, seed, curve):
        if progress:
            acc = (f"acc {curve.accuracy[-1]:.3f} at " if len(curve.accuracy) else
                   f"RM acc {curve.rm.accuracy:.3f}, " if curve.rm is not None else "")
            print(f"aeuf bench: [{time.perf_counter() - start:6.0f}s] {mode:13s} {head:8s} "
                  f"{rule:13s} seed {seed}: {acc}{curve.comparisons.size} labels "
                  f"({curve.fit_s + curve.select_s:.1f}s)", file=sys.stderr, flush=True)

    return on_run


def write_choices(results, pool, out: Path) -> None:
    """choices/<mode>_<head>_<rule>_<seed>.json: per round, the prompt and response ids."""
    folder = out / "choices"
    folder.mkdir(parents=True, exist_ok=True)
    for mode, heads in results.curves.items():
        for head, rules in heads.items():
            for rule, curves in rules.items():
                for seed, c in enumerate(curves):
                    if not c.plans:  # a no-call baseline
                        continue
                    rounds = [{"round": p.t, "rule": p.rule,
                               "prompt_ids": [str(pool.prompt_ids[i]) for i in p.prompts],
                               "response_ids": [[str(x) for x in pool.response_ids[i, s]]
                                                for i, s in zip(p.prompts, p.slots)]}
                              for p in c.plans]
                    path = folder / f"{mode}_{head}_{rule}_{seed}.json"
                    path.write_text(json.dumps(rounds, indent=1) + "\n")


def run(args: argparse.Namespace) -> int:
    from aeuf.bench.data import without_gold
    from aeuf.bench.report import summarise, write_report
    from aeuf.bench.runner import run_benchmark
    from aeuf.config import to_dict

    bench = config_of(args)
    out = Path(args.output_dir)
    cache = None  # the shared feature cache (--features_cache, else the user's cache folder)
    progress = not args.no_progress
    t0 = time.perf_counter()
    data, info = load_data(args.pool, bench, cache, progress)
    t1 = time.perf_counter()
    results = run_benchmark(data, bench, on_run=_say(progress))
    config = {"pool": str(args.pool), "bench": to_dict(bench), "feature_dims": info.dims,
              "models": sorted({str(m) for m in data.pool.models.ravel()}),
              "responses_per_prompt": int(data.pool.shape[1]),
              "skipped_prompts": len(data.pool.skipped),
              "responses_without_gold": without_gold(data.pool),
              "newly_embedded": info.encoded, "features_s": round(t1 - t0, 1),
              "benchmark_s": round(time.perf_counter() - t1, 1), "cpu_count": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    files = write_report(summarise(results, config, bench), out, bench.features.features)
    write_choices(results, data.pool.take(data.split[0]), out)
    print(f"aeuf bench: done in {time.perf_counter() - t0:.0f}s; wrote "
          f"{', '.join(str(p) for p in files.values())}", file=sys.stderr)
    return 0
