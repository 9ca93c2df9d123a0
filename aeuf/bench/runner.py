"""The whole benchmark on arrays: every label mode x head x rule x seed; in the `budget`
regime the no-learning baselines and the all-pairs ceilings, in the `once` regime the
no-call baselines and, per run, a fresh head trained on the exported pairs (pure: no disk;
the command does the reading/writing).

Shape letters: P prompts (before the split), R responses per prompt, D feature dim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from aeuf.acquire import knn_graph
from aeuf.bench.heuristics import baseline_pairs
from aeuf.bench.metrics import (
    Evaluation,
    HeldOutPairs,
    best_of_n_regret,
    held_out_pairs,
    pair_accuracy,
)
from aeuf.bench.quality import exported_comparisons, lc_gold
from aeuf.bench.simulate import (
    BenchConfig,
    Curve,
    Task,
    ceiling,
    reward_model,
    run_config,
    simulate,
)
from aeuf.types import Comparisons, ResponsePool


class BenchData(NamedTuple):
    """The pool and its arrays, split into pool and test prompts.

    pool: the whole ResponsePool (with gold); split: (pool idx int64 [P'], test idx [T]);
    features: f32[P, R, D], standardised on the pool prompts only (as the main command would
    standardise them on a file holding just those); prompt_features: f32[P', d] of the pool
    prompts; lengths: [P, R] response lengths; ceiling_features: feature set -> f32[P, R, D_set];
    widths: part name -> width of `features` as built (the head's layout, as the run passes it).
    """

    pool: ResponsePool
    split: tuple
    features: np.ndarray
    prompt_features: np.ndarray
    lengths: np.ndarray
    ceiling_features: dict
    widths: dict | None = None


class Results(NamedTuple):
    """curves[mode][head][rule] = [Curve per seed] (the `once` regime adds each no-call
    baseline under its name); baselines[name] = Evaluation (budget regime; log-lik None
    where the baseline gives no probabilities); ceilings[head][feature set] = Evaluation
    (budget regime); split: sizes; regime; gold: f64[P', R] of the pool prompts; lc_gold:
    its length-controlled versions (aeuf.bench.quality.lc_gold; the once regime): name ->
    f64[P', R], "lc" with the model identity in the regression where known (AlpacaEval's),
    "lcl" with length alone (every length signal removed, the models' too)."""

    curves: dict
    baselines: dict
    ceilings: dict
    split: dict
    regime: str = "budget"
    gold: np.ndarray | None = None
    lc_gold: dict | None = None


def make_task(data: BenchData, features: np.ndarray, pairs: HeldOutPairs | None, graph) -> Task:
    """The pool/test arrays of one feature set."""
    pool, test = data.split
    gold = np.asarray(data.pool.gold, np.float64)
    f = np.asarray(features, np.float32)
    widths = data.widths if features is data.features else None  # a ceiling set: from D
    return Task(data.pool.take(pool), f[pool], data.prompt_features, f[test], gold[test], pairs,
                graph, widths)


def baselines(lengths, gold, pairs: HeldOutPairs) -> dict:
    """No-learning baselines on the test prompts: lengths, gold [T, R] -> name -> Evaluation.

    random: a coin flip per pair (accuracy 1/2, log-likelihood log 1/2, a uniformly random
    best-of-N pick); length: the longer response wins (no probabilities: log-likelihood None).
    """
    flat = np.zeros(np.shape(gold))
    length = np.asarray(lengths, np.float64)
    return {
        "random": Evaluation(0.5, float(np.log(0.5)), best_of_n_regret(flat, gold)),
        "length": Evaluation(pair_accuracy(length, pairs), None, best_of_n_regret(length, gold)),
    }


def run_benchmark(data: BenchData, bench: BenchConfig, *,
                  on_run: Callable[[str, str, str, int, Curve], None] | None = None) -> Results:
    """Every run of the benchmark. on_run(mode, head, rule, seed, curve) is called after each
    run (progress). Seeds are 0..bench.seeds-1."""
    pool, test = data.split
    gold = np.asarray(data.pool.gold, np.float64)
    pairs = held_out_pairs(gold[test], bench.max_test_pairs, seed=bench.split_seed) if test.size else None
    acq = bench.acquire
    graph = (knn_graph(data.prompt_features, acq.knn_k, exact_max=acq.knn_exact_max,
                       index=acq.knn_index)
             if pool.size > 1 else None)
    task = make_task(data, data.features, pairs, graph)
    once = bench.regime == "once"
    names = (*bench.rules, *(bench.baselines if once else ()))
    curves: dict = {}
    for mode in bench.label_modes:
        for head in bench.heads:
            for name in names:
                for seed in range(bench.seeds):
                    cfg = run_config(bench, name if name in bench.rules else "random", head,
                                     seed, mode)
                    c = (simulate(task, cfg, curve=not once) if name in bench.rules else
                         no_call_run(task, name, seed, bench.model_ranking))
                    if once and pairs is not None:
                        c = c._replace(rm=reward_model(task, cfg, exported_comparisons(c.labelled),
                                                       seed))
                    curves.setdefault(mode, {}).setdefault(head, {}).setdefault(name, []).append(c)
                    if on_run is not None:
                        on_run(mode, head, name, seed, c)
    split = {"pool_prompts": int(pool.size), "test_prompts": int(test.size),
             "test_pairs": 0 if pairs is None else int(pairs.prompt.size)}
    if once:
        models = None if data.pool.models is None else data.pool.models[pool]
        lc = {"lc": lc_gold(gold[pool], data.lengths[pool], models),
              "lcl": lc_gold(gold[pool], data.lengths[pool])}
        return Results(curves, {}, {}, split, bench.regime, gold[pool], lc)
    if pairs is None:
        return Results(curves, {}, {}, split, bench.regime, gold[pool])
    return Results(curves, baselines(data.lengths[test], gold[test], pairs),
                   ceilings(data, bench, pairs, graph), split, bench.regime, gold[pool])


def no_call_run(task: Task, name: str, seed: int, ranking: tuple[str, ...]) -> Curve:
    """A no-call baseline as a run: its pairs, no oracle call, no curve."""
    empty = np.zeros(0)
    return Curve(empty, empty, empty, empty, 0.0, 0.0, 0, Comparisons.empty(), [],
                 baseline_pairs(name, task.pool, seed=seed, ranking=ranking))


def ceilings(data: BenchData, bench: BenchConfig, pairs: HeldOutPairs, graph) -> dict:
    """head -> feature set -> Evaluation of the head trained on all pool pairs."""
    out: dict = {}
    for h in bench.heads:
        cfg = run_config(bench, "random", h, 0, "deterministic")
        if bench.ceiling_epochs is not None:
            cfg = dataclasses.replace(cfg, head=dataclasses.replace(cfg.head,
                                                                    epochs=bench.ceiling_epochs))
        for name, feats in data.ceiling_features.items():
            task = make_task(data, feats, pairs, graph)
            out.setdefault(h, {})[name] = ceiling(task, cfg, max_pairs=bench.ceiling_pairs,
                                                  seed=bench.split_seed)
    return out
