"""The round engine: the one step that `aeuf` and `aeuf bench` both run (pure: no disk).

A run is a list of rounds. Round t:

    choose(ctx, state, t, size)     -> Plan      the rule on the current belief picks each
                                                 prompt's responses; prompts are picked among
                                                 those not yet labelled in this pass (BAL-PM
                                                 or uniform)
    judge(plan)                     -> [Judgement]   the caller's oracle (a ledger, or the
                                                 replay oracle's pure path in the benchmark)
    absorb(ctx, state, plan, judgements) -> (State, Outcome)   comparisons and labelled rows
    refit(ctx, state, t)            -> State     the head refit (warm-started) and its belief
                                                 (none after the last round: JAX computes the
                                                 fit while the caller goes on)

A budget above the number of prompts takes several passes over the pool (aeuf.run.round.passes):
once every prompt is labelled a new pass starts, and a later pass never shows the oracle a
pair it already judged. A model-free rule (random, aepo, ultrafeedback, west_of_n) runs from
the first round; only a rule that needs a head starts with the initial rule.

Every random key derives from the seed with fold_in (`Keys`, one `Purpose` per use), so the
same seed, pool and settings give the same choices in `aeuf`, in a resumed `aeuf` and in
`aeuf bench`. The records (Context, Plan, State, Outcome, ...) live in aeuf.run.round.types.

The helpers of each half live beside it: aeuf.run.round.choosing (the rule of a round, eligible
and picked prompts, usable responses, pair uncertainty) and aeuf.run.round.absorbing (the Labelled
record of a judged prompt, the comparisons appended, the head's agreement).

Shape letters: P prompts, R responses per prompt, D feature dim, d prompt-feature dim,
b prompts in a round, k responses shown per prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from aeuf import acquire
from aeuf.acquire.base import numpy_rng
from aeuf.config import RunConfig
from aeuf.errors import ConfigError
from aeuf.head import make_head
from aeuf.run.round import absorbing, beliefs, choosing, layout, passes, routes
from aeuf.run.round import signals as signals_
from aeuf.run.round.passes import schedule  # noqa: F401  (re-exported: engine.schedule)
from aeuf.run.round.types import (  # noqa: F401  (Keys, Routing re-exported for callers)
    Checks,
    Context,
    Keys,
    Outcome,
    Plan,
    Purpose,
    Routing,
    State,
    Verdicts,
)
from aeuf.types import Comparisons, Judgement, JudgeTask, ResponsePool, turns_of


def validate(cfg: RunConfig, R: int) -> dict:
    """Every check of the head/rule settings that needs no data beyond R: -> name -> Rule.
    Raises ConfigError (one line) before anything is written."""
    make_head(cfg.head)
    k = cfg.acquire.num_annotations
    if k < 2:
        raise ConfigError(f"--num_annotations {k}: at least 2 responses per prompt must be compared")
    if k > R:
        raise ConfigError(f"--num_annotations {k} is more than the {R} responses per prompt: "
                          "lower --num_annotations or raise --num_responses")
    names = {cfg.acquire.rule, cfg.loop.initial_rule}
    rules = {n: acquire.make_rule(cfg.acquire, n) for n in names}
    if rules[cfg.loop.initial_rule].needs_belief:
        raise ConfigError(f"--initial_rule {cfg.loop.initial_rule} needs a fitted head; choose a "
                          "model-free rule (aepo, random, ultrafeedback, west_of_n)")
    for name, value in (("budget", cfg.loop.budget), ("batch_size", cfg.loop.batch_size),
                        ("initial_batch", cfg.loop.initial_batch)):
        if value is not None and value < 1:
            raise ConfigError(f"--{name} {value}: must be at least 1")
    routes.validate(cfg, rules, R)
    return rules


def make_context(cfg: RunConfig, features, prompt_features, *, graph=None,
                 usable=None, signals=None, where=None, widths=None) -> Context:
    """The run's shared context (validates the settings). graph: the prompts' kNN graph when
    already built (it depends only on the prompt features and knn_k); usable: bool[P, R]
    responses the oracle can judge (None: all); signals: aeuf.run.round.signals.Signals (None: no
    baselines beside the head's agreement); where: where the rule chooses (Context.where;
    None: in this process); widths: part name -> width as the features were built (None:
    read off --features and D, aeuf.run.round.layout)."""
    rules = validate(cfg, features.shape[1])
    head = layout.head_config(cfg.head, cfg.features, features.shape[-1], widths)
    # the design pass of every fit only when a rule reads its precision (the design rules)
    cfg = replace(cfg, head=replace(head, precision=head.precision and any(
        r.needs_embed for r in rules.values())))
    usable = None if usable is None or np.all(usable) else np.asarray(usable, bool)
    kept = isinstance(features, np.ndarray) and features.dtype in (np.float16, np.float32)
    return Context(cfg, features if kept else np.asarray(features, np.float32),
                   np.asarray(prompt_features, np.float32),
                   make_head(cfg.head), rules, Keys.of(cfg.loop.seed),
                   [] if graph is None else [graph], usable, signals, where)


def sizes_of(ctx: Context) -> list[int]:
    return beliefs.round_sizes(ctx)


def initial_state(num_prompts: int) -> State:
    return State(Comparisons.empty(), None, None, np.zeros(num_prompts, bool))


# --- choose ---------------------------------------------------------------------------------

def choose(ctx: Context, state: State, t: int, size: int) -> Plan:
    """Round t's plan: the rule's choice per prompt, then `size` prompts among those not
    labelled in this pass (a rule whose round draws its prompts uniformly, as the first
    round and every round that labels the rest of the pool do, plays on those prompts only:
    nothing reads its choice elsewhere, and the head scored only them). Belief
    rules get the pairs they may choose (usable, and in a later pass not judged yet); a
    choice that still repeats a judged pair is replaced (aeuf.run.round.passes.avoid_repeats)
    and unusable responses are swapped out (choosing.usable_slots)."""
    name = choosing.rule_of(ctx, state)
    rule = choosing.round_rule(ctx, state, name)
    valid = None if ctx.usable is None else ctx.usable[:, :, None] & ctx.usable[:, None, :]
    acquired, blocked = state.acquired, None
    pass_no = state.passes + int((acquired | ~choosing.eligible(ctx)).all())  # this round's
    if pass_no:  # a later pass
        blocked = passes.seen_pairs(state.comps, *ctx.features.shape[:2])
        blocked = blocked if valid is None else blocked | ~valid
        valid, acquired = ~blocked, passes.pass_acquired(acquired, blocked)
    prompts = None if blocked is not None or rule.needs_embed else \
        choosing.blind_prompts(ctx, acquired, t, size, rule.needs_belief)
    if prompts is not None:  # the rule plays on the round's prompts only
        state = beliefs.covering(ctx, state, prompts) if rule.needs_belief else state
        choice = choosing.select_on(ctx, state, rule, t, valid, prompts)
        slots, score = np.asarray(choice.idx, np.int64), np.asarray(choice.score, np.float32)
    else:
        slots, score, prompts = _rule_then_prompts(ctx, state, name, rule, t, size, valid,
                                                   acquired, blocked, pass_no)
    if ctx.usable is not None:
        rng = numpy_rng(ctx.keys.round(t, Purpose.SWAP))
        slots = choosing.usable_slots(slots, ctx.usable[prompts], rng)
    b = state.belief
    mean, std = (None, None) if b is None else \
        (np.asarray(b.mean, np.float32)[prompts], np.asarray(b.std, np.float32)[prompts])
    plan = Plan(t, name, prompts, slots, score,
                choosing.pair_uncertainty(b, prompts, slots), mean, std=std)
    return routes.route(ctx.cfg, plan, state, ctx.keys.round(t, Purpose.CHECK))


def _rule_then_prompts(ctx: Context, state: State, name: str, rule, t: int, size: int,
                       valid, acquired, blocked, pass_no: int):
    """(slots [b, k], score [b], prompts [b]): the rule's choice for every prompt (a repeat
    of a judged pair replaced), then the round's prompts (BAL-PM reads the score)."""
    choice = choosing.select(ctx, state, name, rule, t, valid)
    idx, score = np.asarray(choice.idx, np.int64), np.asarray(choice.score, np.float32)
    if blocked is not None:
        idx, score = passes.avoid_repeats(idx, score, blocked, state.belief,
                                          numpy_rng(ctx.keys.round(t, Purpose.REPEATS)))
    prompts = choosing.pick_prompts(ctx, acquired, t, size, score, rule.needs_belief, pass_no)
    return idx[prompts], score[prompts], prompts


