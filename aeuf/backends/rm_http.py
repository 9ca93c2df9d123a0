"""A served reward model over HTTP: vLLM's pooling, score and classify endpoints.

- `pooling`:  POST {base}/pooling  {"model", "messages": [user, assistant]}, one per response;
  the score is the last number of `data[0].data` (a reward model's single output).
- `score`:    POST {base}/score    {"model", "text_1": [prompts], "text_2": [responses]};
  `data[i].score` (a cross-encoder / text-pair reward model), one request per batch.
- `classify`: POST {base}/classify {"model", "input": ["prompt\\n\\nresponse", ...]};
  the last class probability of `data[i].probs`, one request per batch.

Each request is bounded in total time (`timeout`, a server that trickles bytes included) and
retried with the judge client's jittered back-off on connection errors, timeouts, 408/409/429
and 5xx (honouring Retry-After); a 4xx is a configuration error. A request still failing after
its retries raises `ServerDown` (an OSError), so the oracle records transport failures that a
rerun asks again, never a made-up score.
"""

from __future__ import annotations

import http.client
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import numpy as np

from aeuf.backends.openai_client import map_unordered
from aeuf.backends.openai_reply import backoff_delay, parse_retry_after
from aeuf.errors import ConfigError

RETRY_STATUS = (408, 409, 429)
MAX_BODY = 64 << 20  # a reply larger than this is not a score list


class ServerDown(OSError):
    """The server did not answer a request after all its retries."""


class _Retry(Exception):
    def __init__(self, why: str, after: float | None = None) -> None:
        super().__init__(why)
        self.after = after


def _number(x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise _Retry(f"not a finite number: {str(x)[:40]}")
    return float(x)


def _last(data: object) -> float:
    """The last number of a (nested) list, or the number itself."""
    while isinstance(data, list) and data:
        data = data[-1]
    return _number(data)


def _rows(reply: dict, n: int) -> list[dict]:
    rows = reply.get("data") if isinstance(reply, dict) else None
    if not isinstance(rows, list) or len(rows) != n or not all(isinstance(r, dict) for r in rows):
        raise _Retry(f"expected {n} rows in 'data'")
    return sorted(rows, key=lambda r: r.get("index", 0) if isinstance(r.get("index"), int) else 0)


READERS: dict[str, Callable[[dict, int], list[float]]] = {
    "pooling": lambda reply, n: [_last(r.get("data")) for r in _rows(reply, n)],
    "score": lambda reply, n: [_number(r.get("score")) for r in _rows(reply, n)],
    "classify": lambda reply, n: [_last(r.get("probs")) for r in _rows(reply, n)],
}


def bodies(endpoint: str, model: str, prompts: Sequence[str], responses: Sequence[str]
           ) -> list[tuple[dict, int]]:
    """(request body, rows it scores) for a batch, in order."""
    if endpoint == "pooling":
        return [({"model": model, "messages": [{"role": "user", "content": p},
                                              {"role": "assistant", "content": r}]}, 1)
                for p, r in zip(prompts, responses, strict=True)]
    if endpoint == "score":
        return [({"model": model, "text_1": list(prompts), "text_2": list(responses)},
                 len(prompts))]
    texts = [f"{p}\n\n{r}" for p, r in zip(prompts, responses, strict=True)]
    return [({"model": model, "input": texts}, len(texts))]


class Client:
    """A reward-model server at `base_url` (no key: such servers run inside the user's network)."""

    def __init__(self, base_url: str, model: str, endpoint: str, *, timeout: float = 60.0,
                 retries: int = 4, concurrency: int = 8, backoff: float = 0.5) -> None:
        self.url = f"{base_url.rstrip('/')}/{endpoint}"
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--rm_base_url {base_url}: expected http(s)://host[:port][/path]")
        self.parts = parts
        self.model, self.endpoint, self.timeout = model, endpoint, timeout
        self.retries, self.concurrency, self.backoff = retries, concurrency, backoff

    def score(self, prompts: Sequence[str], responses: Sequence[str], *, batch_size: int = 16
              ) -> np.ndarray:
        """f32[N, 1] rewards of N (prompt, response) pairs, in order."""
        out = np.zeros((len(prompts), 1), np.float32)
        chunks = [(s, bodies(self.endpoint, self.model, prompts[s:s + batch_size],
                             responses[s:s + batch_size])) for s in range(0, len(prompts), batch_size)]
        jobs = [(s + k if self.endpoint == "pooling" else s, body, n)
                for s, items in chunks for k, (body, n) in enumerate(items)]
        for _job, (start, values) in map_unordered(self._one, jobs, self.concurrency):
            out[start:start + len(values), 0] = values
        return out

    def _one(self, job: tuple[int, dict, int]) -> tuple[int, list[float]]:
        start, body, n = job
        for attempt in range(self.retries + 1):
            try:
                return start, READERS[self.endpoint](self._post(body), n)
            except _Retry as why:
                if attempt == self.retries:
                    raise ServerDown(f"{self.url}: {why} after {self.retries + 1} attempts") from None
                time.sleep(backoff_delay(attempt, base=self.backoff, cap=30.0,
                                         retry_after=why.after, u=random.random()))
        raise AssertionError("unreachable")

    def _post(self, body: dict) -> dict:
        """One attempt, bounded in total time by `timeout` (connect, headers and every byte)."""
        deadline = time.monotonic() + self.timeout
        kind = http.client.HTTPSConnection if self.parts.scheme == "https" else \
            http.client.HTTPConnection
        conn = kind(self.parts.hostname, self.parts.port, timeout=self.timeout)
        try:
            conn.request("POST", self.parts.path or "/", json.dumps(body).encode(),
                         {"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = bytearray()
            while chunk := reply.read1(65536):
                data += chunk
                if time.monotonic() > deadline or len(data) > MAX_BODY:
                    raise _Retry("timeout: the reply took longer than --rm_timeout in all")
            return self._read(reply.status, reply.headers, bytes(data))
        except (OSError, http.client.HTTPException) as err:
            raise _Retry(f"connection error ({type(err).__name__})") from None
        finally:
            conn.close()

    def _read(self, status: int, headers, data: bytes) -> dict:
        if status in RETRY_STATUS or status >= 500:
            raise _Retry(f"http {status}", parse_retry_after(headers))
        if status >= 400:
            raise ConfigError(f"reward model server {self.url} refused the request (http "
                              f"{status}): check --reward_model (the served model's name) and "
                              "--rm_endpoint")
        try:
            return json.loads(data)
        except ValueError:
            raise _Retry("a reply that is not JSON") from None

    def close(self) -> None:
        """Nothing to release: every request has its own connection."""
