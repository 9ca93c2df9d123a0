"""The OpenAI Files + Batches API, as the batch oracle (aeuf.oracle.batch) needs it.

    api = open_batch_api(settings)    # a BatchAPI of plain functions
    fid = api.upload(name, data)      # a JSONL file of requests -> file id
    b = api.create(fid, metadata)     # -> BatchInfo (id, status, output/error file ids)
    b = api.retrieve(b.id); text = api.content(b.output_file_id)
    b = api.find("aeuf_shard", shard) # the batch with that metadata, paging the batch list

Every call raises BatchAPIError (one line, the API key scrubbed) on a failed call or a reply
of the wrong shape; the openai client retries 429/5xx itself (`settings.retries`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from aeuf.backends.openai_client import ClientSettings, clean, open_http

ENDPOINT = "/v1/chat/completions"
MAX_PAGES = 50  # the batch list is searched 100 at a time, newest first, at most this deep


class BatchAPIError(Exception):
    """A Files/Batches call failed (message: one line, no secrets)."""


class BatchInfo(NamedTuple):
    """A batch as the oracle needs it. errors: the batch's own error messages, if any."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    metadata: dict | None = None
    errors: str | None = None


class BatchAPI(NamedTuple):
    upload: Callable[[str, bytes], str]
    create: Callable[[str, dict], BatchInfo]
    retrieve: Callable[[str], BatchInfo]
    content: Callable[[str], str]
    find: Callable[[str, str], BatchInfo | None]
    close: Callable[[], None]


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _errors(batch: Any) -> str | None:
    data = getattr(getattr(batch, "errors", None), "data", None) or []
    messages = [f"{getattr(e, 'code', None)}: {getattr(e, 'message', None)}" for e in data]
    return "; ".join(messages) or None


def batch_info(batch: Any) -> BatchInfo:
    """A Batch object from the openai client -> BatchInfo; BatchAPIError if malformed."""
    bid, status = getattr(batch, "id", None), getattr(batch, "status", None)
    if not isinstance(bid, str) or not bid or not isinstance(status, str):
        raise BatchAPIError(f"malformed batch object ({type(batch).__name__})")
    metadata = getattr(batch, "metadata", None)
    return BatchInfo(bid, status, _optional_str(getattr(batch, "output_file_id", None)),
                     _optional_str(getattr(batch, "error_file_id", None)),
                     metadata if isinstance(metadata, dict) else None, _errors(batch))


def _find(http: Any, key: str, value: str) -> BatchInfo | None:
    page = http.batches.list(limit=100)
    for _ in range(MAX_PAGES):
        for batch in page.data:
            if isinstance(batch.metadata, dict) and batch.metadata.get(key) == value:
                return batch_info(batch)
        if not page.has_next_page():
            return None
        page = page.get_next_page()
    return None


def open_batch_api(settings: ClientSettings) -> BatchAPI:
    """A BatchAPI on the endpoint of `settings` (its key, base URL and retries)."""
    openai, http, secrets = open_http(settings)
    http = http.with_options(max_retries=settings.retries)

    def call(what: str, fn: Callable, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except openai.OpenAIError as err:
            raise BatchAPIError(clean(f"{what}: {type(err).__name__}: {err}", *secrets)) from None
        except (AttributeError, TypeError, ValueError) as err:  # a reply of the wrong shape
            raise BatchAPIError(clean(f"{what}: malformed reply ({err})", *secrets)) from None

    def upload(name: str, data: bytes) -> str:
        fid = call("file upload", lambda: http.files.create(file=(name, data),
                                                            purpose="batch").id)
        if not isinstance(fid, str) or not fid:
            raise BatchAPIError("file upload: no file id in the reply")
        return fid

    def create(file_id: str, metadata: dict) -> BatchInfo:
        return call("batch create", lambda: batch_info(http.batches.create(
            input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h",
            metadata=metadata)))

    def retrieve(batch_id: str) -> BatchInfo:
        return call("batch poll", lambda: batch_info(http.batches.retrieve(batch_id)))

    def content(file_id: str) -> str:
        return call("file download", lambda: http.files.content(file_id).text)

    def find(key: str, value: str) -> BatchInfo | None:
        return call("batch list", _find, http, key, value)

    return BatchAPI(upload, create, retrieve, content, find, http.close)
