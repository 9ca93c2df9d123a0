"""After a fit the head scores only the prompts a later round can pick: those rows equal the
whole pool's belief, and a rule that draws no random numbers on them chooses the same. (A
Thompson rule's draws for the other, zero, rows take numbers from the same stream, so its
choices are other draws from the same distribution.)"""

import numpy as np
import pytest
from pools import synthetic_pool

from aeuf.bench.simulate import BenchConfig, replay_judge, run_config
from aeuf.config import AcquireConfig, HeadConfig, LoopConfig
from aeuf.run.round import beliefs, engine
from aeuf.run.round.types import Purpose

P, R, D = 60, 4, 6
HEAD = HeadConfig(name="ensemble", members=4, hidden=(8, 8), epochs=3, min_steps=20)


def linear_pool():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(P, R, D)).astype(np.float32)
    gold = (x @ np.array([3.0, -2.0, 1.5, 0.0, 1.0, 0.5]) + rng.normal(0, 2, (P, R)))
    return synthetic_pool(gold.astype(np.float64)), x


def play_all(rule, head, loop, monkeypatch=None, **acquire):
    """Every round of a run: [(prompts, slots)] and the rows each refit scored."""
    bench = BenchConfig(regime="budget" if loop.budget else "once", head=HEAD, loop=loop,
                        acquire=AcquireConfig(**acquire))
    cfg = run_config(bench, rule, head, 0, "deterministic")
    pool, x = linear_pool()
    ctx = engine.make_context(cfg, x, x.mean(1))
    judge, state, plans, scored = replay_judge(cfg.oracle), engine.initial_state(P), [], []
    needed = beliefs.rows_needed
    if monkeypatch is not None:
        monkeypatch.setattr(beliefs, "rows_needed", lambda ctx, state, t: None)
    for t, size in enumerate(engine.sizes_of(ctx)):
        state, plan, _ = engine.play(ctx, pool, state, t, size, judge, "replay")
        rows = needed(ctx, state, t)
        state = engine.refit(ctx, state, t)
        scored.append(P if rows is None else rows.size)
        if monkeypatch is None and rows is not None and rows.size == 0:  # no later round:
            assert state.belief is None and state.head_state is not None  # nothing waits
        if monkeypatch is None and rows is not None and rows.size:  # = the whole pool's belief
            whole = ctx.head.belief(state.head_state, x, key=ctx.keys.round(t, Purpose.BELIEF),
                                    num_samples=HEAD.members, embed=False)
            for got, want in zip(state.belief[:4], whole[:4]):
                axis = 1 if got.ndim == 3 and got.shape[0] == HEAD.members else 0
                # the same rows scored in smaller blocks: equal up to float32 rounding (the
                # matmul kernel may differ with the block's shape on some CPUs)
                np.testing.assert_allclose(np.take(got, rows, axis), np.take(want, rows, axis),
                                           rtol=1e-5, atol=1e-6)
                assert not np.take(got, np.setdiff1d(np.arange(P), rows), axis).any()
        plans.append((plan.prompts.tolist(), plan.slots.tolist()))
    return plans, scored


@pytest.mark.parametrize("rule, head", [("deltaucb", "ensemble"), ("deltaucb", "bll")])
def test_a_run_chooses_the_same_with_only_the_open_prompts_scored(rule, head, monkeypatch):
    loop = LoopConfig(batch_size=15, initial_rule="aepo")
    part, scored = play_all(rule, head, loop)
    assert scored == [15, 15, 15, 0]  # the next round's uniform draw; none after the last
    full, _ = play_all(rule, head, loop, monkeypatch)
    assert part == full


@pytest.mark.parametrize("rule, head", [("deltaucb", "ensemble")])
def test_a_budget_below_the_pool_scores_every_open_prompt_for_balpm(rule, head, monkeypatch):
    loop = LoopConfig(batch_size=15, budget=45, initial_rule="aepo")
    part, scored = play_all(rule, head, loop)
    assert scored == [45, 30, 0]  # BAL-PM ranks the prompts still open; none after the last
    full, _ = play_all(rule, head, loop, monkeypatch)
    assert part == full


def test_a_later_pass_scores_every_prompt_and_the_last_round_none():
    loop = LoopConfig(batch_size=40, budget=100, initial_rule="random")  # 100 > 60: two passes
    _, scored = play_all("dts", "ensemble", loop)
    assert scored == [20, P, 0]  # after round 1 every prompt is open again (pass 2)


