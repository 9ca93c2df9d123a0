"""Pools with gold utilities for the benchmark.

The pool is read by aeuf.io's own reader (every layout the main command reads, the long
one-row-per-response table included, ragged pools too), so `aeuf bench` and `aeuf` see the
same pool. `pool_from_long` and `score_to_utility` live in aeuf.io (re-exported here).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from aeuf.config import InputConfig
from aeuf.errors import ConfigError, InputError
from aeuf.io.pool import CLIP, is_long, pool_from_long, read_pool, score_to_utility
from aeuf.types import ResponsePool

__all__ = ["CLIP", "is_long", "pool_from_long", "read_bench_pool", "score_to_utility",
           "select_responses", "without_gold"]


def read_bench_pool(path: str, num_responses: int | None = None) -> ResponsePool:
    """The pool at `path` (any layout aeuf.io.read_pool reads), which must carry gold
    utilities (InputError otherwise). A response without one stays in the pool as the main
    command keeps it under the replay oracle: never chosen for the oracle, never scored
    (count them with `without_gold`)."""
    pool = read_pool(InputConfig(path=str(path), num_responses=num_responses))
    if pool.gold is None or not np.isfinite(pool.gold).any():
        raise InputError(f"{path}: the benchmark needs gold scores per response (a 'score' "
                         "column or gold columns)")
    return pool


def without_gold(pool: ResponsePool) -> int:
    """How many responses of the pool have no gold score (left out of choices and scores)."""
    return int((~np.isfinite(pool.gold)).sum()) if pool.gold is not None else 0


def select_responses(pool: ResponsePool, models: tuple[str, ...] = (),
                     num_responses: int | None = None) -> ResponsePool:
    """The pool restricted to the responses of `models` (all when empty), then to the first
    `num_responses` of each prompt (all when None). A prompt left with fewer responses than
    the others is skipped (added to pool.skipped). Raises ConfigError naming a model the pool
    does not have, or a count above what is left."""
    keep = np.ones(pool.shape, bool)
    if models:
        names = {str(m) for m in pool.models.ravel()}
        unknown = sorted(set(models) - names)
        if unknown:
            raise ConfigError(f"--models: the pool has no model {', '.join(unknown)} (it has "
                              f"{', '.join(sorted(names))})")
        keep = np.isin(pool.models.astype(str), list(models))
    n = int(keep.sum(axis=1).max())
    if num_responses is not None and num_responses > n:
        raise ConfigError(f"--num_responses {num_responses}: the pool has only {n} responses "
                          "per prompt (after --models)")
    n = num_responses or n
    rows = np.flatnonzero(keep.sum(axis=1) >= n)
    cols = np.stack([np.flatnonzero(keep[p])[:n] for p in rows]) if rows.size else np.zeros((0, n), int)
    gather = lambda a: None if a is None else np.take_along_axis(a[rows], cols, axis=1)  # noqa: E731
    skipped = tuple(str(i) for i in np.asarray(pool.prompt_ids)[keep.sum(axis=1) < n])
    return dataclasses.replace(pool, prompt_ids=pool.prompt_ids[rows], prompts=pool.prompts[rows],
                               responses=gather(pool.responses), models=gather(pool.models),
                               response_ids=gather(pool.response_ids), gold=gather(pool.gold),
                               messages=None if pool.messages is None else pool.messages[rows],
                               skipped=pool.skipped + skipped)
