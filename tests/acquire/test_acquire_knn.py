"""BAL-PM's kNN graph: exact below AcquireConfig.knn_exact_max (in memory-bounded chunks), an
approximate faiss index above it, measured against the exact graph."""

import tracemalloc

import numpy as np

import aeuf.acquire.prompts as prompts
import aeuf.backends.ann as ann
from aeuf.acquire import knn_graph, select_prompts
from aeuf.backends.ann import approx_knn
from aeuf.config import AcquireConfig


def clustered(P, D=32, seed=0):
    """Unit vectors around 60 centres in an 8-dim subspace, a little noise everywhere."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(D, 8)))[0]
    z = rng.normal(size=(60, 8))[rng.integers(60, size=P)] + 0.5 * rng.normal(size=(P, 8))
    x = z @ basis.T + 0.05 * rng.normal(size=(P, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall(a, b):
    return np.mean([len(set(r) & set(s)) for r, s in zip(a, b)]) / a.shape[1]


def exact_rows(x, k, rows):
    """The exact k nearest other points of x[rows], by brute force."""
    d = (x * x).sum(axis=1)[None, :] - 2.0 * (x[rows] @ x.T)
    d[np.arange(rows.size), rows] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_above_the_threshold_the_graph_is_approximate_close_and_reproducible():
    x = clustered(4000)
    exact = knn_graph(x, 13, exact_max=None)
    approx = knn_graph(x, 13, exact_max=1000, index="ivf")
    r = recall(approx.neighbors, exact.neighbors)
    assert 0.9 <= r < 1.0, r  # approximate (not the exact path), and close
    assert (approx.neighbors != np.arange(4000)[:, None]).all()
    # an approximate k-th neighbour is never nearer than the true k-th; radii are exact distances
    assert (approx.radius >= exact.radius * (1 - 1e-4)).all()  # float32 rounding
    far = np.linalg.norm(x - x[approx.neighbors[:, -1]], axis=1)
    np.testing.assert_allclose(approx.radius, far, rtol=1e-5)
    again = knn_graph(x, 13, exact_max=1000, index="ivf")
    np.testing.assert_array_equal(again.neighbors, approx.neighbors)
    # the owner lists are rebuilt from the approximate neighbours
    y = int(approx.neighbors[7, 0])
    assert 7 in approx.owners[approx.starts[y] : approx.starts[y + 1]]


def test_select_prompts_takes_the_threshold_from_the_config(monkeypatch):
    import aeuf.backends.ann as ann

    calls, real = [], ann.approx_knn  # a spy: counts calls, the real index answers
    monkeypatch.setattr(ann, "approx_knn", lambda *a, **kw: calls.append(a[0].shape) or
                        real(*a, **kw))
    x = clustered(3000, seed=1)
    score, none = np.random.default_rng(1).random(3000) * 0.01, np.zeros(3000, bool)
    got = select_prompts(score, x, none, 200, AcquireConfig(knn_exact_max=1000, knn_k=5,
                                                            knn_index="ivf"))
    assert calls == [(3000, 32)]
    approx = knn_graph(x, 5, exact_max=1000, index="ivf")
    assert got.tolist() == select_prompts(score, x, none, 200, AcquireConfig(knn_k=5),
                                          graph=approx).tolist()
    select_prompts(score, x, none, 200, AcquireConfig(knn_exact_max=None, knn_k=5))
    select_prompts(score, x, none, 200, AcquireConfig(knn_k=5))  # default 20,000 > 3,000
    select_prompts(score, x, none, 200, AcquireConfig(knn_exact_max=1000, knn_k=5))  # cells
    assert len(calls) == 2  # the one above and knn_graph(exact_max=1000): none since


def test_approx_knn_excludes_self_sorts_and_fills_short_lists_exactly():
    x = clustered(400, D=16, seed=2)
    ids, d = approx_knn(x, 13, nprobe=1)  # one list per query: some hold fewer than 14
    assert ids.shape == (400, 13) and (ids >= 0).all()
    assert (ids != np.arange(400)[:, None]).all()
    assert (np.diff(d, axis=1) >= -1e-6).all()
    assert all(len(set(r)) == 13 for r in ids)


def test_exact_graph_memory_stays_within_its_chunk_budget(monkeypatch):
    x = np.random.default_rng(3).normal(size=(12000, 8)).astype(np.float32)
    want = knn_graph(x, 13, chunk=1024)
    monkeypatch.setattr(prompts, "BUDGET", 1 << 18)  # 1 MB blocks: 21 rows at a time
    tracemalloc.start()
    got = knn_graph(x, 13)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(got.neighbors, want.neighbors)
    np.testing.assert_allclose(got.radius, want.radius, rtol=1e-5)
    # a 1024-row block alone would be 1024 x 12000 x 4 B = 49 MB; the graph itself ~ 4 MB
    assert peak < 16e6, peak


def test_the_sampled_k_means_gives_the_same_graph_every_time():
    """Above TRAIN_PER_LIST points per list the IVF k-means trains on a sample: it is a seeded
    one, so the same input gives the same graph (here 8 per list, so 5,000 points sample)."""
    x = clustered(5000)
    first, _ = approx_knn(x, 13, train_per_list=8)
    again, _ = approx_knn(x, 13, train_per_list=8)
    np.testing.assert_array_equal(first, again)
    assert recall(first, knn_graph(x, 13, exact_max=None).neighbors) >= 0.8


def test_ivf_hnsw_graph_is_reproducible_close_and_excludes_self():
    """The P log P index (constant-size lists, HNSW over the centroids): the same input gives
    the same graph on 2 threads as on 1, near the exact one, never a point's own index."""
    x = clustered(8000)
    first, d = approx_knn(x, 13, index="ivf_hnsw", threads=2)
    again, _ = approx_knn(x, 13, index="ivf_hnsw", threads=1)  # and at any thread count
    np.testing.assert_array_equal(first, again)
    assert (first != np.arange(8000)[:, None]).all()
    assert (np.diff(d, axis=1) >= -1e-6).all()
    rows = np.arange(0, 8000, 8)
    assert recall(first[rows], exact_rows(x, 13, rows)) >= 0.9


