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

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import Capabilities, Lazy, Oracle, register, request_key
from aeuf.oracle.fence import cost, new_nonce
from aeuf.oracle.parsers import PARSERS, read_answer
from aeuf.oracle.prompts import Template, load_templates, render, template_cost
from aeuf.oracle.resolve import both_orders, rating_pairs, value_of, whole_ratings
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

RETRY_TEMPERATURE = 0.7
TOP_LOGPROBS = 5
FORMATS = {"auto": ("json_schema", "json_object", "lines"), "json_schema": ("json_schema",),
           "json_object": ("json_object",), "lines": ("lines",)}
CONTEXT_USE = 0.9  # share of the context the estimate may fill (token estimates are rough)
CHAT_OVERHEAD = 64  # tokens of the chat template's own markup
MIN_TEXT_TOKENS = 128


@dataclasses.dataclass(frozen=True)
class JudgeSpec:
    """What defines a judge's answers (and so its keys): model, templates, sampling."""

    model: str
    templates: tuple[Template, ...]
    cfg: OracleConfig

    @property
    def kind(self) -> str:
        return self.templates[0].kind


def text_tokens(cfg: OracleConfig, template: Template) -> float:
    """Token budget of the untrusted texts of one request: the judge's context less the
    reply, the template and the chat markup."""
    return (CONTEXT_USE * cfg.context_tokens - cfg.max_tokens - template_cost(template)
            - CHAT_OVERHEAD)


def make_spec(cfg: OracleConfig, model: str | None = None) -> JudgeSpec:
    """JudgeSpec from the config; ConfigError when no model is named or the context leaves
    no room for the texts."""
    model = model or cfg.judge.model
    if not model:
        raise ConfigError("the LLM judge needs a model: pass --judge_model NAME")
    spec = JudgeSpec(model, load_templates(cfg.template), cfg)
    for t in spec.templates:
        if text_tokens(cfg, t) < MIN_TEXT_TOKENS:
            raise ConfigError(f"--judge_context {cfg.context_tokens} leaves no room for the "
                              f"texts after judge template {t.name} and --judge_max_tokens "
                              f"{cfg.max_tokens}; raise --judge_context")
    return spec


def shown(task: JudgeTask, slots: tuple[int, ...]) -> tuple[str, ...]:
    """The untrusted texts a request shows: the prompt, then the responses in slot order."""
    return (task.prompt, *(task.responses[s] for s in slots))


def judge_key(spec: JudgeSpec, t: int, task: JudgeTask, slots: tuple[int, ...]) -> str:
    """hash(judge model, template digest, prompt id, response ids in the order shown, and a
    hash of the texts shown): an edited text is a new request."""
    rids = [task.response_ids[s] for s in slots]
    texts = request_key("texts", list(shown(task, slots)))
    return request_key("judge", spec.model, spec.templates[t].digest, task.prompt_id, rids,
                       texts)


def slot_groups(kind: str, k: int) -> list[tuple[int, ...]]:
    """Rating: (i,) for each response; pairwise: (i, j) and (j, i) for each i < j."""
    if kind == "rating":
        return [(i,) for i in range(k)]
    return [o for i in range(k) for j in range(i + 1, k) for o in ((i, j), (j, i))]


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


def plan_requests(spec: JudgeSpec, task: JudgeTask) -> list[JudgeRequest]:
    """Every request a task needs, in a stable order: templates x slot groups (pure: the
    bodies are built when sent)."""
    return [JudgeRequest(judge_key(spec, t, task, slots), task, slots, {"template": t})
            for t in range(len(spec.templates))
            for slots in slot_groups(spec.kind, len(task.responses))]


def resolve_answers(spec: JudgeSpec, task: JudgeTask,
                    answers: Mapping[str, JudgeAnswer]) -> Judgement:
    """Ratings [k] (mean over aspects, NaN unless every aspect is in) and pairs, or pairs from
    both orders (pairwise, each order whole over its templates)."""
    k = len(task.responses)
    if spec.kind == "rating":
        table = np.array([[value_of(answers, judge_key(spec, t, task, (i,))) for i in range(k)]
                          for t in range(len(spec.templates))], dtype=np.float64)
        ratings = whole_ratings(table)
        return Judgement(task, ratings, rating_pairs(ratings))
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            ps = [whole_ratings([[_nan(value_of(answers, judge_key(spec, t, task, o)))]
                                 for t in range(len(spec.templates))])[0]
                  for o in ((i, j), (j, i))]
            p = both_orders(*(None if np.isnan(x) else float(x) for x in ps))
            if p is not None:
                pairs.append((i, j, p))
    return Judgement(task, np.full(k, np.nan), pairs)


def estimate_cost(spec: JudgeSpec, request: JudgeRequest) -> float:
    """USD one request can cost at most: its prompt (template, chat markup and texts, each
    text no longer than its cut) and a full reply of --judge_max_tokens, twice (the one
    retry of an unparsable reply)."""
    cfg, template = spec.cfg, spec.templates[request.payload["template"]]
    texts = min(sum(cost(t) for t in shown(request.task, request.slots)), text_tokens(cfg, template))
    tokens_in = template_cost(template) + CHAT_OVERHEAD + max(texts, 0.0)
    usd = tokens_in * cfg.price_per_million_input + cfg.max_tokens * cfg.price_per_million_output
    return 2.0 * usd / 1e6


def _nan(value: float | None) -> float:
    return np.nan if value is None else value


def price(cfg: OracleConfig, results: Sequence) -> float:
    """USD of every reply that was paid for (prices are per million tokens)."""
    return sum(r.prompt_tokens * cfg.price_per_million_input + r.completion_tokens
               * cfg.price_per_million_output for r in results) / 1e6


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
                       f"{spec.model}/{template.name}@{template.digest[:8]}",
                       price(spec.cfg, results), tokens, error)


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

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        if not requests:
            return
        complete = client.get().complete
        for _, answer in oc.map_unordered(lambda r: judge_one(spec, complete, r, formats),
                                          requests, cfg.judge.concurrency):
            yield answer

    def close() -> None:
        client.close()
        if on_close is not None:
            on_close()

    return Oracle(name, lambda task: plan_requests(spec, task), send,
                  lambda task, answers: resolve_answers(spec, task, answers), close,
                  estimate=lambda request: estimate_cost(spec, request), caps=caps)
