"""The exact k nearest other rows of a feature matrix, in row chunks whose [chunk, P] distance
block bounds the memory (BAL-PM's graph up to knn_exact_max prompts, and the cells' centres).
"""

from __future__ import annotations

import numpy as np

BLOCK = 64  # columns per block in the kNN search


def exact_knn(x: np.ndarray, k: int, chunk: int):
    """(neighbors int64 [P, k] nearest first, squared distance to the k-th float64 [P])."""
    P = x.shape[0]
    sq = np.einsum("pd,pd->p", x, x)
    block = max(1, min(BLOCK, (P - 1) // k))
    pad = -P % block  # zero rows with infinite norm: never anyone's neighbour
    xp = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)])
    half_sq = np.concatenate([0.5 * sq, np.full(pad, np.inf, np.float32)])
    neighbors = np.empty((P, k), np.int64)
    kth = np.empty(P, np.float64)
    for s in range(0, P, chunk):
        rows = np.arange(s, min(s + chunk, P))
        neighbors[rows], key = nearest(xp, half_sq, rows, k, block)
        kth[rows] = 2.0 * key.astype(np.float64) + sq[rows]
    return neighbors, kth


def nearest(xp, half_sq, rows, k: int, block: int):
    """The k nearest other prompts of xp[rows], nearest first: (int64 [c, k], key of the k-th).

    xp: [P', D] features padded to a multiple of `block` rows; half_sq: [P'] |y|^2 / 2 (inf on
    padding). Ranks by key = |y|^2 / 2 - x.y, the squared distance / 2 up to the row's own
    constant. The k blocks of `block` columns with the smallest minima hold the k nearest
    (any other block's minimum is at least the k-th of those k minima), so only k * block
    entries per row are partitioned: a full argpartition of each row is several times slower.
    """
    c = rows.size
    key = xp[rows] @ xp.T
    np.subtract(half_sq[None, :], key, out=key)
    key[np.arange(c), rows] = np.inf
    blocks = key.reshape(c, -1, block)
    near_blocks = np.argpartition(blocks.min(axis=2), k - 1, axis=1)[:, :k]  # [c, k]
    cand = blocks[np.arange(c)[:, None], near_blocks].reshape(c, k * block)
    col = (near_blocks[:, :, None] * block + np.arange(block)).reshape(c, k * block)
    part = np.argpartition(cand, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(part, np.argsort(np.take_along_axis(cand, part, 1), 1), 1)
    return np.take_along_axis(col, part, 1), np.take_along_axis(cand, part[:, -1:], 1)[:, 0]
