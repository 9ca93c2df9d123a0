"""The LLM judge over any OpenAI-compatible chat API (OpenAI, vLLM, llama.cpp, SGLang...).

Rating templates ("overall", the four UltraFeedback aspects, or a file): one request per
(aspect, response); a response's rating is the mean over its aspects. Pairwise template: a
request per ordered pair (i, j) and (j, i); disagreement between the orders is a tie.
A reply without a parsable answer is asked once more (at temperature >= 0.7), then
recorded as missing ("unparsable: ..."), never as a default rating.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import ORACLES, Oracle, request_key
from aeuf.oracle.parsers import read_answer
from aeuf.oracle.prompts import Template, load_templates, render
from aeuf.oracle.resolve import both_orders, mean_ratings, rating_pairs, value_of
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

RETRY_TEMPERATURE = 0.7
TOP_LOGPROBS = 5


@dataclasses.dataclass(frozen=True)
class JudgeSpec:
    """What defines a judge's answers (and so its keys): model, templates, sampling."""

    model: str
    templates: tuple[Template, ...]
    cfg: OracleConfig

    @property
    def kind(self) -> str:
        return self.templates[0].kind


def make_spec(cfg: OracleConfig, model: str | None = None) -> JudgeSpec:
    """JudgeSpec from the config; ConfigError when no model is named."""
    model = model or cfg.judge.model
    if not model:
        raise ConfigError("the LLM judge needs a model: pass --judge_model NAME")
    return JudgeSpec(model, load_templates(cfg.template), cfg)


def shown(task: JudgeTask, slots: tuple[int, ...]) -> tuple[str, ...]:
    """The untrusted texts a request shows: the prompt, then the responses in slot order."""
    return (task.prompt, *(task.responses[s] for s in slots))


def judge_key(spec: JudgeSpec, t: int, task: JudgeTask, slots: tuple[int, ...]) -> str:
    """hash(judge model, template digest, prompt id, response ids in the order shown)."""
    rids = [task.response_ids[s] for s in slots]
    return request_key("judge", spec.model, spec.templates[t].digest, task.prompt_id, rids)


def slot_groups(kind: str, k: int) -> list[tuple[int, ...]]:
    """Rating: (i,) for each response; pairwise: (i, j) and (j, i) for each i < j."""
    if kind == "rating":
        return [(i,) for i in range(k)]
    return [o for i in range(k) for j in range(i + 1, k) for o in ((i, j), (j, i))]


def chat_body(spec: JudgeSpec, t: int, task: JudgeTask, slots: tuple[int, ...]) -> dict:
    """The chat-completion body of one request (no secrets)."""
    body = {"model": spec.model, "messages": render(spec.templates[t], task.prompt,
                                                    shown(task, slots)[1:]),
            "temperature": spec.cfg.temperature, "max_tokens": spec.cfg.max_tokens}
    if spec.cfg.logprobs:
        body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
    return body


def plan_requests(spec: JudgeSpec, task: JudgeTask) -> list[JudgeRequest]:
    """Every request a task needs, in a stable order: templates x slot groups."""
    return [JudgeRequest(judge_key(spec, t, task, slots), task, slots,
                         {"template": t, "body": chat_body(spec, t, task, slots)})
            for t in range(len(spec.templates))
            for slots in slot_groups(spec.kind, len(task.responses))]


def resolve_answers(spec: JudgeSpec, task: JudgeTask,
                    answers: Mapping[str, JudgeAnswer]) -> Judgement:
    """Ratings [k] (mean over aspects) and pairs, or pairs from both orders (pairwise)."""
    k = len(task.responses)
    if spec.kind == "rating":
        table = np.array([[value_of(answers, judge_key(spec, t, task, (i,))) for i in range(k)]
                          for t in range(len(spec.templates))], dtype=np.float64)
        ratings = mean_ratings(table)
        return Judgement(task, ratings, rating_pairs(ratings))
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            ps = [np.mean([v for t in range(len(spec.templates))
                           if (v := value_of(answers, judge_key(spec, t, task, o))) is not None]
                          or [np.nan]) for o in ((i, j), (j, i))]
            p = both_orders(*(None if np.isnan(x) else float(x) for x in ps))
            if p is not None:
                pairs.append((i, j, p))
    return Judgement(task, np.full(k, np.nan), pairs)