# --- judge, absorb, refit ---------------------------------------------------------------------

def tasks_of(pool: ResponsePool, plan: Plan) -> list[JudgeTask]:
    """The oracle's tasks of a plan: each prompt with its shown responses (and gold, and a
    multi-turn prompt's turns). Gathered a column at a time: the per-row work is one zip."""
    ps, ss = np.asarray(plan.prompts), np.asarray(plan.slots)
    at = (ps[:, None], ss)
    strs = lambda rows: [tuple(map(str, r)) for r in rows]  # noqa: E731
    gold = [None] * len(ps) if pool.gold is None else map(tuple, pool.gold[at].tolist())
    turns = [None] * len(ps) if pool.messages is None else map(turns_of, pool.messages[ps])
    return list(map(JudgeTask, map(str, pool.prompt_ids[ps].tolist()),
                    map(str, pool.prompts[ps].tolist()), strs(pool.response_ids[at].tolist()),
                    strs(pool.responses[at].tolist()), gold, turns))


def absorb(ctx: Context, state: State, plan: Plan,
           judgements: Sequence[Judgement] | Verdicts, judge: str) -> tuple[State, Outcome]:
    """Add a round's judgements (one per plan row; Verdicts when several labellers took
    part): comparisons for the head (none from its own labels, a cheap judge's softened), a
    Labelled record per answered prompt (ties kept, marked), the calibration points, and
    how often the head agreed with the oracle beforehand."""
    v = routes.as_verdicts(judgements, judge)
    pairing = "extremes" if ctx.cfg.export.west_of_n else ctx.rules[plan.rule].pairing
    rng = numpy_rng(ctx.keys.round(plan.t, Purpose.PAIRING))
    seeds = rng.integers(2**31, size=len(plan.prompts))
    noise = routes.update_noise(state.checks.noise, v)
    eps = routes.flip_rate(noise)
    done, rows, unanswered = [], [], 0
    prompts, slot_rows = np.asarray(plan.prompts).tolist(), np.asarray(plan.slots).tolist()
    for i, (p, s, j, seed) in enumerate(zip(prompts, slot_rows, v.judgements, seeds.tolist())):
        slots = tuple(s)
        rows += routes.row_comparisons(v, i, p, slots, eps)
        lab = absorbing.labelled(plan, i, p, slots, j, pairing, seed, v.judges[i])
        if lab is None:
            unanswered += 1
        else:
            done.append((i, routes.row_confidence(lab, plan, i, v, eps)))
    acquired, passes_done = state.acquired.copy(), state.passes
    if acquired[plan.prompts].any():  # the plan re-opens labelled prompts: a new pass
        acquired[:], passes_done = False, passes_done + 1
    acquired[plan.prompts] = True
    new = state._replace(comps=absorbing.append(state.comps, rows), acquired=acquired,
                         passes=passes_done,
                         checks=Checks(routes.calibrate(state.checks.calib, plan, done, v), noise))
    labelled = [lab for _, lab in done]
    unc = plan.uncertainty[np.isfinite(plan.uncertainty)]
    base = None if plan.mean is None else signals_.agreements(
        ctx.signals, state.comps, labelled, keep=absorbing.judged)
    return new, Outcome(labelled, unanswered, absorbing.agreement(plan, labelled),
                        float(unc.mean()) if unc.size else None, routes.routes_of(plan, v),
                        plan.routing.threshold, base)


