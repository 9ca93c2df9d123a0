"""Thompson rules on JOINT posterior samples: `dts` (double Thompson sampling) and `drts`.

A draw is one joint sample r^(m) [R] of a prompt's rewards (an ensemble member or a posterior
draw), never independent per-response draws: the argmax of a joint draw is a response that is
best under one coherent hypothesis. Numpy, vectorised over prompts; each prompt draws its own
members.
"""

from __future__ import annotations

import numpy as np

from aeuf.acquire.base import (
    RULES,
    Rule,
    argmax_random,
    check_k,
    make_choice,
    numpy_rng,
    pair_std_score,
    require_belief,
    shown_k,
)
from aeuf.config import AcquireConfig
from aeuf.types import Choice

TRIES = 30  # redraws on a collision before falling back to the best other response


def thompson_idx(samples: np.ndarray, signs: list[int], rng: np.random.Generator) -> np.ndarray:
    """One response per slot: slot s takes the argmax of signs[s] * r^(m) for a fresh draw m.

    samples: [K, P, R] joint samples; signs: +1 (best of the draw) or -1 (worst), one per slot.
    A slot whose draw lands on an already chosen response is redrawn (up to TRIES times);
    after that it takes the best other response of its last draw.
    Returns int64 [P, len(signs)], distinct within each row.
    """
    K, P, R = samples.shape
    best = {s: argmax_random(samples if s > 0 else -samples, rng) for s in dict.fromkeys(signs)}
    chosen = np.empty((P, len(signs)), np.int64)
    chosen[:, 0] = best[signs[0]][rng.integers(K, size=P), np.arange(P)]
    for slot in range(1, len(signs)):
        chosen[:, slot] = _draw_slot(samples, best[signs[slot]], chosen[:, :slot], signs[slot], rng)
    return chosen


def _draw_slot(samples, best, prev, sign: int, rng: np.random.Generator) -> np.ndarray:
    """Fill one slot: draw members until the draw's pick is new, only for rows still colliding.

    best: [K, P] each member's pick; prev: [P, s] picks so far. Returns int64 [P]."""
    K, P, R = samples.shape
    out = np.empty(P, np.int64)
    pending, member = np.arange(P), np.zeros(P, np.int64)
    for _ in range(TRIES + 1):
        member[pending] = rng.integers(K, size=pending.size)
        cand = best[member[pending], pending]
        new = (cand[:, None] != prev[pending]).all(axis=1)
        out[pending[new]] = cand[new]
        pending = pending[~new]
        if pending.size == 0:
            return out
    taken = np.zeros((pending.size, R), bool)
    taken[np.arange(pending.size)[:, None], prev[pending]] = True
    last = samples[member[pending], pending]  # [n, R]: each colliding row's last draw
    out[pending] = argmax_random(last if sign > 0 else -last, rng, ~taken)
    return out


def _thompson_select(name: str, sign_of_slot):
    def select(belief, features, *, key, k) -> Choice:
        b = require_belief(belief, name)
        check_k(k, b.mean.shape[1])
        idx = thompson_idx(b.samples, [sign_of_slot(s) for s in range(k)], numpy_rng(key))
        return make_choice(idx, pair_std_score(b.pair_var, idx))

    return select


@RULES.register("dts")
def make_dts(cfg: AcquireConfig) -> Rule:
    """Double Thompson sampling: the argmax of one joint draw vs the argmax of another,
    redrawn on a collision; k > 2: k distinct argmaxes of k draws."""
    return Rule(_thompson_select("dts", lambda s: 1), True, "extremes", shown_k)


@RULES.register("drts")
def make_drts(cfg: AcquireConfig) -> Rule:
    """The argmax of one joint draw vs the argmin of another (ActiveUltraFeedback);
    k > 2 alternates argmax and argmin of fresh draws."""
    return Rule(
        _thompson_select("drts", lambda s: 1 if s % 2 == 0 else -1), True, "extremes", shown_k
    )
