"""deltaquantile, infogain, doptimal and doptimal_past against brute force: every pair of every
prompt enumerated in Python loops, the formula computed directly, the choice compared."""

import itertools

import numpy as np
import pytest

from aeuf.acquire import doptimal_batch, make_rule
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Belief


def belief_from_samples(samples, **extra):
    s = np.asarray(samples, np.float32)
    d = s[:, :, :, None] - s[:, :, None, :]
    return Belief(s.mean(0), s.std(0), s, d.var(0), **extra)


def random_belief(seed, P=150, R=6, K=8, **extra):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 2.0, size=(1, P, R))
    return belief_from_samples(rng.normal(size=(K, P, R)) * scale + rng.normal(size=(1, P, R)),
                               **extra)


def pick(name, belief, features=None, *, seed=0, k=2, valid=None, **cfg):
    rule = make_rule(AcquireConfig(rule=name, **cfg))
    return rule.select(belief, features, key=seed, k=k, valid=valid)


# ---- deltaquantile -------------------------------------------------------------------------


def ref_deltaquantile(mean, std, beta, q, eps):
    """ActiveUltraFeedback's DeltaQuantile for one prompt, pair by pair."""
    R = len(mean)
    ucb, lcb = mean + beta * std, mean - beta * std
    pairs = [(i, j) for i in range(R) for j in range(R) if i != j]  # flat-index order
    gaps = [ucb[i] - lcb[j] for i, j in pairs]
    order = sorted(range(len(pairs)), key=lambda t: -gaps[t])  # stable: ties by flat index
    n = len(pairs)
    start = min(int(n * max(0.0, q - eps)), n - 1)
    end = int(n * min(1.0, q + eps))
    end = min(max(end, start + 1), n)
    window = [pairs[t] for t in order[start:end]]
    return max(window, key=lambda ij: ucb[ij[0]])


@pytest.mark.parametrize("q,eps", [(0.05, 0.0), (0.0, 0.0), (0.3, 0.1), (0.5, 0.5), (1.0, 0.0)])
@pytest.mark.parametrize("R", [3, 6, 8])
def test_deltaquantile_matches_brute_force(q, eps, R):
    b = random_belief(R, R=R)
    got = pick("deltaquantile", b, quantile=q, quantile_epsilon=eps, beta=0.7).idx
    for p in range(b.mean.shape[0]):
        want = ref_deltaquantile(b.mean[p].astype(float), b.std[p].astype(float), 0.7, q, eps)
        assert tuple(got[p]) == want, p


def test_deltaquantile_at_zero_is_deltaucb_and_window_is_checked():
    b = random_belief(1)
    np.testing.assert_array_equal(pick("deltaquantile", b, quantile=0.0).idx,
                                  pick("deltaucb", b).idx)
    assert (pick("deltaquantile", b).idx != pick("deltaucb", b).idx).any()
    for q, eps in [(0.05, 0.1), (0.95, 0.1), (1.5, 0.0), (0.5, -0.1)]:
        with pytest.raises(ConfigError, match="quantile"):
            make_rule(AcquireConfig(rule="deltaquantile", quantile=q, quantile_epsilon=eps))


# ---- infogain ------------------------------------------------------------------------------


def test_infogain_first_arm_is_a_draws_argmax_and_second_the_max_pair_variance():
    b = random_belief(2, P=300, R=7)
    for seed in range(3):
        idx = pick("infogain", b, seed=seed).idx
        for p in range(300):
            first, second = idx[p]
            argmaxes = {int(np.argmax(b.samples[m, p])) for m in range(b.samples.shape[0])}
            assert first in argmaxes
            others = [j for j in range(7) if j != first]
            assert second == max(others, key=lambda j: b.pair_var[p, first, j])


def test_infogain_first_arm_follows_the_share_of_draws_it_wins():
    hyp = np.array([[3.0, 1, 2, 0], [3.0, 2, 1, 0], [3.0, 0, 1, 2], [0.0, 1, 3, 2]])
    b = belief_from_samples(np.repeat(hyp[:, None, :], 4000, axis=1))
    first = pick("infogain", b).idx[:, 0]
    assert 0.72 < (first == 0).mean() < 0.78 and set(np.unique(first)) == {0, 2}


# ---- doptimal ------------------------------------------------------------------------------


def gain(z, A):
    return float(z @ np.linalg.inv(A) @ z)


