"""BAL-PM prompt selection: which prompts to label when a round's budget is below P.

    objective(x) = score(x) + beta * H(x),   H(x) = log(2 d_k(x) + 1e-4) - psi(n(x) + 1)

d_k(x): Euclidean distance from x to its k-th nearest other prompt in the pool (k = knn_k);
n(x): acquired prompts within that radius, i.e. among x's k nearest neighbours (ties at the
radius are not counted). Greedy within the batch: take the argmax, count it as acquired for
every prompt that has it among its neighbours, repeat (a lazy max-heap: a pick only lowers
the objective of the prompts that list it, so the batch costs O((P + batch k) log P), not an
argmax over P per pick; formulas in docs/algorithms.md).
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np
from jaxtyping import Float
from scipy.special import digamma

from aeuf.acquire.cells import CellGraph, cell_graph, pick_in_cells
from aeuf.acquire.exact_knn import exact_knn
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError, InputError

BUDGET = 1 << 25  # float32 entries of one [chunk, P] distance block in the exact search (128 MB)
EXACT_MAX = AcquireConfig.knn_exact_max  # above this many prompts: an approximate index


class KnnGraph(NamedTuple):
    """k-nearest-neighbour structure of the prompt pool (reusable across rounds).

    radius:    float64 [P]  distance to the k-th nearest other prompt
    neighbors: int64 [P, k] the k nearest other prompts
    owners:    int64 [P*k]  prompts x grouped by which prompt y they list as a neighbour ...
    starts:    int64 [P+1]  ... owners[starts[y]:starts[y+1]] are the x with y in neighbors[x]
    """

    radius: np.ndarray
    neighbors: np.ndarray
    owners: np.ndarray
    starts: np.ndarray


def knn_graph(
    prompt_features: Float[np.ndarray, "P D"],
    k: int,
    chunk: int | None = None,
    *,
    exact_max: int | None = EXACT_MAX,
    index: str = AcquireConfig.knn_index,
    threads: int | None = None,
) -> KnnGraph | CellGraph:
    """The KnnGraph of prompt_features f32[P, D] (k is capped at P - 1); above exact_max
    with index "cells", the CellGraph of aeuf.acquire.cells instead.

    exact_max: exact search up to this many prompts, an approximate index above it
    (`index` "cells": the CellGraph of aeuf.acquire.cells; else one of aeuf.backends.ann's INDEXES;
    None: always exact). The exact search runs in row chunks of `chunk`
    rows (default: as many as keep the [chunk, P] distance block near 128 MB), so its memory
    stays O(P k + chunk P) at any P. Radii are exact distances to the k-th neighbour found.
    """
    x = np.asarray(prompt_features, np.float32)
    P = x.shape[0]
    k = min(k, P - 1)
    if k < 1:
        raise ConfigError("prompt selection needs at least two prompts")
    if not np.isfinite(x).all():
        raise InputError("prompt features contain NaN or infinite values")
    if exact_max is not None and P > exact_max and index == "cells":
        return cell_graph(x, k)
    if exact_max is not None and P > exact_max:
        from aeuf.backends.ann import approx_knn

        neighbors, kth = _resort_exact(x, approx_knn(x, k, index=index, threads=threads)[0])
    else:
        neighbors, kth = exact_knn(x, k, chunk or max(1, min(1024, BUDGET // P)))
    radius = np.sqrt(np.maximum(kth, 0.0))
    owners = np.argsort(neighbors.ravel(), kind="stable") // k
    starts = np.searchsorted(np.sort(neighbors.ravel()), np.arange(P + 1))
    return KnnGraph(radius, neighbors, owners, starts)


def _resort_exact(x: np.ndarray, neighbors: np.ndarray, chunk: int = 4096):
    """An index's neighbour lists re-sorted by exact squared distance, computed here in
    chunks: (int64 [P, k] nearest first, squared distance to the k-th float64 [P])."""
    out = np.empty(neighbors.shape, np.float64)
    for s in range(0, x.shape[0], chunk):
        nb = neighbors[s : s + chunk]
        diff = x[nb] - x[s : s + chunk, None, :]  # [c, k, D]
        out[s : s + chunk] = np.einsum("ckd,ckd->ck", diff, diff)
    order = np.argsort(out, axis=1, kind="stable")
    return np.take_along_axis(neighbors, order, 1), out.max(axis=1)


def select_prompts(
    score,
    prompt_features,
    acquired,
    batch: int,
    cfg: AcquireConfig,
    *,
    graph: KnnGraph | CellGraph | None = None,
) -> np.ndarray:
    """Greedy BAL-PM choice of up to `batch` not-yet-acquired prompts.

    score: f32 [P] epistemic score (Choice.score); prompt_features: f32 [P, D];
    acquired: bool [P]; graph: knn_graph(prompt_features, cfg.knn_k) to reuse across rounds.
    Returns int32 [min(batch, number not acquired)], in the order picked.
    """
    acquired = np.asarray(acquired, bool).copy()
    if acquired.size < 2:  # no neighbours to estimate an entropy from
        return np.flatnonzero(~acquired)[: max(batch, 0)].astype(np.int32)
    g = graph if graph is not None else knn_graph(
        prompt_features, cfg.knn_k, exact_max=cfg.knn_exact_max, index=cfg.knn_index
    )
    s = np.nan_to_num(np.asarray(score, np.float64), nan=-1e30, posinf=1e30, neginf=-1e30)
    if isinstance(g, CellGraph):
        return pick_in_cells(s, acquired, batch, cfg.prompt_beta, g)
    return _lazy_greedy(s, g, acquired, batch, cfg.prompt_beta)


def _lazy_greedy(s, g: KnnGraph, acquired, batch: int, beta: float):
    """The greedy's picks through a max-heap of (objective, prompt): a pick only lowers its
    owners' objectives (beta >= 0, psi increasing), so an entry is re-scored when it reaches
    the top and taken once its score is current. The same picks, ties to the lowest index,
    as an argmax over every prompt at every pick, in O((P + batch k) log P) instead of
    O(batch P)."""
    k = g.neighbors.shape[1]
    psi = digamma(np.arange(1, k + 2))  # psi(n + 1) for n = 0..k
    n = acquired[g.neighbors].sum(axis=1)
    log_r = np.log(2.0 * g.radius + 1e-4)
    obj = s + beta * (log_r - psi[n])
    free = np.flatnonzero(~acquired)
    heap = list(zip((-obj[free]).tolist(), free.tolist()))
    heapq.heapify(heap)
    picks: list[int] = []
    while heap and len(picks) < batch:
        neg, y = heapq.heappop(heap)
        now = float(s[y] + beta * (log_r[y] - psi[n[y]]))
        if now < -neg:  # stale: one of its neighbours was picked since it was pushed
            heapq.heappush(heap, (-now, y))
            continue
        picks.append(y)
        n[g.owners[g.starts[y] : g.starts[y + 1]]] += 1
    return np.asarray(picks, np.int32)
