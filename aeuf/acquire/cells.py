"""BAL-PM's entropy term read off cells around a seeded sample of the prompts
(`--knn_index cells`): a cost that grows as P, not as the P^1.5 of a kNN graph over every
prompt.

    cell_graph(x f32[P, D], k, *, sample=SAMPLE) -> CellGraph
    pick_in_cells(score f64[P], acquired bool[P], batch, beta, g) -> int32 [<= batch]

m = min(P, sample) prompts drawn with a fixed seed are the cells' centres; every prompt joins
its nearest centre's cell (by |c|^2 / 2 - x.c in float32, a chunked matmul: P m D work;
for features far from the origin the rounding can pick a slightly farther centre); the exact kNN graph of the
centres gives cell c its radius r_c (distance to its k-th nearest other centre) and its
neighbourhood N(c) = {c} and its k nearest centres. A prompt x of cell c scores

    score(x) + beta * (log(2 r_c + 1e-4) - psi(n_c + 1)),
    n_c = k * (acquired prompts in N(c)) / (prompts in N(c)),

BAL-PM's objective (aeuf.acquire.prompts) with the density read at the cell's centre, and
the count of acquired prompts among x's k neighbours read as the share of the neighbourhood
already acquired. The greedy is BAL-PM's: take the argmax (ties to the lowest prompt index),
count it, repeat. Every prompt of a cell shares its entropy term, so a cell's best is its
highest-scoring free prompt, and a lazy max-heap over the cells (a pick changes n only in
the cells whose neighbourhood holds it) costs O(P log P + batch k log m) a round.
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np
from jaxtyping import Float
from scipy.special import digamma

from aeuf.acquire.exact_knn import exact_knn

SAMPLE = 8192  # cell centres: assigning P prompts costs P * SAMPLE * D multiply-adds
SEED = 4321
BUDGET = 1 << 25  # float32 entries of one [chunk, m] distance block (128 MB)


class CellGraph(NamedTuple):
    """cell: int64 [P] each prompt's cell; radius: float64 [m] the cell's radius; size:
    float64 [m] prompts in the cell's neighbourhood; owners, starts: int64, the cells whose
    neighbourhood holds cell c are owners[starts[c]:starts[c + 1]]; k: neighbours."""

    cell: np.ndarray
    radius: np.ndarray
    size: np.ndarray
    owners: np.ndarray
    starts: np.ndarray
    k: int


def cell_graph(x: Float[np.ndarray, "P D"], k: int, *, sample: int = SAMPLE) -> CellGraph:
    """The CellGraph of prompt features f32[P, D] (k capped at m - 1, m = min(P, sample))."""
    x = np.asarray(x, np.float32)
    P = x.shape[0]
    m = min(P, sample)
    centres = x[np.sort(np.random.default_rng(SEED).choice(P, m, replace=False))]
    k = min(k, m - 1)
    near, kth = exact_knn(centres, k, max(1, min(1024, BUDGET // m)))
    cell = nearest_centre(x, centres)
    hood = np.concatenate([np.arange(m)[:, None], near], axis=1)  # [m, k + 1]
    size = np.bincount(cell, minlength=m)[hood].sum(axis=1).astype(np.float64)
    owners = np.argsort(hood.ravel(), kind="stable") // (k + 1)
    starts = np.searchsorted(np.sort(hood.ravel()), np.arange(m + 1))
    return CellGraph(cell, np.sqrt(np.maximum(kth, 0.0)), size, owners, starts, k)


def nearest_centre(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """int64 [P]: the index of each row's nearest centre (ties to the lowest)."""
    half = 0.5 * np.einsum("md,md->m", centres, centres)
    chunk = max(1, BUDGET // centres.shape[0])
    out = np.empty(x.shape[0], np.int64)
    for lo in range(0, x.shape[0], chunk):
        block = x[lo:lo + chunk] @ centres.T
        np.subtract(half, block, out=block)  # in place: no second [chunk, m] array
        out[lo:lo + chunk] = np.argmin(block, axis=1)
    return out


def pick_in_cells(score: np.ndarray, acquired: np.ndarray, batch: int, beta: float,
                  g: CellGraph) -> np.ndarray:
    """The greedy's picks (module docstring): int32 [min(batch, free prompts)]."""
    s = np.asarray(score, np.float64)
    m = g.radius.size
    inside = np.bincount(g.cell[acquired], minlength=m).astype(np.float64)
    hood_acq = np.zeros(m)  # acquired prompts in each cell's neighbourhood
    np.add.at(hood_acq, g.owners, np.repeat(inside, np.diff(g.starts)))
    free = np.flatnonzero(~acquired)
    order = free[np.lexsort((free, -s[free], g.cell[free]))]  # by cell, best score first
    ends = np.searchsorted(g.cell[order], np.arange(m + 1))
    top = ends[:-1].copy()  # each cell's next free prompt, as a position in `order`
    log_r = np.log(2.0 * g.radius + 1e-4)

    def value(c: int) -> float:
        n = g.k * hood_acq[c] / max(g.size[c], 1.0)
        return float(s[order[top[c]]] + beta * (log_r[c] - digamma(n + 1.0)))

    heap = [(-value(c), int(order[top[c]]), c) for c in range(m) if top[c] < ends[c + 1]]
    heapq.heapify(heap)
    picks: list[int] = []
    while heap and len(picks) < batch:
        neg, y, c = heapq.heappop(heap)
        now = value(c)
        if now < -neg:  # stale: a neighbouring cell took a prompt since it was pushed
            heapq.heappush(heap, (-now, y, c))
            continue
        picks.append(y)
        hood_acq[g.owners[g.starts[c]:g.starts[c + 1]]] += 1.0
        top[c] += 1
        if top[c] < ends[c + 1]:
            heapq.heappush(heap, (-value(c), int(order[top[c]]), c))
    return np.asarray(picks, np.int32)
