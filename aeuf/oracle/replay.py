"""The replay oracle (gold utilities in the data) and the "none" oracle (no labels).

Replay asks one free request per response, key "replay:<label_mode>:<response id>:<text
digest>", whose
value is the response's gold utility u_i; resolve turns them into pairs by `label_mode`:
deterministic (1 / 0, 0.5 on equal), soft (sigmoid(u_i - u_j)), or bernoulli (a draw from
sigmoid(u_i - u_j) seeded by the two request keys, so a rerun draws the same label).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import Capabilities, Oracle, nothing, register
from aeuf.oracle.resolve import pointwise, sigmoid
from aeuf.registry import Registry
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

# label_mode -> (u_i, u_j, seed text) -> P(i beats j)
LABEL_MODES: Registry[Callable[[float, float, str], float]] = Registry("label mode")
LABEL_MODES.register("deterministic")(lambda ui, uj, _: (float(ui > uj) - float(ui < uj)) * 0.5 + 0.5)
LABEL_MODES.register("soft")(lambda ui, uj, _: sigmoid(ui - uj))


@LABEL_MODES.register("bernoulli")
def _bernoulli(ui: float, uj: float, seed: str) -> float:
    """1.0 with probability sigmoid(u_i - u_j), else 0.0; the uniform comes from `seed`."""
    u = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") / 2.0**64
    return 1.0 if u < sigmoid(ui - uj) else 0.0


def replay_key(mode: str, response_id: str, prompt: str, response: str) -> str:
    """The key of one gold lookup: names the response and a digest of the texts it holds,
    so a changed text never reuses an answer given for another."""
    digest = hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()[:16]
    return f"replay:{mode}:{response_id}:{digest}"


def _key(mode: str, task: JudgeTask, i: int) -> str:
    return replay_key(mode, task.response_ids[i], task.prompt, task.responses[i])


def _answer(request: JudgeRequest) -> JudgeAnswer:
    task, i = request.task, request.slots[0]
    gold = task.gold[i] if task.gold is not None else float("nan")
    ok = gold is not None and math.isfinite(gold)
    return JudgeAnswer(request.key, task.prompt_id, (task.response_ids[i],),
                       float(gold) if ok else None, "", "replay",
                       error=None if ok else "missing: no gold value for this response")


REPLAY = Capabilities(uses_gold=True, utilities=True)
NONE = Capabilities(labels=False)


@register("replay", REPLAY)
def replay_oracle(cfg: OracleConfig, *, has_gold: bool | None = None, **_) -> Oracle:
    """Gold labels from the data; free, instant, deterministic given the label mode."""
    mode = LABEL_MODES.get(cfg.label_mode)
    if has_gold is False:
        raise ConfigError("--oracle replay needs gold scores in the input (a `<column>_score` "
                          "or `score` column); choose --oracle judge, local or human")

    def plan(task: JudgeTask) -> list[JudgeRequest]:
        if task.gold is None:
            raise ConfigError(f"the replay oracle needs gold scores; prompt {task.prompt_id} "
                              f"has none (choose --oracle judge, local or human)")
        return [JudgeRequest(_key(cfg.label_mode, task, i), task, (i,))
                for i in range(len(task.response_ids))]

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        return map(_answer, requests)

    def resolve(task: JudgeTask, answers: Mapping[str, JudgeAnswer]) -> Judgement:
        keys = [_key(cfg.label_mode, task, i) for i in range(len(task.response_ids))]
        return pointwise(task, keys, answers, mode)

    # free and deterministic: chunks of 4096 requests, each logged with one fsync
    return Oracle("replay", plan, send, resolve, nothing, chunk=4096, durable=False, caps=REPLAY)


@register("none", NONE)
def no_oracle(cfg: OracleConfig, **_) -> Oracle:
    """No labels: plan nothing, resolve to NaN ratings (the loop writes an annotation file)."""

    def resolve(task: JudgeTask, answers: Mapping[str, JudgeAnswer]) -> Judgement:
        return Judgement(task, np.full(len(task.responses), np.nan), [])

    return Oracle("none", lambda task: [], lambda requests: iter(()), resolve, nothing,
                  caps=NONE)
