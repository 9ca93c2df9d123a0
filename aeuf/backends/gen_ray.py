"""Generation on Ray Data replicas: any registered back-end, one model replica per actor.

`RayBackend` has the GenerationBackend interface: it ships the requests of one model through
`ray_runner.fan_out` to actors that each hold one replica of the model (vllm / transformers /
openai) and yields Generations on the driver as the replicas finish them (each response
travels as its own block, at most one response behind its worker), so
`aeuf.run.jobs.gen_run` writes the same run directory as without Ray. Models are checked in a
Ray task (where the replicas run: their hub cache, their GPUs), not on the driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from aeuf.backends import ray_runner
from aeuf.config import GenerateConfig, from_dict, to_dict
from aeuf.types import Generation, GenRequest

REQUEST_FIELDS = [f.name for f in dataclasses.fields(GenRequest)]
# GPUs each replica asks Ray for, per back-end
GPUS_PER_REPLICA = {
    "vllm": lambda cfg, gpus: float(cfg.tensor_parallel_size),
    "transformers": lambda cfg, gpus: 1.0 if gpus else 0.0,
    "openai": lambda cfg, gpus: 0.0,
}


def _inner(cfg: dict):
    """The wrapped back-end, built where it runs (a Ray worker)."""
    from aeuf.backends.generation import make_backend

    return make_backend(from_dict(GenerateConfig, {**cfg, "ray": False}))


def _check(cfg: dict, path: str) -> None:
    _inner(cfg).check(path)


class GenWorker:
    """One model replica in a Ray actor: a batch of request columns -> one Generation row per
    finished response, yielded as the wrapped back-end yields it (streamed to the driver)."""

    def __init__(self, cfg: dict, path: str) -> None:
        self.backend, self.path = _inner(cfg), path

    def __call__(self, batch: dict) -> Iterator[dict]:
        reqs = [GenRequest(**{k: _plain(batch[k][i]) for k in REQUEST_FIELDS})
                for i in range(len(batch["key"]))]
        for g in self.backend.generate(self.path, reqs):
            yield {f: np.asarray([_or_empty(getattr(g, f))], dtype=object) for f in Generation._fields}


class RayBackend:
    """GenerationBackend that fans the requests of one model out over Ray Data replicas."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.cfg, ray = cfg, ray_runner.connect(cfg.ray_address)
        gpus = ray_runner.cluster_gpus(ray)
        self.replicas = ray_runner.replicas(cfg.ray_replicas, gpus)
        self.gpus = GPUS_PER_REPLICA[cfg.backend](cfg, gpus)

    def check(self, path: str) -> None:
        """The wrapped back-end's check, run in a Ray task that asks for a replica's GPUs."""
        ray_runner.run_once(_check, to_dict(self.cfg), path, gpus=self.gpus,
                            address=self.cfg.ray_address)

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request as the replicas finish their batches."""
        rows = [dataclasses.asdict(r) for r in requests]
        init = {"cfg": to_dict(self.cfg), "path": path}
        for batch in ray_runner.fan_out(GenWorker, rows, init=init, batch_size=self.cfg.batch_size,
                                        num_replicas=self.replicas, gpus=self.gpus,
                                        stream=True, address=self.cfg.ray_address):
            for i in range(len(batch["key"])):
                g = {f: _plain(batch[f][i]) for f in Generation._fields}
                yield Generation(**{**g, "error": g["error"] or None})

    def close(self) -> None:
        """Leave the Ray instance running for the next model or command."""


def _plain(value):
    """numpy scalars -> Python scalars (JSON-able, hashable)."""
    return value.item() if isinstance(value, np.generic) else value


def _or_empty(value):
    return "" if value is None else value
