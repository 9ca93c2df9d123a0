"""Simulated active learning on gold utilities (pure: arrays in, a learning curve out).

One run = one (rule, head, seed, label mode): rounds of choose -> replay oracle -> refit ->
evaluate on held-out prompts. Everything random derives from the seed, and the first round
(a model-free rule, `initial_rule`), the head's init key and the oracle's noise depend on
the seed only, so every rule starts from the same labelled batch and the same head: the
differences between rules at a seed are paired.

Shape letters: P pool prompts, T test prompts, R responses per prompt, D feature dim,
d prompt-feature dim, k' responses shown per prompt, n rounds.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import NamedTuple

import jax
import numpy as np

from aeuf.acquire import KnnGraph, knn_graph, make_rule, pick_pair, select_prompts
from aeuf.acquire.base import numpy_rng
from aeuf.bench.metrics import Evaluation, HeldOutPairs, evaluate
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Comparisons

LABEL_MODES = ("deterministic", "bernoulli")
PROMPT_SELECTIONS = ("auto", "balpm", "random")


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """Settings of the benchmark (head and acquisition settings live in their own configs)."""

    rules: tuple[str, ...] = ("random", "dts", "deltaucb", "infomax")
    heads: tuple[str, ...] = ("ensemble", "bll")
    seeds: int = 5
    budget: int = 400  # labels (one comparison per labelled prompt)
    batch: int = 50  # labels per round
    initial_batch: int | None = None  # first round's size; None = batch
    initial_rule: str = "random"  # model-free rule of the shared first round (random, aepo)
    label_modes: tuple[str, ...] = LABEL_MODES
    prompt_selection: str = "auto"  # auto: BAL-PM for belief rules, uniform for model-free
    test_fraction: float = 0.25
    split_seed: int = 0
    max_test_pairs: int | None = None
    ceiling_pairs: int | None = 20000  # pool pairs the all-pairs ceiling trains on (None: all)
    ceiling_epochs: int | None = 5  # epochs of the ceiling fit (None: the head's own)


class Task(NamedTuple):
    """What a run needs: pool and held-out data with gold.

    features: f32[P, R, D]; prompt_features: f32[P, d]; gold: f64[P, R] (utilities);
    test_features: f32[T, R, D]; test_gold: f64[T, R]; pairs: the held-out pairs;
    graph: kNN graph of prompt_features (BAL-PM prompt selection) or None.
    """

    features: np.ndarray
    prompt_features: np.ndarray
    gold: np.ndarray
    test_features: np.ndarray
    test_gold: np.ndarray
    pairs: HeldOutPairs
    graph: KnnGraph | None


class Curve(NamedTuple):
    """One run's learning curve, one entry per round.

    labels: int [n] comparisons so far; accuracy, log_likelihood, regret: float [n];
    fit_s, select_s: wall seconds spent fitting / scoring + choosing (whole run);
    shown: responses the oracle looked at (k' per labelled prompt);
    comparisons: every label of the run, in the order acquired (prompt indices into the pool).
    """

    labels: np.ndarray
    accuracy: np.ndarray
    log_likelihood: np.ndarray
    regret: np.ndarray
    fit_s: float
    select_s: float
    shown: int
    comparisons: Comparisons


def split_prompts(num_prompts: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of prompt indices: -> (pool int64 [P - T], test int64 [T]), both sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"--test_fraction {test_fraction}: must be between 0 and 1")
    perm = np.random.default_rng(seed).permutation(num_prompts)
    t = max(1, int(round(test_fraction * num_prompts)))
    if t >= num_prompts:
        raise ConfigError(f"{num_prompts} prompts are too few to split off a test set")
    return np.sort(perm[t:]), np.sort(perm[:t])


def schedule(budget: int, batch: int, initial: int | None, num_prompts: int) -> list[int]:
    """Labels per round: [initial, batch, ..., rest] summing to min(budget, num_prompts)."""
    total = min(budget, num_prompts)
    if total < 1 or batch < 1:
        raise ConfigError(f"budget ({budget}) and batch ({batch}) must be >= 1")
    sizes = [min(initial or batch, total)]
    while sum(sizes) < total:
        sizes.append(min(batch, total - sum(sizes)))
    return sizes


def oracle_ratings(gold, mode: str, seed: int) -> np.ndarray:
    """What the replay oracle rates each response: f64[P, R].

    deterministic: the gold utility itself. bernoulli: gold + standard Gumbel noise drawn
    once per seed (shared by every rule, so labels are common random numbers). Comparing
    two noisy ratings gives P(i beats j) = sigmoid(g_i - g_j), the Bradley-Terry label.
    """
    g = np.asarray(gold, np.float64)
    if mode == "deterministic":
        return g
    if mode == "bernoulli":
        return g + np.random.default_rng([seed, 99]).gumbel(size=g.shape)
    raise ConfigError(f"unknown label mode '{mode}': choose one of {', '.join(LABEL_MODES)}")


def label(ratings, prompts, idx, pairing: str, key) -> Comparisons:
    """Comparisons from the oracle's ratings f64[P, R] of the shown responses idx [b, k'].

    k' = 2: (a, b, 1[r_a > r_b]), 1/2 on a tie. k' > 2: the rule's pairing turns the k'
    ratings into (chosen, rejected) with p = 1 (1/2 if their ratings tie). key: JAX key or int.
    """
    prompts = np.asarray(prompts, np.int64)
    idx = np.asarray(idx, np.int64)
    r = np.asarray(ratings, np.float64)[prompts[:, None], idx]  # [b, k']
    if idx.shape[1] == 2:
        a, b = idx[:, 0], idx[:, 1]
    else:
        seeds = numpy_rng(key).integers(2**31, size=len(prompts))
        picks = [pick_pair(r[n], pairing, key=int(seeds[n])) for n in range(len(prompts))]
        slots = np.asarray(picks, np.int64).reshape(-1, 2)
        rows = np.arange(len(prompts))
        a, b = idx[rows, slots[:, 0]], idx[rows, slots[:, 1]]
    full = np.asarray(ratings, np.float64)
    ra, rb = full[prompts, a], full[prompts, b]
    p = np.where(ra == rb, 0.5, (ra > rb).astype(np.float64))
    return Comparisons(prompts.astype(np.int32), a.astype(np.int32), b.astype(np.int32), p.astype(np.float32))


def concat(c1: Comparisons, c2: Comparisons) -> Comparisons:
    """The comparisons of c1 followed by those of c2."""
    return Comparisons(*(np.concatenate([x, y]) for x, y in zip(c1, c2)))


def all_pairs(gold, max_pairs: int | None = None, *, seed: int = 0) -> Comparisons:
    """Every pair of every prompt with different gold, labelled 1[g_a > g_b] (a seeded sample
    of `max_pairs` of them if given): gold f64[P, R] -> Comparisons."""
    from aeuf.bench.metrics import held_out_pairs

    hp = held_out_pairs(gold, max_pairs, seed=seed)
    return Comparisons(hp.prompt.astype(np.int32), hp.a.astype(np.int32), hp.b.astype(np.int32),
                       hp.y.astype(np.float32))


def use_balpm(selection: str, needs_belief: bool) -> bool:
    """Whether a round picks prompts by BAL-PM (else uniformly among unlabelled ones)."""
    if selection not in PROMPT_SELECTIONS:
        raise ConfigError(f"unknown prompt selection '{selection}': choose one of {', '.join(PROMPT_SELECTIONS)}")
    return selection == "balpm" or (selection == "auto" and needs_belief)


def choose(rule, belief, task: Task, acquired, size: int, k: int, key, seed: int, t: int,
           selection: str, acq: AcquireConfig) -> tuple[np.ndarray, np.ndarray]:
    """One round's choice: -> (prompts int64 [size], shown responses int64 [size, k'])."""
    R = task.features.shape[1]
    choice = rule.select(belief, task.features, key=key, k=rule.num_shown(k, R))
    if use_balpm(selection, rule.needs_belief):
        graph = task.graph if task.graph is not None else knn_graph(task.prompt_features, acq.knn_k)
        prompts = select_prompts(choice.score, task.prompt_features, acquired, size, acq, graph=graph)
    else:
        rng = np.random.default_rng([seed, t, 7])
        prompts = rng.choice(np.flatnonzero(~acquired), size, replace=False)
    prompts = np.asarray(prompts, np.int64)
    return prompts, np.asarray(choice.idx, np.int64)[prompts]


def evaluate_state(head, state, task: Task, key, labels, num_samples: int) -> Evaluation:
    """Held-out metrics of a head state (labels: the pairs' y or q)."""
    b = head.belief(state, task.test_features, key=key, num_samples=num_samples)
    return evaluate(b.mean, b.samples, task.pairs, task.test_gold, labels)


def simulate(task: Task, rule_name: str, head, cfg: BenchConfig, acq: AcquireConfig, *,
             seed: int, mode: str, num_samples: int = 16) -> Curve:
    """One simulated active-learning run: -> Curve (one point per round)."""
    base = jax.random.key(seed)
    rk = lambda t, purpose: jax.random.fold_in(jax.random.fold_in(base, 100 + t), purpose)  # noqa: E731
    P, R, D = task.features.shape
    rules = {n: make_rule(dataclasses.replace(acq, rule=n)) for n in {cfg.initial_rule, rule_name}}
    if rules[cfg.initial_rule].needs_belief:
        raise ConfigError(f"initial rule '{cfg.initial_rule}' needs a fitted head; use random or aepo")
    ratings = oracle_ratings(task.gold, mode, seed)
    eval_labels = task.pairs.y if mode == "deterministic" else task.pairs.q
    state = head.init(D, key=jax.random.fold_in(base, 0))
    comps, acquired, belief = Comparisons.empty(), np.zeros(P, bool), None
    out, fit_s, select_s, shown = [], 0.0, 0.0, 0
    sizes = schedule(cfg.budget, cfg.batch, cfg.initial_batch, P)
    for t, size in enumerate(sizes):
        t0 = time.perf_counter()
        rule = rules[cfg.initial_rule if t == 0 else rule_name]
        if rule.needs_belief:
            belief = head.belief(state, task.features, key=rk(t, 2), num_samples=num_samples)
        prompts, idx = choose(rule, belief, task, acquired, size, acq.num_annotations,
                              rk(t, 0) if t else jax.random.fold_in(base, 1), seed, t,
                              cfg.prompt_selection, acq)
        t1 = time.perf_counter()
        comps = concat(comps, label(ratings, prompts, idx, rule.pairing, rk(t, 3)))
        acquired[prompts] = True
        shown += idx.size
        state = jax.block_until_ready(head.fit(state, task.features, comps, key=rk(t, 1)))
        t2 = time.perf_counter()
        select_s, fit_s = select_s + (t1 - t0), fit_s + (t2 - t1)
        out.append((comps.size, *evaluate_state(head, state, task, rk(t, 4), eval_labels, num_samples)))
    labels, acc, ll, reg = (np.asarray(c) for c in zip(*out))
    return Curve(labels, acc, ll, reg, fit_s, select_s, shown, comps)


def ceiling(task: Task, head, *, max_pairs: int | None, seed: int = 0,
            num_samples: int = 16) -> Evaluation:
    """The head trained on all (or `max_pairs` sampled) pool pairs with deterministic gold
    labels, evaluated like a run: what the features allow at best."""
    comps = all_pairs(task.gold, max_pairs, seed=seed)
    base = jax.random.key(seed)
    state = head.init(task.features.shape[-1], key=jax.random.fold_in(base, 0))
    state = head.fit(state, task.features, comps, key=jax.random.fold_in(base, 5))
    return evaluate_state(head, state, task, jax.random.fold_in(base, 6), task.pairs.y, num_samples)
