"""Generation and hidden-state features on Ray Data, from one machine to a cluster.

`RayBackend` has the GenerationBackend interface: it ships the requests of one model to
`map_batches` workers, each holding one replica of the model (any registered back-end:
vllm / transformers / openai), and yields Generations on the driver as batches finish, so
`aeuf.run.gen_run` writes the same run directory as without Ray. `encode` does the same for
hidden-state features (reachable as `--llm_encoder ray:<model>`).

Connects to `cfg.ray_address`, else RAY_ADDRESS, else starts a local instance.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np

from aeuf.backends import hidden_states, require
from aeuf.config import GenerateConfig, from_dict, to_dict
from aeuf.types import Generation, GenRequest

REQUEST_FIELDS = [f.name for f in dataclasses.fields(GenRequest)]
# GPUs each replica asks Ray for, per back-end
GPUS_PER_REPLICA = {
    "vllm": lambda cfg, gpus: float(cfg.tensor_parallel_size),
    "transformers": lambda cfg, gpus: 1.0 if gpus else 0.0,
    "openai": lambda cfg, gpus: 0.0,
}


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


class _GenWorker:
    """One model replica in a Ray actor: batch of request columns -> result columns."""

    def __init__(self, cfg: dict, path: str) -> None:
        from aeuf.backends.generation import make_backend

        self.backend = make_backend(from_dict(GenerateConfig, {**cfg, "ray": False}))
        self.path = path

    def __call__(self, batch: dict) -> dict:
        reqs = [GenRequest(**{k: _plain(batch[k][i]) for k in REQUEST_FIELDS})
                for i in range(len(batch["key"]))]
        gens = list(self.backend.generate(self.path, reqs))
        return {f: np.asarray([_or_empty(getattr(g, f)) for g in gens], dtype=object)
                for f in Generation._fields}


class RayBackend:
    """GenerationBackend that fans the requests of one model out over Ray Data replicas."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.cfg, self.ray = cfg, connect(cfg.ray_address)
        gpus = cluster_gpus(self.ray)
        self.replicas = replicas(cfg.ray_replicas, gpus)
        self.gpus = GPUS_PER_REPLICA[cfg.backend](cfg, gpus)

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request as the replicas finish their batches."""
        rows = [dataclasses.asdict(r) for r in requests]
        ds = self.ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 4 * self.replicas)))
        out = ds.map_batches(
            _GenWorker, fn_constructor_kwargs={"cfg": to_dict(self.cfg), "path": path},
            batch_size=self.cfg.batch_size, concurrency=self.replicas, num_gpus=self.gpus,
            batch_format="numpy",
        )
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            for i in range(len(batch["key"])):
                g = {f: _plain(batch[f][i]) for f in Generation._fields}
                yield Generation(**{**g, "error": g["error"] or None})

    def close(self) -> None:
        """Leave the Ray instance running for the next model or command."""


class _FeatureWorker:
    def __init__(self, model: str, batch_size: int, max_length: int) -> None:
        self.args = (model, batch_size, max_length)

    def __call__(self, batch: dict) -> dict:
        model, bs, ml = self.args
        feats = hidden_states.encode(list(batch["text"]), model, batch_size=bs, max_length=ml)
        return {"i": batch["i"], "x": feats}


def encode(texts: list[str], model: str, *, batch_size: int = 32, max_length: int = 256,
           replicas_wanted: int | None = None, address: str | None = None) -> np.ndarray:
    """Hidden-state features of N texts over Ray replicas -> f32[N, H] in input order."""
    ray = connect(address)
    gpus = cluster_gpus(ray)
    ds = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
    out = ds.map_batches(
        _FeatureWorker, fn_constructor_kwargs={"model": model, "batch_size": batch_size,
                                               "max_length": max_length},
        batch_size=batch_size, concurrency=replicas(replicas_wanted, gpus),
        num_gpus=1.0 if gpus else 0.0, batch_format="numpy",
    )
    parts = list(out.iter_batches(batch_size=None, batch_format="numpy"))
    idx = np.concatenate([p["i"] for p in parts])
    feats = np.concatenate([np.asarray(p["x"], np.float32) for p in parts])
    result = np.empty_like(feats)
    result[idx] = feats
    return result


def _plain(value):
    """numpy scalars -> Python scalars (JSON-able, hashable)."""
    return value.item() if isinstance(value, np.generic) else value


def _or_empty(value):
    return "" if value is None else value
