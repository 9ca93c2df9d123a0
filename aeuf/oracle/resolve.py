"""Pure helpers that turn answers into a Judgement's ratings [k] and pairs [(i, j, p)]."""

from __future__ import annotations

import math

import numpy as np

from aeuf.types import Judgement


def value_of(answers, key: str) -> float | None:
    """The finite value answered for `key`, else None (absent, missing or NaN)."""
    answer = answers.get(key)
    if answer is None or answer.value is None or not math.isfinite(answer.value):
        return None
    return float(answer.value)


def whole_ratings(table: np.ndarray) -> np.ndarray:
    """[A, k] ratings per aspect (NaN = missing) -> [k] mean over the aspects, NaN for a
    response missing any aspect: a judgement is whole or absent, so a label never comes from
    some aspects of one response and other aspects of another (and cannot flip when the
    missing aspects arrive)."""
    table = np.asarray(table, np.float64)
    whole = np.isfinite(table).all(axis=0)
    return np.where(whole, np.where(np.isfinite(table), table, 0.0).mean(axis=0), np.nan)


def rating_pairs(ratings: np.ndarray) -> list[tuple[int, int, float]]:
    """Every i < j with both ratings: p = 1 if r_i > r_j, 0 if lower, 0.5 if equal."""
    k = len(ratings)
    return [(i, j, float(np.sign(ratings[i] - ratings[j]) * 0.5 + 0.5))
            for i in range(k) for j in range(i + 1, k)
            if np.isfinite(ratings[i]) and np.isfinite(ratings[j])]


def both_orders(p_ij: float | None, p_ji: float | None) -> float | None:
    """P(i beats j) from the two orders: p_ij asked with i first, p_ji with j first.

    Both are needed (one order alone carries the position bias). If the orders disagree
    (one favours i, the other j) the result is a tie, 0.5; otherwise their mean.
    """
    if p_ij is None or p_ji is None:
        return None
    a, b = p_ij, 1.0 - p_ji
    if (a - 0.5) * (b - 0.5) < 0:
        return 0.5
    return (a + b) / 2.0


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x), stable for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def pointwise(task, keys: list[str], answers, mode) -> Judgement:
    """The Judgement of an oracle that scores each response alone (replay, reward model):
    ratings [k] from the answers under `keys` (NaN missing); a pair for every i < j with both
    scores, p = mode(u_i, u_j, seed) with the seed naming both keys (a rerun draws the same)."""
    u = [value_of(answers, k) for k in keys]
    seen = [i for i, x in enumerate(u) if x is not None]
    pairs = [(i, j, mode(u[i], u[j], f"{keys[i]}|{keys[j]}"))
             for n, i in enumerate(seen) for j in seen[n + 1:]]
    return Judgement(task, np.array([np.nan if x is None else x for x in u], np.float64), pairs)
