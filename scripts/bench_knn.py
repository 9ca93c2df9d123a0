"""Approximate vs exact kNN graph for BAL-PM's entropy estimate (issue #13 item 3).

    python scripts/bench_knn.py [--prompts 100000] [--dim 384] [--k 13]
                                [--data clustered|gaussian] [--libs faiss_ivf,faiss_hnsw,...]
                                [--cache bench_out/knn_cache] [--recall-rows 2000]

    e.g. --libs aeuf_ann,aeuf_ivf_hnsw,aeuf_ivf_hnsw/list_size=128/nprobe=24
    (options after a library's name, `/name=integer`, go to its function)

For P prompt-feature vectors of dimension D, times aeuf's exact kNN graph (chunked numpy,
aeuf.acquire.prompts.knn_graph with the approximate path switched off) and each approximate
index: build, query (every point queried against the index, self removed), recall@k against the
exact neighbour sets (with --recall-rows N: of N seeded random rows only, their exact neighbours
found by brute force, for P where the exact graph is too slow), the k-th neighbour distance (BAL-PM's radius) relative to the exact one,
and whether two builds give the same graph (aeuf promises the same choices for the same seed).
All in one process, --threads threads for every library; wall and process CPU time (the
machine is shared: CPU seconds are the steadier figure). The exact graph is cached under
--cache.

The competitors are not aeuf dependencies: pip install faiss-cpu hnswlib usearch pynndescent
to rerun them all (faiss-cpu is the one aeuf keeps: aeuf.backends.ann, IVF-Flat, nprobe 32:
`aeuf_ann` is its 4 sqrt(P)-list index, `aeuf_ivf_hnsw` its constant-list-size one with an HNSW
quantiser). Each row also gives the load average when it finished (a shared machine: compare
rows of one run, not runs).

Data: `gaussian` is isotropic N(0, I) (the worst case for any index: no structure);
`clustered` is unit vectors from 2,000 Zipf-sized clusters in a 48-dim subspace plus small
noise in all D dims, closer to sentence embeddings.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from aeuf.acquire.prompts import knn_graph
from aeuf.bench.measure import machine_line


def gaussian(P: int, D: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(P, D)).astype(np.float32)


def clustered(P: int, D: int, seed: int = 0, clusters: int = 2000, latent: int = 48):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(D, latent)))[0]
    w = 1.0 / np.arange(1, clusters + 1)
    assign = rng.choice(clusters, size=P, p=w / w.sum())
    z = rng.normal(size=(clusters, latent))[assign] + 0.6 * rng.normal(size=(P, latent))
    x = z @ basis.T + 0.05 * rng.normal(size=(P, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def drop_self(ids: np.ndarray, k: int) -> np.ndarray:
    """[P, k+1] neighbour ids, self possibly among them -> [P, k] without self."""
    P = ids.shape[0]
    is_self = ids == np.arange(P)[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # self not found: drop the farthest instead
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, 1)


def faiss_ivf(x, k, threads, nprobe=16):
    import faiss

    faiss.omp_set_num_threads(threads)
    P, D = x.shape
    nlist = max(1, int(4 * np.sqrt(P)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, nlist)
    t = time.perf_counter()
    index.train(x)
    index.add(x)
    build = time.perf_counter() - t
    index.nprobe = nprobe
    t = time.perf_counter()
    _, ids = index.search(x, k + 1)
    return build, time.perf_counter() - t, ids


def faiss_hnsw(x, k, threads, m=32, ef=64):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(x.shape[1], m)
    index.hnsw.efConstruction = 64
    t = time.perf_counter()
    index.add(x)
    build = time.perf_counter() - t
    index.hnsw.efSearch = ef
    t = time.perf_counter()
    _, ids = index.search(x, k + 1)
    return build, time.perf_counter() - t, ids


def hnswlib_(x, k, threads, m=16, ef=64):
    import hnswlib

    index = hnswlib.Index(space="l2", dim=x.shape[1])
    index.init_index(max_elements=x.shape[0], ef_construction=100, M=m, random_seed=0)
    t = time.perf_counter()
    index.add_items(x, np.arange(x.shape[0]), num_threads=threads)
    build = time.perf_counter() - t
    index.set_ef(ef)
    t = time.perf_counter()
    ids, _ = index.knn_query(x, k=k + 1, num_threads=threads)
    return build, time.perf_counter() - t, ids.astype(np.int64)


def usearch_(x, k, threads, m=16, ef=64):
    from usearch.index import Index

    index = Index(ndim=x.shape[1], metric="l2sq", dtype="f32", connectivity=m,
                  expansion_add=128, expansion_search=ef)
    t = time.perf_counter()
    index.add(np.arange(x.shape[0]), x, threads=threads)
    build = time.perf_counter() - t
    t = time.perf_counter()
    found = index.search(x, k + 1, threads=threads)
    return build, time.perf_counter() - t, np.asarray(found.keys, np.int64)


def pynndescent_(x, k, threads):
    from pynndescent import NNDescent

    NNDescent(x[:200], n_neighbors=k + 1, random_state=0, n_jobs=threads)  # numba compile
    t = time.perf_counter()
    index = NNDescent(x, n_neighbors=k + 1, random_state=0, n_jobs=threads)
    ids, _ = index.neighbor_graph
    return time.perf_counter() - t, 0.0, ids.astype(np.int64)


def aeuf_ann(x, k, threads, **options):
    from aeuf.backends.ann import approx_knn

    t = time.perf_counter()
    ids, _ = approx_knn(x, k, threads=threads, **options)
    return time.perf_counter() - t, 0.0, ids


LIBS = {
    "faiss_ivf": faiss_ivf,
    "faiss_ivf_np32": lambda x, k, t: faiss_ivf(x, k, t, nprobe=32),
    "faiss_hnsw": faiss_hnsw,
    "hnswlib": hnswlib_,
    "usearch": usearch_,
    "pynndescent": pynndescent_,
    "aeuf_ann": aeuf_ann,
    "aeuf_ann_train256": lambda x, k, t: aeuf_ann(x, k, t, train_per_list=256),
    "aeuf_ivf_hnsw": lambda x, k, t, **o: aeuf_ann(x, k, t, index="ivf_hnsw", **o),
}


def lib(spec: str):
    """'name/option=int/...' -> a function of (x, k, threads)."""
    name, *opts = spec.split("/")
    kw = {o.split("=")[0]: int(o.split("=")[1]) for o in opts}
    return lambda x, k, t: LIBS[name](x, k, t, **kw)


def exact(x, k, cache: Path, name: str):
    path = cache / f"{name}_{x.shape[0]}_{x.shape[1]}_{k}.npz"
    if path.exists():
        z = np.load(path)
        return z["neighbors"], z["radius"], float(z["seconds"])
    t, cpu = time.perf_counter(), time.process_time()
    g = knn_graph(x, k, exact_max=None)
    seconds = time.perf_counter() - t
    print(f"exact CPU time: {time.process_time() - cpu:.1f} s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, neighbors=g.neighbors, radius=g.radius, seconds=seconds)
    return g.neighbors, g.radius, seconds


def exact_rows(x, k, rows):
    """The exact k nearest other points of x[rows] by brute force (chunks of 256 rows):
    (ids [R, k], distance to the k-th [R]), and the seconds it took."""
    t = time.perf_counter()
    sq = np.einsum("pd,pd->p", x, x)
    ids = np.empty((rows.size, k), np.int64)
    for s in range(0, rows.size, 256):
        r = rows[s : s + 256]
        d = sq[None, :] - 2.0 * (x[r] @ x.T)
        d[np.arange(r.size), r] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        ids[s : s + 256] = np.take_along_axis(part, np.argsort(
            np.take_along_axis(d, part, 1), axis=1), 1)
    radius = np.linalg.norm(x[rows] - x[ids[:, -1]], axis=1)
    return ids, radius, time.perf_counter() - t


def score(x, ids, true_ids, true_radius, k, rows):
    """Recall@k and median k-th-distance error over `rows` (true_* are of those rows)."""
    ids = drop_self(ids, k)
    got = ids[rows]
    hits = (got[:, :, None] == true_ids[:, None, :]).any(axis=2).sum(axis=1)
    d = np.sort(np.linalg.norm(x[rows, None, :] - x[got], axis=2), axis=1)[:, -1]
    return hits.mean() / k, np.median(d / true_radius - 1.0), ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--k", type=int, default=13)
    ap.add_argument("--data", default="clustered", choices=("clustered", "gaussian"))
    ap.add_argument("--libs", default=",".join(k for k in LIBS if not k.startswith("aeuf_ann")))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="bench_out/knn_cache")
    ap.add_argument("--recall-rows", type=int, default=0,
                    help="recall on this many seeded random rows by brute force instead of "
                         "the whole exact graph (0: the whole graph)")
    ap.add_argument("--twice", action=argparse.BooleanOptionalAction, default=True,
                    help="build each index twice to check the graph is reproducible")
    a = ap.parse_args()
    x = (clustered if a.data == "clustered" else gaussian)(a.prompts, a.dim)
    print(f"P={a.prompts} D={a.dim} k={a.k} data={a.data} threads={a.threads} "
          f"{machine_line()}", flush=True)
    if a.recall_rows:
        rows = np.sort(np.random.default_rng(1).choice(a.prompts, a.recall_rows, replace=False))
        true_ids, true_radius, t_rows = exact_rows(x, a.k, rows)
        print(f"exact neighbours of {rows.size} rows (brute force): {t_rows:.1f} s", flush=True)
        t_exact = t_rows * a.prompts / rows.size  # the whole graph at this rate
        print(f"(whole exact graph at that rate: ~{t_exact:.0f} s)", flush=True)
    else:
        rows = np.arange(a.prompts)
        true_ids, true_radius, t_exact = exact(x, a.k, Path(a.cache), a.data)
        print(f"exact (aeuf chunked numpy): {t_exact:.1f} s", flush=True)
    print("\n| index | build (s) | query (s) | CPU s (build + query) | total / exact | recall@k "
          "| median radius error | same graph twice | load |\n|---|---|---|---|---|---|---|---|---|")
    for name in a.libs.split(","):
        cpu = time.process_time()
        build, query, ids = lib(name)(x, a.k, a.threads)
        cpu = time.process_time() - cpu
        recall, rad, ids = score(x, ids, true_ids, true_radius, a.k, rows)
        same = "-"
        if a.twice:
            again = drop_self(lib(name)(x, a.k, a.threads)[2], a.k)
            same = np.array_equal(np.sort(ids, 1), np.sort(again, 1))
        print(f"| {name} | {build:.1f} | {query:.1f} | {cpu:.1f} | "
              f"{(build + query) / t_exact:.3f} | {recall:.4f} | {rad:+.2%} | {same} | "
              f"{os.getloadavg()[0]:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
