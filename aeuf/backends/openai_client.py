"""Chat completions against any OpenAI-compatible server, robust to a remote API's faults.

Shared by the judge (aeuf.oracle) and the OpenAI generation back-end. One `ChatClient`
sends chat-completion bodies (dicts: model, messages, temperature, max_tokens, logprobs...)
and returns `ChatResult`s (text, first-choice log-probs, token usage); `map_unordered` runs
any per-item function on a bounded thread pool and yields results as they complete.

Each attempt is bounded in total by `timeout` seconds (a reply trickled a byte at a time
too: `bounded`). Faults handled per request: 429 (waits Retry-After / retry-after-ms, finite and capped at
`max_retry_after`, and pauses every worker), 408/409/5xx, timeouts, dropped connections,
truncated or non-JSON bodies, a 200 body whose fields have the wrong types, an empty choice
list, empty content and refusals: retried with jittered exponential backoff up to `retries`
times, then returned as an error string ("transport: ..." or, for a refusal, "refused:
..."); nothing is raised for one bad request. Every reply that reports token usage counts,
also when it is retried (billed retries are priced). The API key is read from the
environment variable named in the settings, scrubbed from every message before it is cut
short, and never sent to a server on this machine unless `send_key_to_local`.
"""

from __future__ import annotations

import ipaddress
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from aeuf.backends.openai_reply import (  # noqa: F401  (re-exported: the client's records)
    MAX_RETRY_AFTER,
    ChatResult,
    Failure,
    TokenLogprob,
    backoff_delay,
    clean,
    estimate_tokens,
    parse_completion,
    parse_retry_after,
    schedule,
    scrub,
)
from aeuf.config import EndpointConfig
from aeuf.errors import ConfigError, MissingExtra

T = TypeVar("T")
U = TypeVar("U")
PLACEHOLDER_KEY = "sk-no-key-needed"
# Set while a run is stopping (aeuf.run.ledger: the first Ctrl-C): map_unordered starts
# nothing new and yields what is in flight (paid) so that it is logged before the exit.
STOPPING = threading.Event()


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
    max_retry_after: float = MAX_RETRY_AFTER
    send_key_to_local: bool = False


def settings_for(endpoint: EndpointConfig, base_url: str | None = None) -> ClientSettings:
    """ClientSettings of an endpoint (base_url overrides the endpoint's own, e.g. a server
    started here)."""
    return ClientSettings(base_url=base_url or endpoint.base_url,
                          api_key_env=endpoint.api_key_env,
                          requests_per_minute=endpoint.requests_per_minute,
                          tokens_per_minute=endpoint.tokens_per_minute,
                          timeout=endpoint.timeout, retries=endpoint.retries,
                          send_key_to_local=endpoint.send_key_to_local)


class ChatClient(NamedTuple):
    """complete(body) -> ChatResult (blocking, thread-safe); close(); raw: the openai client."""

    complete: Callable[[dict], ChatResult]
    close: Callable[[], None]
    raw: Any


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


def _classify(exc: Exception, openai: Any, cap: float) -> Failure:
    """An exception from the openai client -> Failure (retryable or not). Messages are
    whole here: they are scrubbed, then cut, when recorded."""
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return Failure(f"connection error ({type(cause).__name__})", True)
    if isinstance(exc, openai.APIStatusError):
        status, message = exc.status_code, str(exc.message)
        retry = (status in (408, 409, 429) or status >= 500) and "response_format" not in message
        after = parse_retry_after(exc.response.headers, cap) if status in (429, 503) else None
        return Failure(f"http {status}: {message}", retry, after)
    return Failure(f"{type(exc).__name__}: {exc}", False)


def bounded(call: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
    """(True, call()) when `call` returns within `seconds`, else (False, None); its exception,
    if it raises in time, propagates. The call runs in a daemon thread that is left behind
    when time is up (it ends with its connection, and never holds up the process's exit):
    httpx's timeouts bound each read, not a reply trickled a byte at a time."""
    box: dict = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["out"] = call()
        except BaseException as exc:  # noqa: BLE001  (handed to the caller)
            box["exc"] = exc
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="aeuf-request").start()
    if not done.wait(seconds):
        return False, None
    if "exc" in box:
        raise box["exc"]
    return True, box["out"]


