"""The choose half of a round (aeuf.run.round.engine.choose): which rule plays, which prompts can be
and are picked, the shown responses made judgeable, and the uncertainty of the pairs shown.

Pure, but for graph_of: it may wait for the graph the run layer started building ahead (a
Future in ctx.graph). Typed against the round's records (aeuf.run.round.types).

Shape letters: P prompts, R responses per prompt, b prompts in a round, k responses shown
per prompt.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

import numpy as np
from jaxtyping import Bool, Float, Int

from aeuf import acquire
from aeuf.acquire.base import numpy_rng
from aeuf.acquire.cells import CellGraph
from aeuf.run.round.types import Context, Purpose, State
from aeuf.types import Belief, Choice


def eligible(ctx: Context) -> Bool[np.ndarray, " P"]:
    """Prompts with at least two responses the oracle can judge."""
    if ctx.usable is None:
        return np.ones(ctx.features.shape[0], bool)
    return ctx.usable.sum(axis=1) >= 2


def rule_of(ctx: Context, state: State) -> str:
    """The rule of the next round: the run's rule, or the initial (model-free) rule while a
    rule that needs a head has none yet."""
    name = ctx.cfg.acquire.rule
    return ctx.cfg.loop.initial_rule if state.belief is None and ctx.rules[name].needs_belief else name


def round_rule(ctx: Context, state: State, name: str):
    """The Rule of the round: ctx.rules[name], made tie-aware with the rating step read off
    the labels so far (acquire.calibrated_step) when --tie_margin is set with no
    --rating_step and the rule plays on a belief with labels behind it."""
    rule, acq = ctx.rules[name], ctx.cfg.acquire
    if (acq.tie_margin is None or acq.rating_step is not None or not rule.needs_belief
            or state.belief is None or state.comps.size == 0):
        return rule
    step = tie_step(state)
    if not np.isfinite(step):
        return rule
    return acquire.tie_aware(rule, dataclasses.replace(acq, rating_step=step))


def tie_step(state: State) -> float:
    """The judge's rating step in the head's reward units, from the labels so far."""
    c, b = state.comps, state.belief
    if b.pair_var is None:
        return float("nan")
    return acquire.calibrated_step(b.mean, b.pair_var, c.prompt, c.a, c.b, c.p == 0.5)


def select(ctx: Context, state: State, name: str, rule, t: int,
           valid: Bool[np.ndarray, "P R R"] | None) -> Choice:
    """The rule's choice for every prompt, where the run says (ctx.where: e.g. on the shards
    of a Ray cluster), else (or for a round it does not take) in this process."""
    key, k = ctx.keys.round(t, Purpose.CHOOSE), ctx.cfg.acquire.num_annotations
    got = None if ctx.where is None else ctx.where(ctx, state, name, rule, key, valid)
    return got if got is not None else rule.select(state.belief, ctx.features, key=key, k=k,
                                                   valid=valid)


def select_on(ctx: Context, state: State, rule, t: int,
              valid: Bool[np.ndarray, "P R R"] | None, prompts: Int[np.ndarray, " b"]) -> Choice:
    """The rule's choice for `prompts` only (rows in their order), in this process, on their
    rows of the belief (none for a model-free rule): the round took its prompts without
    reading the rule's score (blind_prompts)."""
    key, k = ctx.keys.round(t, Purpose.CHOOSE), ctx.cfg.acquire.num_annotations
    belief = None if state.belief is None or not rule.needs_belief else \
        rows_of(state.belief, prompts)
    return rule.select(belief, ctx.features[prompts], key=key, k=k,
                       valid=None if valid is None else valid[prompts])


def rows_of(belief: Belief, prompts: Int[np.ndarray, " b"]) -> Belief:
    """The belief of `prompts` (rows in their order); the precision is the head's, shared."""
    take = lambda a, axis=0: None if a is None else np.take(np.asarray(a), prompts, axis)  # noqa: E731
    return Belief(take(belief.mean), take(belief.std), take(belief.samples, 1),
                  take(belief.pair_var), take(belief.embed), belief.precision)


def blind_prompts(ctx: Context, acquired: Bool[np.ndarray, " P"], t: int, size: int,
                  needs_belief: bool, pass_no: int = 0) -> Int[np.ndarray, " b"] | None:
    """pick_prompts' prompts when it does not read the score: every prompt not `acquired`
    that is left (size reaches them), or a uniform draw; None when BAL-PM picks them.
    pass_no: the pass over the pool the round belongs to (0: the first)."""
    free = np.flatnonzero(~acquired & eligible(ctx))
    if size >= free.size:
        return free
    if not balpm_selects(ctx, needs_belief, pass_no):
        rng = numpy_rng(ctx.keys.round(t, Purpose.PROMPTS))
        return np.sort(rng.choice(free, size, replace=False))
    return None


