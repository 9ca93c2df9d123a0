"""Simulated active learning through the round engine on a tiny synthetic pool (real heads)."""

import dataclasses

import numpy as np
import pytest

from aeuf.bench.metrics import held_out_pairs
from aeuf.bench.simulate import (
    BenchConfig,
    Task,
    all_pairs,
    ceiling,
    run_config,
    simulate,
    split_prompts,
)
from aeuf.config import HeadConfig, LoopConfig
from aeuf.errors import ConfigError
from aeuf.run.round import passes
from aeuf.run.round.engine import schedule
from aeuf.types import ResponsePool

P, R, D = 48, 5, 6


def synthetic_pool(gold: np.ndarray) -> ResponsePool:
    n, r = gold.shape
    ids = np.array([f"q{p}" for p in range(n)], dtype=object)
    grid = lambda f: np.array([[f(p, i) for i in range(r)] for p in range(n)], dtype=object)  # noqa: E731
    return ResponsePool(ids, np.array([f"question {p}" for p in range(n)], dtype=object),
                        grid(lambda p, i: f"answer {i} to {p}"), grid(lambda p, i: f"m{i}"),
                        grid(lambda p, i: f"q{p}:{i}"), gold, "score", "synthetic")


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(P, R, D)).astype(np.float32)
    gold = (x @ np.array([2.0, -1.0, 1.0, 0.0, 0.0, 0.5])).astype(np.float64)  # linear: learnable
    pool, test = split_prompts(P, 0.25, 0)
    return Task(synthetic_pool(gold).take(pool), x[pool], x[pool].mean(1), x[test], gold[test],
                held_out_pairs(gold[test]))


BENCH = BenchConfig(seeds=1, head=HeadConfig(), loop=LoopConfig(budget=24, batch_size=8,
                                                                   initial_rule="random"))


def cfg(rule="random", seed=1, mode="deterministic", bench=BENCH):
    return run_config(bench, rule, "bll", seed, mode)


def test_split_is_seeded_disjoint_and_complete():
    pool, test = split_prompts(20, 0.25, 3)
    assert test.size == 5 and pool.size == 15
    assert sorted([*pool, *test]) == list(range(20))
    assert np.array_equal(split_prompts(20, 0.25, 3)[1], test)
    assert not np.array_equal(split_prompts(20, 0.25, 4)[1], test)
    assert split_prompts(20, 0.0, 3)[1].size == 0
    with pytest.raises(ConfigError):
        split_prompts(20, 1.0, 0)


def test_schedule_sums_to_the_budget_in_passes_over_the_pool():
    assert schedule(1000, 100, 30, None) == [30, 30, 30, 10]
    assert schedule(1000, 100, 30, 10) == [10, 30, 30, 30]
    assert schedule(45, 100, 30, None) == [30, 15, 30, 15, 10]  # no round spans two passes
    assert schedule(8, None, None, None) == [2, 2, 2, 2]
    assert schedule(10, 25, None, None) == [3, 3, 3, 1, 3, 3, 3, 1, 3, 2]
    # the default first round is small (50 prompts), the rest of a pass in three rounds
    assert schedule(604, None, None, None) == [50, 185, 185, 184]
    assert schedule(604, None, 100, None) == [100] * 6 + [4]  # a given batch sizes round 0 too
    assert schedule(1000, None, None, 10) == [10, 330, 330, 330]


def test_rules_share_the_first_batch_and_learn(task):
    runs = {r: simulate(task, cfg(r)) for r in ("random", "infomax")}
    first = [c.comparisons for c in runs.values()]
    assert all(np.array_equal(first[0].prompt[:8], f.prompt[:8]) for f in first)
    assert all(np.array_equal(first[0].a[:8], f.a[:8]) for f in first)
    assert not np.array_equal(first[0].prompt[8:], first[1].prompt[8:])
    gold = task.pool.gold
    for c in runs.values():
        assert c.labels.tolist() == [8, 16, 24] and len(c.accuracy) == 3
        assert len(set(c.comparisons.prompt.tolist())) == 24  # a prompt is labelled once
        assert np.all(c.comparisons.a != c.comparisons.b)
        g = gold[c.comparisons.prompt]
        want = g[np.arange(24), c.comparisons.a] > g[np.arange(24), c.comparisons.b]
        assert np.array_equal(c.comparisons.p, want.astype(np.float32))
        assert c.accuracy[-1] > 0.75 and c.log_likelihood[-1] > np.log(0.5)
        assert c.regret[-1] < 0.5 * (task.test_gold.max(1) - task.test_gold.mean(1)).mean()
        assert c.shown == 48 and c.fit_s > 0 and len(c.plans) == 3
    again = simulate(task, cfg("infomax"))
    assert np.array_equal(again.accuracy, runs["infomax"].accuracy)


def test_seed_changes_the_first_batch(task):
    a = simulate(task, cfg(seed=1, mode="bernoulli"))
    b = simulate(task, cfg(seed=2, mode="bernoulli"))
    assert not np.array_equal(a.comparisons.prompt, b.comparisons.prompt)


