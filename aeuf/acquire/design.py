"""D-optimal pair choice on a head's last-layer features (ARM-FI, Shen et al., ICML 2025):
`doptimal` and `doptimal_past`. Numpy, vectorised over prompts (chunked).

For a pair (i, j) of prompt p, z = e_i - e_j, with e = Belief.embed [P, R, H] (the response
features [P, R, D] when the head gives no embedding). Labelling z adds z z^T to the design
matrix A, and log det(A + z z^T) - log det A = log(1 + z^T A^-1 z), so the most informative
pair maximises z^T A^-1 z (its predictive variance under a linear reward with precision A).
The score is sqrt(z^T A^-1 z) of the chosen pair, a standard deviation like the other rules'.

doptimal:      A = lambda I (lambda = cfg.doptimal_lambda): the two responses farthest apart.
doptimal_past: A = Belief.precision [H, H] (the head's posterior precision over the labelled
    pairs, in embed's space) when given, else lambda I; and A grows greedily within the batch:
    the prompt with the largest best-pair gain is taken first, A += z z^T (Sherman-Morrison on
    A^-1), and so on, by lazy (Minoux) greedy: every gain only falls as A grows, so stale gains
    are upper bounds and a prompt is re-scored only when its bound reaches the top. The rule
    does not know the round's batch size, so it runs the greedy for the first
    cfg.doptimal_greedy prompts and scores every other prompt under the A the greedy ends with.
    A greedy pick's score is its gain when picked; those gains never rise from one pick to the
    next, and every other prompt's final gain is at most the last pick's, so the B prompts with
    the highest scores ARE the greedy batch of B, for every B <= doptimal_greedy. BAL-PM's
    entropy term then perturbs that order (prompt diversity in feature space). doptimal_batch()
    is the greedy itself, for an engine that knows its batch. Cross-prompt pairs (which ARM-FI
    finds useful) are not considered: aeuf's oracle judges responses of one prompt.

k > 2 grows the pair greedily by summed sqrt(z^T A^-1 z) under the starting A. A `valid` pair
mask restricts the first pair (base.pair_mask).
"""

from __future__ import annotations

import heapq
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Bool, Float, Int

from aeuf.acquire.base import (
    RULES,
    Rule,
    argmax_random,
    check_k,
    greedy_extend,
    make_choice,
    numpy_rng,
    pair_mask,
    require_belief,
    shown_k,
)
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError, InputError
from aeuf.types import Belief, Choice

CHUNK = 2048  # prompts per block when scoring every pair of every prompt
BLOCK = 32  # prompts re-scored together by the lazy greedy


class DesignBatch(NamedTuple):
    """The greedy D-optimal batch, in the order picked.

    prompts: int64 [b]; idx: int64 [b, 2] each prompt's pair; gain: float64 [b] z^T A^-1 z
    when picked (non-increasing); ainv: float64 [H, H] A^-1 after the batch.
    """

    prompts: Int[np.ndarray, " b"]
    idx: Int[np.ndarray, "b 2"]
    gain: Float[np.ndarray, " b"]
    ainv: Float[np.ndarray, "H H"]


def design_features(
    belief: Belief | None, features: Float[np.ndarray, "P R D"] | None
) -> Float[np.ndarray, "P R H"]:
    """Belief.embed when the head gives it, else the response features (ConfigError if none)."""
    e = belief.embed if belief is not None and belief.embed is not None else features
    if e is None:
        raise ConfigError("doptimal needs the head's embedding or the response features")
    e = np.asarray(e)
    if not np.isfinite(e).all():
        raise InputError("doptimal: the design features contain NaN or infinite values")
    return e


def inverse_design(precision, H: int, lam: float) -> Float[np.ndarray, "H H"]:
    """A^-1 in float64 for A = precision [H, H] (symmetric positive definite) or lam I."""
    if precision is None:
        return np.eye(H) / lam
    A = np.asarray(precision, np.float64)
    if A.shape != (H, H):
        raise ConfigError(f"doptimal_past: the head's precision is {A.shape}, its embedding "
                          f"has H = {H}")
    try:
        L = np.linalg.cholesky(0.5 * (A + A.T))
    except np.linalg.LinAlgError:
        raise ConfigError("doptimal_past: the head's precision is not positive definite") from None
    Linv = np.linalg.inv(L)
    return Linv.T @ Linv


