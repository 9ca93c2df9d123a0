"""`--oracle batch`: the LLM judge through the OpenAI Batch API (Files + Batches endpoints).

send() writes request shards (cfg.batch_shard_size lines each) under <workdir>/batches/,
uploads them, creates one batch per shard and records its id there before waiting; it
polls every cfg.batch_poll_seconds and yields a batch's answers when it finishes. Replies
without a parsable answer go once more through a "retry" batch. A killed process resumes by
polling the recorded batches: a request that belongs to a recorded batch (still running,
or finished with an answer for it) is never submitted again. Requests a batch did not
answer (failed/expired batch, error line) come back as "transport:" errors, which a rerun
submits again. Prices in the config should be the provider's batch prices.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError
from aeuf.io import BatchStore
from aeuf.oracle.base import ORACLES, Oracle, request_key
from aeuf.oracle.judge import (
    answer_from,
    make_spec,
    needs_retry,
    plan_requests,
    resolve_answers,
    retry_body,
    settings_for,
)
from aeuf.types import JudgeAnswer, JudgeRequest

TERMINAL = ("completed", "failed", "expired", "cancelled", "abandoned")
ENDPOINT = "/v1/chat/completions"


def shard_id(stage: str, keys: Sequence[str]) -> str:
    """A file-safe id of a shard: its stage and the hash of its sorted request keys."""
    return request_key(stage, sorted(keys)).replace(":", "-")


def batch_line(request: JudgeRequest, body: dict) -> str:
    return json.dumps({"custom_id": request.key, "method": "POST", "url": ENDPOINT,
                       "body": body})


def read_output(text: str) -> dict:
    """Batch output/error file text -> {custom_id: ChatResult} (error set on failed lines)."""
    from aeuf.backends.openai_client import ChatResult, Failure, parse_completion

    out = {}
    for line in filter(str.strip, text.splitlines()):
        try:
            item = json.loads(line)
            response = item.get("response") or {}
            key = item["custom_id"]
        except (json.JSONDecodeError, KeyError, AttributeError):
            continue
        status = response.get("status_code")
        result = parse_completion(response.get("body") or {}) if status == 200 else \
            Failure(f"batch line http {status}: {str(item.get('error'))[:200]}", True)
        if isinstance(result, Failure):
            kind = "refused" if result.refused else "transport"
            result = ChatResult(None, error=f"{kind}: {result.message}")
        out[key] = result
    return out


def live_keys(record: dict) -> list[str]:
    """Keys a record still answers: all while running (or not yet read), else answered."""
    if record.get("status") in TERMINAL and "answered" in record:
        return record["answered"]
    return record["keys"]


class _Batches:
    """The Files + Batches calls of one send(), with the records kept in a BatchStore."""

    def __init__(self, api, store: BatchStore, cfg: OracleConfig) -> None:
        self.api, self.store, self.cfg = api, store, cfg
        self.errors: dict[str, int] = {}

    def recover(self, record: dict) -> dict:
        """A record saved before its batch id: find the batch by metadata, or abandon it."""
        try:
            found = [b for b in self.api.batches.list(limit=100)
                     if (b.metadata or {}).get("aeuf_shard") == record["shard"]]
        except self.openai.OpenAIError as err:
            return record | {"error": f"transport: batch list failed ({type(err).__name__})"}
        if found:
            record |= {"batch_id": found[0].id, "status": found[0].status}
        else:
            record |= {"status": "abandoned", "answered": []}
        self.store.save(record)
        return record

    def submit(self, requests: Sequence[JudgeRequest], stage: str, body_of: Callable) -> dict:
        keys = [r.key for r in requests]
        record = {"shard": shard_id(stage, keys), "stage": stage, "keys": keys,
                  "status": "submitting"}
        shard_file = self.store.write_shard(record["shard"], [batch_line(r, body_of(r))
                                                              for r in requests])
        self.store.save(record)
        try:
            upload = self.api.files.create(file=shard_file, purpose="batch")
            batch = self.api.batches.create(input_file_id=upload.id, endpoint=ENDPOINT,
                                            completion_window="24h",
                                            metadata={"aeuf_shard": record["shard"]})
        except self.openai.OpenAIError as err:
            return record | {"error": f"transport: batch not submitted ({type(err).__name__})"}
        record |= {"batch_id": batch.id, "input_file_id": upload.id, "status": batch.status}
        self.store.save(record)
        return record

    @property
    def openai(self):
        import openai

        return openai

    def records_for(self, requests: Sequence[JudgeRequest], stage: str,
                    body_of: Callable) -> list[dict]:
        """Recorded batches that cover `requests`, plus new ones for the rest."""
        live: dict[str, dict] = {}
        for record in self.store.records():
            if record["stage"] != stage:
                continue
            if "batch_id" not in record and record["status"] not in TERMINAL:
                record = self.recover(record)
            for key in live_keys(record):
                live.setdefault(key, record)
        used = {live[r.key]["shard"]: live[r.key] for r in requests if r.key in live}
        need = [r for r in requests if r.key not in live]
        size = max(1, self.cfg.batch_shard_size)
        return list(used.values()) + [self.submit(need[i:i + size], stage, body_of)
                                      for i in range(0, len(need), size)]

    def refresh(self, record: dict) -> dict:
        """The record with its batch's current status (a poll that fails counts an error)."""
        if "batch_id" not in record or record["status"] in TERMINAL:
            return record
        try:
            batch = self.api.batches.retrieve(record["batch_id"])
        except self.openai.OpenAIError:
            self.errors[record["shard"]] = self.errors.get(record["shard"], 0) + 1
            return record
        record = record | {"status": batch.status, "output_file_id": batch.output_file_id,
                           "error_file_id": batch.error_file_id}
        self.store.save(record)
        return record

    def done(self, record: dict) -> bool:
        return ("batch_id" not in record or record["status"] in TERMINAL
                or self.errors.get(record["shard"], 0) > self.cfg.judge.retries)

    def results(self, record: dict) -> dict:
        """{key: ChatResult} of a finished batch; records which keys it answered."""
        if record.get("status") not in TERMINAL:
            return {}
        try:
            text = "\n".join(self.api.files.content(record[f]).text
                             for f in ("output_file_id", "error_file_id") if record.get(f))
        except self.openai.OpenAIError:
            return {}
        out = read_output(text)
        self.store.save(record | {"answered": [k for k, r in out.items() if r.error is None]})
        return out

    def wait(self, records: list[dict]) -> Iterator[tuple[dict, dict]]:
        """(record, results) for each record as its batch finishes."""
        pending = list(records)
        while pending:
            pending = [self.refresh(r) for r in pending]
            for record in [r for r in pending if self.done(r)]:
                yield record, self.results(record)
            pending = [r for r in pending if not self.done(r)]
            if pending:
                time.sleep(self.cfg.batch_poll_seconds)


