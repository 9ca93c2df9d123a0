"""Acquisition over sharded feature files on Ray Data, for pools past one machine's memory.

Each shard is a .npy of f32[n_s * R, D]: whole prompts, responses in order (the layout
`aeuf embed` writes, cut into files). Workers (aeuf.backends.ray_runner.score_shards) memory-
map their row range, score it with the ensemble's K members, form the belief of those prompts
(aeuf.head.ensemble.belief_from_samples) and apply the acquisition rule: only one choice per
prompt (k indices and a score) travels back. The rules are per-prompt, so a deterministic
rule (deltaucb, infomax, maxminlcb, ...) chooses exactly what it chooses in one process;
a sampling rule (dts, drts) draws from `seed` folded with the chunk's first prompt, so its
draws differ from a one-process run's (the same distribution, other draws).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import numpy as np

from aeuf.acquire import make_rule
from aeuf.backends import ray_runner
from aeuf.config import AcquireConfig
from aeuf.errors import InputError
from aeuf.head import mlp
from aeuf.head.ensemble import belief_from_samples
from aeuf.types import Choice


def choose_block(acfg: AcquireConfig, num_responses: int, k: int, seed: int, params,
                 x: np.ndarray, first_row: int = 0) -> np.ndarray:
    """One chunk of whole prompts, x f32[n * R, D] -> f32[n * R, k + 1]: each response row
    carries its prompt's choice (k response indices, then the rule's score)."""
    samples = np.asarray(jax.vmap(mlp.rewards, in_axes=(0, None))(params, x))  # [K, n * R]
    belief = belief_from_samples(samples.reshape(samples.shape[0], -1, num_responses))
    key = jax.random.fold_in(jax.random.key(seed), first_row // num_responses)
    choice = make_rule(acfg).select(belief, x.reshape(-1, num_responses, x.shape[1]), key=key,
                                    k=k)
    rows = np.concatenate([np.asarray(choice.idx, np.float32),
                           np.asarray(choice.score, np.float32)[:, None]], axis=1)
    return np.repeat(rows, num_responses, axis=0)


def choose_on_shards(paths: Sequence[str | Path], params, acfg: AcquireConfig, *,
                     num_responses: int, k: int = 2, seed: int = 0, workers: int = 2,
                     chunk_prompts: int = 8192, address: str | None = None) -> Choice:
    """The rule's choice for every prompt of the shards (in shard order, then row order):
    -> Choice(idx int32 [P, k], score f32 [P]). params: the ensemble's stacked members
    (EnsembleState.params). InputError if a shard does not hold whole prompts."""
    for p in paths:
        rows = np.load(p, mmap_mode="r").shape[0]
        if rows % num_responses:
            raise InputError(f"{p}: {rows} rows is not a whole number of prompts of "
                             f"{num_responses} responses; cut shards at prompt boundaries")
    fn = partial(_choose_rows, acfg, num_responses, k, seed)
    out = ray_runner.score_shards(paths, fn, params, workers=workers,
                                  chunk_rows=chunk_prompts * num_responses, address=address,
                                  with_offset=True)
    first = out[::num_responses]
    return Choice(first[:, :k].astype(np.int32), first[:, k].astype(np.float32))


def _choose_rows(acfg, num_responses, k, seed, params, x, offset):
    return choose_block(acfg, num_responses, k, seed, params, x, offset)
