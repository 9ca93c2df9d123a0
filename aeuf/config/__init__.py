"""One frozen, keyword-only dataclass per stage; unknown keys are errors.

Every field carries its command-line help (`opt(default, help)`): the CLI is generated from
these dataclasses, so a flag's name, type, default and help live in one place. A nested
config (`sub(...)`) becomes a group of flags with a prefix (the judge's endpoint flags are
`--judge_base_url`, `--judge_model`, ...).

`RunConfig` gathers them and is what `config.json` in a run directory holds (never secrets:
API keys are read from the environment variable named by `EndpointConfig.api_key_env`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aeuf.config.cluster import ClusterConfig  # noqa: F401
from aeuf.config.fields import (  # noqa: F401  (re-exported: the configs' machinery)
    SettingError,
    at_least,
    base_type,
    field_type,
    from_dict,
    nested_type,
    one_of,
    opt,
    sub,
    to_dict,
    within,
)
from aeuf.config.oracle import (  # noqa: F401
    EndpointConfig,
    OracleConfig,
    RewardModelConfig,
    WebConfig,
)
from aeuf.config.spend import MOVED, SpendConfig, upgrade  # noqa: F401


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

    def __post_init__(self):
        at_least(self, 1, "num_responses", "num_instructions")


@dataclass(frozen=True, kw_only=True)
class FeatureConfig:
    features: str = opt("auto", "feature parts joined by '+': minilm, stats, model, llm, rm, "
                                "file; auto: minilm+stats+model when the pool names the "
                                "generating model of its responses (two or more, each "
                                "answering two or more prompts), else minilm+stats")
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
    cache: str | None = opt(None, "feature cache folder, shared by every run (content-keyed: "
                                  "a text is embedded once per encoder; default: "
                                  "$XDG_CACHE_HOME/aeuf/features or ~/.cache/aeuf/features)",
                            flag="features_cache")
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
    name: str = opt("ensemble+linear", "reward head: ensemble+linear (a Bayesian linear part "
                                       "on the cheap stats/model columns, the ensemble on "
                                       "the residual), ensemble or bll", flag="head")
    members: int = opt(16, "ensemble members / posterior samples K")
    hidden: tuple[int, ...] = opt((128, 128), "ensemble hidden layer widths, e.g. 128,128")
    epochs: int = opt(20, "training epochs per fit (see --min_steps and --max_steps)")
    min_steps: int = opt(300, "ensemble: at least this many optimiser steps per fit (epochs "
                              "are added until reached; few labels train full-batch)")
    max_steps: int | None = opt(300, "ensemble: at most this many optimiser steps per fit "
                                     "(never fewer than --min_steps; the last epoch may be "
                                     "cut short): a fit's cost stops growing with the "
                                     "labels (none: no cap)")
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
    linear_prior: str = opt("ard", "ensemble+linear: prior of the linear part, as "
                                   "--bll_prior (ard: one evidence-chosen precision per "
                                   "column)", choices=("evidence", "ard", "fixed"))
    linear_columns: tuple[int, ...] = opt((), "ensemble+linear: feature columns of the linear "
                                              "part (default: those of the stats and model "
                                              "parts, found from --features)")
    precision: bool = opt(True, "ensemble: build the belief's precision of the last layer (a "
                                "pass over every label) at each fit; a run turns it off when "
                                "no rule of it reads the precision (the design rules do)",
                          cli=False)

    def __post_init__(self):
        at_least(self, 1, "members", "epochs", "batch_size", "newton_steps", "max_dim",
                 "max_steps")
        at_least(self, 0, "min_steps", "anchor", "center")
        if any(h < 1 for h in self.hidden):
            raise SettingError("hidden", self.hidden, "every width must be at least 1")
        at_least(self, 0, "learning_rate", "prior_precision", strict=True)


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
                                 "deltaquantile, maxminlcb, infomax, infomax_bald, rm_mix, dpo_value, "
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
                                        "remain: auto (BAL-PM for belief rules when the "
                                        "budget is below the prompts; uniform for model-free "
                                        "rules and when every prompt is labelled), balpm or "
                                        "random",
                                choices=("auto", "balpm", "random"))
    prompt_beta: float = opt(0.01, "BAL-PM entropy weight for choosing prompts")
    knn_k: int = opt(13, "BAL-PM: neighbours of the kNN entropy estimate")
    knn_exact_max: int | None = opt(20_000, "BAL-PM: exact kNN graph up to this many prompts, "
                                            "--knn_index above; none: always exact")
    knn_index: str = opt("cells", "BAL-PM above knn_exact_max prompts: cells (no graph over "
                                  "all prompts: the density and the acquired count read off "
                                  "cells around 8,192 sampled prompts, cost P), or a faiss kNN "
                                  "graph: ivf (4 sqrt(P) lists, cost P^1.5) or ivf_hnsw "
                                  "(64-point lists found through an HNSW graph, P log P at a "
                                  "fixed number of lists scanned)",
                         choices=("ivf", "ivf_hnsw", "cells"))

    def __post_init__(self):
        if self.rule is None:  # the goal's rule (frozen: set once, here)
            object.__setattr__(self, "rule", GOAL_RULES[self.goal])
        at_least(self, 2, "num_annotations")
        at_least(self, 0, "beta", "quantile_epsilon", "aepo_lambda", "prompt_beta",
                 "doptimal_greedy", "tie_margin")
        at_least(self, 1, "knn_k", "knn_exact_max")
        within(self, 0, 1, "quantile")


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    budget: int | None = opt(None, "prompts to label in total (default: every prompt once)")
    batch_size: int | None = opt(None, "prompts labelled per round (default: the rest of a "
                                       "pass in three rounds)")
    initial_batch: int | None = opt(None, "prompts in the first, model-free round (default: "
                                           "--batch_size if given, else 50 or a quarter of "
                                           "the budget if fewer)")
    initial_rule: str = opt("aepo", "model-free rule of the first round")
    seed: int = opt(0, "random seed (every choice of a run derives from it)")
    self_label_accuracy: float | None = opt(None, "let the head label the pairs it is sure of, "
                                                  "where a Clopper-Pearson lower bound of its "
                                                  "accuracy on the pairs the oracle decided in "
                                                  "earlier rounds is at least this, e.g. 0.95; "
                                                  "off by default")
    self_label_delta: float = opt(0.05, "self-labelling: the bound may fail with at most this "
                                        "probability (one-sided Clopper-Pearson level)")
    check_fraction: float = opt(0.1, "share of each round's pairs the head would label "
                                     "(of all its pairs in a cascade), rounded up and drawn "
                                     "at random, sent to the (strong) judge whatever the "
                                     "head or the cheap judge think: keeps checking both")
    stop_when_agreement: float | None = opt(None, "end the run after a round in which the "
                                                  "head, before labelling, agreed with the "
                                                  "oracle on at least this share of the pairs")

    def __post_init__(self):
        at_least(self, 1, "budget", "batch_size", "initial_batch")
        within(self, 0, 1, "check_fraction", "stop_when_agreement")


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
                                   hide=("model", "price_in", "price_out"), timeout=300.0)
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

    def __post_init__(self):
        if self.west_of_n and self.all_pairs:
            raise SettingError("west_of_n", True, "exports one pair (the best and the worst "
                               "response), --all_pairs every ordered pair: choose one")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    input: InputConfig = sub(InputConfig, "the input")
    features: FeatureConfig = sub(FeatureConfig, "features")
    head: HeadConfig = sub(HeadConfig, "the reward head")
    acquire: AcquireConfig = sub(AcquireConfig, "acquisition")
    loop: LoopConfig = sub(LoopConfig, "rounds")
    oracle: OracleConfig = sub(OracleConfig, "the oracle")
    spend: SpendConfig = sub(SpendConfig, "spending: caps and the cost plan")
    export: ExportConfig = sub(ExportConfig, "export")
    cluster: ClusterConfig = sub(ClusterConfig, "where the rounds run (Ray)")


def stored(data: dict) -> dict:
    """A run's config.json read in today's layout, so that an older run resumes: keys moved
    since at their new place (spend.upgrade), settings added since at their defaults (a
    setting an older release did not have is the run it did with that setting's default)."""
    import json

    defaults = json.loads(json.dumps(to_dict(RunConfig())))  # tuples as JSON lists
    return _fill(upgrade(data), defaults)


def _fill(data: dict, defaults: dict) -> dict:
    for key, value in defaults.items():
        if key not in data:
            data[key] = value
        elif isinstance(value, dict) and isinstance(data[key], dict):
            _fill(data[key], value)
    return data
