"""The LLM judge over any OpenAI-compatible chat API (OpenAI, vLLM, llama.cpp, SGLang...).

Rating templates ("overall", the four UltraFeedback aspects, or a file): one request per
(aspect, response); a response's rating is the mean over its aspects. Pairwise template: a
request per ordered pair (i, j) and (j, i); disagreement between the orders is a tie.
A reply without a parsable answer is asked once more (at temperature >= 0.7), then
recorded as missing ("unparsable: ..."), never as a default rating.

Request bodies are built when sent, each with a fresh fence nonce (aeuf.oracle.fence); the
key of a request names what is judged, never how it was asked: judge model, template
digest, prompt id, response ids in the order shown and a hash of those texts.
Answer formats (--judge_answer_format): structured output (a JSON schema, answer field
first) where the server accepts it, else the template's first line; `auto` tries
json_schema, then json_object, then lines, and keeps the first one the server accepts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from aeuf.config import OracleConfig
from aeuf.oracle import overlong
from aeuf.oracle.base import Before, Capabilities, Lazy, Oracle, announced, register
from aeuf.oracle.fence import cost, new_nonce
from aeuf.oracle.judge_plan import (  # noqa: F401  (re-exported: the judge's plan)
    CHAT_OVERHEAD,
    CONTEXT_USE,
    MIN_TEXT_TOKENS,
    JudgeSpec,
    cut_slots,
    judge_key,
    make_request,
    make_spec,
    plan_requests,
    shown,
    slot_groups,
    text_tokens,
)
from aeuf.oracle.parsers import PARSERS, read_answer
from aeuf.oracle.prompts import Template, render, template_cost
from aeuf.oracle.resolve import both_orders, rating_pairs, value_of, whole_ratings
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

RETRY_TEMPERATURE = 0.7
TOP_LOGPROBS = 5
FORMATS = {"auto": ("json_schema", "json_object", "lines"), "json_schema": ("json_schema",),
           "json_object": ("json_object",), "lines": ("lines",)}


def response_format(kind: str, fmt: str) -> dict | None:
    """The `response_format` of an answer format (None for the line format)."""
    schema = PARSERS.get(kind).schema
    if fmt == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": f"{kind}_answer", "strict": True, "schema": schema}}
    if fmt == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


def chat_body(spec: JudgeSpec, request: JudgeRequest, fmt: str = "lines", *,
              retry: bool = False, nonce: str | None = None) -> dict:
    """The chat-completion body of one request (no secrets), with a fresh fence nonce."""
    cfg, template = spec.cfg, spec.templates[request.payload["template"]]
    texts = shown(request.task, request.slots)
    messages = render(template, texts[0], texts[1:], nonce=nonce or new_nonce(),
                      tokens=text_tokens(cfg, template))
    temperature = max(cfg.temperature, RETRY_TEMPERATURE) if retry else cfg.temperature
    body = {"model": spec.model, "messages": messages, "temperature": temperature,
            "max_tokens": cfg.max_tokens}
    if cfg.logprobs:
        body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
    rf = response_format(template.kind, fmt)
    return body if rf is None else body | {"response_format": rf}


def resolve_answers(spec: JudgeSpec, task: JudgeTask,
                    answers: Mapping[str, JudgeAnswer]) -> Judgement:
    """Ratings [k] (mean over aspects, NaN unless every aspect is in) and pairs, or pairs from
    both orders (pairwise, each order whole over its templates); a cut response as the
    --judge_overlong policy says (aeuf.oracle.overlong)."""
    k, nt, policy = len(task.responses), len(spec.templates), spec.cfg.overlong
    req = {(r.payload["template"], r.slots): r for r in plan_requests(spec, task)}
    cut = sorted({s for r in req.values() for s in r.payload["cut"]})
    if spec.kind == "rating":
        table = np.array([[value_of(answers, req[t, (i,)].key) for i in range(k)]
                          for t in range(nt)], dtype=np.float64)
        ratings = whole_ratings(table)
        for i in cut:
            ratings[i] = overlong.rating_of(policy, ratings[i])
        return Judgement(task, ratings, rating_pairs(ratings), tuple(cut))
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            ps = [whole_ratings([[_nan(value_of(answers, req[t, o].key))] for t in range(nt)])[0]
                  for o in ((i, j), (j, i))]
            p = both_orders(*(None if np.isnan(x) else float(x) for x in ps))
            shown_cut = {s for t in range(nt) for s in req[t, (i, j)].payload["cut"]}
            p = overlong.pair_of(policy, i in shown_cut, j in shown_cut, p)
            if p is not None:
                pairs.append((i, j, p))
    return Judgement(task, np.full(k, np.nan), pairs, tuple(cut))


def estimate_cost(spec: JudgeSpec, request: JudgeRequest) -> float:
    """USD one request can cost at most: its prompt (template, chat markup and texts, each
    text no longer than its cut) and a full reply of --judge_max_tokens, twice (the one
    retry of an unparsable reply)."""
    cfg, template = spec.cfg, spec.templates[request.payload["template"]]
    if overlong.held_back(cfg.overlong, request.payload.get("cut", ())):
        return 0.0  # answered without being sent
    texts = min(sum(cost(t) for t in shown(request.task, request.slots)), text_tokens(cfg, template))
    tokens_in = template_cost(template) + CHAT_OVERHEAD + max(texts, 0.0)
    usd = tokens_in * cfg.judge.price_in + cfg.max_tokens * cfg.judge.price_out
    return 2.0 * usd / 1e6


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def price(cfg: OracleConfig, results: Sequence) -> float:
    """USD of every reply that was paid for (prices are per million tokens)."""
    return sum(r.prompt_tokens * cfg.judge.price_in + r.completion_tokens * cfg.judge.price_out
               for r in results) / 1e6


def answer_from(spec: JudgeSpec, request: JudgeRequest, results: Sequence) -> JudgeAnswer:
    """JudgeAnswer from the ChatResults of a request (first try, then its retry if any)."""
    last, template = results[-1], spec.templates[request.payload["template"]]
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in results)
    raw = "\n\n--- retry ---\n\n".join(r.text for r in results if r.text is not None)
    value, error = None, last.error
    if last.error is None:
        value = read_answer(template.kind, last.text, last.logprobs)
        if value is None:
            error = f"unparsable: no answer at the start of {len(results)} replies"
    elif len(results) > 1:  # a paid, unparsable first reply: final, never bought again
        error = f"unparsable: first reply had no answer, its retry failed ({last.error})"
    rids = tuple(request.task.response_ids[s] for s in request.slots)
    return JudgeAnswer(request.key, request.task.prompt_id, rids, value, raw,
                       judge_name(spec, template), price(spec.cfg, results), tokens, error,
                       cut_ids(request))


def judge_name(spec: JudgeSpec, template: Template) -> str:
    return f"{spec.model}/{template.name}@{template.digest[:8]}"


def cut_ids(request: JudgeRequest) -> tuple[str, ...]:
    return tuple(request.task.response_ids[s] for s in request.payload.get("cut", ()))


def hold_back(spec: JudgeSpec, requests: Sequence[JudgeRequest]
              ) -> tuple[list[JudgeAnswer], list[JudgeRequest]]:
    """(the free, final answers of the requests --judge_overlong keeps from the judge, the
    requests to send)."""
    held, rest = [], []
    for r in requests:
        if overlong.held_back(spec.cfg.overlong, r.payload.get("cut", ())):
            ids = cut_ids(r)
            held.append(JudgeAnswer(
                r.key, r.task.prompt_id, tuple(r.task.response_ids[s] for s in r.slots),
                None, "", judge_name(spec, spec.templates[r.payload["template"]]),
                error=overlong.reason(spec.cfg.overlong, ids), cut=ids))
        else:
            rest.append(r)
    return held, rest


def needs_retry(spec: JudgeSpec, request: JudgeRequest, result) -> bool:
    """True when a delivered reply has no parsable answer (it gets one more try)."""
    if result.error is not None:
        return False
    kind = spec.templates[request.payload["template"]].kind
    return read_answer(kind, result.text) is None


def format_rejected(result) -> bool:
    """True when the server refused the request because of its response_format."""
    return bool(result.error) and result.error.startswith("transport:") \
        and "response_format" in result.error


class Formats:
    """The answer formats still to try (the first is in use), shared by one oracle's workers."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names, self.lock = list(names), threading.Lock()

    def current(self) -> str:
        return self.names[0]

    def reject(self, name: str) -> bool:
        """The server rejected `name`: move on. False when there is nothing else to try."""
        with self.lock:
            if self.names[0] == name and len(self.names) > 1:
                self.names.pop(0)
            return self.names[0] != name


