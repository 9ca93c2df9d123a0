"""The belief after a fit, scored only on the prompts the next round can use.

A rule reads the belief of every prompt, but a prompt the next round cannot pick changes
nothing it does (its choice is never taken, and BAL-PM never ranks it), so after round t the
head scores only:

- no prompt when round t was the run's last (sizes_of(ctx) has no round t + 1): the belief is
  None, so nothing waits for the fit, which runs on while the run exports;
- every prompt in a later pass (every prompt is open again), for a rule that reads the
  belief's embedding (the design rules' greedy runs over every prompt) and when the
  rating step is read off the labelled prompts' beliefs (--tie_margin without
  --rating_step);
- the prompts round t + 1 draws, when it draws them without reading the score
  (choosing.blind_prompts: uniform selection, or the last prompts left);
- else the eligible prompts not labelled in this pass (BAL-PM ranks them all).

The other prompts' rows of mean, std, samples and pair_var are zero. Pure.

Shape letters: P prompts, R responses per prompt, D feature dim, K samples, n scored prompts.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Int

from aeuf.run.round import choosing, passes
from aeuf.run.round.types import Context, Purpose, State
from aeuf.types import Belief

PROMPT_BLOCK = 8192  # prompts per call of the head's belief (its memory stays bounded)


def rows_needed(ctx: Context, state: State, t: int) -> Int[np.ndarray, " n"] | None:
    """The prompts whose belief a round after t can read (int64, sorted), None for all."""
    if t + 1 >= len(round_sizes(ctx)):
        return np.zeros(0, np.int64)
    acq = ctx.cfg.acquire
    if ctx.rules[acq.rule].needs_embed or (acq.tie_margin is not None and acq.rating_step is None):
        return None
    free = ~state.acquired & choosing.eligible(ctx)
    if state.passes or not free.any():
        return None
    drawn = choosing.blind_prompts(ctx, state.acquired, t + 1, round_sizes(ctx)[t + 1],
                                   ctx.rules[acq.rule].needs_belief)
    return np.flatnonzero(free) if drawn is None else drawn


def covering(ctx: Context, state: State, prompts: Int[np.ndarray, " b"]) -> State:
    """The state with a belief scored on `prompts`: as it is when it was (the normal case:
    rows_needed drew the same prompts), else scored again on them (a round of another size
    than the schedule's, e.g. the last rounds' budget after a resume)."""
    if state.scored is None or np.isin(prompts, state.scored).all():
        return state
    belief = belief_on(ctx, state.head_state, np.asarray(prompts, np.int64),
                       key=ctx.keys.round(state.fitted_round, Purpose.BELIEF),
                       embed=ctx.rules[ctx.cfg.acquire.rule].needs_embed)
    return state._replace(belief=belief, scored=np.asarray(prompts, np.int64))


def round_sizes(ctx: Context) -> list[int]:
    """The run's round sizes: P eligible prompts in rounds by --budget, --batch_size and
    --initial_batch (engine.sizes_of)."""
    loop = ctx.cfg.loop
    P, R = int(choosing.eligible(ctx).sum()), ctx.features.shape[1]
    budget = None if loop.budget is None else min(loop.budget, passes.max_labels(P, R))
    return passes.schedule(P, budget, loop.batch_size, loop.initial_batch)


def belief_on(ctx: Context, head_state, rows: Int[np.ndarray, " n"] | None, *, key,
              embed: bool) -> Belief | None:
    """The head's belief over all P prompts, scored only on `rows` (None: all), in blocks of
    PROMPT_BLOCK prompts; the other rows are zero. No rows: None (no later round reads it)."""
    num = ctx.cfg.head.members
    if rows is not None and rows.size == 0:
        return None
    if rows is None:
        return ctx.head.belief(head_state, ctx.features, key=key, num_samples=num, embed=embed)
    P, R = ctx.features.shape[:2]
    out = None
    for lo in range(0, rows.size, PROMPT_BLOCK):
        part = rows[lo:lo + PROMPT_BLOCK]
        b = ctx.head.belief(head_state, ctx.features[part], key=key, num_samples=num,
                            embed=embed)
        out = empty_belief(b, P, R) if out is None else out
        scatter(out, b, part)
    return out


def empty_belief(like: Belief, P: int, R: int) -> Belief:
    """A zero Belief over P prompts with the array kinds and trailing shapes of `like`
    (zero pages are not resident until written)."""
    z = lambda a, shape: None if a is None else np.zeros(shape, np.asarray(a).dtype)  # noqa: E731
    k = np.asarray(like.samples).shape[0]
    return Belief(z(like.mean, (P, R)), z(like.std, (P, R)), z(like.samples, (k, P, R)),
                  z(like.pair_var, (P, R, R)),
                  z(like.embed, (P, R, *np.shape(like.embed)[2:])), like.precision)


def scatter(out: Belief, part: Belief, rows: Int[np.ndarray, " n"]) -> None:
    """Writes `part` (the belief of prompts `rows`) into out's rows."""
    out.mean[rows], out.std[rows] = part.mean, part.std
    out.samples[:, rows] = part.samples
    for name in ("pair_var", "embed"):
        if getattr(out, name) is not None:
            getattr(out, name)[rows] = getattr(part, name)
