"""One frozen, keyword-only dataclass per stage; unknown keys are errors.

`RunConfig` gathers them and is what `config.json` in a run directory holds (never secrets:
API keys are read from the environment variable named by `OracleConfig.api_key_env`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from aeuf.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    path: str
    num_responses: int | None = None  # first N responses per prompt (AEPO); None = all
    num_instructions: int | None = None  # first N prompts (AEPO); None = all
    prompt_column: str | None = None  # None: "prompt" or "instruction"


@dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    features: str = "minilm+stats"  # parts joined by "+": minilm, stats, model, llm, file
    encoder: str = "all-MiniLM-L6-v2"  # sentence-transformers name or path; packaged default
    llm_encoder: str | None = None  # causal LM for the "llm" part (hidden states)
    precomputed: str | None = None  # .npy (+ ids file) / parquet / save_to_disk folder
    batch_size: int = 32
    max_length: int = 256


@dataclass(frozen=True, kw_only=True)
class HeadConfig:
    name: str = "ensemble"
    members: int = 16  # K
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 1e-3
    anchor: float = 1.0  # lambda of the anchored regulariser (scaled by B/M)
    center: float = 0.0  # c of c * mean(r)^2
    warm_start: bool = True
    prior_precision: float = 1.0  # bll: lambda of H = lambda I + sum p(1-p) z z^T
    newton_steps: int = 5  # bll
    max_dim: int = 1024  # bll: project features above this down first


@dataclass(frozen=True, kw_only=True)
class AcquireConfig:
    rule: str = "dts"
    num_annotations: int = 2  # k responses per prompt shown to the oracle
    beta: float = 1.0  # UCB/LCB width
    aepo_lambda: float = 1.0
    prompt_beta: float = 0.01  # BAL-PM entropy weight for prompt selection
    knn_k: int = 13


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    budget: int | None = None  # total labelled prompts; None = every prompt once
    batch_size: int | None = None  # prompts per round; None = about a quarter of the budget
    initial_batch: int | None = None  # first round's size; None = batch_size
    initial_rule: str = "aepo"
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class OracleConfig:
    name: str = "auto"  # auto, replay, judge, batch, local, human, none
    label_mode: str = "deterministic"  # replay: deterministic, bernoulli or soft
    judge_base_url: str | None = None
    judge_model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    template: str = "overall"  # overall, ultrafeedback, pairwise, or a file path
    concurrency: int = 4
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float = 60.0
    retries: int = 5
    temperature: float = 0.0
    max_tokens: int = 256
    max_cost: float | None = None
    max_requests: int | None = None
    price_per_1k_input: float = 0.0
    price_per_1k_output: float = 0.0
    logprobs: bool = True  # judge: ask for log-probs (rating = expectation over "1".."5")
    batch_shard_size: int = 1000  # batch: requests per uploaded shard
    batch_poll_seconds: float = 30.0  # batch: seconds between polls of a running batch
    local_model: str | None = None  # local: GGUF path; None = the packaged SmolLM2-135M


@dataclass(frozen=True, kw_only=True)
class GenerateConfig:
    models: tuple[str, ...] = ()
    backend: str = "transformers"  # transformers, openai, vllm
    num_responses: int = 4
    include_model: tuple[str, ...] = ()
    exclude_model: tuple[str, ...] = ()
    one_side_model: str | None = None
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    tensor_parallel_size: int = 1
    ray: bool = False
    batch_size: int = 16  # transformers: sequences per generate call
    ray_address: str | None = None  # None: RAY_ADDRESS, else a local instance
    ray_replicas: int | None = None  # model replicas under --ray; None: one per GPU (1 on CPU)
    retries: int = 5  # openai: retries per request (transport faults, 429, 5xx)
    timeout: float = 300.0  # openai: seconds per request


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    output_dir: str | None = None  # None: runs/<input name>
    west_of_n: bool = False
    all_pairs: bool = False
    push_to_hub: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    input: InputConfig
    features: FeatureConfig = field(default_factory=FeatureConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    acquire: AcquireConfig = field(default_factory=AcquireConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build `cls` from a dict, recursing into nested configs; unknown keys are errors."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}")
    kwargs = {}
    for name, value in data.items():
        sub = _NESTED.get(name) if cls is RunConfig else None
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_NESTED = {
    "input": InputConfig,
    "features": FeatureConfig,
    "head": HeadConfig,
    "acquire": AcquireConfig,
    "loop": LoopConfig,
    "oracle": OracleConfig,
    "export": ExportConfig,
}