def ask(spec: JudgeSpec, complete: Callable, request: JudgeRequest, formats: Formats, *,
        retry: bool = False):
    """One reply to `request` in the first answer format the server accepts."""
    while True:
        fmt = formats.current()
        result = complete(chat_body(spec, request, fmt, retry=retry))
        if not format_rejected(result) or not formats.reject(fmt):
            return result


def judge_one(spec: JudgeSpec, complete: Callable, request: JudgeRequest,
              formats: Formats) -> JudgeAnswer:
    """Send one request (and its retry when the reply is unparsable) -> JudgeAnswer."""
    results = [ask(spec, complete, request, formats)]
    if needs_retry(spec, request, results[0]):
        results.append(ask(spec, complete, request, formats, retry=True))
    return answer_from(spec, request, results)


def settings_for(cfg: OracleConfig, base_url: str | None):
    """ClientSettings of the judge's endpoint (at `base_url` when given)."""
    from aeuf.backends.openai_client import settings_for as endpoint_settings

    return endpoint_settings(cfg.judge, base_url)


JUDGE = Capabilities(llm_judge=True, remote=True, paid=True, model_judge=True)


@register("judge", JUDGE)
def judge_oracle(cfg: OracleConfig, *, name: str = "judge",
                 connect: Callable[[], str | None] | None = None, model: str | None = None,
                 on_close: Callable[[], None] | None = None, caps: Capabilities = JUDGE,
                 **_) -> Oracle:
    """LLM judge at cfg.judge.base_url (or at `connect()`, called on the first send)."""
    from aeuf.backends import openai_client as oc

    spec, formats = make_spec(cfg, model), Formats(FORMATS[cfg.answer_format])
    if connect is None:
        oc.api_key(settings_for(cfg, cfg.judge.base_url))  # fail fast without a key
    url = connect if connect is not None else lambda: cfg.judge.base_url
    client = Lazy(lambda: oc.open_client(settings_for(cfg, url())))

    def send(requests: Sequence[JudgeRequest], before: Before | None = None
             ) -> Iterator[JudgeAnswer]:
        held, requests = hold_back(spec, requests)  # never sent: no intent
        yield from held
        if not requests:
            return
        complete = client.get().complete
        for _, answer in oc.map_unordered(lambda r: judge_one(spec, complete, r, formats),
                                          announced(requests, before), cfg.judge.concurrency):
            yield answer

    def close() -> None:
        client.close()
        if on_close is not None:
            on_close()

    return Oracle(name, lambda task: plan_requests(spec, task), send,
                  lambda task, answers: resolve_answers(spec, task, answers), close,
                  estimate=lambda request: estimate_cost(spec, request), caps=caps)
