"""aepo: representative-and-diverse choice on constructed geometries; the 1-swap search."""

import itertools

import jax
import numpy as np
import pytest

from aeuf.acquire import make_rule
from aeuf.acquire.aepo import cosine_sim, greedy, local_search, objective, swap_gains
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError

E = np.eye(6, dtype=np.float32)
A, B = E[0], E[1]
# two clusters, each a centre (index 0 / 3) with two satellites off to the side
CLUSTERS = [A, A + 0.3 * E[2], A - 0.3 * E[2], B, B + 0.3 * E[3], B - 0.3 * E[3]]


def brute_force(sim, k, lam):
    """The best k-subset of one prompt by enumeration."""
    subsets = np.array(list(itertools.combinations(range(sim.shape[1]), k)))
    vals = objective(np.repeat(sim, len(subsets), 0), subsets, lam)
    return set(subsets[np.argmax(vals)].tolist()), vals.max()


def aepo(features, k=2, lam=1.0, seed=0):
    rule = make_rule(AcquireConfig(rule="aepo", aepo_lambda=lam))
    return rule.select(None, features, key=jax.random.PRNGKey(seed), k=k)


def test_objective_matches_its_definition():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(1, 5, 3)).astype(np.float32)
    fn = f[0] / np.linalg.norm(f[0], axis=1, keepdims=True)
    s = fn @ fn.T
    rep = (s.sum(1) - 1.0) / 4
    Y = [0, 2, 3]
    want = rep[Y].sum() - 0.7 / 2 * sum(s[i, j] for i in Y for j in Y if i != j)
    assert objective(cosine_sim(f), np.array([Y]), 0.7)[0] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("lam", [0.5, 1.0, 2.0])
def test_picks_both_cluster_centres_not_an_unrepresentative_outlier(lam):
    # an orthogonal outlier (E[4]) is as dissimilar to everything as the other cluster, but
    # represents nothing: the right pair is one centre from each cluster
    f = np.stack(CLUSTERS + [E[4]])[None]
    c = aepo(f, lam=lam)
    assert set(c.idx[0].tolist()) == {0, 3}
    assert c.score[0] == pytest.approx(objective(cosine_sim(f), np.array([[0, 3]]), lam)[0])


def test_one_swap_repairs_the_greedy_start():
    # a midpoint between the clusters is the most representative response, so greedy takes it
    # first; the best pair is still the two centres, which the 1-swap search reaches
    f = np.stack(CLUSTERS + [(A + B) / np.sqrt(2)])[None]
    sim = cosine_sim(f)
    start = greedy(sim, 2, 1.0, np.random.default_rng(0))
    assert 6 in start[0]
    best, best_val = brute_force(sim, 2, 1.0)
    assert best == {0, 3}
    assert set(aepo(f).idx[0].tolist()) == best
    bad = np.array([[1, 2]])  # both satellites of one cluster
    fixed = local_search(sim, bad, 1.0)
    assert set(fixed[0].tolist()) == best
    assert objective(sim, fixed, 1.0)[0] == pytest.approx(best_val)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_result_is_a_one_swap_local_optimum_at_least_as_good_as_greedy(k):
    rng = np.random.default_rng(k)
    f = rng.normal(size=(40, 8, 6)).astype(np.float32) + 0.5
    sim = cosine_sim(f)
    start = greedy(sim, k, 1.0, np.random.default_rng(0))
    got = local_search(sim, start, 1.0)
    assert (objective(sim, got, 1.0) >= objective(sim, start, 1.0) - 1e-12).all()
    for p in range(40):  # no single swap improves, checked by recomputing f from scratch
        base = objective(sim[p : p + 1], got[p : p + 1], 1.0)[0]
        for s, c in itertools.product(range(k), set(range(8)) - set(got[p].tolist())):
            swapped = got[p].copy()
            swapped[s] = c
            assert objective(sim[p : p + 1], swapped[None], 1.0)[0] <= base + 1e-9


def test_swap_gains_equal_recomputed_objective_differences():
    rng = np.random.default_rng(5)
    sim = cosine_sim(rng.normal(size=(3, 7, 4)).astype(np.float32))
    idx = np.array([[0, 1, 2], [6, 3, 1], [2, 5, 4]])
    g = swap_gains(sim, idx, 0.8)
    for p, s, c in itertools.product(range(3), range(3), range(7)):
        if c in idx[p]:
            assert g[p, s, c] == -np.inf
            continue
        new = idx[p].copy()
        new[s] = c
        want = objective(sim[p : p + 1], new[None], 0.8) - objective(
            sim[p : p + 1], idx[p : p + 1], 0.8
        )
        assert g[p, s, c] == pytest.approx(want[0], abs=1e-9)


def test_lambda_trades_representativeness_for_diversity():
    # a tight trio plus a far point: with lam = 0 the two most central responses win, with a
    # large lam the far point is shown against the trio
    f = np.array([[[1, 0.05], [1, 0], [1, -0.05], [0.2, 1]]], np.float32)
    assert 3 not in aepo(f, lam=0.0).idx[0]
    assert 3 in aepo(f, lam=5.0).idx[0]


def test_aepo_needs_features():
    with pytest.raises(ConfigError, match="needs response features"):
        make_rule(AcquireConfig(rule="aepo")).select(None, None, key=jax.random.PRNGKey(0), k=2)