def test_ivf_hnsw_lists_stay_the_same_size_as_the_pool_grows():
    """What makes the cost P log P: the number of lists grows with P, so the points a query
    scans (nprobe lists) stay bounded, where the 4 sqrt(P)-list index's grow as sqrt(P)."""
    import faiss

    mean, largest = [], []
    for P in (8000, 32000):
        x = clustered(P, D=16, seed=4)
        opts = {"nprobe": ann.NPROBE["ivf_hnsw"], "train_per_list": 32, "list_size": 64}
        index = ann.INDEXES["ivf_hnsw"](faiss, x, **opts)
        index.add(x)
        sizes = np.array([index.invlists.list_size(i) for i in range(index.nlist)])
        assert sizes.sum() == P
        mean.append(sizes.mean())
        largest.append(np.sort(sizes)[-opts["nprobe"]:].sum())  # the most one query can scan
    assert abs(mean[1] - mean[0]) <= 2 and 60 <= mean[0] <= 66, mean
    assert largest[1] <= 1.5 * largest[0], largest
    # the other index's lists grow as sqrt(P): twice as long at 4 times the points
    assert 128000 / ann._nlist(128000) >= 1.9 * 32000 / ann._nlist(32000)


def test_knn_graph_takes_the_index_from_the_config(monkeypatch):
    import aeuf.backends.ann as ann_

    seen, real = [], ann_.approx_knn
    monkeypatch.setattr(ann_, "approx_knn", lambda *a, **kw: seen.append(kw["index"]) or
                        real(*a, **kw))
    x = clustered(3000, seed=5)
    score, none = np.random.default_rng(5).random(3000) * 0.01, np.zeros(3000, bool)
    cfg = AcquireConfig(knn_exact_max=1000, knn_k=5, knn_index="ivf_hnsw")
    got = select_prompts(score, x, none, 100, cfg)
    assert seen == ["ivf_hnsw"]
    g = knn_graph(x, 5, exact_max=1000, index="ivf_hnsw")
    assert got.tolist() == select_prompts(score, x, none, 100, cfg, graph=g).tolist()


def test_the_hnsw_quantiser_is_the_same_at_any_thread_count_and_leaves_the_callers():
    """Its insertion is order-sensitive, so it runs on one thread; the caller's faiss thread
    count is restored after it. Compared through what the graph answers (the raw neighbour
    table also holds slots faiss never writes, which differ from build to build)."""
    import faiss

    c = np.random.default_rng(6).normal(size=(4000, 16)).astype(np.float32)
    before = faiss.omp_get_max_threads()
    found = []
    try:
        for threads in (2, 1):
            faiss.omp_set_num_threads(threads)
            index = ann._hnsw(faiss, c, ef=16)
            assert faiss.omp_get_max_threads() == threads
            found.append(index.search(c[::7], 5)[1])
    finally:
        faiss.omp_set_num_threads(before)
    np.testing.assert_array_equal(found[1], found[0])
