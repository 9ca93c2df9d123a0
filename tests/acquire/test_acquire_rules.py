"""Acquisition rules: the contract, properties over many keys and shapes, and each rule on
hand-built beliefs where the right pair is known."""

import jax
import numpy as np
import pytest

from aeuf.acquire import RULES, make_rule
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Belief

MODEL_FREE = {"random", "ultrafeedback", "west_of_n", "aepo"}
BELIEF_RULES = ["dts", "drts", "infogain", "deltaucb", "deltaquantile", "maxminlcb", "infomax",
                "infomax_bald", "doptimal", "doptimal_past", "rm_mix", "dpo_value"]


def belief_from_samples(samples):
    """Belief with mean/std/pair_var computed from joint samples [K, P, R]."""
    s = np.asarray(samples, np.float32)
    d = s[:, :, :, None] - s[:, :, None, :]
    return Belief(s.mean(0), s.std(0), s, d.var(0))


def belief_from_marginals(mean, std, K=8):
    """Belief for P=1 with independent responses: pair_var = std_i^2 + std_j^2."""
    mean, std = np.asarray([mean], np.float32), np.asarray([std], np.float32)
    pv = std[:, :, None] ** 2 + std[:, None, :] ** 2
    pv[:, np.arange(mean.shape[1]), np.arange(mean.shape[1])] = 0.0
    samples = np.broadcast_to(mean, (K, *mean.shape)).copy()
    return Belief(mean, std, samples, pv)


def pick(name, belief, features=None, *, seed=0, k=2, **cfg):
    rule = make_rule(AcquireConfig(rule=name, **cfg))
    return rule.select(belief, features, key=jax.random.PRNGKey(seed), k=k)


def test_registry_has_every_rule_and_flags_model_free_ones():
    expected = MODEL_FREE | set(BELIEF_RULES)
    assert set(RULES.names()) == expected
    for name in expected:
        assert make_rule(AcquireConfig(rule=name)).needs_belief == (name not in MODEL_FREE)


def test_unknown_rule_is_a_config_error_listing_the_names():
    with pytest.raises(ConfigError, match="unknown acquisition rule 'ucb'.*deltaucb.*infomax"):
        make_rule(AcquireConfig(rule="ucb"))


@pytest.mark.parametrize("name", BELIEF_RULES)
def test_belief_rules_refuse_to_run_without_a_belief(name):
    with pytest.raises(ConfigError, match="needs a fitted head"):
        pick(name, None, np.ones((3, 4, 5), np.float32))


def test_k_outside_two_to_r_is_a_config_error():
    b = belief_from_samples(np.random.default_rng(0).normal(size=(4, 3, 3)))
    with pytest.raises(ConfigError, match="num_annotations 4"):
        pick("infomax", b, k=4)


@pytest.mark.parametrize("name", sorted(RULES.names()))
@pytest.mark.parametrize("R,k", [(2, 2), (3, 2), (5, 3), (8, 2), (8, 4)])
def test_rows_are_distinct_in_range_and_sized_by_num_shown(name, R, k):
    rng = np.random.default_rng(R * 10 + k)
    P, K = 6, 5
    rule = make_rule(AcquireConfig(rule=name))
    beliefs = [
        belief_from_samples(rng.normal(size=(K, P, R))),
        belief_from_samples(np.zeros((K, P, R))),  # all ties: no i = j even then
        belief_from_samples(np.round(rng.normal(size=(K, P, R)))),  # many ties
        belief_from_samples(  # a broken head: NaN rewards here and there
            np.where(rng.random((K, P, R)) < 0.3, np.nan, rng.normal(size=(K, P, R)))
        ),
    ]
    feats = rng.normal(size=(P, R, 4)).astype(np.float32)
    for seed in range(15):
        for b in beliefs:
            c = rule.select(b, feats, key=jax.random.PRNGKey(seed), k=k)
            assert c.idx.dtype == np.int32 and c.score.dtype == np.float32
            assert c.idx.shape == (P, rule.num_shown(k, R)) and c.score.shape == (P,)
            assert ((c.idx >= 0) & (c.idx < R)).all()
            assert (np.diff(np.sort(c.idx, axis=1), axis=1) > 0).all(), c.idx


