"""Approximate k nearest neighbours of every point of a large set: faiss IVF-Flat, imported only
when used (BAL-PM's kNN entropy above AcquireConfig.knn_exact_max prompts).

    approx_knn(x f32[P, D], k, *, threads=None, nprobe=NPROBE, train_per_list=TRAIN_PER_LIST)
        -> (neighbors int64 [P, k], sq_dist f32 [P, k])

Nearest first, self excluded. The index: nlist = 4 sqrt(P) inverted lists from k-means (fixed
seed, on a seeded sample of train_per_list points per list), every point added, every point
queried against the nprobe nearest lists. Chosen over faiss HNSW, hnswlib, usearch and
pynndescent by scripts/bench_knn.py (BENCHMARKS.md): at 10^5 x 384 it is the fastest at the
recall aeuf needs and the same input always gives the same graph (the HNSW builds are
multi-threaded insertions whose graph changes from run to run, and aeuf promises the same
choices for the same seed).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int

from aeuf.errors import ConfigError

NPROBE = 32  # inverted lists scanned per query
SEED = 1234  # k-means seed of the coarse quantiser
TRAIN_PER_LIST = 64  # k-means trains on a seeded sample of this many points per list (faiss's
# default, 256, is every point up to 10^6; training was ~1/4 of the graph's time at 10^5)


def approx_knn(
    x: Float[np.ndarray, "P D"], k: int, *, threads: int | None = None, nprobe: int = NPROBE,
    train_per_list: int = TRAIN_PER_LIST,
) -> tuple[Int[np.ndarray, "P k"], Float[np.ndarray, "P k"]]:
    """The k approximate nearest other points of each row of x (module docstring)."""
    try:
        import faiss
    except ImportError:
        raise ConfigError("an approximate kNN graph needs faiss: pip install faiss-cpu, or "
                          "raise --knn_exact_max (or set it to none) for the exact graph") from None
    x = np.ascontiguousarray(x, np.float32)
    P, D = x.shape
    before = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    try:
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, _nlist(P))
        index.cp.seed = SEED
        index.cp.max_points_per_centroid = train_per_list
        index.train(x)
        index.add(x)
        index.nprobe = nprobe
        dist, ids = index.search(x, k + 1)
    finally:
        faiss.omp_set_num_threads(before)
    return _drop_self(ids.astype(np.int64), dist, x, k)


def _nlist(P: int) -> int:
    """4 sqrt(P) lists, at most P / 39 so k-means has the 39 points per centroid it wants."""
    return int(max(1, min(4 * np.sqrt(P), P // 39)))


def _drop_self(ids, dist, x, k: int):
    """[P, k+1] results -> [P, k] without each row's own index (the farthest dropped where self
    was not returned). Rows where the probed lists held fewer than k + 1 points (id -1) are
    searched exactly."""
    P = ids.shape[0]
    short = np.flatnonzero((ids < 0).any(axis=1))
    for s in range(0, short.size, 256):
        rows = short[s : s + 256]
        d = _rows_sq_dist(x, rows)
        ids[rows] = np.argsort(d, axis=1, kind="stable")[:, : k + 1]
        dist[rows] = np.take_along_axis(d, ids[rows], 1)
    is_self = ids == np.arange(P)[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(dist, order, 1)


def _rows_sq_dist(x, rows):
    """Squared distances from x[rows] to every row of x: float32 [len(rows), P]."""
    sq = np.einsum("pd,pd->p", x, x)
    return np.maximum(sq[rows, None] + sq[None, :] - 2.0 * (x[rows] @ x.T), 0.0)
