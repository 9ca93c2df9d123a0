"""The OpenAI-compatible client: pure retry/limit helpers, then every fault of a remote API
injected by a proxy in front of the real llama.cpp server."""

import json
import threading
import time

import pytest

from aeuf.backends.openai_client import (
    ChatResult,
    ClientSettings,
    Failure,
    backoff_delay,
    complete_many,
    map_unordered,
    open_client,
    parse_completion,
    parse_retry_after,
    schedule,
    scrub,
)
from aeuf.errors import ConfigError

pytest_plugins = ["servers"]

SECRET = "sk-test-0123456789abcdef-secret"


def body(text="Say hello.", max_tokens=8):
    return {"model": "smollm2", "messages": [{"role": "user", "content": text}],
            "temperature": 0.0, "max_tokens": max_tokens}


# ---------------------------------------------------------------- pure helpers


def test_backoff_grows_is_capped_jittered_and_honours_retry_after():
    assert backoff_delay(0, base=0.5, cap=30, retry_after=None, u=0.999) == pytest.approx(0.5, 1e-2)
    assert backoff_delay(3, base=0.5, cap=30, retry_after=None, u=0.0) == pytest.approx(2.0)
    assert backoff_delay(20, base=0.5, cap=30, retry_after=None, u=0.999) <= 30
    lows = {backoff_delay(2, base=1, cap=60, retry_after=None, u=u) for u in (0.0, 0.5, 0.9)}
    assert len(lows) == 3  # jitter spreads the workers
    assert backoff_delay(0, base=0.5, cap=30, retry_after=7.0, u=0.0) == 7.0
    assert 7.0 <= backoff_delay(0, base=0.5, cap=30, retry_after=7.0, u=0.99) <= 7.7


def test_retry_after_headers():
    assert parse_retry_after({"retry-after-ms": "250"}) == pytest.approx(0.25)
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert parse_retry_after({}) is None


def test_schedule_spaces_requests_by_the_tighter_of_rpm_and_tpm():
    start, nxt = schedule(0.0, 10.0, 100, rpm=60, tpm=None)
    assert (start, nxt) == (10.0, 11.0)
    start, nxt = schedule(nxt, 10.2, 100, rpm=60, tpm=None)
    assert start == 11.0  # waits for its slot
    _, nxt = schedule(0.0, 0.0, 1000, rpm=60, tpm=6000)  # 1000 tokens = 10 s of 6000/min
    assert nxt == pytest.approx(10.0)
    assert schedule(5.0, 7.0, 10, None, None) == (7.0, 7.0)


def test_parse_completion_faults():
    ok = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop",
                       "logprobs": {"content": [{"token": "hi", "logprob": -0.1,
                                                 "top_logprobs": [{"token": "hi", "logprob": -0.1}]}]}}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    r = parse_completion(json.dumps(ok))
    assert isinstance(r, ChatResult) and r.text == "hi" and r.prompt_tokens == 3
    assert r.logprobs[0].top == (("hi", -0.1),)
    assert parse_completion("<html>").retryable
    assert parse_completion('{"choices": []}').message == "empty choice list"
    refusal = {"choices": [{"message": {"content": None, "refusal": "no"}}]}
    assert parse_completion(json.dumps(refusal)).refused
    assert isinstance(parse_completion('{"choices": [{"message": {}}]}'), Failure)


def test_scrub_and_key_rules(monkeypatch):
    assert scrub(f"bad key {SECRET}!", SECRET) == "bad key ***!"
    monkeypatch.delenv("AEUF_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="AEUF_TEST_KEY"):
        open_client(ClientSettings(base_url="https://api.example.com/v1", api_key_env="AEUF_TEST_KEY"))
    open_client(ClientSettings(base_url="http://127.0.0.1:9/v1", api_key_env="AEUF_TEST_KEY")).close()


def test_map_unordered_bounds_concurrency_and_yields_as_completed():
    live, peak, lock = [0], [0], threading.Lock()

    def work(x):
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.05 if x else 0.3)  # item 0 is the slowest
        with lock:
            live[0] -= 1
        return x * 10

    out = list(map_unordered(work, range(8), concurrency=3))
    assert sorted(out) == [(i, i * 10) for i in range(8)]
    assert peak[0] == 3
    assert out[0][0] != 0  # not in submission order: the fast ones come first


# ---------------------------------------------------------------- real server, real faults


def settings(url, **kw):
    return ClientSettings(base_url=url, api_key_env="AEUF_TEST_KEY",
                          **({"timeout": 20.0, "retries": 3, "backoff_base": 0.05} | kw))


@pytest.mark.server
@pytest.mark.parametrize("fault", ["500", "cut", "garbage", "truncated", "empty_choices",
                                   "refusal", "hang", "slow", "429"])
def test_each_fault_is_retried_then_succeeds(llama_server, fault_proxy, monkeypatch, fault):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: fault if n == 1 else "ok",
                        slow_seconds=9.0 if fault == "hang" else 1.0)
    client = open_client(settings(proxy.base_url, timeout=6.0 if fault == "hang" else 20.0))
    t0 = time.monotonic()
    result = client.complete(body())
    client.close()
    assert result.error is None and result.text, result
    tries = 1 if fault == "slow" else 2  # a slow answer is still an answer
    assert result.attempts == tries and proxy.n == tries
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    if fault in ("429", "slow"):
        assert time.monotonic() - t0 >= 0.3  # waited out retry-after-ms: 300 / the delay


@pytest.mark.server
def test_persistent_failure_is_reported_not_raised_and_key_never_leaks(llama_server, fault_proxy,
                                                                        monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "500")
    client = open_client(settings(proxy.base_url, retries=2))
    result = client.complete(body())
    assert result.text is None and result.error.startswith("transport: http 500")
    assert result.attempts == 3 and proxy.n == 3
    refused = fault_proxy(llama_server.base_url, lambda n, b: "refusal")
    r2 = open_client(settings(refused.base_url, retries=1)).complete(body())
    assert r2.error.startswith("refused:")
    assert SECRET not in repr(result) + repr(r2)


@pytest.mark.server
def test_client_errors_are_not_retried(llama_server, fault_proxy, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "400")
    result = open_client(settings(proxy.base_url)).complete(body())
    assert result.error.startswith("transport: http 400") and result.attempts == 1
    assert "context length exceeded" in result.error and proxy.n == 1


@pytest.mark.server
def test_logprobs_and_concurrent_bodies(llama_server, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    client = open_client(settings(llama_server.base_url))
    bodies = [body(f"Count to {i}.", 6) | {"logprobs": True, "top_logprobs": 3} for i in range(3)]
    got = dict(complete_many(client, bodies, concurrency=3))
    assert sorted(got) == [0, 1, 2]
    for r in got.values():
        assert r.error is None and r.logprobs and len(r.logprobs[0].top) == 3
        assert "".join(t.token for t in r.logprobs) == r.text
