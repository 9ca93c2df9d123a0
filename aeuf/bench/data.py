"""Pools with gold utilities for the benchmark.

The pool is read by aeuf.io's own reader (every layout the main command reads, the long
one-row-per-response table included, ragged pools too), so `aeuf bench` and `aeuf` see the
same pool. `pool_from_long` and `score_to_utility` live in aeuf.io (re-exported here).
"""

from __future__ import annotations

import numpy as np

from aeuf.config import InputConfig
from aeuf.errors import InputError
from aeuf.io.pool import CLIP, is_long, pool_from_long, read_pool, score_to_utility
from aeuf.types import ResponsePool

__all__ = ["CLIP", "is_long", "pool_from_long", "read_bench_pool", "score_to_utility"]


def read_bench_pool(path: str, num_responses: int | None = None) -> ResponsePool:
    """The pool at `path` (any layout aeuf.io.read_pool reads), which must carry a gold
    utility for every response it keeps. Raises InputError naming the first response
    without one."""
    pool = read_pool(InputConfig(path=str(path), num_responses=num_responses))
    if pool.gold is None:
        raise InputError(f"{path}: the benchmark needs gold scores per response (a 'score' "
                         "column or gold columns)")
    missing = np.argwhere(~np.isfinite(pool.gold))
    if missing.size:
        p, r = missing[0]
        raise InputError(f"{path}: response '{pool.response_ids[p, r]}' has no gold score; "
                         "the benchmark needs one for every response (fill it in or remove "
                         "that response)")
    return pool