def answer_from(spec: JudgeSpec, request: JudgeRequest, results: Sequence) -> JudgeAnswer:
    """JudgeAnswer from the ChatResults of a request (first try, then its retry if any)."""
    cfg, last = spec.cfg, results[-1]
    template = spec.templates[request.payload["template"]]
    cost = sum(r.prompt_tokens * cfg.price_per_1k_input + r.completion_tokens
               * cfg.price_per_1k_output for r in results) / 1000.0
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in results)
    raw = "\n\n--- retry ---\n\n".join(r.text for r in results if r.text is not None)
    value, error = None, last.error
    if last.error is None:
        value = read_answer(template.kind, last.text, shown(request.task, request.slots),
                            last.logprobs)
        if value is None:
            error = f"unparsable: no answer line in {len(results)} replies"
    elif len(results) > 1:  # a paid, unparsable first reply: final, never bought again
        error = f"unparsable: first reply had no answer line, its retry failed ({last.error})"
    rids = tuple(request.task.response_ids[s] for s in request.slots)
    return JudgeAnswer(request.key, request.task.prompt_id, rids, value, raw,
                       f"{spec.model}/{template.name}@{template.digest[:8]}", cost, tokens, error)


def needs_retry(spec: JudgeSpec, request: JudgeRequest, result) -> bool:
    """True when a delivered reply has no parsable answer (it gets one more try)."""
    if result.error is not None:
        return False
    kind = spec.templates[request.payload["template"]].kind
    return read_answer(kind, result.text, shown(request.task, request.slots)) is None


def retry_body(body: dict) -> dict:
    """The body of the one retry after an unparsable reply: some sampling, same prompt."""
    return body | {"temperature": max(float(body.get("temperature") or 0.0), RETRY_TEMPERATURE)}


def judge_one(spec: JudgeSpec, complete: Callable, request: JudgeRequest) -> JudgeAnswer:
    """Send one request (and its retry when the reply is unparsable) -> JudgeAnswer."""
    results = [complete(request.payload["body"])]
    if needs_retry(spec, request, results[0]):
        results.append(complete(retry_body(request.payload["body"])))
    return answer_from(spec, request, results)


def settings_for(cfg: OracleConfig, base_url: str | None):
    """ClientSettings of the judge's endpoint (at `base_url` when given)."""
    from aeuf.backends.openai_client import settings_for as endpoint_settings

    return endpoint_settings(cfg.judge, base_url)


@ORACLES.register("judge")
def judge_oracle(cfg: OracleConfig, *, workdir=None, name: str = "judge",
                 connect: Callable[[], str | None] | None = None, model: str | None = None,
                 on_close: Callable[[], None] | None = None, **_) -> Oracle:
    """LLM judge at cfg.judge.base_url (or at `connect()`, called on the first send)."""
    from aeuf.backends import openai_client as oc

    spec = make_spec(cfg, model)
    if connect is None:
        oc.api_key(settings_for(cfg, cfg.judge.base_url))  # fail fast without a key
    state: dict = {}

    def client():
        if "client" not in state:
            url = connect() if connect is not None else cfg.judge.base_url
            state["client"] = oc.open_client(settings_for(cfg, url))
        return state["client"]

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        if not requests:
            return
        complete = client().complete
        for _, answer in oc.map_unordered(lambda r: judge_one(spec, complete, r), requests,
                                          cfg.judge.concurrency):
            yield answer

    def close() -> None:
        if "client" in state:
            state.pop("client").close()
        if on_close is not None:
            on_close()

    return Oracle(name, lambda task: plan_requests(spec, task), send,
                  lambda task, answers: resolve_answers(spec, task, answers), close)
