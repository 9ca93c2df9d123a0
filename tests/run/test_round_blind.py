"""A round whose prompts are drawn uniformly (the first round, --rule random, or a belief
rule in a run that labels every prompt) plays its rule on those prompts only: the other
prompts' features are never read, the head scored only them, and the choice is the rule's
on the drawn prompts."""

import numpy as np
import pytest
from pools import synthetic_pool

from aeuf.bench.simulate import BenchConfig, replay_judge, run_config
from aeuf.config import AcquireConfig, HeadConfig, LoopConfig
from aeuf.run.round import choosing, engine
from aeuf.run.round.types import Purpose

P, R, D = 40, 4, 6


class Reads(np.ndarray):
    """An array that records every index it is read at (the rows a rule touched)."""

    def __array_finalize__(self, obj):
        self.seen = getattr(obj, "seen", [])  # a view (the fit reshapes it) records too

    def __getitem__(self, key):
        self.seen.append(key)
        return np.asarray(self)[key]


def context(rule, batch, budget=None):
    bench = BenchConfig(regime="once" if budget is None else "budget",
                        head=HeadConfig(name="ensemble", members=2, hidden=(4,)),
                        loop=LoopConfig(batch_size=batch, initial_rule="aepo", budget=budget),
                        acquire=AcquireConfig())
    x = np.random.default_rng(3).normal(size=(P, R, D)).astype(np.float32)
    x[:, 1] = x[:, 0]  # ties for aepo's greedy: its draws come into play
    feats = x.view(Reads)
    feats.seen = []
    return engine.make_context(run_config(bench, rule, "ensemble", 0, "deterministic"),
                               feats, x.mean(1)), x


@pytest.mark.parametrize("rule", ["aepo", "random", "dts"])  # dts: aepo plays round 0
def test_a_model_free_round_reads_only_the_prompts_it_drew(rule):
    ctx, x = context(rule, 10)
    plan = engine.choose(ctx, engine.initial_state(P), 0, 10)
    assert len(plan.prompts) == 10
    read = [k for k in ctx.features.seen if not isinstance(k, tuple) or k]
    assert read and all(isinstance(k, np.ndarray) and set(k.tolist()) <= set(plan.prompts.tolist())
                        for k in read), read
    first = ctx.rules[ctx.cfg.loop.initial_rule if rule == "dts" else rule]
    want = first.select(None, x[plan.prompts], key=ctx.keys.round(0, Purpose.CHOOSE),
                        k=2, valid=None)
    np.testing.assert_array_equal(plan.slots, want.idx)
    np.testing.assert_allclose(plan.score, want.score, rtol=1e-6)


def fitted(ctx, x, state, t, size):
    """Round t played (replay labels) and the head refit after it."""
    pool = synthetic_pool((x[..., 0] * 3).astype(np.float64))
    judge = replay_judge(ctx.cfg.oracle)
    state, _, _ = engine.play(ctx, pool, state, t, size, judge, "replay")
    return engine.refit(ctx, state, t)


def test_a_belief_round_of_a_run_that_labels_every_prompt_reads_and_scores_only_its_draw():
    """--prompt_selection auto, every prompt labelled once: BAL-PM would only order the
    prompts, so round 1 draws its prompts uniformly, the head scored only them after round 0,
    and dts plays on their rows of the belief."""
    ctx, x = context("dts", 10)
    state = fitted(ctx, x, engine.initial_state(P), 0, 10)
    ctx.features.seen.clear()
    plan = engine.choose(ctx, state, 1, 10)
    np.testing.assert_array_equal(state.scored, plan.prompts)
    scored = np.zeros(P, bool)
    scored[plan.prompts] = True
    assert np.asarray(state.belief.mean)[plan.prompts].all()
    assert not np.asarray(state.belief.mean)[~scored].any()
    read = [k for k in ctx.features.seen if not isinstance(k, tuple) or k]
    assert all(set(np.ravel(k).tolist()) <= set(plan.prompts.tolist()) for k in read), read
    want = ctx.rules["dts"].select(choosing.rows_of(state.belief, plan.prompts), x[plan.prompts],
                                   key=ctx.keys.round(1, Purpose.CHOOSE), k=2, valid=None)
    np.testing.assert_array_equal(plan.slots, want.idx)


def test_a_round_of_another_size_than_the_schedule_is_scored_before_it_chooses():
    """A round that draws other prompts than the ones the head scored (its size is not the
    schedule's: the budget left after a resume) scores them first: no prompt is chosen on
    zero rows."""
    ctx, x = context("dts", 10)
    state = fitted(ctx, x, engine.initial_state(P), 0, 10)
    plan = engine.choose(ctx, state, 1, 7)
    assert not set(plan.prompts.tolist()) <= set(state.scored.tolist())  # another draw
    assert np.all(plan.mean != 0)  # every row of the round was scored, by the same head
    want = ctx.head.belief(state.head_state, x[plan.prompts], num_samples=2, embed=False,
                           key=ctx.keys.round(0, Purpose.BELIEF))
    np.testing.assert_allclose(plan.mean, want.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plan.std, want.std, rtol=1e-5, atol=1e-6)  # what the record says


def test_a_budget_below_the_pool_keeps_balpm_over_every_open_prompt():
    ctx, x = context("dts", 10, budget=20)
    state = fitted(ctx, x, engine.initial_state(P), 0, 10)
    assert state.scored.size == P - 10  # BAL-PM ranks every open prompt
    assert choosing.balpm_selects(ctx, True) and not choosing.labels_every_prompt(ctx)


@pytest.mark.parametrize("budget, balpm", [(None, [False]), (40, [False]),
                                           (70, [False, True]), (80, [False, False]),
                                           (30, [True])])
def test_balpm_picks_the_prompts_only_in_a_pass_whose_labels_fall_short_of_the_pool(budget,
                                                                                     balpm):
    """auto: per pass over the P = 40 prompts, BAL-PM where the labels left at the pass's
    start are fewer than the prompts (e.g. a budget of 70: the second pass labels 30 of
    40), uniform where they reach every prompt; the graph is built ahead exactly then."""
    ctx, _ = context("dts", 10, budget=budget)
    assert [choosing.balpm_selects(ctx, True, n) for n in range(len(balpm))] == balpm
    assert not choosing.balpm_selects(ctx, False, 0)  # a model-free rule: uniform
    assert choosing.graph_ahead(ctx, engine.sizes_of(ctx)) is any(balpm)