def pick_prompts(ctx: Context, acquired: Bool[np.ndarray, " P"], t: int, size: int,
                 score: Float[np.ndarray, " P"], needs_belief: bool,
                 pass_no: int = 0) -> Int[np.ndarray, " b"]:
    """int64 [size]: BAL-PM (score + beta * kNN entropy) or uniform among the prompts not
    `acquired` (bool [P])."""
    blind = blind_prompts(ctx, acquired, t, size, needs_belief, pass_no)
    if blind is not None:
        return blind
    score = np.where(eligible(ctx), score, -np.inf).astype(np.float32)
    return np.asarray(acquire.select_prompts(score, ctx.prompt_features, acquired, size,
                                             ctx.cfg.acquire, graph=graph_of(ctx)), np.int64)


def balpm_selects(ctx: Context, needs_belief: bool, pass_no: int = 0) -> bool:
    """Whether a round of pass `pass_no` picks its prompts by BAL-PM (reading the graph) for
    a rule that does or does not need a belief; else uniformly. --prompt_selection auto:
    BAL-PM for a belief rule in a pass whose labels fall short of its prompts (which prompts
    get labelled is the choice); uniform when the pass labels every prompt (its rounds only
    order them), so the head scores only the prompts each round draws
    (aeuf.run.round.beliefs)."""
    mode = ctx.cfg.acquire.prompt_selection
    if mode != "auto":
        return mode == "balpm"
    return needs_belief and not labels_every_prompt(ctx, pass_no)


def labels_every_prompt(ctx: Context, pass_no: int = 0) -> bool:
    """Whether the labels left to the run at the start of pass `pass_no` (--budget, default
    every prompt once) reach every eligible prompt."""
    budget, total = ctx.cfg.loop.budget, int(eligible(ctx).sum())
    return budget is None or budget - pass_no * total >= total


def build_graph(ctx: Context) -> acquire.KnnGraph | CellGraph:
    """The prompts' kNN graph BAL-PM reads (a KnnGraph, or a CellGraph above knn_exact_max)."""
    acq = ctx.cfg.acquire
    return acquire.knn_graph(ctx.prompt_features, acq.knn_k, exact_max=acq.knn_exact_max,
                             index=acq.knn_index)


def graph_of(ctx: Context) -> acquire.KnnGraph | CellGraph:
    """ctx's graph, built on first use; when the run layer started building it ahead (a
    Future in ctx.graph), its result (or the error building it raised)."""
    if not ctx.graph:
        ctx.graph.append(build_graph(ctx))
    graph = ctx.graph[0]
    return graph.result() if isinstance(graph, Future) else graph


def graph_ahead(ctx: Context, sizes: list[int]) -> bool:
    """Whether a round of these sizes will read the graph (pick_prompts): BAL-PM selection
    (balpm_selects; with auto, from round 1 on) in a round that labels fewer prompts than its
    pass has left. Never False when a round of a fresh run reads it; it can be True when
    none does (a later pass whose prompts have no pair left, a run that stops early, a
    resume with every round recorded): that costs one graph build beside the run."""
    acq = ctx.cfg.acquire
    needs = ctx.rules[acq.rule].needs_belief
    total, done = int(eligible(ctx).sum()), np.cumsum([0, *sizes])
    first = 0 if acq.prompt_selection == "balpm" else 1
    return total > 0 and any(size < total - done[t] % total
                             and balpm_selects(ctx, needs, int(done[t] // total))
                             for t, size in enumerate(sizes) if t >= first)


def usable_slots(slots: Int[np.ndarray, "b k"], usable: Bool[np.ndarray, "b R"], rng):
    """The shown responses with every one the oracle cannot judge replaced by a random usable
    response not shown yet (model-free rules ignore the pair mask; belief rules honour it)."""
    out = slots.copy()
    for row in np.flatnonzero(~np.take_along_axis(usable, slots, 1).all(axis=1)):
        spare = [r for r in rng.permutation(usable.shape[1]) if usable[row, r] and r not in out[row]]
        for j in np.flatnonzero(~usable[row, out[row]]):
            if spare:
                out[row, j] = spare.pop()
    return out


def pair_uncertainty(belief: Belief | None, prompts, slots) -> Float[np.ndarray, " b"]:
    """Mean pair std sqrt(Var[r_i - r_j]) over the shown responses of each prompt (NaN
    without a belief)."""
    if belief is None:
        return np.full(len(prompts), np.nan, np.float32)
    if belief.pair_var is not None:
        pv = np.asarray(belief.pair_var)[prompts]  # [b, R, R]
    else:
        s = np.asarray(belief.samples)[:, prompts]  # [K, b, R]
        pv = (s[:, :, :, None] - s[:, :, None, :]).var(axis=0)
    rows = np.arange(len(prompts))[:, None]
    iu, ju = np.triu_indices(slots.shape[1], 1)
    var = pv[rows, slots[:, iu], slots[:, ju]]
    return np.sqrt(np.maximum(var, 0.0)).mean(axis=1).astype(np.float32)