@pytest.mark.parametrize("name", sorted(RULES.names()))
def test_same_key_same_choice_and_typed_keys_work(name):
    rng = np.random.default_rng(1)
    b = belief_from_samples(rng.normal(size=(8, 40, 6)))
    f = rng.normal(size=(40, 6, 5)).astype(np.float32)
    rule = make_rule(AcquireConfig(rule=name))
    one = rule.select(b, f, key=jax.random.PRNGKey(3), k=2)
    two = rule.select(b, f, key=jax.random.PRNGKey(3), k=2)
    typed = rule.select(b, f, key=jax.random.key(3), k=2)
    np.testing.assert_array_equal(one.idx, two.idx)
    np.testing.assert_array_equal(one.score, two.score)
    np.testing.assert_array_equal(one.idx, typed.idx)


@pytest.mark.parametrize("name", ["random", "ultrafeedback", "dts", "drts"])
def test_random_rules_change_with_the_key(name):
    b = belief_from_samples(np.random.default_rng(2).normal(size=(8, 50, 6)))
    a = pick(name, b, seed=0).idx
    c = pick(name, b, seed=1).idx
    assert (a != c).any()


def test_random_is_uniform_over_pairs():
    b = belief_from_samples(np.zeros((2, 6000, 4)))
    idx = np.sort(pick("random", b).idx, axis=1)
    counts = np.bincount(idx[:, 0] * 4 + idx[:, 1], minlength=16)[[1, 2, 3, 6, 7, 11]]
    assert counts.min() > 850 and counts.max() < 1150  # 1000 expected per unordered pair


def test_ultrafeedback_shows_four_and_west_of_n_shows_all():
    b = belief_from_samples(np.zeros((2, 5, 7)))
    uf, won = (
        make_rule(AcquireConfig(rule="ultrafeedback")),
        make_rule(AcquireConfig(rule="west_of_n")),
    )
    assert (uf.num_shown(2, 7), uf.num_shown(2, 3), won.num_shown(2, 7)) == (4, 3, 7)
    assert (uf.pairing, won.pairing) == ("best_vs_random", "extremes")
    np.testing.assert_array_equal(pick("west_of_n", b).idx, np.tile(np.arange(7), (5, 1)))


def test_dts_uses_joint_samples_not_independent_draws():
    # Two joint hypotheses: A says 0 is best, B says 1 is best; 2 is second under both.
    # Independent per-response draws make 2 the argmax whenever r0 and r1 both come from the
    # hypothesis that ranks them low (1 in 4); joint draws never do.
    hyp = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    P = 200
    samples = np.repeat(hyp[:, None, :], P, axis=1)
    b = belief_from_samples(samples)
    rng = np.random.default_rng(0)
    member = rng.integers(2, size=(P, 3))  # a wrong, per-response independent draw
    independent = samples[member, np.arange(P)[:, None], np.arange(3)]
    assert (independent.argmax(1) == 2).mean() > 0.15
    for seed in range(5):
        idx = pick("dts", b, seed=seed).idx
        assert (np.sort(idx, axis=1) == [0, 1]).all()


def test_dts_falls_back_to_best_other_when_every_draw_agrees():
    samples = np.broadcast_to(np.array([0.0, 3.0, 1.0, 2.0]), (6, 10, 4))
    idx = pick("dts", belief_from_samples(samples)).idx
    assert (idx == [1, 3]).all()


def test_dts_k3_takes_three_distinct_argmaxes():
    samples = np.repeat(
        np.array([[5.0, 0, 0, 0, 1], [0, 5, 0, 0, 1], [0, 0, 5, 0, 1]])[:, None], 30, 1
    )
    idx = pick("dts", belief_from_samples(samples), k=3).idx
    assert (np.sort(idx, axis=1) == [0, 1, 2]).all()


