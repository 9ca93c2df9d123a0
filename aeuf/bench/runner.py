"""The whole benchmark on arrays: every label mode x head x rule x seed, the no-learning
baselines and the all-pairs ceilings (pure: no disk; the command does the reading/writing).

Shape letters: P prompts (before the split), R responses per prompt, D feature dim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from aeuf.acquire import knn_graph
from aeuf.bench.metrics import (
    Evaluation,
    HeldOutPairs,
    best_of_n_regret,
    held_out_pairs,
    pair_accuracy,
)
from aeuf.bench.simulate import BenchConfig, Curve, Task, ceiling, simulate, split_prompts
from aeuf.config import AcquireConfig, HeadConfig
from aeuf.head import make_head


class BenchData(NamedTuple):
    """The pool as arrays (all prompts; the runner splits them).

    features: f32[P, R, D] the feature set the rules run on; prompt_features: f32[P, d];
    gold: f64[P, R] utilities; lengths: [P, R] response lengths (for "the longer one wins");
    ceiling_features: feature-set name -> f32[P, R, D_set] for the per-feature-set ceilings.
    """

    features: np.ndarray
    prompt_features: np.ndarray
    gold: np.ndarray
    lengths: np.ndarray
    ceiling_features: dict


class Results(NamedTuple):
    """curves[mode][head][rule] = [Curve per seed]; baselines[name] = Evaluation (log-lik
    None where the baseline gives no probabilities); ceilings[head][feature set] =
    Evaluation; split: (pool prompts, test prompts, test pairs)."""

    curves: dict
    baselines: dict
    ceilings: dict
    split: dict


def make_task(data: BenchData, features: np.ndarray, pool: np.ndarray, test: np.ndarray,
              pairs: HeldOutPairs, acq: AcquireConfig) -> Task:
    """The pool/test arrays of one feature set for a fixed split."""
    pf = np.asarray(data.prompt_features, np.float32)[pool]
    return Task(np.asarray(features, np.float32)[pool], pf, data.gold[pool],
                np.asarray(features, np.float32)[test], data.gold[test], pairs,
                knn_graph(pf, acq.knn_k))


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


def run_benchmark(data: BenchData, cfg: BenchConfig, head_cfg: HeadConfig, acq: AcquireConfig,
                  *, on_run: Callable[[str, str, str, int, Curve], None] | None = None) -> Results:
    """Every run of the benchmark. on_run(mode, head, rule, seed, curve) is called after each
    run (progress). Seeds are 0..cfg.seeds-1; the split is fixed by cfg.split_seed."""
    pool, test = split_prompts(data.gold.shape[0], cfg.test_fraction, cfg.split_seed)
    pairs = held_out_pairs(data.gold[test], cfg.max_test_pairs, seed=cfg.split_seed)
    task = make_task(data, data.features, pool, test, pairs, acq)
    heads = {h: make_head(dataclasses.replace(head_cfg, name=h)) for h in cfg.heads}
    curves: dict = {}
    for mode in cfg.label_modes:
        for h, head in heads.items():
            for rule in cfg.rules:
                for seed in range(cfg.seeds):
                    c = simulate(task, rule, head, cfg, acq, seed=seed, mode=mode,
                                 num_samples=head_cfg.members)
                    curves.setdefault(mode, {}).setdefault(h, {}).setdefault(rule, []).append(c)
                    if on_run is not None:
                        on_run(mode, h, rule, seed, c)
    return Results(curves, baselines(data.lengths[test], data.gold[test], pairs),
                   ceilings(data, cfg, head_cfg, acq, pool, test, pairs),
                   {"pool_prompts": int(pool.size), "test_prompts": int(test.size),
                    "test_pairs": int(pairs.prompt.size)})


def ceilings(data: BenchData, cfg: BenchConfig, head_cfg: HeadConfig, acq: AcquireConfig,
             pool, test, pairs: HeldOutPairs) -> dict:
    """head -> feature set -> Evaluation of the head trained on all pool pairs."""
    epochs = cfg.ceiling_epochs if cfg.ceiling_epochs is not None else head_cfg.epochs
    out: dict = {}
    for h in cfg.heads:
        head = make_head(dataclasses.replace(head_cfg, name=h, epochs=epochs))
        for name, feats in data.ceiling_features.items():
            task = make_task(data, feats, pool, test, pairs, acq)
            out.setdefault(h, {})[name] = ceiling(task, head, max_pairs=cfg.ceiling_pairs,
                                                  seed=cfg.split_seed, num_samples=head_cfg.members)
    return out
