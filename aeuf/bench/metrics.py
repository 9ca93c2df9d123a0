"""Metrics of the label-efficiency benchmark (pure numpy).

Shape letters: T test prompts, R responses per prompt, K posterior samples, M test pairs,
S seeds, n points on a learning curve.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from aeuf.errors import ConfigError

EPS = 1e-6  # predicted probabilities are clipped to [EPS, 1 - EPS] in log-likelihoods


class HeldOutPairs(NamedTuple):
    """M labelled pairs of responses of the test prompts (gold ties left out).

    prompt, a, b: int64 [M] (a < b within a prompt)
    y: float64 [M]  deterministic label 1[gold_a > gold_b]
    q: float64 [M]  Bradley-Terry probability sigmoid(gold_a - gold_b) (Bernoulli labels' mean)
    """

    prompt: np.ndarray
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    q: np.ndarray


def sigmoid(x) -> np.ndarray:
    """Elementwise logistic function, float64, stable for large |x|."""
    x = np.asarray(x, np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def held_out_pairs(gold, max_pairs: int | None = None, *, seed: int = 0) -> HeldOutPairs:
    """All pairs a < b of each test prompt whose gold differs; a seeded sample of at most
    `max_pairs` of them if given. gold: float [T, R] -> HeldOutPairs of M pairs."""
    g = np.asarray(gold, np.float64)
    T, R = g.shape
    iu, ju = np.triu_indices(R, 1)
    prompt = np.repeat(np.arange(T), iu.size)
    a, b = np.tile(iu, T), np.tile(ju, T)
    keep = g[prompt, a] != g[prompt, b]
    keep &= np.isfinite(g[prompt, a]) & np.isfinite(g[prompt, b])
    prompt, a, b = prompt[keep], a[keep], b[keep]
    if max_pairs is not None and prompt.size > max_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(prompt.size, max_pairs, replace=False))
        prompt, a, b = prompt[pick], a[pick], b[pick]
    d = g[prompt, a] - g[prompt, b]
    return HeldOutPairs(prompt, a, b, (d > 0).astype(np.float64), sigmoid(d))


def pair_accuracy(scores, pairs: HeldOutPairs) -> float:
    """Fraction of test pairs whose higher-scored response is the gold-better one; a tie in
    `scores` counts 1/2. scores: float [T, R] -> float."""
    s = np.asarray(scores, np.float64)
    d = s[pairs.prompt, pairs.a] - s[pairs.prompt, pairs.b]
    right = np.where(d == 0, 0.5, (d > 0) == (pairs.y > 0.5))
    return float(np.mean(right))


def pair_probs(samples, pairs: HeldOutPairs) -> np.ndarray:
    """Posterior predictive P(a beats b) = mean_k sigmoid(r_a^k - r_b^k).

    samples: float [K, T, R] joint reward samples (a single [T, R] score counts as K = 1)
    -> float64 [M].
    """
    s = np.asarray(samples, np.float64)
    s = s[None] if s.ndim == 2 else s
    return sigmoid(s[:, pairs.prompt, pairs.a] - s[:, pairs.prompt, pairs.b]).mean(axis=0)


def log_likelihood(prob, y) -> float:
    """Mean log-likelihood of labels y (in [0, 1], soft allowed) under predicted P(a beats b):
    mean(y log p + (1 - y) log(1 - p)), p clipped to [EPS, 1 - EPS]. prob, y: [M] -> float."""
    p = np.clip(np.asarray(prob, np.float64), EPS, 1.0 - EPS)
    y = np.asarray(y, np.float64)
    return float(np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def best_of_n_regret(scores, gold) -> float:
    """Mean over prompts of max(gold) - gold of the response ranked first by `scores`; ties
    for first place count as a uniformly random pick among them (their mean gold). Responses
    without gold (NaN) are not candidates; prompts with none are left out.
    scores, gold: float [T, R] -> float (in gold's units)."""
    s, g = np.asarray(scores, np.float64), np.asarray(gold, np.float64)
    known = np.isfinite(g)
    rows = known.any(axis=1)
    s, g, known = np.where(known, s, -np.inf)[rows], np.where(known, g, 0.0)[rows], known[rows]
    top = (s >= s.max(axis=1, keepdims=True)) & known
    picked = (g * top).sum(axis=1) / top.sum(axis=1)
    best = np.where(known, g, -np.inf).max(axis=1)
    return float(np.mean(best - picked))


def area_under_curve(x, y) -> float:
    """Trapezoid area under y(x) divided by the x range: the curve's mean height.
    x: increasing [n], y: [n] -> float (y[0] when n = 1)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size == 1:
        return float(y[0])
    if np.any(np.diff(x) <= 0):
        raise ConfigError("area_under_curve: x must be strictly increasing")
    area = np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0
    return float(area / (x[-1] - x[0]))


def labels_to_reach(x, y, target: float) -> float | None:
    """Smallest x at which the piecewise-linear curve y(x) first reaches `target`, or None
    if it never does. x: increasing [n], y: [n] -> float | None."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    hit = np.flatnonzero(y >= target)
    if hit.size == 0:
        return None
    i = int(hit[0])
    if i == 0:
        return float(x[0])
    frac = (target - y[i - 1]) / (y[i] - y[i - 1])
    return float(x[i - 1] + frac * (x[i] - x[i - 1]))


def labels_saved(x, y_rule, y_random) -> float | None:
    """1 - n_rule(target) / n_random(target), target = random's value at the last point.

    x: labels [n] shared by both curves; y_rule, y_random: mean curves [n]. None when the
    rule never reaches the target within x (it saves no labels, or needs more than x[-1]).
    """
    target = float(np.asarray(y_random)[-1])
    n_random = labels_to_reach(x, y_random, target)
    n_rule = labels_to_reach(x, y_rule, target)
    if n_rule is None:
        return None
    return 1.0 - n_rule / n_random


def labels_saved_band(x, rule_curves, random_curves, *, resamples: int = 1000,
                      seed: int = 0) -> tuple[float | None, float | None, float]:
    """A 95% paired bootstrap band of labels_saved over seeds: the same S seed indices are
    drawn (with replacement) for the rule and for random, and labels_saved computed on the
    resampled mean curves. x: labels [n]; rule_curves, random_curves: [S, n].
    -> (2.5th percentile, 97.5th percentile, share of resamples in which the rule reaches
    random's final value). A percentile that falls on a resample where the rule never
    reaches it is None (the band is open below). S = 1 gives the point value."""
    rule, rand = np.asarray(rule_curves, np.float64), np.asarray(random_curves, np.float64)
    S = rule.shape[0]
    draws = np.random.default_rng(seed).integers(S, size=(resamples, S)) if S > 1 else np.zeros((1, 1), int)
    vals = np.array([_saved_or_inf(x, rule[d].mean(0), rand[d].mean(0)) for d in draws])
    lo = np.percentile(vals, 2.5, method="lower")
    hi = np.percentile(vals, 97.5, method="higher")
    return (None if np.isinf(lo) else float(lo), None if np.isinf(hi) else float(hi),
            float(np.isfinite(vals).mean()))


def _saved_or_inf(x, rule, rand) -> float:
    saved = labels_saved(x, rule, rand)
    return -np.inf if saved is None else saved


def mean_se(values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the first axis: [S, ...] -> ([...], [...]).
    SE = sample std (ddof = 1) / sqrt(S); 0 when S = 1."""
    v = np.asarray(values, np.float64)
    n = v.shape[0]
    se = v.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(v.shape[1:])
    return v.mean(axis=0), se


def paired_difference(rule, baseline) -> tuple[float, float]:
    """Mean and standard error of rule - baseline over paired seeds: [S], [S] -> (mean, se)."""
    r, b = np.asarray(rule, np.float64), np.asarray(baseline, np.float64)
    if r.shape != b.shape:
        raise ConfigError(f"paired difference needs the same seeds: {r.shape} vs {b.shape}")
    m, se = mean_se(r - b)
    return float(m), float(se)


class Evaluation(NamedTuple):
    """Test metrics of one belief: accuracy (mean reward), log-likelihood (predictive
    probabilities against `labels`), best-of-N regret (mean reward)."""

    accuracy: float
    log_likelihood: float
    regret: float


def evaluate(mean, samples, pairs: HeldOutPairs, gold, labels) -> Evaluation:
    """mean [T, R], samples [K, T, R], gold [T, R], labels [M] (pairs.y or pairs.q)."""
    return Evaluation(pair_accuracy(mean, pairs), log_likelihood(pair_probs(samples, pairs), labels),
                      best_of_n_regret(mean, gold))
