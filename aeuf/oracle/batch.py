"""`--oracle batch`: the LLM judge through the OpenAI Batch API (Files + Batches endpoints).

The oracle asks for every pending request of a round in one send() (Oracle.chunk), cuts
them into shards of cfg.batch_shard_size, and has one batch per shard in flight together.
Each shard is recorded in the store the run layer passes in (aeuf.io.BatchStore, under the
run directory) before its batch is
created and again with the batch id, so a killed process resumes by polling the recorded
batches: a request that belongs to a recorded batch (still running, or finished with an
answer for it) is never submitted again. A batch is polled every cfg.batch_poll_seconds; its
answers are yielded when it ends. A batch that ends failed, expired or cancelled gives the
answers it has (its output and error files); every request it did not answer (an error
line, no line, or a failed batch) comes back as a "transport:" error, which a rerun submits
again. Replies without a parsable answer go once more through a "retry" batch. The Files
and Batches calls live in aeuf.backends.openai_batch. Prices should be the batch prices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle.base import Before, Capabilities, Lazy, Oracle, register
from aeuf.oracle.batch_poll import Batches, live_keys, read_output, shard_id  # noqa: F401
from aeuf.oracle.judge import (
    FORMATS,
    answer_from,
    chat_body,
    estimate_cost,
    format_rejected,
    hold_back,
    make_spec,
    needs_retry,
    plan_requests,
    resolve_answers,
    settings_for,
)
from aeuf.types import JudgeAnswer, JudgeRequest

ENDPOINT = "/v1/chat/completions"
ALL_AT_ONCE = 10**9  # Oracle.chunk: hand every pending request to one send()


def batch_line(request: JudgeRequest, body: dict) -> str:
    return json.dumps({"custom_id": request.key, "method": "POST", "url": ENDPOINT,
                       "body": body})


def _missing(record: dict):
    from aeuf.backends.openai_client import ChatResult

    why = record.get("error") or f"transport: batch {record.get('status')} without an answer"
    return ChatResult(None, error=why)


def _stage(batches: Batches, requests: Sequence[JudgeRequest], stage: str,
           body_of: Callable) -> Iterator[tuple]:
    """(request, ChatResult) for every request of one stage, as its batch ends."""
    wanted = {r.key: r for r in requests}
    lines = lambda rs: [batch_line(r, body_of(r)) for r in rs]  # noqa: E731
    for record, results in batches.wait(batches.records_for(requests, stage, lines)):
        for key in record["keys"]:
            if key in wanted:
                yield wanted.pop(key), results.get(key) or _missing(record)


def _send(spec, batches: Batches, requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
    """First stage for every request, then one retry stage for the unparsable replies (and,
    in the line format, for replies the server refused for their response_format)."""
    fmt = FORMATS[spec.cfg.answer_format][0]
    first, retry = {}, []
    for request, result in _stage(batches, requests, "first",
                                  lambda r: chat_body(spec, r, fmt)):
        if needs_retry(spec, request, result) or (format_rejected(result) and fmt != "lines"):
            first[request.key] = result
            retry.append(request)
        else:
            yield answer_from(spec, request, [result])
    rejected = {k for k, r in first.items() if format_rejected(r)}
    body = lambda r: chat_body(spec, r, "lines" if r.key in rejected else fmt,  # noqa: E731
                               retry=r.key not in rejected)
    for request, result in _stage(batches, retry, "retry", body):
        results = [result] if request.key in rejected else [first[request.key], result]
        yield answer_from(spec, request, results)


BATCH = Capabilities(llm_judge=True, remote=True, paid=True, batchable=True,
                     model_judge=True)


@register("batch", BATCH)
def batch_oracle(cfg: OracleConfig, *, store=None, api=None, **_) -> Oracle:
    """The judge (same keys, templates and parsers) through the Batch API. store: where
    the batches are recorded (the run layer passes an aeuf.io.BatchStore under the run
    directory); api: a BatchAPI (default: opened on cfg.judge on the first send)."""
    from aeuf.backends import openai_client as oc

    if store is None:
        raise ConfigError("the batch oracle needs a run directory to record its batches")
    spec, settings = make_spec(cfg), settings_for(cfg, cfg.judge.base_url)
    oc.api_key(settings)

    def open_api():
        from aeuf.backends.openai_batch import open_batch_api

        return open_batch_api(settings) if api is None else api

    client = Lazy(open_api)
    if api is not None:
        client.get()  # a given API is this oracle's to close, as one it opens

    def send(requests: Sequence[JudgeRequest], before: Before | None = None
             ) -> Iterator[JudgeAnswer]:
        """`before` is not called: each shard's record in the store, written before its batch
        is created (and found again by its metadata), is the intent of its requests."""
        held, requests = hold_back(spec, requests)
        yield from held
        if not requests:
            return
        yield from _send(spec, Batches(client.get(), store, cfg), requests)

    return Oracle("batch", lambda task: plan_requests(spec, task), send,
                  lambda task, answers: resolve_answers(spec, task, answers), client.close,
                  chunk=ALL_AT_ONCE, estimate=lambda request: estimate_cost(spec, request),
                  caps=BATCH)
