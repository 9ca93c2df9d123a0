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
import sys
import time
from pathlib import Path

from aeuf.commands.flags import add_flags, build, flags_of


def _bench_flags():
    from aeuf.bench.settings import BenchConfig

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
    from aeuf.bench.job import check_names

    cls, flags = _bench_flags()
    bench = build(cls, args, flags)
    extra = ("west_of_n",) if bench.regime == "once" else ()
    rules = tuple(dict.fromkeys(("random", *bench.rules, *extra)))
    bench = dataclasses.replace(bench, rules=rules)
    check_names(bench)
    return bench


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


def run(args: argparse.Namespace) -> int:
    from aeuf.bench.job import run_job

    bench = config_of(args)
    out = Path(args.output_dir)
    cache = None  # the shared feature cache (--features_cache, else the user's cache folder)
    progress = not args.no_progress
    t0 = time.perf_counter()
    files = run_job(args.pool, bench, out, cache, progress=progress, on_run=_say(progress))
    print(f"aeuf bench: done in {time.perf_counter() - t0:.0f}s; wrote "
          f"{', '.join(str(p) for p in files.values())}", file=sys.stderr)
    return 0
