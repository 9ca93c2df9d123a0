"""The oracle stage: who labels the chosen responses, and at what cost.

    make_oracle(cfg, *, has_gold, **options) -> Oracle
    Oracle(name, plan, send, resolve, close, ..., caps)   see aeuf.oracle.base
    capabilities(cfg, *, has_gold) -> Capabilities         before anything is built
    is_final(answer) -> bool                               never re-request a final answer

Oracles (ORACLES registry of OracleKind: capabilities and factory): replay (gold columns),
judge (an OpenAI-compatible LLM judge), batch (the same judge through the OpenAI Batch API),
local (the judge on a llama.cpp server started here on the packaged SmolLM2), reward_model (a
sequence-classification reward model, local or served: AEPO's annotator), human (the
terminal), web (people at a page in their browser) and none (export for annotation).
Callers decide by capabilities, never by name.
"""

from __future__ import annotations

import os

from aeuf.config import OracleConfig
from aeuf.oracle import batch, human, judge, local, replay, reward_model, web  # noqa: F401
from aeuf.oracle.base import ORACLES, Capabilities, Lazy, Oracle, OracleKind, is_final

__all__ = ["ORACLES", "Capabilities", "Lazy", "Oracle", "OracleKind", "is_final",
           "make_oracle", "auto_name", "capabilities", "kind_of", "judge_over_gold"]

AUTO = "auto"


def auto_name(cfg: OracleConfig, *, has_gold: bool) -> str:
    """The oracle `auto` means: a judge the user named (--judge_base_url, or --judge_model
    with an API key in the environment) -> judge, even when the data has gold scores (what
    the user asked for wins); else gold scores -> replay; else none."""
    if cfg.name != AUTO:
        return cfg.name
    if cfg.judge.base_url or (cfg.judge.model and os.environ.get(cfg.judge.api_key_env)):
        return "judge"
    return "replay" if has_gold else "none"


def kind_of(cfg: OracleConfig, *, has_gold: bool) -> OracleKind:
    """The registered kind of oracle cfg names (ConfigError for an unknown name)."""
    return ORACLES.get(auto_name(cfg, has_gold=has_gold))


def capabilities(cfg: OracleConfig, *, has_gold: bool) -> Capabilities:
    """What the oracle cfg names can do, without building it."""
    return kind_of(cfg, has_gold=has_gold).caps


def judge_over_gold(cfg: OracleConfig, *, has_gold: bool) -> bool:
    """True when `auto` chose an LLM judge although the data has gold scores (worth a note:
    --oracle replay would use them)."""
    return cfg.name == AUTO and has_gold and capabilities(cfg, has_gold=has_gold).llm_judge


def make_oracle(cfg: OracleConfig, *, has_gold: bool, **options) -> Oracle:
    """The oracle named by cfg.name (resolving "auto"); options go to its factory (e.g.
    store: the batch oracle's record store, which the run layer opens under the run
    directory; stdin/stdout for the human oracle)."""
    return kind_of(cfg, has_gold=has_gold).make(cfg, has_gold=has_gold, **options)
