"""`rm_mix`: pairs that teach a reward model, the rule of `--goal rm`.

A reward model learns most from pairs across the whole ranking, near its decision boundary,
and random pairs are hard to beat there; a DPO dataset wants clean, large-gap pairs instead
(the rule of `--goal dpo`, aeuf.config.GOAL_RULES). rm_mix gives each prompt, with
probability cfg.mix_random, a uniformly random pair (coverage of the ranking), else the
pair the head is least sure how to order: the largest BALD mutual information of its
Bradley-Terry outcome (the head's disagreement; infomax_bald). Both halves honour the
`valid` pair mask, so the tie-aware wrapper (ties.py) keeps random pairs off predicted ties,
which random pairs otherwise waste a third of their calls on. k > 2 grows either pair
greedily by BALD. Score: the BALD value of the pair shown (random rows too, so BAL-PM
ranks prompts as for infomax_bald).
"""

from __future__ import annotations

import numpy as np

from aeuf.acquire.base import (
    RULES,
    Rule,
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
from aeuf.acquire.uncertainty import bald_matrix
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Choice


def random_pair(rng: np.random.Generator, P: int, R: int, valid) -> np.ndarray:
    """A uniformly random unordered pair per row among the allowed ones (pair_mask output or
    None for all): int64 [P, 2]."""
    return best_pair(rng.random((P, R, R)), rng, True, valid)


@RULES.register("rm_mix")
def make_rm_mix(cfg: AcquireConfig) -> Rule:
    """Per prompt: a random pair with probability cfg.mix_random, else the BALD pair."""
    share = cfg.mix_random
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"--mix_random {share}: must be between 0 and 1")

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, "rm_mix")
        P, R = b.mean.shape
        check_k(k, R)
        rng = numpy_rng(key)
        mask = pair_mask(valid, P, R)
        B = bald_matrix(b.samples)
        first = np.where((rng.random(P) < share)[:, None], random_pair(rng, P, R, mask),
                         best_pair(B, rng, True, mask))
        idx = greedy_extend(B, first, k, rng)
        iu, ju = np.triu_indices(k, 1)
        return make_choice(idx, B[np.arange(P)[:, None], idx[:, iu], idx[:, ju]].mean(axis=1))

    return Rule(select, True, "extremes", shown_k)


CHUNK = 4096  # prompts per block: [K, CHUNK, R, R] float32 stays a few tens of MB


def dpo_value(samples: np.ndarray) -> np.ndarray:
    """V[p, i, j] = P(i or j is the prompt's best response) + E[|r_i - r_j| / (max r - min r)],
    both read off the joint draws r^(m) [K, P, R]: the chance that the pair holds the best
    response (the exported chosen is then the best) plus the share of the prompt's whole
    reward range the pair spans (the gap a DPO pair carries; a predicted tie spans none).
    A draw's tie for the best splits the chance; a NaN or infinite value counts for nothing.
    Returns float32 [P, R, R] (diagonal 0)."""
    K, P, R = samples.shape
    out = np.empty((P, R, R), np.float32)
    for lo in range(0, P, CHUNK):
        s = np.asarray(samples[:, lo:lo + CHUNK], np.float32)
        s = np.where(np.isfinite(s), s, np.nan)  # a diverged draw's value says nothing
        hi, low = np.fmax.reduce(s, axis=2), np.fmin.reduce(s, axis=2)  # NaN-blind [K, n]
        top = s == hi[:, :, None]
        p_best = (top / np.maximum(top.sum(axis=2, keepdims=True), 1)).mean(axis=0)  # [n, R]
        span = hi - low
        scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0)
        z = s * scale[:, :, None].astype(np.float32)  # each draw on its own range
        d = z[:, :, :, None] - z[:, :, None, :]
        gap = np.nan_to_num(np.abs(d, out=d), copy=False, nan=0.0).mean(axis=0)  # [n, R, R]
        out[lo:lo + CHUNK] = p_best[:, :, None] + p_best[:, None, :] + gap
    idx = np.arange(R)
    out[:, idx, idx] = 0.0
    return out


@RULES.register("dpo_value")
def make_dpo_value(cfg: AcquireConfig) -> Rule:
    """The pair with the largest dpo_value. With both terms weighted equally this is nearly
    always the response most likely to be the best against one the draws agree is far below
    it (the top two win only where the second is as likely the best as it is far from the
    worst), so it trades chosen-is-best for gap against dts, which sends two likely winners
    (BENCHMARKS.md, "A small first round, and dpo_value"). k > 2: grown greedily by the same
    value. Score: as dts (pair std)."""

    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, "dpo_value")
        check_k(k, b.mean.shape[1])
        idx = best_set(dpo_value(b.samples), numpy_rng(key), k, valid)
        return make_choice(idx, pair_std_score(b.pair_var, idx))

    return Rule(select, True, "extremes", shown_k)
