"""Calibration of a head's pairwise predictions on held-out pairs (pure numpy).

Shape letters: M test pairs, K posterior samples, B bins.

- `ece`: expected calibration error of predicted P(a beats b) with equal-mass bins: sort the
  M predictions, cut them into B bins of (nearly) equal count, and average
  |mean label - mean prediction| over the bins weighted by their size.
- `brier`: mean (p - y)^2 (y may be soft: then it is the squared distance to the target
  probability, which ranks heads like the Bernoulli Brier score, shifted by mean y(1 - y)).
- `interval_coverage`: the share of gold utility differences g_a - g_b inside the head's
  central credible interval of r_a - r_b (default 90%): a Gaussian interval from the pair's
  mean difference and Var[r_a - r_b], or empirical quantiles of joint samples.

A calibrated head has ECE near 0 and coverage near the level; coverage far below the level
means over-confidence (or, on gold utilities, a reward scale other than gold's).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from aeuf.errors import ConfigError


def ece(prob, y, bins: int = 10) -> float:
    """Equal-mass-bin ECE: prob, y float [M] (y in [0, 1], soft allowed) -> float in [0, 1]."""
    p, t = np.asarray(prob, np.float64), np.asarray(y, np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise ConfigError(f"ece: prob and y must be [M] arrays of one shape, got {p.shape}, {t.shape}")
    if p.size == 0 or bins < 1:
        raise ConfigError("ece: needs at least one prediction and one bin")
    order = np.argsort(p, kind="stable")
    gaps = [abs(t[g].mean() - p[g].mean()) * g.size for g in np.array_split(order, bins) if g.size]
    return float(sum(gaps) / p.size)


def brier(prob, y) -> float:
    """Mean squared error of predicted probabilities: prob, y float [M] -> float."""
    p, t = np.asarray(prob, np.float64), np.asarray(y, np.float64)
    return float(np.mean((p - t) ** 2))


def gaussian_interval(mean_diff, var_diff, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of N(mean_diff, var_diff): float [M], [M] -> (lo [M], hi [M])."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"interval level {level}: must be between 0 and 1")
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    half = z * np.sqrt(np.maximum(np.asarray(var_diff, np.float64), 0.0))
    m = np.asarray(mean_diff, np.float64)
    return m - half, m + half


def sample_interval(sample_diffs, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of K joint samples per pair (linear-interpolated quantiles):
    sample_diffs float [K, M] -> (lo [M], hi [M])."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"interval level {level}: must be between 0 and 1")
    s = np.asarray(sample_diffs, np.float64)
    lo, hi = np.quantile(s, [0.5 - level / 2.0, 0.5 + level / 2.0], axis=0)
    return lo, hi


def interval_coverage(lo, hi, gold_diff) -> float:
    """Share of gold differences inside [lo, hi]: float [M] x3 -> float in [0, 1]."""
    g = np.asarray(gold_diff, np.float64)
    return float(np.mean((g >= np.asarray(lo)) & (g <= np.asarray(hi))))


class Calibration(NamedTuple):
    """Calibration metrics of one belief on held-out pairs (see the module docstring)."""

    ece: float
    brier: float
    coverage: float  # Gaussian interval from the mean difference and pair_var
    coverage_samples: float  # empirical quantiles of the joint samples
    width: float  # mean width of the Gaussian interval (in reward units)


def calibration(mean, samples, pair_var, prob, y, gold, prompt, a, b, *, level: float = 0.9,
                bins: int = 10) -> Calibration:
    """All metrics for pairs (prompt, a, b) int [M] of a belief over T test prompts.

    mean [T, R], samples [K, T, R], pair_var [T, R, R] or None (then from the samples),
    prob [M] predicted P(a beats b), y [M] labels, gold [T, R] gold utilities.
    """
    s = np.asarray(samples, np.float64)
    sd = s[:, prompt, a] - s[:, prompt, b]
    m = np.asarray(mean, np.float64)
    md = m[prompt, a] - m[prompt, b]
    var = sd.var(axis=0) if pair_var is None else np.asarray(pair_var, np.float64)[prompt, a, b]
    g = np.asarray(gold, np.float64)
    gd = g[prompt, a] - g[prompt, b]
    lo, hi = gaussian_interval(md, var, level)
    slo, shi = sample_interval(sd, level)
    return Calibration(ece(prob, y, bins), brier(prob, y), interval_coverage(lo, hi, gd),
                       interval_coverage(slo, shi, gd), float(np.mean(hi - lo)))
