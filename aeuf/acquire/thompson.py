"""Thompson rules on JOINT posterior samples: `dts` (double Thompson sampling), `drts` and
`infogain` (a Thompson first arm, then the largest pair variance to it).

A draw is one joint sample r^(m) [R] of a prompt's rewards (an ensemble member or a posterior
draw), never independent per-response draws: the argmax of a joint draw is a response that is
best under one coherent hypothesis. Numpy, vectorised over prompts; each prompt draws its own
members. With a `valid` pair mask the first arm is drawn among responses with an allowed
partner and the second among that arm's allowed partners.
"""

from __future__ import annotations

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
    pair_std_score,
    require_belief,
    shown_k,
)
from aeuf.config import AcquireConfig
from aeuf.types import Choice

TRIES = 30  # redraws on a collision before falling back to the best other response


def thompson_idx(
    samples: Float[np.ndarray, "K P R"],
    signs: list[int],
    rng: np.random.Generator,
    valid: Bool[np.ndarray, "P R R"] | None = None,
) -> Int[np.ndarray, "P s"]:
    """One response per slot: slot s takes the argmax of signs[s] * r^(m) for a fresh draw m.

    samples: [K, P, R] joint samples; signs: +1 (best of the draw) or -1 (worst), one per slot;
    valid: pair_mask(...) output or None: slot 0 is drawn among responses with an allowed
    partner, slot 1 among slot 0's allowed partners. A slot whose draw lands on a response
    already chosen (or not allowed) is redrawn (up to TRIES times); after that it takes the
    best other allowed response of its last draw.
    Returns int64 [P, len(signs)], distinct within each row.
    """
    K, P, R = samples.shape
    best = {s: argmax_random(samples if s > 0 else -samples, rng) for s in dict.fromkeys(signs)}
    first = best[signs[0]] if valid is None else argmax_random(
        samples if signs[0] > 0 else -samples, rng, valid.any(axis=2))
    chosen = np.empty((P, len(signs)), np.int64)
    chosen[:, 0] = first[rng.integers(K, size=P), np.arange(P)]
    for slot in range(1, len(signs)):
        allowed = valid[np.arange(P), chosen[:, 0]] if slot == 1 and valid is not None else None
        chosen[:, slot] = _draw_slot(samples, best[signs[slot]], chosen[:, :slot], signs[slot],
                                     rng, allowed)
    return chosen


def _draw_slot(samples, best, prev, sign: int, rng: np.random.Generator, allowed=None):
    """Fill one slot: draw members until the draw's pick is new (and allowed), only for rows
    still colliding.

    best: [K, P] each member's pick; prev: [P, s] picks so far; allowed: bool [P, R] or None.
    Returns int64 [P]."""
    K, P, R = samples.shape
    out = np.empty(P, np.int64)
    pending, member = np.arange(P), np.zeros(P, np.int64)
    for _ in range(TRIES + 1):
        member[pending] = rng.integers(K, size=pending.size)
        cand = best[member[pending], pending]
        new = (cand[:, None] != prev[pending]).all(axis=1)
        if allowed is not None:
            new &= allowed[pending, cand]
        out[pending[new]] = cand[new]
        pending = pending[~new]
        if pending.size == 0:
            return out
    taken = np.zeros((pending.size, R), bool) if allowed is None else ~allowed[pending]
    taken[np.arange(pending.size)[:, None], prev[pending]] = True
    last = samples[member[pending], pending]  # [n, R]: each colliding row's last draw
    out[pending] = argmax_random(last if sign > 0 else -last, rng, ~taken)
    return out


def _thompson_select(name: str, sign_of_slot):
    def select(belief, features, *, key, k, valid=None) -> Choice:
        b = require_belief(belief, name)
        P, R = b.mean.shape
        check_k(k, R)
        idx = thompson_idx(b.samples, [sign_of_slot(s) for s in range(k)], numpy_rng(key),
                           pair_mask(valid, P, R))
        return make_choice(idx, pair_std_score(b.pair_var, idx))

    return select


def _infogain_select(belief, features, *, key, k, valid=None) -> Choice:
    b = require_belief(belief, "infogain")
    P, R = b.mean.shape
    check_k(k, R)
    rng, rows, v = numpy_rng(key), np.arange(P), pair_mask(valid, P, R)
    first = thompson_idx(b.samples, [1], rng, v)[:, 0]
    allowed = np.arange(R) != first[:, None] if v is None else v[rows, first]
    second = argmax_random(b.pair_var[rows, first], rng, allowed)
    idx = greedy_extend(lambda: np.sqrt(np.maximum(b.pair_var, 0.0)),
                        np.stack([first, second], axis=1), k, rng)
    return make_choice(idx, pair_std_score(b.pair_var, idx))


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


@RULES.register("infogain")
def make_infogain(cfg: AcquireConfig) -> Rule:
    """First arm: the argmax of one joint draw (Thompson); second: the response j with the
    largest Var[r_i - r_j] to it (oat's BAITS-style information gain; ActiveUltraFeedback's
    InfoGain ranks j by the width of the sigmoid confidence interval of P(i beats j) instead).
    k > 2: greedy by summed sqrt(pair_var)."""
    return Rule(_infogain_select, True, "extremes", shown_k)
