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
    A^-1), and so on. Every gain only falls as A grows, so gains computed some steps ago are
    upper bounds: a step re-scores exactly only the prompts with the highest bounds, and every
    FLUSH steps the rank-1 updates are folded into all gains with matrix products. The rule
    does not know the round's batch size, so it runs the greedy for the first
    cfg.doptimal_greedy prompts and scores every other prompt under the A the greedy ends with.
    A greedy pick's score is its gain when picked; those gains never rise from one pick to the
    next, and every other prompt's final gain is at most the last pick's, so the B prompts with
    the highest scores ARE the greedy batch of B, for every B <= doptimal_greedy (exactly while
    the greedy is exact: always for P <= CANDIDATES; above, a step re-scores only the
    CANDIDATES prompts with the highest bounds, a close approximation). BAL-PM's entropy term
    then perturbs that order (prompt diversity in feature space). doptimal_batch()
    is the greedy itself, for an engine that knows its batch. Cross-prompt pairs (which ARM-FI
    finds useful) are not considered: aeuf's oracle judges responses of one prompt.

k > 2 grows the pair greedily by summed sqrt(z^T A^-1 z) under the starting A. A `valid` pair
mask restricts the first pair (base.pair_mask).
"""

from __future__ import annotations

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
FLUSH = 32  # greedy steps between folding the rank-1 updates into every prompt's gains
CANDIDATES = 128  # prompts (highest bounds first) re-scored exactly at each greedy step


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
    W = X * ainv if np.ndim(ainv) == 0 else (X.reshape(-1, X.shape[2]) @ ainv).reshape(X.shape)
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
    with the largest z^T A^-1 z, then A += z z^T (A^-1 by Sherman-Morrison).
    ainv: A^-1 at the start (inverse_design); valid: pair_mask(...) output or None."""
    g = _greedy(E, ainv, batch, numpy_rng(key), valid)
    return DesignBatch(g.order, g.idx[g.order], g.gain[g.order], g.ainv)


class _Greedy(NamedTuple):
    order: np.ndarray  # int64 [b] prompts in the order picked
    idx: np.ndarray  # int64 [P, 2] every prompt's pair (picked: when picked; others: at the end)
    gain: np.ndarray  # float64 [P] its z^T A^-1 z then
    ainv: np.ndarray  # float64 [H, H] A^-1 at the end


def _greedy(E, ainv, batch: int, rng, valid) -> _Greedy:
    """The greedy of doptimal_batch, with A^-1 = A_F^-1 - sum_s v_s v_s^T kept in two parts:
    every prompt's pair gains G are exact as of the last flush (upper bounds after it); a step
    scores the CANDIDATES prompts with the highest bounds exactly (G minus their squared
    projections on the v_s since the flush) and takes the best; every FLUSH steps the v_s are
    folded into G and A_F^-1 with matrix products. Exact greedy for P <= CANDIDATES, and at any
    P whenever the best candidate beats every bound outside; otherwise a prompt whose bound
    ranked below CANDIDATES others may be passed over until the next flush."""
    P, R, H = E.shape
    allowed = np.triu(np.ones((R, R), bool), 1)
    allowed = np.broadcast_to(allowed if valid is None else valid & allowed, (P, R, R))
    ainv = np.array(ainv, np.float64)
    G = np.where(allowed, _all_gains(E, ainv), -np.inf).reshape(P, R * R)
    idx, gain = np.zeros((P, 2), np.int64), np.zeros(P)
    taken, order, V = np.zeros(P, bool), [], []
    bound = G.max(axis=1)  # each prompt's best gain as of the last flush: an upper bound
    for _ in range(min(batch, P)):
        if len(V) == FLUSH:
            G, ainv, V = _flush(E, G, ainv, V)
            bound = G.max(axis=1)
        p, flat, val = _step(E, G, np.where(taken, -np.inf, bound), taken, V, rng)
        order.append(p)
        idx[p], gain[p], taken[p] = divmod(flat, R), val, True
        z = E[p, flat // R].astype(np.float64) - E[p, flat % R]
        u = ainv @ z - (np.stack(V).T @ (np.stack(V) @ z) if V else 0.0)
        V.append(u / np.sqrt(1.0 + z @ u))
    G, ainv, V = _flush(E, G, ainv, V)
    rest = ~taken
    flat = argmax_random(G[rest], rng)
    idx[rest] = np.stack([flat // R, flat % R], axis=1)
    gain[rest] = G[rest, flat]
    return _Greedy(np.asarray(order, np.int64), idx, gain, ainv)


def _step(E, G, bound, taken, V, rng, M: int = CANDIDATES):
    """(prompt, flat pair index, exact gain) of the best of the M prompts with the highest
    bounds (bound: [P], -inf where taken). Exact greedy whenever that gain beats every bound
    outside them (always when M covers every prompt left); otherwise a close approximation."""
    left = int((~taken).sum())
    m = min(M, left)
    cand = np.argpartition(-bound, m - 1)[:m] if m < E.shape[0] else np.arange(m)
    exact = G[cand] - _sq_proj(E[cand], V)
    exact[taken[cand]] = -np.inf
    flat = argmax_random(exact, rng)
    val = exact[np.arange(m), flat]
    q = int(np.argmax(val))
    return int(cand[q]), int(flat[q]), float(val[q])


def _sq_proj(Ec, V) -> np.ndarray:
    """sum_s ((e_i - e_j) . v_s)^2 for every pair of each prompt in Ec [c, R, H]: [c, R*R]."""
    c, R, H = Ec.shape
    if not V:
        return np.zeros((c, R * R))
    W = np.stack(V, axis=1).astype(Ec.dtype)  # [H, t], C-contiguous (a transposed one is 4x
    proj = (Ec.reshape(-1, H) @ W).reshape(c, R, -1)  # slower in OpenBLAS)
    d = proj[:, :, None, :] - proj[:, None, :, :]
    return np.einsum("cijs,cijs->cij", d, d).reshape(c, R * R)


def _flush(E, G, ainv, V):
    """Fold the v_s into every prompt's gains and into A^-1: (G, A^-1, [])."""
    if not V:
        return G, ainv, V
    for s in range(0, E.shape[0], CHUNK):
        G[s : s + CHUNK] -= _sq_proj(E[s : s + CHUNK], V)
    W = np.stack(V)
    return G, ainv - W.T @ W, []


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
    """The greedy for the first `greedy` prompts; the others' best pairs under the A^-1 it
    ends with: (int64 [P, 2], gain float64 [P])."""
    g = _greedy(E, ainv, greedy, rng, v)
    return g.idx, g.gain


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
    return Rule(_select_design("doptimal", cfg, False), True, "extremes", shown_k, needs_embed=True)


@RULES.register("doptimal_past")
def make_doptimal_past(cfg: AcquireConfig) -> Rule:
    """The pair with the largest z^T A^-1 z, A = the head's posterior precision (lambda I when
    the head gives none) grown greedily within the batch (module docstring)."""
    _check(cfg)
    return Rule(_select_design("doptimal_past", cfg, True), True, "extremes", shown_k, needs_embed=True)
