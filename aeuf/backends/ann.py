"""Approximate k nearest neighbours of every point of a large set: faiss inverted lists (IVF-Flat),
imported only when used (BAL-PM's kNN entropy above AcquireConfig.knn_exact_max prompts).

    approx_knn(x f32[P, D], k, *, index="ivf", threads=None, nprobe=NPROBE[index],
               train_per_list=TRAIN_PER_LIST[index], list_size=LIST_SIZE)
        -> (neighbors int64 [P, k], sq_dist f32 [P, k])

Nearest first, self excluded; every point added, every point queried against the nprobe
nearest lists. Two ways to cut the space into lists (INDEXES):

- "ivf": nlist = 4 sqrt(P) lists from flat k-means (fixed seed, on a seeded sample of
  train_per_list points per list); a query scans nprobe of ~sqrt(P) / 4 points each, so the
  graph costs P^1.5. Chosen over faiss HNSW, hnswlib, usearch and pynndescent by
  scripts/bench_knn.py (BENCHMARKS.md): at 10^5 x 384 it is the fastest at the recall aeuf
  needs and the same input always gives the same graph (the HNSW builds are multi-threaded
  insertions whose graph changes from run to run, and aeuf promises the same choices for the
  same seed).
- "ivf_hnsw": lists of LIST_SIZE points whatever P (nlist = P / LIST_SIZE), so a query scans a
  constant nprobe * LIST_SIZE points, and finds its nprobe nearest lists through an HNSW graph
  over the centroids (~log nlist): the graph costs P log P. k-means (NITER Lloyd iterations
  from nlist seeded sample points, on a seeded sample of train_per_list points per list) also
  assigns through an HNSW graph of the current centroids, so training costs sample x log nlist
  per iteration instead of sample x nlist. Every HNSW graph is built on one thread: insertion is
  the only order-sensitive step (multi-threaded, the graph changes from run to run), searches
  are independent per query, so the same input gives the same graph at any thread count.
  Not the default: measured up to 3 x 10^5 x 384 it costs about what "ivf" costs at the same
  recall (recall at a fixed nprobe falls as P grows, for both: BENCHMARKS.md, "Acquisition").
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int

from aeuf.errors import ConfigError

NPROBE = {"ivf": 32, "ivf_hnsw": 64}  # inverted lists scanned per query, by index ("ivf_hnsw"
# at 3 x 10^5 x 384 clustered: recall 0.910 at 40, 0.948 at 64, 0.972 at 96)
SEED = 1234  # k-means seed of the coarse quantiser
TRAIN_PER_LIST = {"ivf": 64, "ivf_hnsw": 32}  # k-means trains on a seeded sample of this many
# points per list (faiss's default, 256, is every point up to 10^6; training was ~1/4 of the
# "ivf" graph's time at 10^5; "ivf_hnsw" at 32 had the same recall as at 64, 15 % less time)
LIST_SIZE = 64  # "ivf_hnsw": points per inverted list, whatever P
HNSW_M = 32  # "ivf_hnsw": links per centroid in the quantiser's graph
NITER = 10  # "ivf_hnsw": k-means iterations, each point assigned through an HNSW graph
REFINE_EF = 16  # "ivf_hnsw": HNSW candidates per point when k-means assigns it


def approx_knn(
    x: Float[np.ndarray, "P D"], k: int, *, index: str = "ivf", threads: int | None = None,
    nprobe: int | None = None, train_per_list: int | None = None, list_size: int = LIST_SIZE,
) -> tuple[Int[np.ndarray, "P k"], Float[np.ndarray, "P k"]]:
    """The k approximate nearest other points of each row of x (module docstring)."""
    faiss = _faiss()
    x = np.ascontiguousarray(x, np.float32)
    nprobe = nprobe or NPROBE[index]
    train_per_list = train_per_list or TRAIN_PER_LIST[index]
    before = faiss.omp_get_max_threads()
    if threads:
        faiss.omp_set_num_threads(threads)
    try:
        ivf = INDEXES[index](faiss, x, nprobe=nprobe, train_per_list=train_per_list,
                             list_size=list_size)
        ivf.add(x)
        ivf.nprobe = nprobe
        dist, ids = ivf.search(x, k + 1)
    finally:
        faiss.omp_set_num_threads(before)
    return _drop_self(ids.astype(np.int64), dist, x, k)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError("an approximate kNN graph needs faiss: pip install faiss-cpu, or "
                          "raise --knn_exact_max (or set it to none) for the exact graph") from None
    return faiss


def _ivf_sqrt(faiss, x, *, train_per_list: int, **_):
    """IVF-Flat with 4 sqrt(P) lists and a flat quantiser, trained (module docstring)."""
    P, D = x.shape
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, _nlist(P))
    index.cp.seed = SEED
    index.cp.max_points_per_centroid = train_per_list
    index.train(x)
    return index


def _ivf_hnsw(faiss, x, *, nprobe: int, train_per_list: int, list_size: int):
    """IVF-Flat with P / LIST_SIZE lists and an HNSW quantiser, trained (module docstring)."""
    P, D = x.shape
    nlist = max(1, P // list_size)
    sample = _sample(x, train_per_list * nlist)
    centroids = _sample(sample, nlist)
    for _ in range(NITER):
        quantizer = _hnsw(faiss, centroids, ef=REFINE_EF)
        centroids = _means(sample, quantizer.search(sample, 1)[1][:, 0], centroids)
    quantizer = _hnsw(faiss, centroids, ef=2 * nprobe)
    index = faiss.IndexIVFFlat(quantizer, D, centroids.shape[0])
    index.is_trained = True
    return index


def _hnsw(faiss, centroids, ef: int):
    """An HNSW index of the centroids, built on one thread (multi-threaded insertion builds a
    different graph each run)."""
    index = faiss.IndexHNSWFlat(centroids.shape[1], HNSW_M)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.add(centroids)
    finally:
        faiss.omp_set_num_threads(threads)
    index.hnsw.efSearch = ef
    return index


def _means(sample, assign, centroids):
    """One Lloyd update: each centroid moved to the mean of the rows assigned to it (a centroid
    with none stays where it was)."""
    from scipy.sparse import csr_matrix

    c, m = centroids.shape[0], sample.shape[0]
    members = csr_matrix((np.ones(m, np.float32), (assign, np.arange(m))), shape=(c, m))
    counts = np.bincount(assign, minlength=c)
    used = counts > 0
    out = centroids.copy()
    out[used] = (members @ sample)[used] / counts[used, None]
    return out


def _sample(x, m: int):
    """A seeded sample of m rows of x, in order (all of x when m >= its rows)."""
    P = x.shape[0]
    return x[np.sort(np.random.default_rng(SEED).choice(P, m, replace=False))] if m < P else x


INDEXES = {"ivf": _ivf_sqrt, "ivf_hnsw": _ivf_hnsw}


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
