"""`aeuf POOL ... --ray ADDRESS|auto`: each round's choice made on a Ray cluster.

The run layer injects this as the round engine's "where to choose" (Context.where), so the
pure round step never imports Ray. What runs where:

    driver   read the pool, the features (once, then written as shards), the ledger and the
             judge calls, the fit (on the compared rows), the prompt selection, the export
    workers  each shard's rows: the ensemble's K members' rewards, the belief of those
             prompts and the rule's choice (aeuf.run.jobs.sharded on Ray Data); only each
             prompt's k indices and score travel back

The shards live in the run folder (shards/<digest>/NNNNN.npy, f32[n * R, D], whole prompts),
written once and reused on resume: every node must see the run folder at the same path.
A round the workers cannot take (no head yet, a model-free rule, a tie-aware rule, a rule
that needs the members' embedding, a pair mask in a later pass or from unusable responses)
is chosen in the driver's process, as without --ray.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from aeuf.backends import ray_runner
from aeuf.config import RunConfig
from aeuf.errors import ConfigError
from aeuf.run.jobs import sharded
from aeuf.types import Choice

DIGEST_BLOCK = 1 << 24  # bytes hashed per step
TASK_PROMPTS = 4096  # prompts per worker task: a worker's memory is ~0.2 GB + 0.15 MB each


class Shards(NamedTuple):
    """Where the workers choose: the feature shards and the cluster to run on."""

    paths: tuple[str, ...]
    address: str | None
    workers: int
    chunk_prompts: int


def check(cfg: RunConfig) -> None:
    """Before anything is written: ConfigError for a --ray run the workers cannot score, or
    a cluster that cannot be joined (joined now)."""
    if cfg.cluster.ray is None:
        return
    if cfg.head.name != "ensemble":
        raise ConfigError(f"--ray scores the ensemble head's members on the workers; --head "
                          f"{cfg.head.name} runs in one process: drop --ray or use --head ensemble")
    connect(address_of(cfg))


def address_of(cfg: RunConfig) -> str | None:
    return None if cfg.cluster.ray == "auto" else cfg.cluster.ray


def where_of(cfg: RunConfig, run_dir: Path, features: np.ndarray):
    """Context.where for this run: None without --ray, else the Ray chooser over the shards
    of `features` f32[P, R, D] (written to run_dir/shards unless already there)."""
    if cfg.cluster.ray is None:
        return None
    address = address_of(cfg)
    connect(address)  # joined already by check(): a no-op
    paths = write_shards(Path(run_dir) / "shards", features, cfg.cluster.shard_prompts)
    return partial(choose, Shards(tuple(paths), address, cfg.cluster.ray_workers,
                                  min(cfg.cluster.shard_prompts, TASK_PROMPTS)))


def connect(address: str | None) -> None:
    """Join the cluster now, so a wrong address fails before the first round (one line;
    a closed HOST:PORT is refused at once, where Ray would retry for minutes)."""
    host, _, port = (address or "").rpartition(":")
    if host and port.isdigit() and "://" not in address:
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
        except OSError as err:
            raise ConfigError(f"--ray {address}: nothing answers there ({err.strerror or err}); "
                              "start the cluster with `ray start --head` or pass its "
                              "address") from None
    try:
        ray_runner.connect(address)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f"--ray {address or 'auto'}: cannot join the Ray cluster ({err}); "
                          "start it with `ray start --head` or pass its address") from None


def takes(ctx, state, name: str, rule, valid) -> bool:
    """Whether the workers can make this round's choice exactly as one process would."""
    return (valid is None and state.belief is not None and rule is ctx.rules.get(name)
            and rule.needs_belief and not rule.needs_embed
            and hasattr(state.head_state, "params"))


def choose(shards: Shards, ctx, state, name: str, rule, key, valid) -> Choice | None:
    """The rule's choice for every prompt, made on the workers from the head's members; None
    for a round the workers do not take (the engine then chooses in this process)."""
    if not takes(ctx, state, name, rule, valid):
        return None
    seed = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
    params = jax.tree_util.tree_map(np.asarray, state.head_state.params)
    return sharded.choose_on_shards(
        shards.paths, params, dataclasses.replace(ctx.cfg.acquire, rule=name),
        num_responses=ctx.features.shape[1], k=ctx.cfg.acquire.num_annotations, seed=seed,
        workers=shards.workers, chunk_prompts=shards.chunk_prompts, address=shards.address)


def digest(features: np.ndarray) -> str:
    """Content hash of the features (shape, dtype and values), read in blocks."""
    h = hashlib.blake2b(json.dumps([list(features.shape), str(features.dtype)]).encode(),
                        digest_size=12)
    flat = features.reshape(-1)
    step = max(1, DIGEST_BLOCK // max(1, flat.itemsize))
    for a in range(0, flat.size, step):
        h.update(np.ascontiguousarray(flat[a:a + step]).tobytes())
    return h.hexdigest()


def write_shards(root: Path, features: np.ndarray, shard_prompts: int) -> list[str]:
    """features [P, R, D] as .npy shards of at most `shard_prompts` whole prompts, f32
    [n * R, D] each, under root/<digest>/ (written to a temporary folder, then renamed:
    a crash leaves no half shard set); an existing set is reused."""
    num_p, num_r, dim = features.shape
    folder = root / f"{digest(features)}-{shard_prompts}"
    if not folder.is_dir():
        tmp = root / f".tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for s, a in enumerate(range(0, num_p, shard_prompts)):
            x = np.asarray(features[a:a + shard_prompts], np.float32).reshape(-1, dim)
            np.save(tmp / f"{s:05d}.npy", x)
        os.replace(tmp, folder)
    return shard_paths(folder)


def shard_paths(folder: Path) -> list[str]:
    return [str(p.resolve()) for p in sorted(folder.glob("*.npy"))]