@pytest.mark.parametrize("rule, acquire", [("doptimal_past", {}), ("dts", {"tie_margin": 0.5})])
def test_the_design_rules_and_a_learnt_tie_step_score_every_prompt(rule, acquire):
    bench = BenchConfig(regime="once", head=HEAD, acquire=AcquireConfig(**acquire),
                        loop=LoopConfig(batch_size=15, initial_rule="aepo"))
    _, x = linear_pool()
    ctx = engine.make_context(run_config(bench, rule, "ensemble", 0, "deterministic"), x, x.mean(1))
    state = engine.initial_state(P)._replace(acquired=np.arange(P) < 15)
    assert beliefs.rows_needed(ctx, state, 0) is None
    assert beliefs.rows_needed(ctx, state, 3).size == 0


@pytest.mark.parametrize("rule, wanted", [("dts", False), ("deltaucb", False),
                                          ("doptimal_past", True)])
def test_the_design_pass_runs_only_for_a_rule_that_reads_the_precision(rule, wanted):
    """make_context turns the ensemble's design pass (Belief.precision) off unless a rule of
    the run reads it; a rule that does gets the labels' design, not the prior."""
    bench = BenchConfig(regime="once", head=HEAD, loop=LoopConfig(batch_size=15),
                        acquire=AcquireConfig())
    cfg = run_config(bench, rule, "ensemble", 0, "deterministic")
    pool, x = linear_pool()
    ctx = engine.make_context(cfg, x, x.mean(1))
    assert ctx.cfg.head.precision is wanted
    judge, state = replay_judge(cfg.oracle), engine.initial_state(P)
    state, _, _ = engine.play(ctx, pool, state, 0, 15, judge, "replay")
    state = engine.refit(ctx, state, 0)
    prior = 2.0 * HEAD.anchor * HEAD.hidden[-1] * np.eye(HEAD.hidden[-1])
    assert np.allclose(state.head_state.precision, prior) is not wanted


def test_a_saved_head_without_precision_is_refit_for_a_rule_that_reads_it(tmp_path):
    """headstore: a head saved by a run that skipped the design pass is not restored where a
    rule reads the precision (it is refit, with the labels' design)."""
    from types import SimpleNamespace

    import jax

    from aeuf import io
    from aeuf.run import headstore, records

    bench = BenchConfig(regime="once", head=HEAD, loop=LoopConfig(batch_size=15),
                        acquire=AcquireConfig())
    cfg = run_config(bench, "doptimal_past", "ensemble", 0, "deterministic")
    pool, x = linear_pool()
    ctx = engine.make_context(cfg, x, x.mean(1))
    state, _, _ = engine.play(ctx, pool, engine.initial_state(P), 0, 15,
                              replay_judge(cfg.oracle), "replay")
    lean = engine.refit(ctx._replace(head=ctx.head._replace(fit=lambda s, f, c, key: s)),
                        state, 0).head_state  # the init's state: the prior precision
    leaves = [np.asarray(v) for v in jax.tree_util.tree_leaves(lean)]
    meta = {"round": 0, "comparisons": records.comps_digest(state.comps)}
    rd, ledger = io.RunDir(tmp_path), SimpleNamespace(exhausted=False)
    prior = np.asarray(lean.precision)
    kept = headstore.fit(ctx, rd, state, 0, ledger, (leaves, {**meta, "precision": True}))
    np.testing.assert_array_equal(kept.head_state.precision, prior)  # restored as saved
    refit = headstore.fit(ctx, rd, state, 0, ledger, (leaves, {**meta, "precision": False}))
    assert not np.allclose(refit.head_state.precision, prior)


def test_the_saver_writes_the_head_in_a_thread_and_hands_its_error_to_the_caller(tmp_path,
                                                                               capsys):
    """headstore.Saver: the head is on disk once wait() returns (as the synchronous save
    writes it); a failed save raises in the caller, at wait() or when the with block ends,
    and never hides the error the block itself raised."""
    import jax

    from aeuf import io
    from aeuf.run import headstore

    head = engine.make_head(HEAD)
    state = head.init(D, key=jax.random.key(0))
    rd = io.RunDir(tmp_path / "run")
    with headstore.Saver(rd) as saver:
        saver.save(state, {"round": 2, "comparisons": "x"})
    leaves, meta = rd.load_head()
    assert meta["round"] == 2
    for got, want in zip(leaves, jax.tree_util.tree_leaves(state), strict=True):
        np.testing.assert_array_equal(got, np.asarray(want))
    broken = io.RunDir(tmp_path / "broken")
    broken.path.mkdir(parents=True)
    (broken.path / "head").write_text("a file where the folder goes")
    with pytest.raises(OSError), headstore.Saver(broken) as saver:
        saver.save(state, {"round": 0, "comparisons": "x"})
    with pytest.raises(KeyError), headstore.Saver(broken) as saver:
        saver.save(state, {"round": 0, "comparisons": "x"})
        raise KeyError("the run's own error")
    assert "the head was not saved" in capsys.readouterr().err  # noted, not raised
