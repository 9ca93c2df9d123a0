"""Chat completions against any OpenAI-compatible server, robust to a remote API's faults.

Shared by the judge (aeuf.oracle) and the OpenAI generation back-end. One `ChatClient`
sends chat-completion bodies (dicts: model, messages, temperature, max_tokens, logprobs...)
and returns `ChatResult`s (text, first-choice log-probs, token usage); `map_unordered` runs
any per-item function on a bounded thread pool and yields results as they complete.

Faults handled per request: 429 (waits Retry-After / retry-after-ms, and pauses every
worker), 408/409/5xx, timeouts, dropped connections, truncated or non-JSON bodies, an
empty choice list, empty content and refusals: retried with jittered exponential backoff
up to `retries` times, then returned as an error string ("transport: ..." or, for a
refusal, "refused: ..."); nothing is raised for one bad request. The API key is read
from the environment variable named in the settings and scrubbed from every message.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from aeuf.config import EndpointConfig
from aeuf.errors import ConfigError, MissingExtra

T = TypeVar("T")
U = TypeVar("U")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "0.0.0.0")


@dataclass(frozen=True, kw_only=True)
class ClientSettings:
    """Where and how to send: base_url None means api.openai.com."""

    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float = 60.0
    retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0


def settings_for(endpoint: EndpointConfig, base_url: str | None = None) -> ClientSettings:
    """ClientSettings of an endpoint (base_url overrides the endpoint's own, e.g. a server
    started here)."""
    return ClientSettings(base_url=base_url or endpoint.base_url,
                          api_key_env=endpoint.api_key_env,
                          requests_per_minute=endpoint.requests_per_minute,
                          tokens_per_minute=endpoint.tokens_per_minute,
                          timeout=endpoint.timeout, retries=endpoint.retries)


class TokenLogprob(NamedTuple):
    """One generated token: its text, log-prob and the top alternatives [(token, logprob)]."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


class ChatResult(NamedTuple):
    """The first choice of one completion, or an error after the retries ran out."""

    text: str | None
    logprobs: tuple[TokenLogprob, ...] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0


class ChatClient(NamedTuple):
    """complete(body) -> ChatResult (blocking, thread-safe); close(); raw: the openai client."""

    complete: Callable[[dict], ChatResult]
    close: Callable[[], None]
    raw: Any


class Failure(NamedTuple):
    """Why one attempt failed: retry it? wait at least retry_after seconds? refusal?"""

    message: str
    retryable: bool
    retry_after: float | None = None
    refused: bool = False


# ---------------------------------------------------------------- pure helpers


def backoff_delay(attempt: int, *, base: float, cap: float, retry_after: float | None,
                  u: float) -> float:
    """Seconds to wait before retry `attempt` (0-based); u ~ U[0, 1) gives the jitter.

    Exponential base * 2**attempt capped at `cap`, jittered into [half, full]; a server's
    Retry-After is honoured as a floor (plus up to 10% jitter so workers do not stampede).
    """
    expo = min(cap, base * 2.0**attempt) * (0.5 + 0.5 * u)
    if retry_after is None:
        return expo
    return max(expo, retry_after * (1.0 + 0.1 * u))


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (numeric) headers, else None."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            return max(0.0, float(headers[name]) * scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def schedule(next_free: float, now: float, tokens: int, rpm: float | None,
             tpm: float | None) -> tuple[float, float]:
    """Rate limiting as even spacing: (start time of this request, next free time).

    A request costs 60/rpm seconds of the request budget and tokens*60/tpm of the token
    budget; requests start no earlier than `next_free` and push it on by the larger cost.
    """
    start = max(now, next_free)
    gap = max(60.0 / rpm if rpm else 0.0, tokens * 60.0 / tpm if tpm else 0.0)
    return start, start + gap


def estimate_tokens(body: dict) -> int:
    """Rough token count of a request (4 characters a token, plus the completion cap)."""
    return len(json.dumps(body.get("messages", ""))) // 4 + int(body.get("max_tokens") or 0)


def scrub(text: str | None, secret: str | None) -> str | None:
    """`text` with every occurrence of `secret` replaced by '***'."""
    if text is None or not secret:
        return text
    return text.replace(secret, "***")


def _logprobs(choice: dict) -> tuple[TokenLogprob, ...] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if not content:
        return None
    return tuple(
        TokenLogprob(str(t["token"]), float(t["logprob"]),
                     tuple((str(a["token"]), float(a["logprob"]))
                           for a in t.get("top_logprobs") or ()))
        for t in content
    )


def parse_completion(body: str | dict) -> ChatResult | Failure:
    """A chat-completion response body (text or decoded JSON) -> ChatResult, or the
    Failure it represents."""
    try:
        data = json.loads(body) if isinstance(body, str) else body
        choices = data["choices"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return Failure(f"non-JSON or malformed body ({len(str(body))} chars)", True)
    if not choices:
        return Failure("empty choice list", True)
    choice, usage = choices[0], data.get("usage") or {}
    message = choice.get("message") or {}
    if message.get("refusal") or choice.get("finish_reason") == "content_filter":
        return Failure(f"refusal: {str(message.get('refusal'))[:200]}", True, refused=True)
    if message.get("content") is None:
        return Failure("empty content", True)
    return ChatResult(message["content"], _logprobs(choice), int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0), choice.get("finish_reason"))


