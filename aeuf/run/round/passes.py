"""Passes over the pool (pure numpy): a budget above the number of prompts labels every prompt
once, then re-opens the prompts for a new pass, never showing the oracle a pair it already
judged (ARM-FI labels several pairs per prompt the same way).

A prompt is *open* while it has a pair of responses not yet judged; a pass ends when every
open prompt has been labelled in it. Shape letters: P prompts, R responses per prompt,
k responses shown per prompt, K posterior samples, M comparisons.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float, Int

from aeuf.acquire.base import argmax_random
from aeuf.types import Belief, Comparisons


def seen_pairs(comps: Comparisons, P: int, R: int) -> Bool[np.ndarray, "P R R"]:
    """Symmetric mask of the pairs the oracle has judged (a comparison between them exists)."""
    seen = np.zeros((P, R, R), bool)
    seen[comps.prompt, comps.a, comps.b] = True
    return seen | seen.transpose(0, 2, 1)


def unseen(seen: Bool[np.ndarray, "P R R"]) -> Bool[np.ndarray, "P R R"]:
    """The pairs i < j of each prompt not judged yet."""
    R = seen.shape[-1]
    return ~seen & np.triu(np.ones((R, R), bool), 1)


def pass_acquired(acquired: Bool[np.ndarray, " P"],
                  seen: Bool[np.ndarray, "P R R"]) -> Bool[np.ndarray, " P"]:
    """The prompts a round may not pick: those labelled in this pass and those with every pair
    judged (closed); when no open prompt is left unlabelled, a new pass starts (only the
    closed ones stay out)."""
    closed = ~unseen(seen).any(axis=(1, 2))
    taken = acquired | closed
    return closed if taken.all() else taken


def is_repeat(idx: Int[np.ndarray, "P k"], seen: Bool[np.ndarray, "P R R"]) -> Bool[np.ndarray, " P"]:
    """Rows whose shown responses hold no pair the oracle has not judged yet."""
    rows = np.arange(idx.shape[0])[:, None]
    iu, ju = np.triu_indices(idx.shape[1], 1)
    return seen[rows, idx[:, iu], idx[:, ju]].all(axis=1)


def pair_std(belief: Belief | None, rows: Int[np.ndarray, " n"], R: int) -> Float[np.ndarray, "n R R"]:
    """sqrt(Var[r_i - r_j]) of the given prompts under the belief (zeros without one)."""
    if belief is None:
        return np.zeros((rows.size, R, R))
    if belief.pair_var is not None:
        var = np.asarray(belief.pair_var)[rows]
    else:
        s = np.asarray(belief.samples)[:, rows]  # [K, n, R]
        var = (s[:, :, :, None] - s[:, :, None, :]).var(axis=0)
    return np.sqrt(np.maximum(var, 0.0))


def avoid_repeats(idx: Int[np.ndarray, "P k"], score: Float[np.ndarray, " P"],
                  seen: Bool[np.ndarray, "P R R"], belief: Belief | None,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The rule's choice with every repeat row (no new pair among its shown responses)
    replaced: the not-yet-judged pair of largest pair std under the belief (a uniformly random
    one without a belief, random ties), then random other responses up to k. A replaced row's
    score is that pair std. Rows of closed prompts are left as they are (never picked).
    -> (idx int64 [P, k], score f32 [P])."""
    idx, score = np.array(idx, np.int64), np.array(score, np.float32)
    free = unseen(seen)
    rows = np.flatnonzero(is_repeat(idx, seen) & free.any(axis=(1, 2)))
    if rows.size == 0:
        return idx, score
    R, k = seen.shape[-1], idx.shape[1]
    std = pair_std(belief, rows, R)
    flat = argmax_random(std.reshape(rows.size, R * R), rng, free[rows].reshape(rows.size, R * R))
    i, j = flat // R, flat % R
    rest = np.argsort(rng.random((rows.size, R)) + 2.0 * ((np.arange(R) == i[:, None])
                                                         | (np.arange(R) == j[:, None])), axis=1)
    idx[rows] = np.concatenate([np.stack([i, j], 1), rest[:, :k - 2]], axis=1)
    score[rows] = std[np.arange(rows.size), i, j]
    return idx, score


def max_labels(P: int, R: int) -> int:
    """Most prompt labellings a pool allows when each must show a pair not judged before."""
    return P * (R * (R - 1) // 2)


FIRST_ROUND = 50  # the default first (model-free) round: small, so the head picks the rest


def schedule(num_prompts: int, budget: int | None, batch: int | None,
             initial: int | None) -> list[int]:
    """Prompts to label in each round: [initial, batch, ..., rest] summing to the budget
    (default: every prompt once). Defaults: the first round is FIRST_ROUND prompts or a
    quarter of min(budget, num_prompts) if that is fewer, and batch is what is left of
    that in three rounds (so four rounds a pass, as before, but the model-free first round
    labels 50 prompts, not a quarter: on the dev pool the head's pairs beat AEPO's, so the
    fewer prompts it leaves to the first round, the better; BENCHMARKS.md, "Win where it is
    measured"). A given --batch_size also sizes the first round unless --initial_batch is
    given. A budget above num_prompts takes several passes; no round spans two passes."""
    total = budget or num_prompts
    base = min(total, num_prompts)
    first = initial or batch or min(FIRST_ROUND, max(1, -(-base // 4)))
    batch = batch or max(1, -(-max(base - first, 1) // 3))
    sizes, done, left = [], 0, num_prompts
    while done < total:
        size = min(first if not sizes else batch, total - done, left)
        sizes.append(size)
        done, left = done + size, (left - size) or num_prompts
    return sizes
