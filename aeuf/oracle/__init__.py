"""The oracle stage: who labels the chosen responses, and at what cost.

    make_oracle(cfg, *, has_gold, workdir=None) -> Oracle
    Oracle(name, plan, send, resolve, close)            see aeuf.oracle.base
    is_final(answer) -> bool                            never re-request a final answer

Oracles (ORACLES registry): replay (gold columns), judge (an OpenAI-compatible LLM judge),
batch (the same judge through the OpenAI Batch API), local (the judge on a llama.cpp server
started here on the packaged SmolLM2), reward_model (a sequence-classification reward model,
local or served: AEPO's annotator), human (the terminal) and none (export for annotation).
"""

from __future__ import annotations

import os
from pathlib import Path

from aeuf.config import OracleConfig
from aeuf.oracle import batch, human, judge, local, replay, reward_model  # noqa: F401
from aeuf.oracle.base import ORACLES, Oracle, is_final

__all__ = ["ORACLES", "Oracle", "is_final", "make_oracle", "auto_name"]


def auto_name(cfg: OracleConfig, *, has_gold: bool) -> str:
    """The oracle `auto` means: a judge the user named (--judge_base_url, or --judge_model
    with an API key in the environment) -> judge, even when the data has gold scores (what
    the user asked for wins); else gold scores -> replay; else none."""
    if cfg.name != "auto":
        return cfg.name
    if cfg.judge.base_url or (cfg.judge.model and os.environ.get(cfg.judge.api_key_env)):
        return "judge"
    return "replay" if has_gold else "none"


def make_oracle(cfg: OracleConfig, *, has_gold: bool, workdir: Path | None = None,
                **options) -> Oracle:
    """The oracle named by cfg.name (resolving "auto"); options go to its factory
    (e.g. stdin/stdout for the human oracle)."""
    return ORACLES.get(auto_name(cfg, has_gold=has_gold))(cfg, workdir=workdir,
                                                          has_gold=has_gold, **options)
