"""Pure pieces of the OpenAI-compatible client (aeuf.backends.openai_client): the records
a completion becomes, the checks every field of a reply goes through, Retry-After, backoff,
rate-limit spacing and the scrubbing of secrets from messages. No I/O here.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from typing import Any, NamedTuple

MAX_RETRY_AFTER = 60.0
ERROR_CHARS = 300


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


class Failure(NamedTuple):
    """Why one attempt failed: retry it? wait at least retry_after seconds? refusal?
    prompt_tokens/completion_tokens: what the reply billed (a 200 reply with usage)."""

    message: str
    retryable: bool
    retry_after: float | None = None
    refused: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0


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


def _seconds(value: str, now: float) -> float | None:
    """A Retry-After value in seconds (a number or an HTTP date), None if unreadable."""
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_retry_after(headers: Any, cap: float = MAX_RETRY_AFTER,
                      now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (a number or an HTTP date), clamped
    to [0, cap] (inf, NaN and huge values give `cap`); None when absent or unreadable."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            value = headers.get(name) if headers is not None else None
        except (AttributeError, TypeError):
            return None
        seconds = None if value is None else _seconds(str(value), now or time.time())
        if seconds is not None:
            seconds *= scale
            return cap if math.isnan(seconds) else min(cap, max(0.0, seconds))
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


def scrub(text: str | None, *secrets: str | None) -> str | None:
    """`text` with every occurrence of each secret replaced by '***'."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def clean(text: str, *secrets: str | None, limit: int = ERROR_CHARS) -> str:
    """An error message fit to record: secrets scrubbed FIRST, whitespace collapsed, then
    cut to `limit` characters (cutting first could leave part of a key)."""
    flat = " ".join(scrub(text, *secrets).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Malformed(Exception):
    """A field of a reply has the wrong type or value (message: the field's path)."""


def _field(obj: Any, key: str, types: tuple, path: str, required: bool = False) -> Any:
    """obj[key] checked against `types` (bool never passes for a number); None if absent."""
    if not isinstance(obj, dict):
        raise _Malformed(f"the parent of {path} is {type(obj).__name__}")
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise _Malformed(f"{path} is {type(value).__name__}")
    return value


def _count(obj: Any, key: str, path: str) -> int:
    value = _field(obj, key, (int, float), path)
    if value is None:
        return 0
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise _Malformed(f"{path} is {value!r}")
    return int(value)


def _usage(data: Any) -> tuple[int, int]:
    usage = _field(data, "usage", (dict,), "usage") or {}
    return (_count(usage, "prompt_tokens", "usage.prompt_tokens"),
            _count(usage, "completion_tokens", "usage.completion_tokens"))


def _token(item: Any, path: str) -> tuple[str, float]:
    return (_field(item, "token", (str,), f"{path}.token", True),
            float(_field(item, "logprob", (int, float), f"{path}.logprob", True)))


def _logprobs(choice: dict) -> tuple[TokenLogprob, ...] | None:
    logprobs = _field(choice, "logprobs", (dict,), "choices[0].logprobs") or {}
    content = _field(logprobs, "content", (list,), "choices[0].logprobs.content")
    if not content:
        return None
    out = []
    for i, item in enumerate(content):
        path = f"choices[0].logprobs.content[{i}]"
        top = _field(item, "top_logprobs", (list,), f"{path}.top_logprobs") or ()
        out.append(TokenLogprob(*_token(item, path),
                                tuple(_token(a, f"{path}.top_logprobs[]") for a in top)))
    return tuple(out)


def _choice(data: Any, billed: tuple[int, int]) -> ChatResult | Failure:
    choices = _field(data, "choices", (list,), "choices", True)
    if not choices:
        return Failure("empty choice list", True, None, False, *billed)
    choice = choices[0]
    message = _field(choice, "message", (dict,), "choices[0].message") or {}
    refusal = _field(message, "refusal", (str,), "choices[0].message.refusal")
    finish = _field(choice, "finish_reason", (str,), "choices[0].finish_reason")
    content = _field(message, "content", (str,), "choices[0].message.content")
    logprobs = _logprobs(choice)
    if refusal or finish == "content_filter":
        return Failure(f"refusal: {refusal}", True, None, True, *billed)
    if content is None:
        return Failure("empty content", True, None, False, *billed)
    return ChatResult(content, logprobs, *billed, finish)


def parse_completion(body: str | bytes | dict) -> ChatResult | Failure:
    """A chat-completion response body (text or decoded JSON) -> ChatResult, or the
    Failure it represents. Every field is checked: a wrong type is a retryable Failure
    (never an exception); tokens the reply billed are kept on the Failure."""
    try:
        data = json.loads(body) if isinstance(body, (str, bytes)) else body
    except (ValueError, RecursionError):
        return Failure(f"non-JSON body ({len(body)} chars)", True)
    try:
        billed = _usage(data)
    except _Malformed as err:
        return Failure(f"malformed reply: {err}", True)
    try:
        return _choice(data, billed)
    except (_Malformed, OverflowError) as err:
        return Failure(f"malformed reply: {err}", True, None, False, *billed)