def _attempt(http: Any, openai: Any, body: dict, settings: ClientSettings
             ) -> ChatResult | Failure:
    rest = {k: v for k, v in body.items() if k not in ("model", "messages")}

    def call() -> str:
        return http.chat.completions.with_raw_response.create(
            model=body["model"], messages=body["messages"], extra_body=rest,
            timeout=settings.timeout).text

    try:
        in_time, text = bounded(call, settings.timeout)
        if not in_time:
            return Failure(f"timeout (no whole reply within {settings.timeout:g} s)", True)
        return parse_completion(text)
    except openai.OpenAIError as exc:
        return _classify(exc, openai, settings.max_retry_after)
    except UnicodeDecodeError:
        return Failure("undecodable body", True)
    except Exception as exc:  # noqa: BLE001  (the HTTP stack's own bugs: one failed request)
        return Failure(f"unexpected {type(exc).__name__}: {exc}", True)


def _complete(http: Any, openai: Any, limiter: _Limiter, settings: ClientSettings,
              secrets: tuple[str, ...], body: dict) -> ChatResult:
    """Send one body with retries; always returns a ChatResult (error set on failure), with
    the tokens of every reply that billed them."""
    t0, rng, failure = time.monotonic(), random.Random(), Failure("not sent", False)
    billed = (0, 0)
    for attempt in range(settings.retries + 1):
        limiter.acquire(estimate_tokens(body))
        out = _attempt(http, openai, body, settings)
        billed = (billed[0] + out.prompt_tokens, billed[1] + out.completion_tokens)
        if isinstance(out, ChatResult):
            return out._replace(text=scrub(out.text, *secrets), prompt_tokens=billed[0],
                                completion_tokens=billed[1], attempts=attempt + 1,
                                seconds=time.monotonic() - t0)
        failure = out
        if not out.retryable or attempt == settings.retries or STOPPING.is_set():
            break  # (a run that is stopping retries nothing: a rerun asks again)
        delay = backoff_delay(attempt, base=settings.backoff_base, cap=settings.backoff_max,
                              retry_after=out.retry_after, u=rng.random())
        if out.retry_after is not None:
            limiter.pause(delay)
        time.sleep(delay)
    kind = "refused" if failure.refused else "transport"
    message = clean(f"{kind}: {failure.message} (after {attempt + 1} attempts)", *secrets)
    return ChatResult(None, None, *billed, error=message, attempts=attempt + 1,
                      seconds=time.monotonic() - t0)


def is_local(url: str | None) -> bool:
    """True when `url` names this machine (localhost, a loopback or unspecified address)."""
    host = urllib.parse.urlsplit(url).hostname if url else None
    if not host:
        return False
    if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def api_key(settings: ClientSettings) -> str:
    """The key to send: the one in the environment, but a placeholder for a server on this
    machine (unless send_key_to_local), and ConfigError for a remote server without one."""
    key, local = os.environ.get(settings.api_key_env, ""), is_local(settings.base_url)
    if local and not settings.send_key_to_local:
        return PLACEHOLDER_KEY
    if not key and not local:
        raise ConfigError(f"set the environment variable {settings.api_key_env} to the API key "
                          f"(or name another one with --judge_api_key_env; "
                          f"--cheap_judge_api_key_env for a cheap judge, --api_key_env for "
                          f"`aeuf generate`)")
    return key or PLACEHOLDER_KEY


def open_http(settings: ClientSettings) -> tuple[Any, Any, tuple[str, ...]]:
    """(the openai module, an openai.OpenAI client, the secrets to scrub) for `settings`;
    the openai package is imported here, lazily."""
    try:
        import openai
    except ImportError:
        raise MissingExtra("the judge needs the openai package: pip install openai") from None
    key = api_key(settings)
    secrets = tuple(s for s in {key, os.environ.get(settings.api_key_env, "")}
                    if s and s != PLACEHOLDER_KEY)
    http = openai.OpenAI(api_key=key, base_url=settings.base_url, max_retries=0,
                         timeout=settings.timeout)
    return openai, http, secrets


def open_client(settings: ClientSettings) -> ChatClient:
    """A ChatClient for `settings`."""
    openai, http, secrets = open_http(settings)
    limiter = _Limiter(settings.requests_per_minute, settings.tokens_per_minute)

    def complete(body: dict) -> ChatResult:
        return _complete(http, openai, limiter, settings, secrets, body)

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
    in flight to finish (their results are dropped); once STOPPING is set nothing new starts
    and the calls in flight are still yielded. `fn` should not raise; if it does, the
    exception propagates here.
    """
    source, pending = iter(items), {}
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        while True:
            while len(pending) < max(1, concurrency) and not STOPPING.is_set():
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
