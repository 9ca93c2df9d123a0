"""The benchmark's settings (`aeuf bench`'s flags), apart from the engine that plays them:
building the command line reads them without importing JAX."""

from __future__ import annotations

from dataclasses import dataclass

from aeuf.config import (
    AcquireConfig,
    FeatureConfig,
    HeadConfig,
    LoopConfig,
    opt,
    sub,
)

LABEL_MODES = ("deterministic", "bernoulli", "soft")
REGIMES = ("budget", "once")


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """Settings of the benchmark; the nested configs are the main command's own."""

    regime: str = opt("budget", "budget: learning curves of the head on held-out prompts vs "
                                "labels (--budget may exceed the pool: several passes); "
                                "once: every pool prompt labelled once, the exported pairs "
                                "scored on gold", choices=REGIMES)
    rules: tuple[str, ...] = opt(("random", "dts", "deltaucb", "infomax"),
                                 "acquisition rules, comma-separated (random runs first)")
    heads: tuple[str, ...] = opt(("ensemble", "bll"), "reward heads, comma-separated")
    seeds: int = opt(5, "seeds per rule (0..N-1)")
    label_modes: tuple[str, ...] = opt(("deterministic", "bernoulli"),
                                       "replay labels: deterministic, bernoulli and/or soft",
                                       flag="label_mode")
    test_fraction: float = opt(0.25, "share of prompts held out (budget: the head is scored "
                                     "on them; once: a head trained on the exported pairs is)")
    models: tuple[str, ...] = opt((), "use only the responses of these models, comma-separated "
                                      "(e.g. a half of the models, to check on models never "
                                      "tuned on); default: all")
    num_responses: int | None = opt(None, "use the first N responses of each prompt, as the "
                                          "main command's --num_responses (after --models)")
    baselines: tuple[str, ...] = opt(("length", "delta"), "once regime: no-call baselines "
                                     "(length: longest vs shortest response; delta: the "
                                     "response of the model believed strongest vs the weakest)")
    model_ranking: tuple[str, ...] = opt((), "delta baseline: models, strongest first "
                                             "(default: by parameter count in the model name, "
                                             "e.g. 7b, 8x7B; models without one are left out)")
    bootstrap: int = opt(1000, "budget regime: bootstrap resamples of the seeds for the band "
                               "of labels saved")
    split_seed: int = opt(0, "seed of the pool/test split")
    max_test_pairs: int | None = opt(None, "sample at most this many test pairs")
    ceiling_pairs: int | None = opt(20000, "pool pairs the all-pairs ceiling trains on")
    ceiling_epochs: int | None = opt(5, "epochs of the ceiling fit")
    ceiling_features: tuple[str, ...] = opt((), "feature sets of the ceilings (default: each "
                                                "part of --features alone, and all of them)")
    features: FeatureConfig = sub(FeatureConfig, "features", features="minilm+stats+model")
    head: HeadConfig = sub(HeadConfig, "the reward heads", hide=("name",))
    acquire: AcquireConfig = sub(AcquireConfig, "acquisition", hide=("rule",))
    loop: LoopConfig = sub(LoopConfig, "rounds (--budget: budget regime only; the once regime "
                           "labels every pool prompt once; --initial_rule: the main command's "
                           "default is aepo, the benchmark's random so that every rule "
                           "shares its first round)", hide=("seed",), budget=400,
                           initial_rule="random")