def _missing(record: dict):
    from aeuf.backends.openai_client import ChatResult

    why = record.get("error") or f"transport: batch {record.get('status')} without an answer"
    return ChatResult(None, error=why)


def _stage(batches: _Batches, spec, requests, stage, body_of) -> Iterator[tuple]:
    """(request, ChatResult) for every request of one stage, batch by batch."""
    wanted = {r.key: r for r in requests}
    for record, results in batches.wait(batches.records_for(requests, stage, body_of)):
        for key in record["keys"]:
            if key in wanted:
                yield wanted.pop(key), results.get(key) or _missing(record)


@ORACLES.register("batch")
def batch_oracle(cfg: OracleConfig, *, workdir: Path | None = None, **_) -> Oracle:
    """The judge (same keys, templates and parsers) through the Batch API."""
    from aeuf.backends import openai_client as oc

    if workdir is None:
        raise ConfigError("the batch oracle needs a run directory to record its batches")
    spec, settings = make_spec(cfg), settings_for(cfg, cfg.judge.base_url)
    oc.api_key(settings)
    state: dict = {}

    def send(requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]:
        if not requests:
            return
        state.setdefault("client", oc.open_client(settings))
        api = state["client"].raw.with_options(max_retries=cfg.judge.retries)
        batches = _Batches(api, BatchStore(Path(workdir) / "batches"), cfg)
        first, retry = {}, []
        for request, result in _stage(batches, spec, requests, "first",
                                      lambda r: r.payload["body"]):
            if needs_retry(spec, request, result):
                first[request.key] = result
                retry.append(request)
            else:
                yield answer_from(spec, request, [result])
        for request, result in _stage(batches, spec, retry, "retry",
                                      lambda r: retry_body(r.payload["body"])):
            yield answer_from(spec, request, [first[request.key], result])

    def close() -> None:
        if "client" in state:
            state.pop("client").close()

    return Oracle("batch", lambda task: plan_requests(spec, task), send,
                  lambda task, answers: resolve_answers(spec, task, answers), close)
