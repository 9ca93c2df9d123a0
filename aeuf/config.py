"""One frozen, keyword-only dataclass per stage; unknown keys are errors.

Every field carries its command-line help (`opt(default, help)`): the CLI is generated from
these dataclasses, so a flag's name, type, default and help live in one place. A nested
config (`sub(...)`) becomes a group of flags with a prefix (the judge's endpoint flags are
`--judge_base_url`, `--judge_model`, ...).

`RunConfig` gathers them and is what `config.json` in a run directory holds (never secrets:
API keys are read from the environment variable named by `EndpointConfig.api_key_env`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from aeuf.errors import ConfigError


def opt(default: Any, help: str, *, flag: str | None = None, cli: bool = True,
        choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its help text. flag: the command-line name when it differs from the
    field's; cli=False: settable only from a --config file; choices: the valid values."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli,
                                            "choices": choices})


def sub(cls: type, help: str, *, prefix: str = "", hide: tuple[str, ...] = (),
        **defaults: Any) -> Any:
    """A nested config field; its flags get `prefix`, fields in `hide` get none, and
    `defaults` override the class's."""
    return field(default_factory=lambda: cls(**defaults),
                 metadata={"help": help, "prefix": prefix, "nested": cls, "defaults": defaults,
                           "hide": hide})


@dataclass(frozen=True, kw_only=True)
class InputConfig:
    path: str = opt("", "prompts or pool file (CSV/TSV/JSONL/JSON/parquet), save_to_disk folder "
                        "or hub dataset id", cli=False)
    num_responses: int | None = opt(None, "use the first N responses of each prompt (default: "
                                          "the most common number); prompts with fewer are "
                                          "skipped and counted")
    num_instructions: int | None = opt(None, "use the first N prompts")
    prompt_column: str | None = opt(None, "prompt column (default: prompt or instruction, else "
                                          "a messages/conversations column)")


@dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    features: str = opt("minilm+stats", "feature parts joined by '+': minilm, stats, model, "
                                        "llm, file")
    encoder: str = opt("all-MiniLM-L6-v2", "sentence-transformers model name or path "
                                           "(default: the packaged MiniLM)")
    llm_encoder: str | None = opt(None, "causal LM for the 'llm' feature part (hidden states)")
    rm_encoder: str | None = opt(None, "reward model for the 'rm' feature part: its last hidden "
                                       "state, which its reward head reads (default: "
                                       "--reward_model)")
    precomputed: str | None = opt(None, "precomputed features for the 'file' part (.npy with "
                                        "ids, parquet or save_to_disk folder)")
    batch_size: int = opt(32, "texts per encoder batch", flag="embed_batch_size")
    max_length: int = opt(256, "encoder tokens per text", flag="embed_max_length")
    dtype: str = opt("auto", "how the composed features are held in memory: float32, float16 "
                             "(half the memory; heads still compute in float32) or auto "
                             "(float16 from 2^30 values, about 4 GB in float32)",
                     flag="feature_dtype", choices=("auto", "float32", "float16"))
    group_scale: str = opt("none", "weight of each feature part after standardising: none "
                                   "(every column alike) or equal (each part the same total "
                                   "weight, so 11 stats columns count as much as 384 MiniLM "
                                   "ones)", choices=("none", "equal"))


