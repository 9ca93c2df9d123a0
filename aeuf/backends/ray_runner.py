"""A generic fan-out on Ray Data, from one machine to a cluster.

`fan_out` maps a picklable per-batch worker class over rows with N replicas (actors) and
yields its output batches on the driver as they finish. Used by generation
(`aeuf.backends.gen_ray`), hidden-state features (`hidden_states`, `--llm_encoder ray:MODEL`)
and `score_shards`, which scores sharded feature files (.npy, f32[n, D]) with any pure
function: the reward head's per-member rewards, an acquisition score.

This module knows nothing of what its workers compute: it imports no other back-end.
Connects to `address`, else RAY_ADDRESS, else starts a local instance.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aeuf.backends import require
from aeuf.errors import AeufError, InputError


def connect(address: str | None = None, num_cpus: int | None = None):
    """The ray module, initialised: `address`, else RAY_ADDRESS, else a local instance."""
    ray = require("ray", extra="ray")
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        kw = {"address": address} if address else {"num_cpus": num_cpus}
        ray.init(include_dashboard=False, log_to_driver=False, **kw)
    return ray


def cluster_gpus(ray) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def replicas(wanted: int | None, gpus: int) -> int:
    """Model replicas: `wanted`, else one per GPU, else 1."""
    return max(1, wanted or gpus or 1)


def fan_out(worker: type, rows: Sequence[dict], *, init: dict | None = None,
            batch_size: int = 16, num_replicas: int | None = None, gpus: float | None = None,
            stream: bool = False, address: str | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Output batches of `worker` over `rows`, in completion order.

    worker: a picklable class; `worker(**init)` is built once per replica (load a model there)
            and called on batches {column: array[b]} of at most `batch_size` rows; it returns
            (or yields) {column: array[b']}. Put an index column in the rows to restore order.
    num_replicas: actors (default: one per GPU in the cluster, else 1)
    gpus: GPUs per replica (default: 1 when the cluster has GPUs, else 0)
    stream: every output a worker yields travels to the driver as its own block (as soon as
            the worker yields the next one or ends), instead of being bundled with the rest
            of its batch's outputs; for workers that yield small results slowly.
    """
    if not rows:
        return
    ray = connect(address)
    n_gpus = cluster_gpus(ray)
    n = replicas(num_replicas, n_gpus)
    ctx = ray.data.DataContext.get_current()
    bundled = ctx.target_max_block_size
    ctx.target_max_block_size = 1 if stream else bundled  # a Dataset keeps the context it was made in
    try:
        ds = ray.data.from_items(list(rows), override_num_blocks=max(1, min(len(rows), 4 * n)))
        out = ds.map_batches(
            worker, fn_constructor_kwargs=init or {}, batch_size=max(1, batch_size), concurrency=n,
            num_gpus=(1.0 if n_gpus else 0.0) if gpus is None else gpus, batch_format="numpy",
        )
    finally:
        ctx.target_max_block_size = bundled
    yield from out.iter_batches(batch_size=None, batch_format="numpy")


def run_once(fn: Callable, *args, gpus: float = 0.0, address: str | None = None) -> Any:
    """fn(*args) in one Ray task, where the workers run; an AeufError raised there (a one-line
    message for the user) is raised here as it is."""
    ray = connect(address)
    try:
        return ray.get(ray.remote(num_gpus=gpus)(fn).remote(*args))
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, AeufError):
            raise cause from None
        raise


def shard_rows(paths: Sequence[str | os.PathLike]) -> list[int]:
    """Rows of each .npy shard (header only); InputError unless all are f32[n, D], one D."""
    shapes = []
    for p in paths:
        try:
            x = np.load(p, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise InputError(f"{p}: not a readable .npy feature shard ({err})") from None
        if x.ndim != 2 or (shapes and x.shape[1] != shapes[0][1]):
            raise InputError(f"{p}: shape {x.shape}, expected [n, {shapes[0][1] if shapes else 'D'}]"
                             " like the other shards")
        shapes.append(x.shape)
    return [s[0] for s in shapes]


def shard_tasks(sizes: Sequence[int], chunk_rows: int) -> list[dict]:
    """Row ranges of at most `chunk_rows`: {shard, start, stop, offset (global first row)}."""
    tasks, offset = [], 0
    for s, n in enumerate(sizes):
        for a in range(0, n, chunk_rows):
            b = min(n, a + chunk_rows)
            tasks.append({"shard": s, "start": a, "stop": b, "offset": offset + a})
        offset += n
    return tasks


class ShardScorer:
    """One scoring replica: row ranges of the shards -> {row: i64[n], y: fn(params, x)[n, ...]}."""

    def __init__(self, paths: list[str], fn: Callable, params: Any,
                 with_offset: bool = False) -> None:
        self.paths, self.fn, self.params, self.with_offset = paths, fn, params, with_offset

    def __call__(self, batch: dict) -> dict:
        rows, ys = [], []
        for s, a, b, off in zip(batch["shard"], batch["start"], batch["stop"], batch["offset"],
                                strict=True):
            x = np.asarray(np.load(self.paths[int(s)], mmap_mode="r")[int(a):int(b)], np.float32)
            extra = (int(off),) if self.with_offset else ()
            ys.append(np.asarray(self.fn(self.params, x, *extra)))
            rows.append(np.arange(int(off), int(off) + len(x)))
        return {"row": np.concatenate(rows), "y": np.concatenate(ys)}


def score_shards(paths: Sequence[str | os.PathLike], fn: Callable, params: Any, *,
                 workers: int = 2, chunk_rows: int = 65536, address: str | None = None,
                 with_offset: bool = False) -> np.ndarray:
    """fn(params, x) over every row of every shard on Ray Data with `workers` replicas.

    paths: .npy shards, each f32[n_s, D] (read as memory maps by the workers: on a cluster,
           a path every node sees); fn: pure, picklable, x f32[n, D] -> [n, ...] per row;
           with_offset: call fn(params, x, first_row) with the chunk's global first row.
    Returns the per-row outputs [sum n_s, ...] in shard order, then row order.
    """
    paths = [str(Path(p).resolve()) for p in paths]
    sizes = shard_rows(paths)
    out, filled = None, 0
    init = {"paths": paths, "fn": fn, "params": params, "with_offset": with_offset}
    for b in fan_out(ShardScorer, shard_tasks(sizes, max(1, chunk_rows)), init=init,
                     batch_size=1, num_replicas=workers, gpus=0.0, address=address):
        y = np.asarray(b["y"])
        if out is None:
            out = np.empty((sum(sizes), *y.shape[1:]), y.dtype)
        out[b["row"]] = y
        filled += len(y)
    if filled != sum(sizes):
        raise RuntimeError(f"score_shards: {filled} of {sum(sizes)} rows came back")
    return np.zeros((0,), np.float32) if out is None else out
