"""`aeuf bench`'s job: check the names a BenchConfig uses, load the pool and its features,
run the benchmark and write summary.json, report.md, the plots and choices/ (the command,
aeuf.commands.bench, parses the flags and calls `run_job`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aeuf.errors import ConfigError


def check_names(bench) -> None:
    """ConfigError (one line, listing valid names) for an unknown rule, head, part or mode."""
    from aeuf import embed
    from aeuf.acquire import RULES
    from aeuf.bench.heuristics import BASELINES
    from aeuf.bench.settings import LABEL_MODES
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
    embed.possible_parts(bench.features.features)  # auto: resolved once the pool is read
    if bench.seeds < 1:
        raise ConfigError("--seeds must be >= 1")


def ceiling_sets(bench) -> tuple[str, ...]:
    """--ceiling_features, or each part of --features alone plus the whole set."""
    from aeuf import embed

    if bench.ceiling_features:
        return bench.ceiling_features
    parts = embed.parse_parts(bench.features.features)
    return tuple(dict.fromkeys([*parts, bench.features.features]))


def resolved(bench, pool):
    """`bench` with --features auto resolved for `pool`, as `aeuf run` resolves it."""
    from aeuf import embed

    return dataclasses.replace(bench, features=embed.resolve_config(bench.features, pool))


def load_data(pool_path: str, bench, cache: Path | None, progress: bool):
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
    bench = resolved(bench, pool)

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
    return BenchData(pool, split, features, pfeat, lengths, sets, info.dims), info, bench


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


def run_job(pool_path: str, bench, out: Path, cache: Path | None, *, progress: bool,
            on_run: Callable | None = None) -> dict:
    """The whole benchmark: -> {name: path} of the files written to `out`."""
    from aeuf.bench.data import without_gold
    from aeuf.bench.report import summarise, write_report
    from aeuf.bench.runner import run_benchmark
    from aeuf.config import to_dict

    t0 = time.perf_counter()
    data, info, bench = load_data(pool_path, bench, cache, progress)  # --features resolved
    t1 = time.perf_counter()
    results = run_benchmark(data, bench, on_run=on_run)
    config = {"pool": str(pool_path), "bench": to_dict(bench), "feature_dims": info.dims,
              "models": sorted({str(m) for m in data.pool.models.ravel()}),
              "responses_per_prompt": int(data.pool.shape[1]),
              "skipped_prompts": len(data.pool.skipped),
              "responses_without_gold": without_gold(data.pool),
              "newly_embedded": info.encoded, "features_s": round(t1 - t0, 1),
              "benchmark_s": round(time.perf_counter() - t1, 1), "cpu_count": os.cpu_count(),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    files = write_report(summarise(results, config, bench), out, bench.features.features)
    write_choices(results, data.pool.take(data.split[0]), out)
    return files
