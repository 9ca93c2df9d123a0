"""Belief-based pair rules on mean / std / pair variance: `deltaucb`, `deltaquantile`,
`maxminlcb`, `infomax`, `infomax_bald` (formulas in docs/algorithms.md). Numpy, vectorised over
prompts. Each honours a `valid` pair mask (base.pair_mask) for its first pair.

For k > 2 each rule grows its best pair greedily by a symmetric pairwise gain (the sum of the
gains with the responses already chosen), except maxminlcb, which keeps its leader and shows it
with the k-1 most dangerous challengers. The score is the epistemic score of the choice: the
mean sqrt(Var[r_i - r_j]) over its pairs (the BALD value for infomax_bald).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float, Int

from aeuf.acquire.base import (
    BIG,
    RULES,
    Rule,
    argmax_random,
    best_pair,
    best_set,
    check_k,
    greedy_extend,
    make_choice,
    numpy_rng,
    pair_mask,
    pair_std_score,
    require_belief,
    shown_k,
)
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Choice


def _pair_select(name: str, gain_fn, symmetric: bool):
    """select() for a rule defined by gain_fn(belief) -> (S [P,R,R] for the first pair,
    a callable giving the symmetric G [P,R,R] that grows it to k > 2); `symmetric`: S is."""

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, name)
        P, R = b.mean.shape
        check_k(k, R)
        rng = numpy_rng(key)
        S, G = gain_fn(b)
        idx = greedy_extend(G, best_pair(S, rng, symmetric, pair_mask(valid, P, R)), k, rng)
        return make_choice(idx, pair_std_score(b.pair_var, idx))

    return select


def deltaucb_gain(
    mean: Float[np.ndarray, "P R"], std: Float[np.ndarray, "P R"], beta: float
) -> Float[np.ndarray, "P R R"]:
    """S[p, i, j] = (mu_i + beta sigma_i) - (mu_j - beta sigma_j): [P, R, R]."""
    ucb, lcb = mean + beta * std, mean - beta * std
    return ucb[:, :, None] - lcb[:, None, :]


def pairwise_lcb(
    mean: Float[np.ndarray, "P R"], std: Float[np.ndarray, "P R"], beta: float
) -> Float[np.ndarray, "P R R"]:
    """L[p, i, j] = mu_i - mu_j - beta (sigma_i + sigma_j): [P, R, R]."""
    return (mean[:, :, None] - mean[:, None, :]) - beta * (std[:, :, None] + std[:, None, :])


def bald_matrix(samples: Float[np.ndarray, "K P R"], chunk: int = 4096) -> Float[np.ndarray, "P R R"]:
    """BALD for every pair: H[E_k p_ij] - E_k H[p_ij], p_ij = sigmoid(r_i - r_j) per sample.

    samples: [K, P, R] joint samples. Returns float32 [P, R, R] (symmetric, zero diagonal).
    Only the R(R-1)/2 unordered pairs are computed, in chunks of prompts so the
    [K, chunk, R(R-1)/2] temporaries stay small.
    """
    K, P, R = samples.shape
    iu, ju = np.triu_indices(R, 1)
    out = np.zeros((P, R, R), np.float32)
    for s in range(0, P, chunk):
        x = np.asarray(samples[:, s : s + chunk], np.float32)
        d = x[:, :, iu]
        d -= x[:, :, ju]  # [K, c, pairs]: logits of p_ij
        mean_h, p = _sigmoid_entropy(d)
        pm = np.clip(p.mean(axis=0), 1e-7, 1.0 - 1e-7)
        bald = -(pm * np.log(pm) + (1.0 - pm) * np.log1p(-pm)) - mean_h
        out[s : s + chunk, iu, ju] = bald
        out[s : s + chunk, ju, iu] = bald
    return out


def _sigmoid_entropy(d: np.ndarray):
    """(mean over axis 0 of H[sigmoid(d)], sigmoid(d)) for logits d [K, ...], with two
    transcendental passes: e = exp(-|d|), H = log1p(e) + |d| e / (1 + e)."""
    a = np.abs(d)
    e = np.exp(-a)
    r = 1.0 + e
    np.reciprocal(r, out=r)  # sigmoid(|d|)
    h = np.log1p(e)
    e *= r  # 1 - sigmoid(|d|)
    a *= e
    h += a
    return h.mean(axis=0), np.where(d >= 0, r, e)


def _maxmin_select(beta: float):
    """LCB(i, j) = (mu_i - beta sigma_i) - (mu_j + beta sigma_j) separates, so
    min_{j != i} LCB(i, j) = LCB_i - max_{j != i} UCB_j and the most dangerous challenger of i
    is the other response with the highest UCB: [P, R] work instead of [P, R, R]."""

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, "maxminlcb")
        P, R = b.mean.shape
        check_k(k, R)
        rng, rows = numpy_rng(key), np.arange(P)
        ucb, lcb = b.mean + beta * b.std, b.mean - beta * b.std
        v = pair_mask(valid, P, R)
        leader = _maxmin_leader(ucb, lcb, rng) if v is None else _masked_leader(ucb, lcb, v, rng)
        taken = np.zeros((P, R), bool)
        taken[rows, leader] = True
        out = [leader]
        for s in range(k - 1):  # challengers: lowest LCB(leader, j) = highest UCB_j
            ok = ~taken if s > 0 or v is None else v[rows, leader]  # first: allowed partners
            j = argmax_random(ucb, rng, ok)
            taken[rows, j] = True
            out.append(j)
        idx = np.stack(out, axis=1)
        return make_choice(idx, pair_std_score(b.pair_var, idx))

    return select


def quantile_window_pair(
    S: Float[np.ndarray, "P R R"],
    ucb: Float[np.ndarray, "P R"],
    q: float,
    eps: float,
    valid: Bool[np.ndarray, "P R R"] | None = None,
) -> Int[np.ndarray, "P 2"]:
    """DeltaQuantile's pair: rank a row's n allowed ordered pairs by S descending (ties by
    flat index), keep ranks [floor(n (q - eps)), floor(n (q + eps))) (at least one, clamped to
    the n pairs), and take the kept pair whose first arm has the highest UCB (ties: the larger
    gap, as ActiveUltraFeedback). NaN gaps rank last among the allowed pairs. int64 [P, 2]."""
    P, R, _ = S.shape
    allowed = np.broadcast_to(~np.eye(R, dtype=bool) if valid is None else valid, (P, R, R))
    allowed = allowed.reshape(P, R * R)
    gap = np.nan_to_num(S.reshape(P, R * R), nan=-BIG, posinf=BIG, neginf=-BIG)
    order = np.argsort(np.where(allowed, -gap, np.inf), axis=1, kind="stable")
    n = allowed.sum(axis=1)
    start = np.minimum(np.floor(n * (q - eps)), n - 1)
    end = np.clip(np.floor(n * (q + eps)), start + 1, n)
    rank = np.arange(R * R)
    window = (rank >= start[:, None]) & (rank < end[:, None])
    u = np.nan_to_num(ucb[np.arange(P)[:, None], order // R], nan=-BIG, posinf=BIG, neginf=-BIG)
    u = np.where(window, u, -np.inf)
    pick = np.argmax(u == u.max(axis=1, keepdims=True), axis=1)  # ties: the larger gap
    flat = order[np.arange(P), pick]
    return np.stack([flat // R, flat % R], axis=1)


def _maxmin_leader(ucb, lcb, rng):
    """argmax_i (LCB_i - max_{j != i} UCB_j): int64 [P]."""
    P, R = ucb.shape
    rows = np.arange(P)
    top = argmax_random(ucb, rng)
    masked = ucb.copy()
    masked[rows, top] = -np.inf
    second = masked.max(axis=1)
    rival = np.where(np.arange(R) == top[:, None], second[:, None], ucb[rows, top][:, None])
    return argmax_random(lcb - rival, rng)


def _masked_leader(ucb, lcb, v, rng):
    """argmax_i (LCB_i - max over allowed partners j of UCB_j), over i with a partner."""
    rival = np.where(v, ucb[:, None, :], -np.inf).max(axis=2)
    return argmax_random(lcb - rival, rng, v.any(axis=2))


def _bald_select(belief, features, *, key, k, valid=None) -> Choice:
    b = require_belief(belief, "infomax_bald")
    P, R = b.mean.shape
    check_k(k, R)
    B = bald_matrix(b.samples)
    idx = best_set(B, numpy_rng(key), k, valid)
    iu, ju = np.triu_indices(k, 1)
    score = B[np.arange(P)[:, None], idx[:, iu], idx[:, ju]].mean(axis=1)
    return make_choice(idx, score)


@RULES.register("deltaucb")
def make_deltaucb(cfg: AcquireConfig) -> Rule:
    """argmax over i != j of UCB_i - LCB_j (width cfg.beta); ActiveUltraFeedback's DeltaUCB."""

    def gains(b):
        S = deltaucb_gain(b.mean, b.std, cfg.beta)
        return S, lambda: np.maximum(S, S.transpose(0, 2, 1))

    return Rule(_pair_select("deltaucb", gains, False), True, "extremes", shown_k)


