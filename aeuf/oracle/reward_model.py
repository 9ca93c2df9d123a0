"""`--oracle reward_model`: a sequence-classification reward model as the oracle (AEPO's).

One request per response, as the replay oracle asks: key "rm:<model digest>:<text digest>",
where the model digest names the model, its weights' revision, the input convention, the
token budget and the head read, and the text digest the prompt and the response as scored, so
a changed text, model or setting never reuses a score. resolve turns scores into pairs with
the replay oracle's label modes (deterministic by default: the higher reward wins).

The scores come from a `Scorer`: the model loaded here in transformers (`local_scorer`, on the
GPU when there is one) or a server (`aeuf.backends.rm_http`). A multi-head model records
every head in the answer's raw JSON ({"aspects": {...}}), as the judge records its aspects.
Texts are neutralised (chat-control tokens broken) before scoring, like a judge's.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from aeuf.config import OracleConfig, RewardModelConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import ORACLES, Oracle
from aeuf.oracle.fence import MARKER, neutralise
from aeuf.oracle.replay import LABEL_MODES
from aeuf.oracle.resolve import pointwise
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask


class Scorer(NamedTuple):
    """score(prompts, responses) -> f32[N, A]; aspects: A head names; identity: what names
    the model's weights and settings (for keys); device: where it runs ("cpu", "cuda",
    "http"); close()."""

    score: Callable[[Sequence[str], Sequence[str]], np.ndarray]
    aspects: tuple[str, ...]
    identity: str
    device: str
    close: Callable[[], None]


def head_index(aspects: tuple[str, ...], wanted: str) -> int | None:
    """Which head is the score: None for the mean of all, else the named or numbered head."""
    if wanted == "mean" or len(aspects) == 1:
        return None
    if wanted in aspects:
        return aspects.index(wanted)
    if wanted.isdigit() and int(wanted) < len(aspects):
        return int(wanted)
    raise ConfigError(f"--rm_aspect {wanted}: the reward model's heads are "
                      f"{', '.join(aspects)}; name one, give its index, or use mean")


def rm_key(identity: str, prompt: str, response: str) -> str:
    """The key of one score: the model digest and a digest of the texts it scores."""
    text = hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()[:24]
    return f"rm:{identity}:{text}"


def local_scorer(rm: RewardModelConfig) -> Scorer:
    """The reward model in transformers, in this process."""
    from aeuf.backends import hf_models, reward_model

    tok, _ = reward_model.load(rm.model)
    conv = reward_model.convention(tok, rm.convention)
    ident = _digest(rm.model, reward_model.revision(rm.model), conv, rm.max_length, rm.aspect)

    def score(prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return reward_model.run(prompts, responses, rm.model, conv=conv, batch_size=rm.batch_size,
                                max_length=rm.max_length, marker=MARKER)

    return Scorer(score, reward_model.aspects(rm.model), ident, hf_models.device(), lambda: None)


def served_scorer(rm: RewardModelConfig) -> Scorer:
    """The reward model behind a server (vLLM's pooling / score / classify endpoints)."""
    from aeuf.backends import rm_http

    client = rm_http.Client(rm.base_url, rm.model, rm.endpoint, timeout=rm.timeout,
                            retries=rm.retries)
    ident = _digest(rm.model, "served", rm.endpoint, rm.max_length, rm.aspect)

    def score(prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        return client.score(prompts, responses, batch_size=rm.batch_size)

    return Scorer(score, ("reward",), ident, "http", client.close)


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def scorer_for(rm: RewardModelConfig) -> Scorer:
    if not rm.model:
        raise ConfigError("--oracle reward_model needs --reward_model NAME_OR_PATH (a "
                          "transformers sequence-classification model, or the served "
                          "model's name with --rm_base_url)")
    return (served_scorer if rm.base_url else local_scorer)(rm)


def answers(requests: Sequence[JudgeRequest], scorer: Scorer, aspect: str) -> list[JudgeAnswer]:
    """Score the requests' responses in one call (the scorer batches by length)."""
    if not requests:
        return []
    texts = [(neutralise(r.task.prompt), neutralise(r.task.responses[r.slots[0]]))
             for r in requests]
    start = time.perf_counter()
    try:
        scores = scorer.score([p for p, _ in texts], [t for _, t in texts])
    except OSError as err:  # a server that stayed down after its retries: ask again on rerun
        return [_failed(r, scorer, f"transport: {err}") for r in requests]
    seconds = (time.perf_counter() - start) / len(requests)
    head = head_index(scorer.aspects, aspect)
    return [_answer(r, row, scorer, head, seconds) for r, row in zip(requests, scores, strict=True)]


def _answer(request: JudgeRequest, row: np.ndarray, scorer: Scorer, head: int | None,
            seconds: float) -> JudgeAnswer:
    value = float(row.mean() if head is None else row[head])
    raw = json.dumps({"aspects": dict(zip(scorer.aspects, map(float, row))),
                      "device": scorer.device, "seconds": round(seconds, 6)})
    ok = math.isfinite(value)
    task = request.task
    return JudgeAnswer(request.key, task.prompt_id, (task.response_ids[request.slots[0]],),
                       value if ok else None, raw, "reward_model",
                       error=None if ok else "missing: the reward model gave no finite score")


def _failed(request: JudgeRequest, scorer: Scorer, error: str) -> JudgeAnswer:
    task = request.task
    return JudgeAnswer(request.key, task.prompt_id, (task.response_ids[request.slots[0]],),
                       None, "", "reward_model", error=error)


@ORACLES.register("reward_model")
def reward_model_oracle(cfg: OracleConfig, *, workdir=None, scorer: Scorer | None = None,
                        **_) -> Oracle:
    """Scores from a reward model: free per call, reproducible, local or served."""
    scorer = scorer or scorer_for(cfg.rm)
    mode = LABEL_MODES.get(cfg.label_mode)
    head_index(scorer.aspects, cfg.rm.aspect)  # a wrong --rm_aspect fails before any work

    def key(task: JudgeTask, i: int) -> str:
        return rm_key(scorer.identity, task.prompt, task.responses[i])

    def plan(task: JudgeTask) -> list[JudgeRequest]:
        return [JudgeRequest(key(task, i), task, (i,)) for i in range(len(task.response_ids))]

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        return iter(answers(list(requests), scorer, cfg.rm.aspect))

    def resolve(task: JudgeTask, got: Mapping[str, JudgeAnswer]) -> Judgement:
        return pointwise(task, [key(task, i) for i in range(len(task.response_ids))], got, mode)

    # free per call: chunks of batches, each chunk logged with one fsync
    return Oracle("reward_model", plan, send, resolve, scorer.close,
                  chunk=max(64, 8 * cfg.rm.batch_size), durable=False)
