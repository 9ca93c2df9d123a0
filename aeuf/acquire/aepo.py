"""`aepo`: model-free choice of k diverse and representative responses per prompt (AEPO).

On cosine similarities s(y, y') of the response features, the chosen set Y maximises

    f(Y) = sum_{y in Y} rep(y) - lam / (k - 1) * sum_{y != y' in Y} s(y, y')

with rep(y) = mean of s(y, y') over the R - 1 other candidates y'. This is k times AEPO's
objective (mean representativeness of the chosen minus lam times their mean pairwise
similarity), so the same lam selects the same sets. Search: greedy, then best-improvement
1-swap local search until no swap improves f (AEPO re-adds greedily after removing a random
element for a fixed number of iterations; best-improvement reaches a 1-swap local optimum
deterministically). Numpy, vectorised over prompts.
"""

from __future__ import annotations

import numpy as np

from aeuf.acquire.base import RULES, Rule, argmax_random, check_k, make_choice, numpy_rng, shown_k
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Choice

TOL = 1e-9  # a swap must improve f by more than this (guards against float ping-pong)


GRAM_PROMPTS = 8192  # prompts per block of the Gram matrices


def cosine_sim(features: np.ndarray) -> np.ndarray:
    """features [P, R, D] -> float64 [P, R, R] cosine similarities (zero vectors give 0).

    The Gram matrix is formed first and normalised after, so the [P, R, D] features are read
    once (normalising them first costs two more passes over the largest array), in blocks of
    prompts converted to float32 (a float16 or memory-mapped pool is never copied whole)."""
    num_p, num_r, _ = features.shape
    gram = np.empty((num_p, num_r, num_r), np.float64)
    for lo in range(0, num_p, GRAM_PROMPTS):
        f = np.asarray(features[lo:lo + GRAM_PROMPTS], np.float32)
        gram[lo:lo + GRAM_PROMPTS] = np.matmul(f, f.transpose(0, 2, 1))
    norm = np.sqrt(np.maximum(np.diagonal(gram, axis1=1, axis2=2), 0.0))
    inv = np.where(norm > 1e-12, 1.0 / np.maximum(norm, 1e-12), 0.0)
    return gram * inv[:, :, None] * inv[:, None, :]


def representativeness(sim: np.ndarray) -> np.ndarray:
    """rep(y): mean similarity to the other R - 1 candidates; sim [P, R, R] -> [P, R]."""
    R = sim.shape[1]
    return (sim.sum(axis=2) - np.diagonal(sim, axis1=1, axis2=2)) / (R - 1)


def objective(sim: np.ndarray, idx: np.ndarray, lam: float) -> np.ndarray:
    """f(Y) for each row: sim [P, R, R], idx [P, k] -> float64 [P]."""
    P, k = idx.shape
    rows = np.arange(P)[:, None]
    sub = sim[rows[:, :, None], idx[:, :, None], idx[:, None, :]]  # [P, k, k]
    redundancy = sub.sum(axis=(1, 2)) - np.trace(sub, axis1=1, axis2=2)
    return representativeness(sim)[rows, idx].sum(axis=1) - lam / (k - 1) * redundancy


def greedy(sim: np.ndarray, k: int, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Add, k times, the response with the largest marginal gain of f: int64 [P, k]."""
    P, R, _ = sim.shape
    rows = np.arange(P)
    rep, alpha = representativeness(sim), 2.0 * lam / (k - 1)
    gain, taken, out = rep.copy(), np.zeros((P, R), bool), []
    for _ in range(k):
        y = argmax_random(gain, rng, ~taken)
        out.append(y)
        taken[rows, y] = True
        gain = gain - alpha * sim[rows, y]
    return np.stack(out, axis=1)


def swap_gains(sim: np.ndarray, idx: np.ndarray, lam: float) -> np.ndarray:
    """Change of f when slot s of each row is replaced by response c: float64 [P, k, R]
    (-inf where c is already chosen)."""
    P, k = idx.shape
    rows = np.arange(P)[:, None]
    rep, alpha = representativeness(sim), 2.0 * lam / (k - 1)
    s_yc = sim[rows, idx]  # [P, k, R]: s(y_s, c)
    total = s_yc.sum(axis=1)  # [P, R]: sum over chosen y of s(c, y)
    self_s = sim[rows, idx, idx]  # [P, k]: s(y_s, y_s)
    keep_c = total[:, None, :] - s_yc  # sum over Y \ {y_s} of s(c, y)
    keep_y = total[rows, idx] - self_s  # sum over Y \ {y_s} of s(y_s, y)
    gain = rep[:, None, :] - rep[rows, idx][:, :, None] - alpha * (keep_c - keep_y[:, :, None])
    chosen = np.zeros(sim.shape[:2], bool)
    chosen[rows, idx] = True
    return np.where(chosen[:, None, :], -np.inf, gain)


def local_search(sim: np.ndarray, idx: np.ndarray, lam: float, max_rounds: int = 1000):
    """Best-improvement 1-swap search from `idx` [P, k] until no swap improves f by > TOL.

    Returns int64 [P, k]; every row's f is at least its starting value.
    """
    idx = np.array(idx, dtype=np.int64)
    P, k = idx.shape
    R = sim.shape[1]
    active = np.arange(P)
    for _ in range(max_rounds):
        g = swap_gains(sim[active], idx[active], lam).reshape(active.size, k * R)
        best = g.argmax(axis=1)
        better = g[np.arange(active.size), best] > TOL
        if not better.any():
            break
        active, best = active[better], best[better]
        idx[active, best // R] = best % R
    return idx


def _aepo_select(lam: float):
    def select(belief, features, *, key, k, valid=None) -> Choice:
        if features is None:
            raise ConfigError("acquisition rule 'aepo' needs response features [P, R, D]")
        sim = cosine_sim(features)
        check_k(k, sim.shape[1])
        idx = local_search(sim, greedy(sim, k, lam, numpy_rng(key)), lam)
        return make_choice(idx, objective(sim, idx, lam))

    return select


@RULES.register("aepo")
def make_aepo(cfg: AcquireConfig) -> Rule:
    """AEPO: k responses maximising representativeness - aepo_lambda * redundancy; the score
    is f(Y). Needs only features, so it is the default cold start before the first labels."""
    return Rule(_aepo_select(cfg.aepo_lambda), False, "extremes", shown_k)
