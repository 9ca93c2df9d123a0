"""Every explicit setting that cannot take effect is an error, not a silence (pure).

`ineffective(cfg, name)` names the first setting that differs from its default but would
change nothing with the oracle the run will use, e.g. judge flags under the replay oracle, a
spending cap with zero prices, a precomputed-features file without the 'file' part. What an
oracle can do is read from its registered capabilities; its name only words the message.
"""

from __future__ import annotations

import dataclasses

from aeuf.acquire import make_rule
from aeuf.config import (
    EndpointConfig,
    FeatureConfig,
    OracleConfig,
    RewardModelConfig,
    RunConfig,
)
from aeuf.embed import possible_parts
from aeuf.oracle import ORACLES, Capabilities

JUDGE_ONLY = ("template", "temperature", "max_tokens", "context_tokens", "answer_format",
              "local_model", "batch_shard_size", "batch_poll_seconds")


def _changed(cfg, default, names, prefix: str = "") -> list[str]:
    """The flag names of the fields in `names` whose value differs from the default."""
    flag = {f.name: f.metadata.get("flag") or f.name for f in dataclasses.fields(cfg)}
    return [prefix + flag[n] for n in names if getattr(cfg, n) != getattr(default, n)]


def ineffective(cfg: RunConfig, oracle: str) -> str | None:
    """One line naming a setting that has no effect with the oracle `oracle` (decided by
    what it can do: its registered capabilities), or None."""
    o, base, caps = cfg.oracle, OracleConfig(), ORACLES.get(oracle).caps
    if not caps.llm_judge:
        flags = (_changed(o.judge, EndpointConfig(), ("base_url", "model", "price_in", "price_out"),
                          "judge_")
                 + _changed(o, base, JUDGE_ONLY))
        if flags:
            return (f"--{flags[0]} has no effect with the {oracle} oracle; drop it, or choose "
                    "--oracle judge (or local, batch) to use it")
    if not caps.utilities and o.label_mode != base.label_mode:
        return (f"--label_mode has no effect with the {oracle} oracle (it is for --oracle "
                "replay and reward_model)")
    problem = _reward_model_check(cfg, oracle, caps)
    if problem:
        return problem
    free = o.judge.price_in == 0 and o.judge.price_out == 0
    if cfg.spend.max_cost is not None and caps.llm_judge and free:
        return ("--max_cost has no effect while the judge's prices are 0: set --judge_price_in "
                "and --judge_price_out (USD per 1M tokens), or use --max_requests")
    return _feature_check(cfg.features) or _west_check(cfg)


def _reward_model_check(cfg: RunConfig, oracle: str, caps: Capabilities) -> str | None:
    """Reward-model flags without a reward-model oracle (or, for --reward_model alone, the
    'rm' feature part) change nothing."""
    rm, uses_rm_part = cfg.oracle.rm, "rm" in possible_parts(cfg.features.features)
    if caps.reward_model:
        return None if rm.model else ("--oracle reward_model needs --reward_model NAME_OR_PATH")
    names = ("convention", "batch_size", "max_length", "aspect", "base_url", "endpoint",
             "timeout", "retries")
    flags = _changed(rm, RewardModelConfig(), names) + (
        [] if uses_rm_part else _changed(rm, RewardModelConfig(), ("model",)))
    if flags:
        return (f"--{flags[0]} has no effect with the {oracle} oracle; drop it, or choose "
                "--oracle reward_model (--reward_model also feeds --features rm)")
    return None


def _feature_check(f: FeatureConfig) -> str | None:
    parts = possible_parts(f.features)
    if f.precomputed and "file" not in parts:
        return f"--precomputed has no effect without the 'file' feature part (--features {f.features}+file)"
    if f.llm_encoder and "llm" not in parts:
        return f"--llm_encoder has no effect without the 'llm' feature part (--features {f.features}+llm)"
    return None


def _west_check(cfg: RunConfig) -> str | None:
    """--west_of_n changes the exported pair only for a rule that does not already pair the
    best and the worst of the responses it shows the oracle."""
    names = sorted({cfg.acquire.rule, cfg.loop.initial_rule})
    if cfg.export.west_of_n and all(make_rule(cfg.acquire, n).pairing == "extremes"
                                    for n in names):
        return (f"--west_of_n has no effect: the rule(s) {', '.join(names)} already export the "
                f"best and the worst of the responses judged for each prompt")
    return None
