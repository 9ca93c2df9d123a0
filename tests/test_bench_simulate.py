"""Simulated active learning on a tiny synthetic pool with a real (small) head."""

import dataclasses

import numpy as np
import pytest

from aeuf.bench.metrics import held_out_pairs
from aeuf.bench.simulate import (
    BenchConfig,
    Task,
    all_pairs,
    ceiling,
    label,
    oracle_ratings,
    schedule,
    simulate,
    split_prompts,
)
from aeuf.config import AcquireConfig, HeadConfig
from aeuf.errors import ConfigError
from aeuf.head import make_head

P, R, D = 48, 5, 6


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(P, R, D)).astype(np.float32)
    gold = x @ np.array([2.0, -1.0, 1.0, 0.0, 0.0, 0.5])  # linear: a BT head can learn it
    pool, test = split_prompts(P, 0.25, 0)
    return Task(x[pool], x[pool].mean(1), gold[pool], x[test], gold[test],
                held_out_pairs(gold[test]), None)


@pytest.fixture(scope="module")
def head():
    return make_head(HeadConfig(name="bll"))


CFG = BenchConfig(budget=24, batch=8, seeds=1)


def test_split_is_seeded_disjoint_and_complete():
    pool, test = split_prompts(20, 0.25, 3)
    assert test.size == 5 and pool.size == 15
    assert sorted([*pool, *test]) == list(range(20))
    assert np.array_equal(split_prompts(20, 0.25, 3)[1], test)
    assert not np.array_equal(split_prompts(20, 0.25, 4)[1], test)
    with pytest.raises(ConfigError):
        split_prompts(20, 1.0, 0)


def test_schedule_sums_to_the_budget_capped_by_the_pool():
    assert schedule(100, 30, None, 1000) == [30, 30, 30, 10]
    assert schedule(100, 30, 10, 1000) == [10, 30, 30, 30]
    assert schedule(100, 30, None, 45) == [30, 15]


def test_deterministic_labels_follow_gold_and_ties_are_half():
    gold = np.array([[1.0, 2.0, 2.0], [0.0, -1.0, 3.0]])
    c = label(oracle_ratings(gold, "deterministic", 0), [0, 1, 0], np.array([[0, 1], [0, 1], [1, 2]]),
              "extremes", key=0)
    assert c.p.tolist() == [0.0, 1.0, 0.5] and c.prompt.tolist() == [0, 1, 0]


def test_bernoulli_labels_are_bradley_terry():
    gold = np.tile([1.0, 0.0], (20000, 1))
    r = oracle_ratings(gold, "bernoulli", 5)
    assert np.mean(r[:, 0] > r[:, 1]) == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.01)
    assert np.array_equal(r, oracle_ratings(gold, "bernoulli", 5))  # common random numbers


def test_k_shown_responses_become_best_vs_worst():
    gold = np.array([[0.0, 3.0, 1.0, -2.0]])
    c = label(gold, [0], np.array([[0, 1, 2, 3]]), "extremes", key=0)
    assert (c.a[0], c.b[0], c.p[0]) == (1, 3, 1.0)


def test_all_pairs_labels_every_untied_pair():
    c = all_pairs(np.array([[0.0, 1.0, 1.0]]))
    assert c.size == 2 and c.p.tolist() == [0.0, 0.0]


def test_rules_share_the_first_batch_and_learn(task, head):
    acq = AcquireConfig()
    runs = {r: simulate(task, r, head, CFG, acq, seed=1, mode="deterministic")
            for r in ("random", "infomax")}
    first = [c.comparisons for c in runs.values()]
    assert all(np.array_equal(first[0].prompt[:8], f.prompt[:8]) for f in first)
    assert all(np.array_equal(first[0].a[:8], f.a[:8]) for f in first)
    assert not np.array_equal(first[0].prompt[8:], first[1].prompt[8:])
    for c in runs.values():
        assert c.labels.tolist() == [8, 16, 24] and len(c.accuracy) == 3
        assert len(set(c.comparisons.prompt.tolist())) == 24  # a prompt is labelled once
        assert np.all(c.comparisons.a != c.comparisons.b)
        g = task.gold[c.comparisons.prompt]
        want = (g[np.arange(24), c.comparisons.a] > g[np.arange(24), c.comparisons.b])
        assert np.array_equal(c.comparisons.p, want.astype(np.float32))
        assert c.accuracy[-1] > 0.85 and c.log_likelihood[-1] > np.log(0.5)
        assert c.regret[-1] < 0.5 * (task.test_gold.max(1) - task.test_gold.mean(1)).mean()
        assert c.shown == 48 and c.fit_s > 0
    again = simulate(task, "infomax", head, CFG, acq, seed=1, mode="deterministic")
    assert np.array_equal(again.accuracy, runs["infomax"].accuracy)


def test_seed_changes_the_first_batch(task, head):
    a = simulate(task, "random", head, CFG, AcquireConfig(), seed=1, mode="bernoulli")
    b = simulate(task, "random", head, CFG, AcquireConfig(), seed=2, mode="bernoulli")
    assert not np.array_equal(a.comparisons.prompt, b.comparisons.prompt)


def test_ceiling_beats_a_few_labels(task, head):
    e = ceiling(task, head, max_pairs=None)
    assert e.accuracy > 0.95


def test_initial_rule_must_be_model_free(task, head):
    cfg = dataclasses.replace(CFG, initial_rule="dts")
    with pytest.raises(ConfigError, match="initial rule"):
        simulate(task, "random", head, cfg, AcquireConfig(), seed=0, mode="deterministic")