def ref_best_pair(E, A):
    R = E.shape[0]
    return max(itertools.combinations(range(R), 2), key=lambda ij: gain(E[ij[0]] - E[ij[1]], A))


def test_doptimal_takes_the_pair_farthest_apart_in_the_heads_embedding():
    rng = np.random.default_rng(3)
    P, R, H = 80, 6, 5
    embed = rng.normal(size=(P, R, H)).astype(np.float32)
    feats = rng.normal(size=(P, R, 9)).astype(np.float32)  # must be ignored: embed is given
    b = random_belief(3, P=P, R=R, embed=embed)
    c = pick("doptimal", b, feats, doptimal_lambda=2.0)
    for p in range(P):
        i, j = ref_best_pair(embed[p].astype(float), 2.0 * np.eye(H))
        assert sorted(c.idx[p]) == [i, j]
        assert c.score[p] == pytest.approx(np.sqrt(gain(embed[p, i] - embed[p, j], 2 * np.eye(H))),
                                           rel=1e-4)
    # without an embedding the response features are the design
    c = pick("doptimal", b._replace(embed=None), feats)
    for p in range(P):
        assert sorted(c.idx[p]) == list(ref_best_pair(feats[p].astype(float), np.eye(9)))


def ref_greedy(E, A0, T):
    """ARM-FI's past-aware greedy, recomputed from scratch: A^-1 by inversion at every step."""
    P = E.shape[0]
    A, order = A0.copy(), []
    for _ in range(T):
        cands = [(gain(E[p, i] - E[p, j], A), p, (i, j)) for p in range(P) if p not in
                 {o[0] for o in order} for i, j in itertools.combinations(range(E.shape[1]), 2)]
        g, p, (i, j) = max(cands)
        order.append((p, (i, j), g))
        z = E[p, i] - E[p, j]
        A = A + np.outer(z, z)
    return order, A


def spd(rng, H):
    M = rng.normal(size=(H, H))
    return M @ M.T / H + 0.5 * np.eye(H)


@pytest.mark.parametrize("T", [1, 17, 70])
def test_doptimal_past_is_the_greedy_design_with_the_heads_precision(T):
    rng = np.random.default_rng(T)
    P, R, H = 70, 5, 6  # P > the lazy greedy's block, so the heap is exercised
    embed = rng.normal(size=(P, R, H)).astype(np.float32)
    A0 = spd(rng, H)
    b = random_belief(4, P=P, R=R, embed=embed, precision=A0.astype(np.float32))
    order, A_end = ref_greedy(embed.astype(float), A0, T)
    c = pick("doptimal_past", b, doptimal_greedy=T)
    picked = [p for p, _, _ in order]
    for p, ij, g in order:
        assert sorted(c.idx[p]) == list(ij)
        assert c.score[p] == pytest.approx(np.sqrt(g), rel=1e-4)
    for p in set(range(P)) - set(picked):  # the rest: best pair under the final A
        ij = ref_best_pair(embed[p].astype(float), A_end)
        assert sorted(c.idx[p]) == list(ij)
        assert c.score[p] == pytest.approx(np.sqrt(gain(embed[p, ij[0]] - embed[p, ij[1]],
                                                        A_end)), rel=1e-4)
    # the B highest scores are the greedy's first B picks, for every B <= T
    assert np.argsort(-c.score, kind="stable")[:T].tolist() == picked
    d = doptimal_batch(embed, np.linalg.inv(A0), T, key=0)
    assert d.prompts.tolist() == picked
    assert np.all(np.diff(d.gain) <= 1e-9)
    np.testing.assert_allclose(d.ainv, np.linalg.inv(A_end), rtol=1e-6, atol=1e-9)


def test_doptimal_past_without_greedy_or_precision_is_doptimal():
    b = random_belief(5, P=40, R=5, embed=np.random.default_rng(5).normal(size=(40, 5, 4)))
    np.testing.assert_array_equal(
        np.sort(pick("doptimal_past", b, doptimal_greedy=0).idx, 1),
        np.sort(pick("doptimal", b).idx, 1))


def test_doptimal_refuses_a_precision_of_the_wrong_size_and_a_bad_lambda():
    b = random_belief(6, P=10, R=4, embed=np.ones((10, 4, 3)), precision=np.eye(5))
    with pytest.raises(ConfigError, match="precision"):
        pick("doptimal_past", b)
    with pytest.raises(ConfigError, match="doptimal_lambda"):
        make_rule(AcquireConfig(rule="doptimal", doptimal_lambda=0.0))