@dataclass(frozen=True, kw_only=True)
class HeadConfig:
    name: str = opt("ensemble", "reward head: ensemble or bll", flag="head")
    members: int = opt(16, "ensemble members / posterior samples K")
    hidden: tuple[int, ...] = opt((128, 128), "ensemble hidden layer widths, e.g. 128,128")
    epochs: int = opt(20, "training epochs per fit (see --min_steps and --max_steps)")
    min_steps: int = opt(300, "ensemble: at least this many optimiser steps per fit (epochs "
                              "are added until reached; few labels train full-batch)")
    max_steps: int | None = opt(4096, "ensemble: at most about this many optimiser steps per "
                                      "fit: epochs are cut (to one at least) once the labels "
                                      "pass ~50k, so a fit's cost stops growing with epochs "
                                      "x labels on a large pool (none: no cap)")
    batch_size: int = opt(256, "comparisons per optimiser step", flag="head_batch_size")
    learning_rate: float = opt(1e-3, "head learning rate")
    anchor: float = opt(0.03, "ensemble: strength of the anchor prior: each member fits "
                              "sum NLL + anchor * sum_l s_l ||w_l - w0_l||^2 (any batch "
                              "size; s_l from --anchor_prior)")
    anchor_prior: str = opt("init", "ensemble: 'init' weighs each layer's anchor term by the "
                                    "precision its init was drawn from (fan_in / gain), so "
                                    "--anchor 1 is that prior; 'uniform' weighs all weights 1",
                            choices=("init", "uniform"))
    center: float = opt(0.0, "reward-centring weight c of c*mean(r)^2")
    warm_start: bool = opt(True, "start each fit from the previous round's head")
    prior_precision: float = opt(1.0, "bll: prior precision lambda of H = lambda*I + sum "
                                      "p(1-p) z z^T (the start value unless --bll_prior fixed)")
    prior: str = opt("evidence", "bll: 'evidence' sets lambda by maximising the Laplace "
                                 "marginal likelihood at every fit (per --prior_groups "
                                 "block), 'ard' one lambda per weight, 'fixed' keeps "
                                 "--prior_precision", flag="bll_prior",
                     choices=("evidence", "ard", "fixed"))
    prior_groups: tuple[int, ...] = opt((), "bll: sizes of consecutive feature blocks that "
                                            "get their own evidence-chosen prior precision, "
                                            "e.g. 384,11,16 (empty: one block)")
    newton_steps: int = opt(50, "bll: at most this many Newton steps per fit (it stops "
                                "earlier once converged)")
    max_dim: int = opt(1024, "bll: project features above this dimension down first")


# --goal -> the rule it selects when --rule is not given (evidence: BENCHMARKS.md, "Win where
# it is measured"); aeuf.acquire holds the rules themselves.
GOAL_RULES = {"dpo": "dts", "rm": "rm_mix"}