def pair_gains(
    E: Float[np.ndarray, "P R H"], ainv: Float[np.ndarray, "H H"] | float
) -> Float[np.ndarray, "P R R"]:
    """G[p, i, j] = (e_i - e_j)^T A^-1 (e_i - e_j) >= 0 for every pair, with A^-1 = ainv (a
    matrix, or a scalar for A^-1 = ainv I). Responses are centred per prompt first (pair
    differences are unchanged; cancellation in d_i + d_j - 2 q_ij is smaller)."""
    X = E - E.mean(axis=1, keepdims=True)
    W = X * ainv if np.ndim(ainv) == 0 else X @ ainv
    Q = np.matmul(W, np.swapaxes(X, 1, 2))
    d = np.diagonal(Q, axis1=1, axis2=2)
    return np.maximum(d[:, :, None] + d[:, None, :] - 2.0 * Q, 0.0)


def best_pairs(E, ainv, rng: np.random.Generator, valid=None, chunk: int = CHUNK):
    """Each prompt's pair with the largest gain, in chunks of prompts (float32 unless ainv is
    a float64 matrix): (int64 [P, 2], gain float64 [P])."""
    P, R, _ = E.shape
    iu = np.triu(np.ones((R, R), bool), 1)
    idx, gain = np.empty((P, 2), np.int64), np.empty(P)
    dtype = np.float64 if np.ndim(ainv) and ainv.dtype == np.float64 else np.float32
    for s in range(0, P, chunk):
        G = pair_gains(np.asarray(E[s : s + chunk], dtype), ainv)
        allowed = iu if valid is None else valid[s : s + chunk] & iu
        flat = argmax_random(G.reshape(len(G), R * R), rng, allowed.reshape(-1, R * R))
        idx[s : s + chunk] = np.stack([flat // R, flat % R], axis=1)
        gain[s : s + chunk] = G.reshape(len(G), R * R)[np.arange(len(G)), flat]
    return idx, gain


def doptimal_batch(
    E: Float[np.ndarray, "P R H"],
    ainv: Float[np.ndarray, "H H"],
    batch: int,
    *,
    key: Any,
    valid: Bool[np.ndarray, "P R R"] | None = None,
) -> DesignBatch:
    """Greedy D-optimal batch of up to `batch` prompts: each step takes the prompt and pair
    with the largest z^T A^-1 z, then A += z z^T (A^-1 by Sherman-Morrison). Lazy: a heap of
    upper bounds, BLOCK prompts re-scored at a time under the current A^-1.
    ainv: A^-1 at the start (inverse_design); valid: pair_mask(...) output or None."""
    rng = numpy_rng(key)
    P, R, _ = E.shape
    ainv = np.array(ainv, np.float64)
    _, bound = best_pairs(E, ainv.astype(np.float32), rng, valid)
    heap = [(-b, p) for p, b in enumerate(bound * (1 + 1e-4) + 1e-9)]  # float32: inflate
    heapq.heapify(heap)
    picks: list[tuple[int, int, int, float]] = []
    while heap and len(picks) < batch:
        blk = np.array([heapq.heappop(heap)[1] for _ in range(min(BLOCK, len(heap)))])
        left, ainv = _greedy_block(E[blk].astype(np.float64), blk, ainv, heap, picks, batch,
                                   rng, None if valid is None else valid[blk])
        for q, g in left:
            heapq.heappush(heap, (-g, int(blk[q])))
    p = np.array([x[0] for x in picks], np.int64)
    idx = np.array([x[1:3] for x in picks], np.int64).reshape(-1, 2)
    return DesignBatch(p, idx, np.array([x[3] for x in picks]), ainv)


def _greedy_block(X, blk, ainv, heap, picks, batch, rng, valid):
    """Pick from the block while its best exact gain beats every bound left in the heap.
    Returns ([(row, exact gain)] of the rows not picked, A^-1 after the picks)."""
    m, R, _ = X.shape
    G = pair_gains(X, ainv)
    allowed = np.triu(np.ones((R, R), bool), 1)
    allowed = np.broadcast_to(allowed if valid is None else valid & allowed, (m, R, R))
    live = np.ones(m, bool)
    while True:
        flat = argmax_random(G.reshape(m, R * R), rng, allowed.reshape(m, R * R))
        val = np.where(live, G.reshape(m, R * R)[np.arange(m), flat], -np.inf)
        q = int(np.argmax(val))
        if not live.any() or len(picks) >= batch or (heap and val[q] < -heap[0][0]):
            return [(r, val[r]) for r in np.flatnonzero(live)], ainv
        i, j = divmod(int(flat[q]), R)
        picks.append((int(blk[q]), i, j, float(val[q])))
        z = X[q, i] - X[q, j]
        u = ainv @ z
        c = 1.0 + z @ u
        ainv = ainv - np.outer(u / c, u)
        proj = X @ u  # [m, R]: z'^T u for every pair through its two responses
        G = np.maximum(G - (proj[:, :, None] - proj[:, None, :]) ** 2 / c, 0.0)
        live[q] = False


def _select_design(name: str, cfg: AcquireConfig, past: bool):
    lam = float(cfg.doptimal_lambda)

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, name)
        E = design_features(b, features)
        P, R, H = E.shape
        check_k(k, R)
        rng, v = numpy_rng(key), pair_mask(valid, P, R)
        ainv = inverse_design(b.precision, H, lam) if past else 1.0 / lam
        if past and cfg.doptimal_greedy > 0:
            idx, gain = _greedy_then_rest(E, ainv, cfg.doptimal_greedy, rng, v)
        else:
            idx, gain = best_pairs(E, ainv.astype(np.float32) if past else ainv, rng, v)
        if k > 2:
            idx = greedy_extend(lambda: np.sqrt(_all_gains(E, ainv)), idx, k, rng)
        return make_choice(idx, np.sqrt(np.maximum(gain, 0.0)))

    return select


def _greedy_then_rest(E, ainv, greedy: int, rng, v):
    """doptimal_batch for the first `greedy` prompts; the others' best pairs under the A^-1 it
    ends with: (int64 [P, 2], gain float64 [P])."""
    P = E.shape[0]
    d = doptimal_batch(E, ainv, min(P, greedy), key=int(rng.integers(2**62)), valid=v)
    idx, gain = np.empty((P, 2), np.int64), np.empty(P)
    rest = np.setdiff1d(np.arange(P), d.prompts)
    idx[rest], gain[rest] = best_pairs(E[rest], d.ainv, rng, None if v is None else v[rest])
    idx[d.prompts], gain[d.prompts] = d.idx, d.gain
    return idx, gain


def _all_gains(E, ainv) -> np.ndarray:
    """pair_gains over every prompt in chunks, float32: [P, R, R]."""
    a = np.asarray(ainv, np.float32) if np.ndim(ainv) else float(ainv)
    return np.concatenate([pair_gains(np.asarray(E[s : s + CHUNK], np.float32), a)
                           for s in range(0, E.shape[0], CHUNK)])


def _check(cfg: AcquireConfig) -> None:
    if not cfg.doptimal_lambda > 0 or cfg.doptimal_greedy < 0:
        raise ConfigError(f"--doptimal_lambda {cfg.doptimal_lambda} must be > 0 and "
                          f"--doptimal_greedy {cfg.doptimal_greedy} >= 0")


@RULES.register("doptimal")
def make_doptimal(cfg: AcquireConfig) -> Rule:
    """The pair with the largest z^T z / lambda (A = lambda I) on the head's last-layer
    features (the response features when the head gives none)."""
    _check(cfg)
    return Rule(_select_design("doptimal", cfg, False), True, "extremes", shown_k)


@RULES.register("doptimal_past")
def make_doptimal_past(cfg: AcquireConfig) -> Rule:
    """The pair with the largest z^T A^-1 z, A = the head's posterior precision (lambda I when
    the head gives none) grown greedily within the batch (module docstring)."""
    _check(cfg)
    return Rule(_select_design("doptimal_past", cfg, True), True, "extremes", shown_k)
