"""The OpenAI-compatible client: pure retry/limit/validation helpers, then every fault of a
remote API injected by a proxy (in front of the real llama.cpp server where an answer is
needed)."""

import dataclasses
import json
import threading
import time

import pytest

from aeuf.backends.openai_client import (
    MAX_RETRY_AFTER,
    ChatResult,
    ClientSettings,
    Failure,
    api_key,
    backoff_delay,
    clean,
    complete_many,
    is_local,
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


def wrong_type_texts():
    from servers import WRONG_TYPE_TEXTS

    return WRONG_TYPE_TEXTS


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


def test_retry_after_is_finite_and_capped():
    assert parse_retry_after({"retry-after-ms": "250"}) == pytest.approx(0.25)
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    for absurd in ("inf", "Infinity", "nan", "1e12", "1e400", "9" * 400):
        assert parse_retry_after({"retry-after": absurd}) == MAX_RETRY_AFTER
        assert parse_retry_after({"retry-after": absurd}, cap=2.0) == 2.0
    assert parse_retry_after({"retry-after-ms": "inf"}, cap=5.0) == 5.0
    assert parse_retry_after({"retry-after": "-3"}) == 0.0
    now = 1_445_412_470.0  # 2015-10-21 07:27:50 UTC
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},
                             now=now) == pytest.approx(10.0)
    far = {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}
    assert parse_retry_after(far) == MAX_RETRY_AFTER
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


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
    refusal = {"choices": [{"message": {"content": None, "refusal": "no"}}],
               "usage": {"prompt_tokens": 9, "completion_tokens": 2}}
    refused = parse_completion(json.dumps(refusal))
    assert refused.refused and (refused.prompt_tokens, refused.completion_tokens) == (9, 2)
    empty = parse_completion('{"choices": [{"message": {}}], "usage": {"prompt_tokens": 5}}')
    assert isinstance(empty, Failure) and empty.prompt_tokens == 5  # billed, then retried


def test_every_wrong_type_is_a_retryable_failure_never_an_exception():
    for text in wrong_type_texts():
        got = parse_completion(text)
        assert isinstance(got, Failure) and got.retryable and not got.refused, (text[:80], got)


def test_scrub_happens_before_the_cut():
    for pad in range(0, 400, 3):
        message = "x" * pad + f"bad key Bearer {SECRET} and {SECRET}"
        out = clean(message, SECRET, limit=200)
        assert len(out) <= 200
        assert not any(SECRET[i:i + 6] in out for i in range(len(SECRET) - 5)), pad
    assert scrub(f"bad key {SECRET}!", SECRET) == "bad key ***!"


def test_the_key_goes_only_where_it_should(monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    remote = ClientSettings(base_url="https://api.example.com/v1", api_key_env="AEUF_TEST_KEY")
    assert api_key(remote) == SECRET
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:80/v1",
                "http://127.9.9.9/v1", "http://0.0.0.0:1/v1", "http://LOCALHOST./v1"):
        local = ClientSettings(base_url=url, api_key_env="AEUF_TEST_KEY")
        assert is_local(url) and api_key(local) == "sk-no-key-needed", url
        assert api_key(dataclasses.replace(local, send_key_to_local=True)) == SECRET
    for url in ("https://127.0.0.1.example.com/v1", "https://example.com/127.0.0.1/v1",
                "https://localhost.example.com/v1", None):
        assert not is_local(url), url
    monkeypatch.delenv("AEUF_TEST_KEY")
    with pytest.raises(ConfigError, match="AEUF_TEST_KEY"):
        open_client(remote)
    open_client(ClientSettings(base_url="http://127.0.0.1:9/v1",
                               api_key_env="AEUF_TEST_KEY")).close()


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
# ---------------------------------------------------------------- faults at a proxy


def settings(url, **kw):
    return ClientSettings(base_url=url, api_key_env="AEUF_TEST_KEY",
                          **({"timeout": 300.0, "retries": 3, "backoff_base": 0.05,
                              "max_retry_after": 0.5} | kw))


@pytest.mark.parametrize("status", ["401", "403"])
def test_auth_errors_are_not_retried_and_the_echoed_key_is_scrubbed(fault_proxy, monkeypatch,
                                                                    status):
    """The proxy quotes the Authorization header in its error body, at every offset: no
    part of the key may reach the recorded error (the key travels: send_key_to_local)."""
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy("http://127.0.0.1:9/v1", lambda n, b: status)
    client = open_client(settings(proxy.base_url, send_key_to_local=True))
    for pad in range(0, 360, 9):
        proxy.echo_pad = pad
        result = client.complete(body())
        assert result.error.startswith(f"transport: http {status}: ") and result.attempts == 1
        assert "Incorrect API key provided" in result.error or pad > 200
        assert not any(SECRET[i:i + 6] in result.error for i in range(len(SECRET) - 5)), pad
    client.close()
    assert set(proxy.auth) == {f"Bearer {SECRET}"}  # it did travel


def test_a_local_server_never_gets_the_key_unless_asked(fault_proxy, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy("http://127.0.0.1:9/v1", lambda n, b: "401")
    open_client(settings(proxy.base_url)).complete(body())
    assert proxy.auth == ["Bearer sk-no-key-needed"]


@pytest.mark.server
@pytest.mark.parametrize("fault", ["500", "cut", "garbage", "truncated", "empty_choices",
                                   "refusal", "hang", "slow", "429", "retry_inf", "retry_nan",
                                   "retry_huge", "retry_date", "billed_empty", "wrong_types"])
def test_each_fault_is_retried_then_succeeds(llama_server, fault_proxy, monkeypatch, fault):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: fault if n == 1 else "ok",
                        slow_seconds=9.0 if fault == "hang" else 1.0)
    client = open_client(settings(proxy.base_url, timeout=6.0 if fault == "hang" else 300.0))
    t0 = time.monotonic()
    result = client.complete(body())
    client.close()
    assert result.error is None and result.text, result
    tries = 1 if fault == "slow" else 2  # a slow answer is still an answer
    assert result.attempts == tries and proxy.n == tries
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    if fault == "billed_empty":  # the empty reply was billed: its tokens count
        assert result.prompt_tokens >= 7 + 1 and result.completion_tokens >= 3 + 1
    if fault.startswith(("429", "retry_")):
        assert time.monotonic() - t0 >= 0.3  # waited out Retry-After (capped at 0.5 s)


@pytest.mark.server
def test_persistent_failure_is_reported_not_raised_and_key_never_leaks(llama_server, fault_proxy,
                                                                        monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "500")
    client = open_client(settings(proxy.base_url, retries=2, send_key_to_local=True))
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
