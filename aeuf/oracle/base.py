"""The oracle contract shared by every oracle module (no logic beyond keys and finality).

An oracle is a typed NamedTuple of functions (`Oracle`) with its `Capabilities`: what the
loop, the cost plan and the checks ask of it (never its name). Each kind is registered in
`ORACLES` as an `OracleKind`: its capabilities (known before anything is built, e.g. for
--dry_run) and its factory `(cfg: OracleConfig, *, store=None, **options) -> Oracle`.
A client the oracle opens (an HTTP client, a server, the Batch API) lives in a `Lazy`
object: opened on first use, closed by close(), the oracle's only mutable state.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Generic, NamedTuple, Protocol, TypeVar

from aeuf.config import OracleConfig
from aeuf.registry import Registry
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

T = TypeVar("T")


class Capabilities(NamedTuple):
    """What an oracle can do; every decision about an oracle reads these, never its name.

    labels:      it answers (False: no oracle: the chosen pairs are exported for annotation)
    interactive: a person at this terminal answers (it owns the terminal: no progress bars)
    uses_gold:   answers come from the data's gold scores (a response without one is never
                 shown to it; --label_mode applies)
    llm_judge:   an LLM judge: templates, judge flags, tokens and prices apply
    remote:      it asks the endpoint at --judge_base_url (named when it cannot be reached)
    paid:        its answers are paid for at the configured prices
    batchable:   its requests go through the Batch API in shards of --batch_shard_size
    per_pair:    one request per pair of shown responses (else one per response, or per
                 template and response for an LLM judge)
    utilities:   answers are per-response utilities, paired by --label_mode (replay, a
                 reward model)
    model_judge: a model judges (an LLM or a reward model): its hygiene is reported
    reward_model: a reward model scores the responses (--reward_model names it)
    votes:       several people answer each pair (--votes_per_pair vote slots per pair)
    links:       people answer through links with a token each (the run keeps the tokens, so
                 a rerun prints the same links, and passes the ledger's earlier answers)
    """

    labels: bool = True
    interactive: bool = False
    uses_gold: bool = False
    llm_judge: bool = False
    remote: bool = False
    paid: bool = False
    batchable: bool = False
    per_pair: bool = False
    utilities: bool = False
    model_judge: bool = False
    reward_model: bool = False
    votes: bool = False
    links: bool = False


class PlanFn(Protocol):
    def __call__(self, task: JudgeTask) -> list[JudgeRequest]: ...


class SendFn(Protocol):
    def __call__(self, requests: Sequence[JudgeRequest]) -> Iterator[JudgeAnswer]: ...


Before = Callable[[JudgeRequest], None]


class PaidSendFn(Protocol):
    """The send() of a paid oracle (Capabilities.paid): it calls before(request) in the
    caller's thread just before that request leaves, so the run layer can log its intent
    first; when before raises, that request is not sent and the exception ends send()."""

    def __call__(self, requests: Sequence[JudgeRequest], before: Before | None = None
                 ) -> Iterator[JudgeAnswer]: ...


class ResolveFn(Protocol):
    def __call__(self, task: JudgeTask, answers: Mapping[str, JudgeAnswer]) -> Judgement: ...


class Oracle(NamedTuple):
    """plan(task) -> [JudgeRequest] (pure, stable keys); send(requests) -> Iterator[JudgeAnswer]
    (concurrent, yields each answer when it completes, never raises for one bad request;
    a paid oracle's send also takes `before`, see PaidSendFn);
    resolve(task, answers: Mapping[key, JudgeAnswer]) -> Judgement (pure); close().

    chunk: how many pending requests the caller should hand to one send() (None: the caller
    chooses). The batch oracle asks for everything at once, so that all its shards are in
    flight together.
    estimate(request) -> USD: an upper bound of what one request can cost (its retry
    included), reserved by the caller before sending so a spending cap holds with any
    number of requests in flight; None for free oracles.
    durable: True when each answer must be on disk (fsync'd) before the next one is used,
    because it was paid for; False for answers that cost nothing to make again (replay):
    the caller then logs a whole chunk with one fsync.
    caps: what it can do (see Capabilities)."""

    name: str
    plan: PlanFn
    send: SendFn
    resolve: ResolveFn
    close: Callable[[], None]
    chunk: int | None = None
    estimate: Callable[[JudgeRequest], float] | None = None
    durable: bool = True
    caps: Capabilities = Capabilities()


class OracleFactory(Protocol):
    def __call__(self, cfg: OracleConfig, **options) -> Oracle: ...


class OracleKind(NamedTuple):
    """A registered kind of oracle: its capabilities, its factory, the judge model its
    request keys name when that is not --judge_model (None: --judge_model), and `needs`:
    what it needs from this machine, checked before anything is read or written (raises
    ConfigError or MissingExtra in one line; None: nothing)."""

    caps: Capabilities
    make: OracleFactory
    model: Callable[[OracleConfig], str] | None = None
    needs: Callable[[OracleConfig], None] | None = None


class Lazy(Generic[T]):
    """A client opened on first use (`get`) and closed by `close` (then opened again on the
    next `get`): an oracle's connection, server or API handle, and nothing else."""

    def __init__(self, open_: Callable[[], T], close: Callable[[T], None] = lambda c: c.close()):
        self._open, self._close, self._lock = open_, close, threading.Lock()
        self._client: T | None = None

    def get(self) -> T:
        with self._lock:
            if self._client is None:
                self._client = self._open()
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            self._close(client)


ORACLES: Registry[OracleKind] = Registry("oracle")


def register(name: str, caps: Capabilities, *, model: Callable[[OracleConfig], str] | None = None,
             needs: Callable[[OracleConfig], None] | None = None):
    """Decorator: register an oracle factory under `name` with its capabilities."""

    def add(make: OracleFactory) -> OracleFactory:
        ORACLES.register(name)(OracleKind(caps, make, model, needs))
        return make

    return add


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


def announced(requests: Iterable[JudgeRequest], before: Before | None
              ) -> Iterator[JudgeRequest]:
    """`requests`, calling before(request) as each one is taken (lazily: hand this to
    map_unordered, which takes a request only when it is about to send it)."""
    for request in requests:
        if before is not None:
            before(request)
        yield request


def nothing() -> None:
    """A close() for oracles that hold nothing."""
