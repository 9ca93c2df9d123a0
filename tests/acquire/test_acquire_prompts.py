"""BAL-PM prompt selection: kNN entropy spreads picks, the epistemic score wins when it differs,
and the greedy matches a direct implementation of the formula."""

import numpy as np
import pytest
from scipy.special import digamma

from aeuf.acquire import knn_graph, select_prompts
from aeuf.config import AcquireConfig


def reference(score, x, acquired, batch, k, beta):
    """Straight from docs/algorithms.md: recompute every distance and count at every step."""
    acquired = acquired.copy()
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    dk = np.sort(d, axis=1)[:, k - 1]
    picks = []
    for _ in range(batch):
        n = ((d <= dk[:, None]) & acquired[None, :]).sum(1)
        obj = score + beta * (np.log(2 * dk + 1e-4) - digamma(n + 1))
        y = int(np.argmax(np.where(acquired, -np.inf, obj)))
        picks.append(y)
        acquired[y] = True
    return picks


def two_clusters(rng, n=20, gap=10.0):
    a = rng.normal(size=(n, 3))
    return np.concatenate([a, a + gap]).astype(np.float32)  # B is a translated copy of A


def test_greedy_matches_the_formula_computed_directly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    score = rng.uniform(0, 0.05, size=120)
    acquired = rng.random(120) < 0.2
    cfg = AcquireConfig(knn_k=6, prompt_beta=0.05)
    got = select_prompts(score, x, acquired, 30, cfg)
    assert got.dtype == np.int32
    assert got.tolist() == reference(score, x.astype(np.float64), acquired, 30, 6, 0.05)



def argmax_greedy(score, g, acquired, batch, beta):
    """The greedy as an argmax over every prompt at every pick (lowest index on ties)."""
    k = g.neighbors.shape[1]
    psi, n = digamma(np.arange(1, k + 2)), acquired[g.neighbors].sum(axis=1)
    log_r = np.log(2.0 * g.radius + 1e-4)
    obj = np.where(acquired, -np.inf, score + beta * (log_r - psi[n]))
    picks = []
    for _ in range(min(batch, int((~acquired).sum()))):
        y = int(np.argmax(obj))
        picks.append(y)
        obj[y] = -np.inf
        xs = g.owners[g.starts[y]:g.starts[y + 1]]
        n[xs] += 1
        live = xs[np.isfinite(obj[xs])]
        obj[live] = score[live] + beta * (log_r[live] - psi[n[live]])
    return picks


@pytest.mark.parametrize("beta", [0.0, 0.01, 1.0])
def test_the_lazy_heap_picks_what_an_argmax_per_pick_picks_ties_included(beta):
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(size=(2000, 6)), 1).astype(np.float32)
    x[1000:1400] = x[:400]  # duplicated prompts: equal radii, so equal objectives
    score = np.round(rng.random(2000), 1)  # ten levels: many exact ties
    acquired = rng.random(2000) < 0.1
    g = knn_graph(x, 9)
    got = select_prompts(score, x, acquired, 700, AcquireConfig(knn_k=9, prompt_beta=beta),
                         graph=g)
    assert got.tolist() == argmax_greedy(score, g, acquired, 700, beta)

def pentagons(n_clusters=4, gap=100.0):
    """n_clusters regular pentagons far apart: with knn_k = 4 each point's neighbours are
    exactly the rest of its cluster, and every point has the same radius."""
    t = 2 * np.pi * np.arange(5) / 5
    ring = np.stack([np.cos(t), np.sin(t)], 1)
    return np.concatenate([ring + [gap * c, 0.0] for c in range(n_clusters)]).astype(np.float32)


def test_entropy_term_spreads_picks_across_clusters():
    x = pentagons()
    score = np.repeat([1.003, 1.002, 1.001, 1.0], 5)  # cluster 0 slightly preferred, then 1...
    none = np.zeros(20, bool)
    spread = select_prompts(score, x, none, 4, AcquireConfig(knn_k=4))
    assert sorted(p // 5 for p in spread) == [0, 1, 2, 3]
    on_score = select_prompts(score, x, none, 4, AcquireConfig(knn_k=4, prompt_beta=0.0))
    assert [p // 5 for p in on_score] == [0, 0, 0, 0]


def test_already_acquired_region_is_avoided():
    x = two_clusters(np.random.default_rng(2))
    acquired = np.zeros(40, bool)
    acquired[:8] = True  # part of cluster A is labelled already
    picks = select_prompts(np.ones(40), x, acquired, 4, AcquireConfig(knn_k=5))
    assert not acquired[picks].any()
    assert picks[0] >= 20  # first pick from the untouched cluster B


def test_epistemic_score_prefers_uncertain_prompts():
    rng = np.random.default_rng(3)
    x = two_clusters(rng)
    score = rng.uniform(0.0, 0.01, size=40)
    hot = rng.choice(40, size=5, replace=False)
    score[hot] += 1.0
    picks = select_prompts(score, x, np.zeros(40, bool), 5, AcquireConfig(knn_k=5))
    assert sorted(picks.tolist()) == sorted(hot.tolist())


def test_returns_distinct_unacquired_prompts_and_stops_when_none_are_left():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    acquired = np.zeros(30, bool)
    acquired[::3] = True
    picks = select_prompts(rng.random(30), x, acquired, 100, AcquireConfig(knn_k=4))
    assert len(picks) == 20 and len(set(picks.tolist())) == 20
    assert not acquired[picks].any()


def test_a_precomputed_graph_gives_the_same_picks_and_chunking_is_invisible():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    score, acq, cfg = rng.random(300) * 0.01, np.zeros(300, bool), AcquireConfig(knn_k=7)
    g = knn_graph(x, 7, chunk=64)
    one = select_prompts(score, x, acq, 50, cfg, graph=g)
    assert one.tolist() == select_prompts(score, x, acq, 50, cfg).tolist()
    full = knn_graph(x, 7, chunk=1000)
    np.testing.assert_allclose(g.radius, full.radius, rtol=1e-5)
    np.testing.assert_array_equal(np.sort(g.neighbors, 1), np.sort(full.neighbors, 1))


def test_single_prompt_pool_returns_it_and_knn_graph_refuses():
    from aeuf.errors import ConfigError

    picks = select_prompts(np.ones(1), np.ones((1, 3)), np.zeros(1, bool), 2, AcquireConfig())
    assert picks.tolist() == [0]
    with pytest.raises(ConfigError, match="at least two prompts"):
        knn_graph(np.ones((1, 3)), 13)
