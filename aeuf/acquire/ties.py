"""Tie-aware choice: do not pay for a pair the head predicts to tie on the judge's scale.

A judge rates on a grid of step s (cfg.rating_step, in reward units: the reward difference of
one rating point). Where the grid sits relative to the head's rewards is unknown (Bradley-Terry
rewards have no origin), so take its offset u uniform on [0, s): two rewards r_i, r_j round to
the same rating with probability max(0, 1 - |r_i - r_j| / s), a triangle in d = r_i - r_j. With
the head's belief d ~ N(m, v), m = mu_i - mu_j, v = Var[r_i - r_j] (Belief.pair_var):

    P_tie(i, j) = E[(1 - |d| / s)_+] = (g(m + s) - 2 g(m) + g(m - s)) / s,
    g(c) = E[(d - m + c)_+] = c Phi(c / sd) + sd phi(c / sd),   sd = sqrt(v)

(the triangle is (relu(d + s) - 2 relu(d) + relu(d - s)) / s). Approximations: a Gaussian
difference, one fixed step for the whole scale (no clipping at the ends of a 1-5 scale), and
ratings of the two responses as noise-free roundings of their rewards.

tie_aware(rule, cfg) passes valid = (P_tie <= cfg.tie_margin) to the rule, so its first pair is
one the head does not expect to tie (a prompt whose every pair would tie is left unconstrained),
and multiplies the rule's score by 1 - P_tie of that pair: the expected value of a call that
does not end in a tie, which sends tie-prone prompts down BAL-PM's ranking.

The step can be read off the labels instead of given (cfg.rating_step None): calibrated_step
finds the s at which the head's predicted tie rate on the pairs judged so far matches the
observed one; the round engine then wraps the rule with that step each round.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float
from scipy.special import ndtr

from aeuf.acquire.base import Rule, make_choice, require_belief
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Choice

CHUNK = 8192  # prompts per block, so the float64 temporaries stay small at any P


def tie_probability(
    mean: Float[np.ndarray, "P R"], pair_var: Float[np.ndarray, "P R R"], step: float
) -> Float[np.ndarray, "P R R"]:
    """P_tie[p, i, j]: probability that r_i and r_j round to the same rating (module docstring).
    float32 [P, R, R], symmetric, 1 on the diagonal; NaN where the belief is NaN."""
    out = np.empty(np.shape(pair_var), np.float32)
    for s in range(0, out.shape[0], CHUNK):
        mu = np.asarray(mean[s : s + CHUNK], np.float64)
        out[s : s + CHUNK] = tie_probability_of(mu[:, :, None] - mu[:, None, :],
                                                pair_var[s : s + CHUNK], step)
    return out


def tie_probability_of(m, v, step: float) -> np.ndarray:
    """P_tie for reward differences d ~ N(m, v), elementwise (arrays of one shape): float64."""
    sd = np.sqrt(np.maximum(np.asarray(v, np.float64), 0.0))
    sd = np.maximum(sd, 1e-12 * step)
    m = np.asarray(m, np.float64)
    return (_g(m + step, sd) - 2.0 * _g(m, sd) + _g(m - step, sd)) / step


def _g(c: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """E[(N(0, sd^2) + c)_+] = c Phi(c / sd) + sd phi(c / sd)."""
    t = c / sd
    return c * ndtr(t) + sd * np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi)


def tie_mask(
    mean: Float[np.ndarray, "P R"], pair_var: Float[np.ndarray, "P R R"], step: float,
    margin: float,
) -> Bool[np.ndarray, "P R R"]:
    """Pairs the head does not expect to tie: P_tie <= margin (False where P_tie is NaN)."""
    return tie_probability(mean, pair_var, step) <= margin


def check(cfg: AcquireConfig) -> None:
    """ConfigError unless --tie_margin is in [0, 1] and --rating_step is None or > 0."""
    margin, step = cfg.tie_margin, cfg.rating_step
    if margin is None or not 0.0 <= margin <= 1.0 or not (step is None or step > 0):
        raise ConfigError(f"--tie_margin {margin} must be in [0, 1] and --rating_step {step} > 0")


def tie_aware(rule: Rule, cfg: AcquireConfig) -> Rule:
    """`rule` choosing its first pair among pairs with P_tie <= cfg.tie_margin on a rating
    scale of step cfg.rating_step; score times 1 - P_tie of that pair. Without a belief (a
    model-free rule's first round) the rule runs unchanged."""
    check(cfg)
    margin, step = cfg.tie_margin, cfg.rating_step
    if step is None:
        raise ConfigError("tie-aware choice needs a --rating_step (the round engine reads "
                          "one off the labels when none is given)")

    def select(belief, features, *, key, k, valid=None) -> Choice:
        if belief is None:
            return rule.select(belief, features, key=key, k=k, valid=valid)
        b = require_belief(belief, "tie-aware choice")
        ok = tie_mask(b.mean, b.pair_var, step, margin)
        c = rule.select(b, features, key=key, k=k, valid=ok if valid is None else ok & valid)
        rows, i, j = np.arange(len(c.idx)), c.idx[:, 0], c.idx[:, 1]
        p = tie_probability_of(b.mean[rows, i] - b.mean[rows, j], b.pair_var[rows, i, j], step)
        return make_choice(c.idx, c.score * (1.0 - np.nan_to_num(p, nan=0.0)))

    return rule._replace(select=select)


def calibrated_step(
    mean: Float[np.ndarray, "P R"], pair_var: Float[np.ndarray, "P R R"], prompt, a, b,
    tied: Bool[np.ndarray, " M"], *, iters: int = 60,
) -> float:
    """The rating step s at which the head's mean predicted P_tie over the judged pairs
    (prompt, a, b: int [M]) equals their observed tie rate, smoothed as (ties + 0.5) / (M + 1)
    so that a run without a tie yet still gets a small step: the judge's rating resolution in
    the head's reward units, read off the labels. Bisection on log s (P_tie grows with s).
    NaN beliefs are left out; no usable pair -> NaN."""
    mean = np.asarray(mean)  # the labelled rows are taken before widening, not the pool
    m = mean[prompt, a].astype(np.float64) - mean[prompt, b].astype(np.float64)
    v = np.asarray(pair_var)[prompt, a, b].astype(np.float64)
    ok = np.isfinite(m) & np.isfinite(v)
    if not ok.any():
        return float("nan")
    m, v, tied = m[ok], v[ok], np.asarray(tied, bool)[ok]
    target = (tied.sum() + 0.5) / (tied.size + 1.0)
    scale = float(np.median(np.abs(m) + np.sqrt(np.maximum(v, 0.0)))) or 1.0
    lo, hi = np.log(scale * 1e-4), np.log(scale * 1e4)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if tie_probability_of(m, v, float(np.exp(mid))).mean() < target:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))
