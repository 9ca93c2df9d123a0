"""--knn_index cells: BAL-PM's entropy term read off cells around a seeded sample of prompts
(aeuf.acquire.cells): the same greedy as an argmax of its objective at every pick, picks that
spread over the pool, and the main path's switch above knn_exact_max."""

import numpy as np
import pytest
from scipy.special import digamma

from aeuf.acquire import knn_graph, select_prompts
from aeuf.acquire.cells import CellGraph, cell_graph, pick_in_cells
from aeuf.config import AcquireConfig


def centres_of(x, m):
    return x[np.sort(np.random.default_rng(4321).choice(len(x), m, replace=False))]


def argmax_reference(score, acquired, batch, beta, g, centres):
    """Recompute every prompt's objective from scratch at every pick, each cell's
    neighbourhood (itself and its k nearest other centres) found by brute force."""
    acquired, m = acquired.copy(), g.radius.size
    d = ((centres[:, None, :] - centres[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    hood = np.concatenate([np.arange(m)[:, None], np.argsort(d, axis=1)[:, :g.k]], axis=1)
    picks = []
    for _ in range(min(batch, int((~acquired).sum()))):
        inside = np.bincount(g.cell[acquired], minlength=m)
        hood_acq = inside[hood].sum(axis=1)
        size = np.bincount(g.cell, minlength=m)[hood].sum(axis=1)
        n = g.k * hood_acq / np.maximum(size, 1.0)
        h = np.log(2.0 * g.radius + 1e-4) - digamma(n + 1.0)
        obj = np.where(acquired, -np.inf, score + beta * h[g.cell])
        y = int(np.argmax(obj))
        picks.append(y)
        acquired[y] = True
    return picks


@pytest.mark.parametrize("beta", [0.0, 0.05, 2.0])
def test_the_cell_greedy_is_the_argmax_of_its_objective_ties_included(beta):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4)).astype(np.float32)
    g = cell_graph(x, 5, sample=40)
    assert g.cell.shape == (600,) and g.radius.shape == (40,) and g.k == 5
    score = np.round(rng.random(600), 1)  # ten levels: many exact ties
    acquired = rng.random(600) < 0.15
    got = pick_in_cells(score, acquired, 250, beta, g)
    assert got.dtype == np.int32 and not acquired[got].any()
    assert got.tolist() == argmax_reference(score, acquired, 250, beta, g,
                                            centres_of(x, 40))


def test_every_prompt_joins_its_nearest_centre():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    g = cell_graph(x, 4, sample=30)
    centres = centres_of(x, 30)
    d = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    assert np.array_equal(g.cell, d.argmin(axis=1))
    dc = ((centres[:, None, :] - centres[None]) ** 2).sum(-1)
    np.fill_diagonal(dc, np.inf)
    near = np.argsort(dc, axis=1)[:, :4]  # each centre's 4 nearest other centres
    counts = np.bincount(g.cell, minlength=30)
    assert np.array_equal(g.size, counts + counts[near].sum(axis=1))
    np.testing.assert_allclose(g.radius, np.sqrt(np.sort(dc, axis=1)[:, 3]), rtol=1e-5)


def test_the_entropy_term_spreads_the_picks_over_clusters():
    rng = np.random.default_rng(2)
    blobs = [rng.normal(size=(n, 3)) * 0.1 + 10.0 * c for c, n in enumerate([400, 100, 100])]
    x = np.concatenate(blobs).astype(np.float32)
    score = np.zeros(600)
    score[:400] = 0.001  # the big cluster scores slightly higher
    g = cell_graph(x, 5, sample=60)
    spread = pick_in_cells(score, np.zeros(600, bool), 60, 1.0, g)
    per_cluster = np.bincount(np.searchsorted([400, 500], spread, side="right"), minlength=3)
    assert per_cluster.min() >= 10  # every cluster gets picks
    on_score = pick_in_cells(score, np.zeros(600, bool), 60, 0.0, g)
    assert (on_score < 400).all()  # without the entropy term: the score alone


def test_the_main_path_uses_cells_above_the_exact_limit_only():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    cfg = AcquireConfig(knn_k=5, knn_exact_max=100, knn_index="cells")
    g = knn_graph(x, 5, exact_max=100, index="cells")
    assert isinstance(g, CellGraph)
    score = rng.random(400)
    acquired = np.zeros(400, bool)
    acquired[::7] = True
    picks = select_prompts(score, x, acquired, 500, cfg)
    assert sorted(picks.tolist()) == np.flatnonzero(~acquired).tolist()  # all that are free
    assert select_prompts(score, x, acquired, 30, cfg).tolist() == \
        pick_in_cells(score, acquired, 30, cfg.prompt_beta, g).tolist()
    assert not isinstance(knn_graph(x, 5, exact_max=1000, index="cells"), CellGraph)


def test_a_nan_objective_still_ends_the_greedy():
    """The config refuses a NaN beta; called directly, both greedies still stop (a stale-check
    written as `!=` re-pushed a NaN entry forever)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    g = cell_graph(x, 4, sample=30)
    assert len(pick_in_cells(rng.random(300), np.zeros(300, bool), 20, float("nan"), g)) == 20
    from aeuf.acquire.prompts import _lazy_greedy

    assert len(_lazy_greedy(rng.random(300), knn_graph(x, 4), np.zeros(300, bool), 20,
                            float("nan"))) == 20
