"""The oracle contract shared by every oracle module (no logic beyond keys and finality).

An oracle is a NamedTuple of functions (see `Oracle`); factories registered in `ORACLES`
take `(cfg: OracleConfig, *, workdir: Path | None, **options)` and return one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import NamedTuple

from aeuf.registry import Registry
from aeuf.types import JudgeAnswer


class Oracle(NamedTuple):
    """plan(task) -> [JudgeRequest] (pure, stable keys); send(requests) -> Iterator[JudgeAnswer]
    (concurrent, yields each answer when it completes, never raises for one bad request);
    resolve(task, answers: Mapping[key, JudgeAnswer]) -> Judgement (pure); close().

    chunk: how many pending requests the caller should hand to one send() (None: the caller
    chooses). The batch oracle asks for everything at once, so that all its shards are in
    flight together.
    estimate(request) -> USD: an upper bound of what one request can cost (its retry
    included), reserved by the caller before sending so a spending cap holds with any
    number of requests in flight; None for free oracles.
    durable: True when each answer must be on disk (fsync'd) before the next one is used,
    because it was paid for; False for answers that cost nothing to make again (replay):
    the caller then logs a whole chunk with one fsync."""

    name: str
    plan: Callable
    send: Callable
    resolve: Callable
    close: Callable
    chunk: int | None = None
    estimate: Callable | None = None
    durable: bool = True


ORACLES: Registry[Callable[..., Oracle]] = Registry("oracle")

TRANSPORT = "transport:"
RETRACTED = "retracted:"  # a human's undo: the earlier answer is taken back, ask again


def is_final(answer: JudgeAnswer) -> bool:
    """True if the answer must never be re-requested: a value, or a paid failure (an
    unparsable reply after its retry, a refusal, a human's skip). False for transport
    failures (error starting with "transport:"), which a rerun may retry, and for a
    retraction (a human's undo, "retracted:"), which is asked again."""
    return answer.error is None or not answer.error.startswith((TRANSPORT, RETRACTED))


def request_key(prefix: str, *parts: object) -> str:
    """A stable key: `prefix:` + 32 hex digits of the SHA-256 of the JSON of `parts`."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return f"{prefix}:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


def nothing() -> None:
    """A close() for oracles that hold nothing."""