@RULES.register("deltaquantile")
def make_deltaquantile(cfg: AcquireConfig) -> Rule:
    """ActiveUltraFeedback's DeltaQuantile: among the ordered pairs whose optimistic gap
    UCB_i - LCB_j ranks in the window [q - eps, q + eps] of the prompt's pairs (sorted from the
    largest gap; q = cfg.quantile, eps = cfg.quantile_epsilon, width cfg.beta), the one whose
    first arm has the highest UCB. q = 0 is deltaucb's pair; k > 2 grows it like deltaucb."""
    q, eps = cfg.quantile, cfg.quantile_epsilon
    if not (eps >= 0 and 0 <= q - eps and q + eps <= 1):
        raise ConfigError(f"--quantile {q} --quantile_epsilon {eps}: need 0 <= quantile - "
                          "epsilon and quantile + epsilon <= 1 with epsilon >= 0")

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, "deltaquantile")
        P, R = b.mean.shape
        check_k(k, R)
        rng = numpy_rng(key)
        S = deltaucb_gain(b.mean, b.std, cfg.beta)
        first = quantile_window_pair(S, b.mean + cfg.beta * b.std, q, eps,
                                     pair_mask(valid, P, R))
        idx = greedy_extend(lambda: np.maximum(S, S.transpose(0, 2, 1)), first, k, rng)
        return make_choice(idx, pair_std_score(b.pair_var, idx))

    return Rule(select, True, "extremes", shown_k)