# ---------------------------------------------------------------- transport


class _Limiter:
    """Thread-safe spacing of request starts (rpm/tpm) plus a shared pause after a 429."""

    def __init__(self, rpm: float | None, tpm: float | None) -> None:
        self.rpm, self.tpm, self.next_free = rpm, tpm, 0.0
        self.lock = threading.Lock()

    def acquire(self, tokens: int) -> None:
        with self.lock:
            start, self.next_free = schedule(self.next_free, time.monotonic(), tokens,
                                             self.rpm, self.tpm)
        wait = start - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.next_free = max(self.next_free, time.monotonic() + seconds)


def _classify(exc: Exception, openai: Any) -> Failure:
    """An exception from the openai client -> Failure (retryable or not)."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Failure(f"connection error ({type(cause).__name__})", True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry = status in (408, 409, 429) or status >= 500
        after = parse_retry_after(exc.response.headers) if status in (429, 503) else None
        return Failure(f"http {status}: {' '.join(str(exc.message).split())[:200]}", retry, after)
    return Failure(f"{type(exc).__name__}: {str(exc)[:200]}", False)


def _attempt(http: Any, openai: Any, body: dict, timeout: float) -> ChatResult | Failure:
    rest = {k: v for k, v in body.items() if k not in ("model", "messages")}
    try:
        raw = http.chat.completions.with_raw_response.create(
            model=body["model"], messages=body["messages"], extra_body=rest, timeout=timeout)
        return parse_completion(raw.text)
    except openai.OpenAIError as exc:
        return _classify(exc, openai)
    except UnicodeDecodeError:
        return Failure("undecodable body", True)


def _complete(http: Any, openai: Any, limiter: _Limiter, settings: ClientSettings,
              secret: str, body: dict) -> ChatResult:
    """Send one body with retries; always returns a ChatResult (error set on failure)."""
    t0, rng, failure = time.monotonic(), random.Random(), Failure("not sent", False)
    for attempt in range(settings.retries + 1):
        limiter.acquire(estimate_tokens(body))
        out = _attempt(http, openai, body, settings.timeout)
        if isinstance(out, ChatResult):
            return out._replace(text=scrub(out.text, secret), attempts=attempt + 1,
                                seconds=time.monotonic() - t0)
        failure = out
        if not out.retryable or attempt == settings.retries:
            break
        delay = backoff_delay(attempt, base=settings.backoff_base, cap=settings.backoff_max,
                              retry_after=out.retry_after, u=rng.random())
        if out.retry_after is not None:
            limiter.pause(delay)
        time.sleep(delay)
    kind = "refused" if failure.refused else "transport"
    message = scrub(f"{kind}: {failure.message} (after {attempt + 1} attempts)", secret)
    return ChatResult(None, error=message, attempts=attempt + 1, seconds=time.monotonic() - t0)


def api_key(settings: ClientSettings) -> str:
    """The key from the environment; a placeholder for local servers that need none."""
    key = os.environ.get(settings.api_key_env, "")
    local = settings.base_url is not None and any(h in settings.base_url for h in LOCAL_HOSTS)
    if not key and not local:
        raise ConfigError(f"set the environment variable {settings.api_key_env} to the API key "
                          f"(or name another one with --api_key_env)")
    return key or "sk-no-key-needed"


def open_client(settings: ClientSettings) -> ChatClient:
    """A ChatClient for `settings`; the openai package is imported here, lazily."""
    try:
        import openai
    except ImportError:
        raise MissingExtra("the judge needs the openai package: pip install openai") from None
    secret = api_key(settings)
    http = openai.OpenAI(api_key=secret, base_url=settings.base_url, max_retries=0,
                         timeout=settings.timeout)
    limiter = _Limiter(settings.requests_per_minute, settings.tokens_per_minute)

    def complete(body: dict) -> ChatResult:
        return _complete(http, openai, limiter, settings, secret, body)

    return ChatClient(complete, http.close, http)


def complete_many(client: ChatClient, bodies: Iterable[dict], concurrency: int
                  ) -> Iterator[tuple[int, ChatResult]]:
    """(index into `bodies`, ChatResult) for every body, in completion order."""
    for (i, _), result in map_unordered(lambda ib: client.complete(ib[1]), enumerate(bodies),
                                        concurrency):
        yield i, result


def map_unordered(fn: Callable[[T], U], items: Iterable[T], concurrency: int
                  ) -> Iterator[tuple[T, U]]:
    """Yield (item, fn(item)) as each call completes, at most `concurrency` in flight.

    Items are pulled lazily, so closing the iterator early leaves only the calls already
    in flight to finish (their results are dropped). `fn` should not raise; if it does,
    the exception propagates here.
    """
    source, pending = iter(items), {}
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        while True:
            while len(pending) < max(1, concurrency):
                item = next(source, _END)
                if item is _END:
                    break
                pending[pool.submit(fn, item)] = item
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()
    finally:  # closed early or interrupted: do not wait for the calls in flight
        pool.shutdown(wait=not pending, cancel_futures=True)


_END = object()