def test_drts_takes_max_of_one_draw_and_min_of_another():
    samples = np.broadcast_to(np.array([0.0, 3.0, 1.0, 2.0]), (6, 10, 4))
    assert (pick("drts", belief_from_samples(samples)).idx == [1, 0]).all()


def test_infomax_uses_pair_variance_not_marginal_stds():
    z, w = np.array([1.0, -1, 1, -1]), np.array([1.0, 1, -1, -1])
    # r0 = z, r1 = -z, r2 = w, r3 = z/2: stds 1,1,1,0.5 but Var[r0 - r1] = 4 is the unique max
    samples = np.stack([z, -z, w, 0.5 * z], axis=1)[:, None, :]
    b = belief_from_samples(samples)
    for seed in range(10):
        assert sorted(pick("infomax", b, seed=seed).idx[0]) == [0, 1]
    # k = 3 adds the response with the largest summed sigma to 0 and 1: r2 (2*sqrt2 > 2)
    assert sorted(pick("infomax", b, k=3).idx[0]) == [0, 1, 2]
    assert pick("infomax", b).score[0] == pytest.approx(2.0)


def test_infomax_bald_prefers_disagreement_over_variance():
    # Members disagree on the winner of (0, 1); (1, 4) has the largest Var[r_i - r_j] but
    # both members put P(1 beats 4) near 0 or 0.5, i.e. they mostly agree on its outcome.
    samples = np.array([[5.0, 0, 0, 0, 15, 0], [0, 5, 0, 0, 5, 0]])[:, None, :]
    b = belief_from_samples(samples)
    assert sorted(pick("infomax", b).idx[0]) == [1, 4]
    bald = pick("infomax_bald", b)
    assert sorted(bald.idx[0]) == [0, 1]
    p = 1 / (1 + np.exp(-np.array([5.0, -5.0])))
    h = lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q))  # noqa: E731
    assert bald.score[0] == pytest.approx(h(p.mean()) - h(p).mean(), rel=1e-4)


def test_deltaucb_picks_optimistic_winner_against_pessimistic_loser():
    # UCB = [1.1, .9, 2, -.4], LCB = [.9, .7, -2, -.6]: UCB_0 - LCB_2 = 3.1 is the max
    b = belief_from_marginals([1.0, 0.8, 0.0, -0.5], [0.1, 0.1, 2.0, 0.1])
    assert pick("deltaucb", b).idx[0].tolist() == [0, 2]
    # with beta = 0 it is the best-mean vs worst-mean pair
    assert pick("deltaucb", b, beta=0.0).idx[0].tolist() == [0, 3]


def test_maxminlcb_picks_leader_and_its_most_dangerous_challenger():
    b = belief_from_marginals([1.0, 0.9, 0.0, -1.0], [0.1, 0.1, 0.1, 0.1])
    assert pick("maxminlcb", b).idx[0].tolist() == [0, 1]  # close competitor, not the worst
    # an uncertain mediocre response is the more dangerous challenger: LCB(0,2) = -0.6
    b = belief_from_marginals([1.0, 0.9, 0.0, -1.0], [0.1, 0.1, 1.5, 0.1])
    assert pick("maxminlcb", b).idx[0].tolist() == [0, 2]
    assert pick("maxminlcb", b, k=3).idx[0].tolist() == [0, 2, 1]


def test_scores_rank_prompts_by_epistemic_uncertainty():
    rng = np.random.default_rng(0)
    scale = np.array([0.1, 1.0, 3.0])
    b = belief_from_samples(rng.normal(size=(16, 3, 5)) * scale[None, :, None])
    for name in ["dts", "drts", "deltaucb", "maxminlcb", "infomax", "infomax_bald"]:
        s = pick(name, b).score
        assert s[0] < s[1] < s[2], name