@dataclass(frozen=True, kw_only=True)
class AcquireConfig:
    goal: str = opt("dpo", "what the pairs are for: dpo (clean pairs with a large quality "
                           "gap, for DPO-style training) or rm (pairs across the ranking that "
                           "teach a reward model); sets --rule unless it is given",
                    choices=tuple(GOAL_RULES))
    rule: str | None = opt(None, "acquisition rule (dts, drts, infogain, deltaucb, "
                                 "deltaquantile, maxminlcb, infomax, infomax_bald, rm_mix, "
                                 "doptimal, doptimal_past, random, ultrafeedback, west_of_n, "
                                 "aepo); default: the --goal's")
    num_annotations: int = opt(2, "responses per prompt sent to the oracle (2 = a pair)")
    beta: float = opt(1.0, "UCB/LCB width")
    quantile: float = opt(0.05, "deltaquantile: centre of the rank window, as a fraction of a "
                                "prompt's pairs sorted by UCB_i - LCB_j from the largest "
                                "(0 = deltaucb's pair)")
    quantile_epsilon: float = opt(0.0, "deltaquantile: half-width of that window; the pair "
                                       "in it with the highest-UCB first arm is taken")
    doptimal_lambda: float = opt(1.0, "doptimal: prior precision lambda of the design A = "
                                      "lambda I (doptimal_past: when the head gives no "
                                      "precision)")
    doptimal_greedy: int = opt(256, "doptimal_past: prompts chosen greedily with A updated "
                                     "after each pick; the rest are scored under the final A")
    tie_margin: float | None = opt(None, "tie-aware choice: skip pairs the head predicts to "
                                         "get the same rating with probability above this "
                                         "(e.g. 0.5); none: off")
    rating_step: float | None = opt(None, "tie-aware choice: one step of the judge's rating "
                                          "scale, in reward units (default: read off the "
                                          "labels each round: the step at which the head's "
                                          "predicted tie rate on the judged pairs matches the "
                                          "observed one)")
    mix_random: float = opt(0.5, "rm_mix: share of prompts given a random pair (the rest get "
                                 "the pair the head is least sure how to order)")
    aepo_lambda: float = opt(1.0, "AEPO redundancy weight")
    prompt_selection: str = opt("auto", "how a round picks prompts when it labels fewer than "
                                        "remain: auto (BAL-PM for belief rules, uniform for "
                                        "model-free ones), balpm or random",
                                choices=("auto", "balpm", "random"))
    prompt_beta: float = opt(0.01, "BAL-PM entropy weight for choosing prompts")
    knn_k: int = opt(13, "BAL-PM: neighbours of the kNN entropy estimate")
    knn_exact_max: int | None = opt(20_000, "BAL-PM: exact kNN graph up to this many prompts, "
                                            "an approximate (faiss IVF) index above; none: "
                                            "always exact")

    def __post_init__(self) -> None:
        if self.rule is None:  # the goal's rule (frozen: set once, here)
            object.__setattr__(self, "rule", GOAL_RULES[self.goal])


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    budget: int | None = opt(None, "prompts to label in total (default: every prompt once)")
    batch_size: int | None = opt(None, "prompts labelled per round (default: a quarter of "
                                       "the budget)")
    initial_batch: int | None = opt(None, "prompts in the first, model-free round (default: "
                                           "--batch_size)")
    initial_rule: str = opt("aepo", "model-free rule of the first round")
    seed: int = opt(0, "random seed (every choice of a run derives from it)")
    self_label_accuracy: float | None = opt(None, "let the head label the pairs it is sure of, "
                                                  "where a Clopper-Pearson lower bound of its "
                                                  "accuracy on the pairs the oracle decided in "
                                                  "earlier rounds is at least this, e.g. 0.95; "
                                                  "off by default")
    self_label_delta: float = opt(0.05, "self-labelling: the bound may fail with at most this "
                                        "probability (one-sided Clopper-Pearson level)")
    check_fraction: float = opt(0.1, "share of each round's pairs, drawn at random, sent to "
                                     "the (strong) judge whatever the head or the cheap "
                                     "judge think: keeps checking both")


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """An OpenAI-compatible server: the judge's, a cheap judge's, or generation's."""

    base_url: str | None = opt(None, "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model: str | None = opt(None, "model name at that endpoint")
    api_key_env: str = opt("OPENAI_API_KEY", "environment variable holding the API key "
                                             "(read from the environment, never written)")
    concurrency: int = opt(4, "requests in flight")
    requests_per_minute: float | None = opt(None, "requests-per-minute cap", flag="rpm")
    tokens_per_minute: float | None = opt(None, "tokens-per-minute cap", flag="tpm")
    timeout: float = opt(60.0, "seconds per request")
    retries: int = opt(5, "retries per request (transport faults, 429, 5xx)")
    send_key_to_local: bool = opt(False, "also send the API key to a server on this machine "
                                         "(127.0.0.1, localhost, ::1); by default such a "
                                         "server gets a placeholder key")


@dataclass(frozen=True, kw_only=True)
class RewardModelConfig:
    """`--oracle reward_model`: a sequence-classification reward model as the oracle (AEPO's
    annotator), local in transformers or served over HTTP; also the `rm` feature part."""

    model: str | None = opt(None, "reward model: a transformers folder or hub id (local "
                                  "scoring), or the served model's name with --rm_base_url",
                            flag="reward_model")
    convention: str = opt("auto", "input convention: chat (the conversation in the model's "
                                  "chat template: Skywork-Reward, ArmoRM), pair (prompt and "
                                  "response as a text pair: OpenAssistant DeBERTa) or auto "
                                  "(chat when the tokenizer has a chat template)",
                          flag="rm_convention", choices=("auto", "chat", "pair"))
    batch_size: int = opt(16, "inputs per reward-model batch (batched by token length)",
                          flag="rm_batch_size")
    max_length: int = opt(2048, "reward-model tokens per input: a longer response loses its "
                                "middle, with the judge's visible cut marker",
                          flag="rm_max_length")
    aspect: str = opt("mean", "multi-head reward models: the score is this head's output (a "
                              "label name or index), or the mean of all heads",
                      flag="rm_aspect")
    base_url: str | None = opt(None, "a served reward model: the server's base URL (vLLM "
                                     "pooling / score / classify endpoints)",
                               flag="rm_base_url")
    endpoint: str = opt("pooling", "served reward model: pooling (vLLM /pooling with chat "
                                   "messages), score (/score: prompt and response as a text "
                                   "pair) or classify (/classify on the chat text)",
                        flag="rm_endpoint", choices=("pooling", "score", "classify"))
    timeout: float = opt(60.0, "served reward model: seconds per request, in all",
                         flag="rm_timeout")
    retries: int = opt(4, "served reward model: retries of a failed request",
                       flag="rm_retries")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_length < 16 or self.timeout <= 0 or self.retries < 0:
            raise ConfigError("reward model: --rm_batch_size must be >= 1, --rm_max_length >= 16, "
                              "--rm_timeout > 0 and --rm_retries >= 0")


@dataclass(frozen=True, kw_only=True)
class OracleConfig:
    name: str = opt("auto", "auto, replay, judge, batch, local, reward_model, human or none",
                    flag="oracle")
    label_mode: str = opt("deterministic", "replay: deterministic, bernoulli or soft")
    judge: EndpointConfig = sub(EndpointConfig, "the LLM judge's endpoint", prefix="judge_")
    template: str = opt("overall", "overall, ultrafeedback, pairwise, an aspect, or template "
                                   "file(s), comma-separated", flag="judge_template")
    temperature: float = opt(0.0, "judge sampling temperature", flag="judge_temperature")
    max_tokens: int = opt(256, "judge reply length cap", flag="judge_max_tokens")
    context_tokens: int = opt(8192, "the judge model's context length in tokens: longer "
                                    "responses are cut in the middle (with a visible marker) "
                                    "so the rubric always fits", flag="judge_context")
    answer_format: str = opt("auto", "how the judge answers: json_schema (structured output), "
                                     "json_object (llama-cpp-python's JSON mode), lines (the "
                                     "template's first line, 'Rating: 4'), or auto (the first "
                                     "of these the server accepts)",
                             flag="judge_answer_format",
                             choices=("auto", "json_schema", "json_object", "lines"))
    logprobs: bool = opt(True, "ask the judge for log-probs (rating = expectation over "
                               "'1'..'5')", flag="judge_logprobs")
    retry_unparsable: bool = opt(False, "ask again for paid answers that had no parsable "
                                        "verdict (they are final otherwise)")
    max_cost: float | None = opt(None, "stop cleanly before spending more than this")
    max_requests: int | None = opt(None, "stop cleanly after this many requests")
    price_per_million_input: float = opt(0.0, "USD per 1M prompt tokens", flag="price_in")
    price_per_million_output: float = opt(0.0, "USD per 1M completion tokens",
                                          flag="price_out")
    stop_when_agreement: float | None = opt(None, "end the run after a round in which the "
                                                  "head, before labelling, agreed with the "
                                                  "oracle on at least this share of the pairs")
    dry_run: bool = opt(False, "print the cost plan (requests, estimated tokens, cost, "
                               "batch shards) and stop: nothing is sent or written")
    cheap_judge: EndpointConfig = sub(EndpointConfig, "a cheaper judge asked first (a cascade: "
                                      "the judge above sees only the pairs the cheap one is "
                                      "unsure of or that disagree with the head)",
                                      prefix="cheap_judge_")
    cheap_judge_margin: float = opt(0.5, "cascade: the cheap judge is unsure of a pair when its "
                                         "two scores differ by less than this, in the judge's "
                                         "own units (rating points of the expected 1-5 rating; "
                                         "pairwise template: 2p-1, from 0 to 1)")
    cheap_price_in: float = opt(0.0, "cheap judge: USD per 1M prompt tokens "
                                     "(as --price_in)", flag="cheap_judge_price_in")
    cheap_price_out: float = opt(0.0, "cheap judge: USD per 1M completion tokens "
                                      "(as --price_out)", flag="cheap_judge_price_out")
    batch_shard_size: int = opt(1000, "batch oracle: requests per uploaded shard")
    batch_poll_seconds: float = opt(30.0, "batch oracle: seconds between polls")
    local_model: str | None = opt(None, "local oracle: GGUF file (default: the packaged "
                                        "SmolLM2-135M)")
    rm: RewardModelConfig = sub(RewardModelConfig, "the reward model "
                                "(--oracle reward_model, --features rm)")


@dataclass(frozen=True, kw_only=True)
class GenerateConfig:
    models: tuple[str, ...] = opt((), "model names/paths and/or .json/.txt files listing them",
                                  cli=False)
    backend: str = opt("transformers", "transformers (CPU/GPU), openai (any OpenAI-compatible "
                                       "server) or vllm")
    num_responses: int = opt(4, "responses per prompt, each from a model drawn from the pool")
    include_model: tuple[str, ...] = opt((), "keep only pool models matching one of these globs",
                                         cli=False)
    exclude_model: tuple[str, ...] = opt((), "drop pool models matching one of these globs",
                                         cli=False)
    one_side_model: str | None = opt(None, "on-policy: one response of every prompt from this "
                                           "model")
    temperature: float = opt(0.8, "sampling temperature (0 = greedy)")
    top_p: float = opt(0.95, "nucleus sampling")
    max_tokens: int = opt(256, "most new tokens per response")
    seed: int = opt(0, "seed of the model draws and of each response")
    endpoint: EndpointConfig = sub(EndpointConfig, "openai back-end: the server",
                                   hide=("model",), timeout=300.0)
    tensor_parallel_size: int = opt(1, "vllm back-end: GPUs per model")
    ray: bool = opt(False, "run on Ray Data (a cluster or a local instance)")
    batch_size: int = opt(16, "transformers back-end (and Ray batches): sequences per batch")
    ray_address: str | None = opt(None, "Ray cluster address (default: RAY_ADDRESS, else a "
                                        "local instance)")
    ray_replicas: int | None = opt(None, "model replicas under --ray (default: one per GPU)")
    progress_every: float = opt(30.0, "seconds between progress lines on stderr when it is not "
                                      "a terminal (0: none)")


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    output_dir: str | None = opt(None, "run directory (default: runs/<input name>)")
    format: str = opt("standard", "export layout: standard (prompt, chosen, rejected as text), "
                                  "conversational (message lists, multi-turn prompts kept) or "
                                  "kto (one row per judged response with a boolean label)",
                      choices=("standard", "conversational", "kto"))
    keep_ties: bool = opt(False, "keep tied prompts as rows with tie=true and margin 0 "
                                 "(default: drop them; either way they are counted)")
    west_of_n: bool = opt(False, "export the best and the worst judged response")
    all_pairs: bool = opt(False, "with k > 2: export every strictly ordered pair")
    push_to_hub: str | None = opt(None, "also push the dataset to this hub repo")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    input: InputConfig = sub(InputConfig, "the input")
    features: FeatureConfig = sub(FeatureConfig, "features")
    head: HeadConfig = sub(HeadConfig, "the reward head")
    acquire: AcquireConfig = sub(AcquireConfig, "acquisition")
    loop: LoopConfig = sub(LoopConfig, "rounds")
    oracle: OracleConfig = sub(OracleConfig, "the oracle")
    export: ExportConfig = sub(ExportConfig, "export")


def to_dict(cfg: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(cfg)


def nested_type(f: dataclasses.Field) -> type | None:
    """The config class of a nested field (`sub(...)`), else None."""
    return f.metadata.get("nested")


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build `cls` from a dict, recursing into nested configs; unknown keys are errors."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}")
    kwargs = {}
    for name, value in data.items():
        inner = nested_type(known[name])
        if inner is not None and isinstance(value, dict):
            base = known[name].metadata.get("defaults", {})
            value = from_dict(inner, {**base, **value}, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def field_type(cls: type, name: str) -> Any:
    """The resolved type annotation of field `name` of `cls` (string annotations evaluated)."""
    return typing.get_type_hints(cls)[name]


def base_type(tp: Any) -> Any:
    """`int | None` -> int; other types unchanged."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp

