"""Tie-aware choice and the pair mask every belief rule honours, and the Rule Protocol."""

import inspect
import typing

import numpy as np
import pytest
from scipy import integrate, stats

from aeuf.acquire import RULES, SelectFn, make_rule, tie_probability
from aeuf.acquire.ties import tie_probability_of
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Belief

BELIEF_RULES = [n for n in RULES.names() if make_rule(AcquireConfig(rule=n)).needs_belief]


def belief_from_samples(samples, **extra):
    s = np.asarray(samples, np.float32)
    d = s[:, :, :, None] - s[:, :, None, :]
    return Belief(s.mean(0), s.std(0), s, d.var(0), **extra)


@pytest.mark.parametrize("m,v,step", [(0.0, 0.0, 1.0), (0.4, 0.0, 1.0), (0.3, 0.25, 1.0),
                                      (-1.2, 0.8, 0.5), (2.5, 1.5, 2.0), (0.0, 9.0, 1.0)])
def test_tie_probability_is_the_chance_two_rewards_round_to_one_rating(m, v, step):
    # simulate the definition: d ~ N(m, v), a rating grid of `step` at a uniform offset u;
    # r_j = 0 and r_i = d round to the same rating when floor((d+u)/s) == floor(u/s)
    rng = np.random.default_rng(0)
    n = 400_000
    d = m + np.sqrt(v) * rng.normal(size=n)
    u = rng.uniform(0, step, size=n)
    same = np.floor((d + u) / step) == np.floor(u / step)
    got = float(tie_probability_of(np.array(m), np.array(v), step))
    assert abs(got - same.mean()) < 4 * np.sqrt(0.25 / n) + 1e-12
    # and the closed form equals the integral of the triangle against the Gaussian
    if v > 0:
        tri = lambda x: max(0.0, 1 - abs(x) / step) * stats.norm.pdf(x, m, np.sqrt(v))  # noqa: E731
        assert got == pytest.approx(integrate.quad(tri, -step, step)[0], abs=1e-7)


def test_tie_probability_matrix_is_symmetric_and_one_on_the_diagonal():
    rng = np.random.default_rng(1)
    b = belief_from_samples(rng.normal(size=(8, 50, 6)))
    T = tie_probability(b.mean, b.pair_var, 0.7)
    np.testing.assert_allclose(T, T.transpose(0, 2, 1), atol=1e-6)
    np.testing.assert_allclose(np.diagonal(T, axis1=1, axis2=2), 1.0, atol=1e-6)
    i, j = 2, 4
    want = tie_probability_of(b.mean[:, i] - b.mean[:, j], b.pair_var[:, i, j], 0.7)
    np.testing.assert_allclose(T[:, i, j], want, rtol=1e-5)


def test_tie_aware_dts_does_not_pay_for_a_predicted_tie():
    # 0 and 1 are the two best and near-certainly one rating apart at most; 2 is 3 steps down
    hyp = np.array([[5.0, 5.1, 2.0, 0.0], [5.1, 5.0, 2.1, 0.0]])
    b = belief_from_samples(np.repeat(hyp[:, None, :], 200, axis=1))
    plain = make_rule(AcquireConfig(rule="dts")).select(b, None, key=0, k=2)
    assert (np.sort(plain.idx, 1) == [0, 1]).all()
    aware = make_rule(AcquireConfig(rule="dts", tie_margin=0.5, rating_step=1.0)).select(b, None, key=0, k=2)
    assert set(aware.idx[:, 0]) <= {0, 1} and (aware.idx[:, 1] == 2).all()
    assert (tie_probability_of(b.mean[:, 0] - b.mean[:, 1], b.pair_var[:, 0, 1], 1.0) > 0.5).all()
    # with a fine rating scale (step 0.01) 0 and 1 are no longer a predicted tie
    fine = make_rule(AcquireConfig(rule="dts", tie_margin=0.5, rating_step=0.01))
    np.testing.assert_array_equal(fine.select(b, None, key=0, k=2).idx, plain.idx)


@pytest.mark.parametrize("name", BELIEF_RULES)
def test_tie_aware_is_the_rule_with_the_tie_mask_and_a_discounted_score(name):
    rng = np.random.default_rng(2)
    b = belief_from_samples(rng.normal(size=(8, 60, 6)) * 0.6,
                            embed=rng.normal(size=(60, 6, 4)))
    T = tie_probability(b.mean, b.pair_var, 1.0)
    inner = make_rule(AcquireConfig(rule=name)).select(b, None, key=3, k=2, valid=T <= 0.4)
    aware = make_rule(AcquireConfig(rule=name, tie_margin=0.4, rating_step=1.0)).select(
        b, None, key=3, k=2)
    np.testing.assert_array_equal(aware.idx, inner.idx)
    rows = np.arange(60)
    p = T[rows, inner.idx[:, 0], inner.idx[:, 1]]
    np.testing.assert_allclose(aware.score, inner.score * (1 - p), rtol=1e-4, atol=1e-6)


def test_tie_aware_settings_are_checked_and_model_free_rules_are_left_alone():
    with pytest.raises(ConfigError, match="--tie_margin"):
        make_rule(AcquireConfig(rule="dts", tie_margin=1.5))
    with pytest.raises(ConfigError, match="--tie_margin"):
        make_rule(AcquireConfig(rule="dts", tie_margin=1.5, rating_step=1.0))
    with pytest.raises(ConfigError, match="--rating_step"):
        make_rule(AcquireConfig(rule="dts", tie_margin=0.5, rating_step=0.0))
    from aeuf.acquire import simple

    assert make_rule(AcquireConfig(rule="random", tie_margin=0.5)).select is simple._random_select


def beliefs(rng, K, P, R):
    return [
        belief_from_samples(rng.normal(size=(K, P, R)), embed=rng.normal(size=(P, R, 3))),
        belief_from_samples(np.zeros((K, P, R))),  # all ties
        belief_from_samples(np.round(rng.normal(size=(K, P, R)))),
        belief_from_samples(np.where(rng.random((K, P, R)) < 0.3, np.nan,
                                     rng.normal(size=(K, P, R)))),
    ]


@pytest.mark.parametrize("name", BELIEF_RULES)
@pytest.mark.parametrize("R,k", [(2, 2), (4, 2), (6, 3), (8, 2)])
def test_every_belief_rule_chooses_its_first_pair_among_the_allowed_ones(name, R, k):
    rng = np.random.default_rng(R * 7 + k)
    P, K = 40, 5
    rule = make_rule(AcquireConfig(rule=name))
    feats = rng.normal(size=(P, R, 4)).astype(np.float32)
    for seed in range(6):
        valid = rng.random((P, R, R)) < 0.3
        valid[:5] = False  # rows with no allowed pair: unconstrained
        valid = valid & valid.transpose(0, 2, 1) & ~np.eye(R, dtype=bool)
        for b in beliefs(rng, K, P, R):
            c = rule.select(b, feats, key=seed, k=k, valid=valid)
            i, j = c.idx[:, 0], c.idx[:, 1]
            has = valid.any(axis=(1, 2))
            assert valid[np.arange(P), i, j][has].all(), (name, c.idx[has])
            assert (np.diff(np.sort(c.idx, axis=1), axis=1) > 0).all()


@pytest.mark.parametrize("name", sorted(RULES.names()))
def test_every_rule_has_the_select_protocol_signature(name):
    rule = make_rule(AcquireConfig(rule=name, tie_margin=0.5, rating_step=1.0))
    want = inspect.signature(SelectFn.__call__).parameters
    got = inspect.signature(rule.select).parameters
    assert list(got) == [p for p in want if p != "self"]
    for p in ("key", "k", "valid"):
        assert got[p].kind is inspect.Parameter.KEYWORD_ONLY
    assert got["valid"].default is None
    assert isinstance(rule.num_shown(2, 5), int) and isinstance(rule.needs_belief, bool)


def test_protocol_annotations_resolve():
    import aeuf.acquire.base as base

    hints = typing.get_type_hints(SelectFn.__call__, vars(base))
    assert set(hints) == {"belief", "features", "key", "k", "valid", "return"}
    assert typing.get_type_hints(base.Rule)["select"] is SelectFn


def test_calibrated_step_matches_the_observed_tie_rate_and_grows_with_it():
    from aeuf.acquire import calibrated_step
    from aeuf.acquire.ties import tie_probability_of

    rng = np.random.default_rng(4)
    b = belief_from_samples(rng.normal(size=(16, 200, 5)) + 3 * rng.normal(size=(200, 5)))
    prompt = np.arange(200)
    a, c = np.zeros(200, int), np.ones(200, int)
    steps = []
    for share in (0.05, 0.2, 0.4):
        tied = np.arange(200) < int(share * 200)
        s = calibrated_step(b.mean, b.pair_var, prompt, a, c, tied)
        m, v = b.mean[prompt, a] - b.mean[prompt, c], b.pair_var[prompt, a, c]
        want = (tied.sum() + 0.5) / 201
        assert tie_probability_of(m, v, s).mean() == pytest.approx(want, rel=1e-4)
        steps.append(s)
    assert steps[0] < steps[1] < steps[2]
    # no tie yet: still a (small) positive step; no usable belief: NaN
    assert 0 < calibrated_step(b.mean, b.pair_var, prompt, a, c, np.zeros(200, bool)) < steps[0]
    nan = np.full_like(b.mean, np.nan)
    assert np.isnan(calibrated_step(nan, b.pair_var, prompt, a, c, np.zeros(200, bool)))


def test_a_run_with_the_step_read_off_the_labels_pays_for_fewer_ties():
    """Through the round engine: three of five responses per prompt are equally good (same
    features, same gold), so a rule after the best pays for ties; with --tie_margin and no
    --rating_step the engine calibrates the step on the ties it saw and avoids them."""
    import dataclasses

    from pools import synthetic_pool

    from aeuf.bench.metrics import held_out_pairs
    from aeuf.bench.simulate import BenchConfig, Task, run_config, simulate, split_prompts
    from aeuf.config import HeadConfig, LoopConfig

    rng = np.random.default_rng(0)
    n, r = 80, 5
    x = rng.normal(size=(n, r, 4)).astype(np.float32)
    x[:, 1] = x[:, 2] = x[:, 0] = x[:, 0] + np.array([3.0, 0, 0, 0], np.float32)
    gold = np.round(x[..., 0].astype(np.float64))
    pool, test = split_prompts(n, 0.25, 0)
    task = Task(synthetic_pool(gold).take(pool), x[pool], x[pool].mean(1), x[test],
                gold[test], held_out_pairs(gold[test]))
    bench = BenchConfig(seeds=1, head=HeadConfig(), regime="once",
                        loop=LoopConfig(batch_size=15, initial_rule="random"))

    def ties(**acq):
        b = dataclasses.replace(bench, acquire=AcquireConfig(**acq))
        c = simulate(task, run_config(b, "dts", "bll", 0, "deterministic"), curve=False)
        return sum(x.tie for x in c.labelled if x.round > 0)

    plain, aware = ties(), ties(tie_margin=0.5, rating_step=None)
    assert plain >= 10 and aware <= plain / 3