@pytest.mark.parametrize("n", [3, 8, 40])  # both the short-row and the long-row path
def test_argmax_random_hits_a_maximum_breaks_ties_uniformly_and_respects_valid(n):
    from aeuf.acquire.base import argmax_random

    rng = np.random.default_rng(n)
    x = np.round(rng.normal(size=(500, n)))
    got = argmax_random(x, np.random.default_rng(0))
    assert (x[np.arange(500), got] == x.max(1)).all()
    ties = np.zeros((3000, n))
    ties[:, [0, n - 1]] = 1.0
    counts = np.bincount(argmax_random(ties, np.random.default_rng(1)), minlength=n)
    assert counts[0] + counts[n - 1] == 3000 and 1300 < counts[0] < 1700
    valid = np.ones((500, n), bool)
    valid[:, 0] = False
    x[:, 0] = 99.0
    x[::2] = np.nan  # a row of NaN still yields a valid index
    got = argmax_random(x, np.random.default_rng(2), valid)
    assert (got != 0).all()


def test_thompson_first_slot_follows_the_posterior_probability_of_being_best():
    # 3 of 4 joint samples rank response 0 first, one ranks response 2 first
    hyp = np.array([[3.0, 1, 2, 0], [3.0, 2, 1, 0], [3.0, 0, 1, 2], [0.0, 1, 3, 2]])
    b = belief_from_samples(np.repeat(hyp[:, None, :], 4000, axis=1))
    idx = pick("dts", b).idx
    assert 0.72 < (idx[:, 0] == 0).mean() < 0.78
    # the second slot is a fresh draw's argmax unless it collides: only 0 or 2 can appear
    assert set(np.unique(idx[:, 1])) == {0, 2}
    # drts: argmin of a draw is 3, 3, 1, 0; a draw of 0 collides when the argmax was 0 (3/4)
    # and is redrawn, so P(3) = 3/4 * 2/3 + 1/4 * 1/2 = 0.625
    worst = pick("drts", b).idx[:, 1]
    assert 0.595 < (worst == 3).mean() < 0.655


def test_maxminlcb_matches_the_pairwise_formula_on_random_beliefs():
    from aeuf.acquire.uncertainty import pairwise_lcb

    rng = np.random.default_rng(7)
    b = belief_from_samples(rng.normal(size=(8, 300, 6)) * rng.uniform(0.1, 2, size=(1, 300, 6)))
    L = pairwise_lcb(b.mean, b.std, 1.0)
    L[:, np.arange(6), np.arange(6)] = np.inf
    leader = L.min(axis=2).argmax(axis=1)
    challenger = L[np.arange(300), leader].argmin(axis=1)
    np.testing.assert_array_equal(pick("maxminlcb", b).idx, np.stack([leader, challenger], 1))


def test_bald_matrix_matches_the_entropy_formula_in_float64():
    from aeuf.acquire.uncertainty import bald_matrix

    s = np.random.default_rng(8).normal(size=(12, 50, 5)) * 4
    p = 1 / (1 + np.exp(-(s[:, :, :, None] - s[:, :, None, :])))
    p = np.clip(p, 1e-12, 1 - 1e-12)
    h = lambda q: -(q * np.log(q) + (1 - q) * np.log(1 - q))  # noqa: E731
    want = h(p.mean(0)) - h(p).mean(0)
    np.testing.assert_allclose(bald_matrix(s, chunk=16), want, atol=2e-5)


def test_a_belief_without_pair_var_gets_it_from_the_joint_samples():
    s = np.random.default_rng(9).normal(size=(8, 20, 5))
    full = belief_from_samples(s)
    for name in ["infomax", "dts", "maxminlcb"]:
        a = pick(name, full)
        b = pick(name, full._replace(pair_var=None))
        np.testing.assert_array_equal(a.idx, b.idx)
        np.testing.assert_allclose(a.score, b.score, rtol=1e-5)