@RULES.register("maxminlcb")
def make_maxminlcb(cfg: AcquireConfig) -> Rule:
    """Leader i = argmax_i min_{j != i} LCB(i, j); challenger j = argmin_j LCB(i, j).

    LCB(i, j) = mu_i - mu_j - beta (sigma_i + sigma_j) as in docs/algorithms.md (sigma_i + sigma_j
    bounds sqrt(Var[r_i - r_j]) from above, so this is the conservative form).
    """
    return Rule(_maxmin_select(cfg.beta), True, "extremes", shown_k)


@RULES.register("infomax")
def make_infomax(cfg: AcquireConfig) -> Rule:
    """The pair with the largest Var[r_i - r_j] (belief.pair_var); k > 2: greedy by summed
    sqrt(pair_var) with the responses already chosen."""

    def gains(b):
        return b.pair_var, lambda: np.sqrt(np.maximum(b.pair_var, 0.0))

    return Rule(_pair_select("infomax", gains, True), True, "extremes", shown_k)


@RULES.register("infomax_bald")
def make_infomax_bald(cfg: AcquireConfig) -> Rule:
    """The pair with the largest BALD mutual information of its Bradley-Terry outcome over the
    belief's joint samples; k > 2: greedy by summed BALD."""
    return Rule(_bald_select, True, "extremes", shown_k)
