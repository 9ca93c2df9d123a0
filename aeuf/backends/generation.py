"""Generation back-ends behind one Protocol, picked by name; each imported only when used.

| name           | module                             | needs                                  |
|----------------|------------------------------------|----------------------------------------|
| `transformers` | aeuf.backends.gen_transformers     | torch, transformers (+ gguf for .gguf) |
| `openai`       | aeuf.backends.gen_openai           | openai; any OpenAI-compatible server   |
| `vllm`         | aeuf.backends.gen_vllm             | vllm (GPU), `pip install 'aeuf[gpu]'`  |

A back-end answers all requests of ONE model per call (`requests` share `path`): the caller
loads one model at a time. Results are yielded as they finish, in any order; each carries
its request's key, so the caller can store it at once. `check(path)` says, before anything is
written, whether a model is available. Back-ends never write environment variables.
`aeuf.backends.gen_ray.RayBackend` runs any of them on Ray Data replicas.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from aeuf.config import GenerateConfig
from aeuf.registry import Registry
from aeuf.types import Generation, GenRequest


class GenerationBackend(Protocol):
    """check(path): ConfigError in one line (which model, why, what to do) unless `path` is
    available, without generating anything (called for every model before a run writes);
    generate(path, requests) -> iterator of Generation (one per request, any order, each
    yielded as soon as it is finished)."""

    def check(self, path: str) -> None: ...

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]: ...

    def close(self) -> None: ...


BACKENDS: Registry[Callable[[GenerateConfig], GenerationBackend]] = Registry("generation backend")


def _lazy(module: str, cls: str) -> Callable[[GenerateConfig], GenerationBackend]:
    def make(cfg: GenerateConfig) -> GenerationBackend:
        return getattr(importlib.import_module(module), cls)(cfg)

    return make


BACKENDS.register("transformers")(_lazy("aeuf.backends.gen_transformers", "TransformersBackend"))
BACKENDS.register("openai")(_lazy("aeuf.backends.gen_openai", "OpenAIBackend"))
BACKENDS.register("vllm")(_lazy("aeuf.backends.gen_vllm", "VLLMBackend"))


def make_backend(cfg: GenerateConfig) -> GenerationBackend:
    """The back-end named by cfg.backend (ConfigError listing the names if unknown)."""
    return BACKENDS.get(cfg.backend)(cfg)
