"""The batch oracle's bookkeeping: shard records in a store, batches submitted, polled and
read through a BatchAPI (aeuf.backends.openai_batch). See aeuf.oracle.batch.

A record is a dict: shard, stage, keys, status, and once known batch_id, output_file_id,
error_file_id, errors (a failed batch's own messages) and answered (the keys its files
answered, written once they were read).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence

from aeuf.config import OracleConfig
from aeuf.oracle.base import request_key
from aeuf.types import JudgeRequest

TERMINAL = ("completed", "failed", "expired", "cancelled", "abandoned")


def shard_id(stage: str, keys: Sequence[str]) -> str:
    """A file-safe id of a shard: its stage and the hash of its sorted request keys."""
    return request_key(stage, sorted(keys)).replace(":", "-")


def live_keys(record: dict) -> list[str]:
    """Keys a record still answers: all while running (or not yet read), else answered."""
    if record.get("status") in TERMINAL and "answered" in record:
        return record["answered"]
    return record["keys"]


def _line_result(item: dict):
    """One line of a batch output or error file -> (custom_id, ChatResult)."""
    from aeuf.backends.openai_client import ChatResult, Failure, parse_completion

    response = item.get("response")
    response = response if isinstance(response, dict) else {}
    status, error = response.get("status_code"), item.get("error")
    if status == 200:
        result = parse_completion(response.get("body") or {})
    else:
        why = f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else None
        body = response.get("body")
        detail = why or (json.dumps(body)[:300] if body is not None else "no response")
        result = Failure(f"batch line http {status}: {detail}", True)
    if isinstance(result, Failure):
        kind = "refused" if result.refused else "transport"
        result = ChatResult(None, None, result.prompt_tokens, result.completion_tokens,
                            error=f"{kind}: {result.message}")
    return item["custom_id"], result


def read_output(text: str) -> dict:
    """Batch output/error file text -> {custom_id: ChatResult} (error set on failed lines);
    lines that are not JSON objects with a string custom_id are skipped."""
    out = {}
    for line in filter(str.strip, text.splitlines()):
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(item, dict) and isinstance(item.get("custom_id"), str):
            key, result = _line_result(item)
            if key not in out or out[key].error is not None:  # an answer beats an error
                out[key] = result
    return out


def _state(batch) -> dict:
    """What a record keeps of a BatchInfo."""
    return {"status": batch.status, "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id, "errors": batch.errors}


class Batches:
    """The batches of one send(): records kept in `store`, calls made through `api`."""

    def __init__(self, api, store, cfg: OracleConfig) -> None:
        self.api, self.store, self.cfg = api, store, cfg
        self.errors: dict[str, int] = {}

    def _failed(self, record: dict, why: str) -> dict:
        """Count one failed call for a record; past cfg.judge.retries it gives up (this
        send only: the record stays, a rerun polls it again)."""
        self.errors[record["shard"]] = self.errors.get(record["shard"], 0) + 1
        return record | {"error": f"transport: {why}"}

    def recover(self, record: dict) -> dict:
        """A record saved before its batch id: find the batch by metadata, or abandon it."""
        from aeuf.backends.openai_batch import BatchAPIError

        try:
            found = self.api.find("aeuf_shard", record["shard"])
        except BatchAPIError as err:
            return self._failed(record, str(err))
        if found is not None:
            record = record | {"batch_id": found.id} | _state(found)
        else:
            record = record | {"status": "abandoned", "answered": []}
        self.store.save(record)
        return record

    def submit(self, requests: Sequence[JudgeRequest], stage: str, lines: Callable) -> dict:
        """Record a shard, upload it and create its batch (recorded with its id)."""
        from aeuf.backends.openai_batch import BatchAPIError

        keys = [r.key for r in requests]
        shard = shard_id(stage, keys)
        record = {"shard": shard, "stage": stage, "keys": keys, "status": "submitting"}
        name, data = self.store.write_shard(shard, lines(requests))
        self.store.save(record)
        try:
            file_id = self.api.upload(name, data)
            batch = self.api.create(file_id, {"aeuf_shard": shard})
        except BatchAPIError as err:
            return record | {"error": f"transport: batch not submitted ({err})"}
        record |= {"batch_id": batch.id, "input_file_id": file_id} | _state(batch)
        self.store.save(record)
        return record

    def records_for(self, requests: Sequence[JudgeRequest], stage: str,
                    lines: Callable) -> list[dict]:
        """Recorded batches that cover `requests`, plus new ones (all submitted now) for the
        rest, cfg.batch_shard_size requests each."""
        live: dict[str, dict] = {}
        for record in self.store.records():
            if record.get("stage") != stage:
                continue
            if "batch_id" not in record and record.get("status") not in TERMINAL:
                record = self.recover(record)
            for key in live_keys(record):
                live.setdefault(key, record)
        used = {live[r.key]["shard"]: live[r.key] for r in requests if r.key in live}
        need = [r for r in requests if r.key not in live]
        size = max(1, self.cfg.batch_shard_size)
        return list(used.values()) + [self.submit(need[i:i + size], stage, lines)
                                      for i in range(0, len(need), size)]

    def refresh(self, record: dict) -> dict:
        """The record with its batch's current status (a failed poll counts an error)."""
        from aeuf.backends.openai_batch import BatchAPIError

        if "batch_id" not in record or record["status"] in TERMINAL:
            return record
        try:
            batch = self.api.retrieve(record["batch_id"])
        except BatchAPIError as err:
            return self._failed(record, str(err))
        record = record | _state(batch)
        record.pop("error", None)
        self.store.save(record)
        return record

    def done(self, record: dict) -> bool:
        return ("batch_id" not in record or record["status"] in TERMINAL
                or self.errors.get(record["shard"], 0) > self.cfg.judge.retries)

    def results(self, record: dict) -> tuple[dict, dict]:
        """(record, {key: ChatResult}) of an ended batch; records which keys it answered."""
        from aeuf.backends.openai_batch import BatchAPIError

        if record.get("status") not in TERMINAL:
            return record, {}
        try:
            text = "\n".join(self.api.content(record[f])
                             for f in ("output_file_id", "error_file_id") if record.get(f))
        except BatchAPIError as err:
            return record | {"error": f"transport: batch results not read ({err})"}, {}
        out = read_output(text)
        if record.get("errors"):
            record = record | {"error": f"transport: batch {record['status']}: "
                                        f"{record['errors']}"[:400]}
        record = record | {"answered": [k for k, r in out.items() if r.error is None]}
        self.store.save(record)
        return record, out

    def wait(self, records: list[dict]) -> Iterator[tuple[dict, dict]]:
        """(record, results) for each record as its batch ends; all are polled together."""
        pending = list(records)
        while pending:
            pending = [self.refresh(r) for r in pending]
            for record in [r for r in pending if self.done(r)]:
                yield self.results(record)
            pending = [r for r in pending if not self.done(r)]
            if pending:
                time.sleep(self.cfg.batch_poll_seconds)