def test_all_pairs_labels_every_untied_pair():
    c = all_pairs(np.array([[0.0, 1.0, 1.0]]))
    assert c.size == 2 and c.p.tolist() == [0.0, 0.0]


def test_ceiling_beats_a_few_labels(task):
    assert ceiling(task, cfg(), max_pairs=None).accuracy > 0.95


def test_initial_rule_must_be_model_free(task):
    bench = dataclasses.replace(BENCH, loop=dataclasses.replace(BENCH.loop, initial_rule="dts"))
    with pytest.raises(ConfigError, match="initial_rule"):
        simulate(task, cfg(bench=bench))


def test_budget_above_the_pool_labels_every_prompt_then_new_pairs(task):
    """36 prompts, budget 100: every prompt once (36), again (72), then 28 more; a judged
    pair is never shown again, and the curve has a point per round."""
    bench = dataclasses.replace(BENCH, loop=dataclasses.replace(BENCH.loop, budget=100,
                                                                batch_size=12))
    for rule in ("random", "infomax"):
        c = simulate(task, cfg(rule, bench=bench))
        order = [int(p) for plan in c.plans for p in plan.prompts]
        assert len(order) == 100 and c.comparisons.size == 100 and c.passes == 2
        assert sorted(order[:36]) == sorted(order[36:72]) == list(range(36))
        assert len(set(order[72:])) == 28
        pairs = {(p, min(a, b), max(a, b)) for p, a, b in zip(c.comparisons.prompt,
                                                              c.comparisons.a, c.comparisons.b)}
        assert len(pairs) == 100
        assert c.labels.tolist() == [12, 24, 36, 48, 60, 72, 84, 96, 100]
        assert c.shown == 200


def test_avoid_repeats_replaces_only_repeated_pairs():
    from aeuf.types import Comparisons

    comps = Comparisons(np.array([0, 0, 1], np.int32), np.array([0, 1, 2], np.int32),
                        np.array([1, 2, 0], np.int32), np.ones(3, np.float32))
    seen = passes.seen_pairs(comps, 3, 3)
    assert seen[0, 1, 0] and seen[1, 0, 2] and not seen[2].any()
    idx = np.array([[1, 0], [1, 2], [0, 1]])
    new, score = passes.avoid_repeats(idx, np.zeros(3), seen, None, np.random.default_rng(0))
    assert sorted(new[0]) == [0, 2]  # prompt 0: only (0, 2) is new
    assert new[1].tolist() == [1, 2] and new[2].tolist() == [0, 1]  # new pairs kept
    # prompt 0 has every pair judged (closed): never picked again
    full = passes.seen_pairs(Comparisons(*(np.array(x, np.int32) for x in
                                          ([0, 0, 0], [0, 0, 1], [1, 2, 2])), np.ones(3)), 3, 3)
    assert passes.pass_acquired(np.array([False, True, False]), full).tolist() == [True, True, False]
    # every open prompt labelled in this pass: a new pass re-opens them
    assert passes.pass_acquired(np.array([False, True, True]), full).tolist() == [True, False, False]


def test_model_free_rule_runs_from_the_first_round(task):
    bench = dataclasses.replace(BENCH, loop=dataclasses.replace(BENCH.loop, initial_rule="aepo"))
    assert {p.rule for p in simulate(task, cfg("random", bench=bench)).plans} == {"random"}
    assert [p.rule for p in simulate(task, cfg("infomax", bench=bench)).plans][:2] == ["aepo", "infomax"]


def test_the_bench_gives_the_head_the_part_widths_as_the_run_does(task, monkeypatch):
    """D alone cannot place two parts of unknown width (model and file): the run passes the
    widths it built to the head's layout, and the bench must too, or its two-speed head would
    silently be the ensemble alone (aeuf bench = aeuf)."""
    from aeuf.bench import runner
    from aeuf.bench import simulate as sim
    from aeuf.config import FeatureConfig
    from aeuf.run.round import engine

    widths = {"stats": 2, "model": 1, "file": 3}
    seen = []
    real = engine.make_context

    def spy(*args, **kw):
        ctx = real(*args, **kw)
        seen.append(ctx.cfg.head.linear_columns)
        return ctx

    monkeypatch.setattr(sim.engine, "make_context", spy)
    bench = dataclasses.replace(BENCH, features=FeatureConfig(features="stats+model+file"),
                                head=HeadConfig(name="ensemble+linear", members=2,
                                                hidden=(4,), epochs=1))
    simulate(task._replace(widths=widths), run_config(bench, "dts", "ensemble+linear", 1,
                                                      "deterministic"),
             curve=False)
    assert seen == [(0, 1, 2)]  # stats and model: the first three of D = 6 columns
    data = runner.BenchData(synthetic_pool(np.zeros((4, R))), (np.arange(3), np.arange(3, 4)),
                            np.zeros((4, R, D)), None, None, {}, widths)
    assert runner.make_task(data, data.features, None, None).widths == widths
    assert runner.make_task(data, np.zeros((4, R, D)), None, None).widths is None  # a ceiling set
