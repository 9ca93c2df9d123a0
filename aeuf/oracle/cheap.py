"""The cascade's cheap judge: a second OpenAI-compatible judge (--cheap_judge_*), and a
simulated one for benchmarks and tests (gold plus logistic noise of a stated scale).

The cheap judge is the LLM judge (aeuf.oracle.judge) with its own endpoint and prices and
the same template and sampling; its request keys name its own model, so it never shares a
key with the strong judge.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from aeuf.config import OracleConfig
from aeuf.oracle.base import Capabilities, Oracle, nothing, request_key
from aeuf.oracle.resolve import rating_pairs, value_of
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask


def price_per_token(cfg: OracleConfig) -> tuple[float, float]:
    """USD per prompt and per completion token of the judge (its prices are per million)."""
    return cfg.judge.price_in / 1e6, cfg.judge.price_out / 1e6


def cheap_config(cfg: OracleConfig) -> OracleConfig:
    """The cheap judge's OracleConfig: its endpoint (prices and limits with it), the same
    template."""
    return dataclasses.replace(cfg, judge=cfg.cheap_judge)


def cheap_judge_oracle(cfg: OracleConfig) -> Oracle | None:
    """The cheap judge (named "cheap_judge"), or None without --cheap_judge_model."""
    if not cfg.cheap_judge.model:
        return None
    from aeuf.oracle.judge import judge_oracle

    return judge_oracle(cheap_config(cfg), name="cheap_judge")


def logistic_noise(scale: float, key: str) -> float:
    """scale * a standard logistic draw whose uniform comes from sha256(key)."""
    u = (int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") + 0.5) / 2.0**64
    return scale * math.log(u / (1.0 - u))


def simulated_judge(scale: float, seed: int = 0, name: str = "simulated") -> Oracle:
    """A cheap judge simulated from gold: response i rated u_i + scale * eps_i, eps_i a
    standard logistic draw fixed by (seed, scale, response id, texts); pairs from the
    ratings (1 / 0 / 0.5). One free request per response, like the replay oracle."""

    def key(task: JudgeTask, i: int) -> str:
        return request_key("simulated", scale, seed, task.response_ids[i], task.prompt,
                           task.responses[i])

    def plan(task: JudgeTask) -> list[JudgeRequest]:
        return [JudgeRequest(key(task, i), task, (i,)) for i in range(len(task.responses))]

    def answer(r: JudgeRequest) -> JudgeAnswer:
        gold = None if r.task.gold is None else r.task.gold[r.slots[0]]
        ok = gold is not None and math.isfinite(gold)
        value = float(gold) + logistic_noise(scale, r.key) if ok else None
        return JudgeAnswer(r.key, r.task.prompt_id, (r.task.response_ids[r.slots[0]],),
                           value, "", name, error=None if ok else "missing: no gold value")

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        return map(answer, requests)

    def resolve(task: JudgeTask, answers: Mapping[str, JudgeAnswer]) -> Judgement:
        u = np.array([value_of(answers, key(task, i)) for i in range(len(task.responses))],
                     dtype=np.float64)
        return Judgement(task, u, rating_pairs(u))

    return Oracle(name, plan, send, resolve, nothing, caps=Capabilities(uses_gold=True))