def refit(ctx: Context, state: State, t: int) -> State:
    """The head fit on every comparison so far (warm-started) and its belief, after round t."""
    if state.comps.size == 0:
        return state
    warm = state.head_state is not None and ctx.cfg.head.warm_start
    start = state.head_state if warm else ctx.head.init(ctx.features.shape[-1], key=ctx.keys.init())
    head_state = ctx.head.fit(start, ctx.features, state.comps, key=ctx.keys.round(t, Purpose.FIT))
    return restore(ctx, state, head_state, t)


def restore(ctx: Context, state: State, head_state, t: int) -> State:
    """The state with a head fit after round t (fresh or read back from disk) and its belief,
    scored on the prompts a later round can use (aeuf.run.round.beliefs; zero elsewhere)."""
    rows = beliefs.rows_needed(ctx, state, t)
    belief = beliefs.belief_on(ctx, head_state, rows, key=ctx.keys.round(t, Purpose.BELIEF),
                               embed=ctx.rules[ctx.cfg.acquire.rule].needs_embed)
    return state._replace(head_state=head_state, belief=belief, fitted_round=t, scored=rows)


def play(ctx: Context, pool: ResponsePool, state: State, t: int, size: int,
         judge: Callable[[Plan, list[JudgeTask]], Sequence[Judgement] | Verdicts],
         judge_name: str, *, plan: Plan | None = None) -> tuple[State, Plan, Outcome]:
    """One round without the refit: choose (or take a recorded plan), judge the rows the
    head does not label (judge gets the plan of those rows and their tasks), absorb."""
    plan = plan if plan is not None else choose(ctx, state, t, size)
    verdicts = routes.judge_rows(plan, tasks_of(pool, plan), judge, judge_name)
    state, outcome = absorb(ctx, state, plan, verdicts, judge_name)
    return state, plan, outcome


def should_stop(ctx: Context, outcome: Outcome) -> bool:
    """--stop_when_agreement X: the head agreed with the oracle on >= X of the round."""
    x = ctx.cfg.loop.stop_when_agreement
    return x is not None and outcome.agreement is not None and outcome.agreement >= x
