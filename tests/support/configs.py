"""Test helper: build configs from flat keyword arguments (endpoint keys go to the endpoint)."""

import dataclasses

from aeuf.config import EndpointConfig, GenerateConfig, OracleConfig

ENDPOINT = {f.name for f in dataclasses.fields(EndpointConfig)}
ALIASES = {"judge_base_url": "base_url", "judge_model": "model"}


def _split(kw: dict) -> tuple[dict, dict]:
    kw = {ALIASES.get(k, k): v for k, v in kw.items()}
    return ({k: v for k, v in kw.items() if k not in ENDPOINT},
            {k: v for k, v in kw.items() if k in ENDPOINT})


def oracle_config(**kw) -> OracleConfig:
    """OracleConfig(name=..., base_url=..., model=..., concurrency=..., template=...)."""
    rest, endpoint = _split(kw)
    return OracleConfig(**rest, judge=EndpointConfig(**endpoint))


def generate_config(**kw) -> GenerateConfig:
    """GenerateConfig(backend=..., base_url=..., retries=..., ...)."""
    rest, endpoint = _split(kw)
    return GenerateConfig(**rest, endpoint=EndpointConfig(**{"timeout": 300.0, **endpoint}))
