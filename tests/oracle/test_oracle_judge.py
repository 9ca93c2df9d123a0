"""The LLM judge oracle: stable keys, resolution, prices, and real calls through a faulty
network (the 30% fault test through the ledger is in test_oracle_ledger_faults.py)."""

import dataclasses
import json

import numpy as np
import pytest
from configs import oracle_config

from aeuf.backends.openai_client import ChatResult
from aeuf.errors import ConfigError
from aeuf.oracle import is_final, make_oracle
from aeuf.oracle.judge import answer_from, chat_body, make_spec, price
from aeuf.types import JudgeAnswer, JudgeTask

pytest_plugins = ["servers"]

SECRET = "sk-judge-test-4242424242-secret"
TASKS = [
    JudgeTask("p1", "What is the capital of France?", ("p1:a", "p1:b"),
              ("The capital of France is Paris.", "Berlin.")),
    JudgeTask("p2", "What is 2 + 2?", ("p2:a", "p2:b", "p2:c"), ("4", "5", "It is four.")),
]


def judge(url="http://127.0.0.1:9/v1", **kw):
    return make_oracle(oracle_config(**config(url, **kw)), has_gold=False)


def config(url="http://127.0.0.1:9/v1", **kw):
    return {"name": "judge", "judge_base_url": url, "judge_model": "smollm2",
            "api_key_env": "AEUF_TEST_KEY", "max_tokens": 24, "retries": 3,
            "context_tokens": 2048, "answer_format": "lines", "timeout": 600.0} | kw


def answer(key, value, error=None):
    return JudgeAnswer(key, "p", ("x",), value, "", "j", error=error)


def test_keys_are_stable_and_cover_model_template_order_and_texts():
    a, b = judge().plan(TASKS[1]), judge().plan(TASKS[1])
    assert [r.key for r in a] == [r.key for r in b] and len({r.key for r in a}) == 3
    other = judge(judge_model="other").plan(TASKS[1])
    assert {r.key for r in other}.isdisjoint(r.key for r in a)
    uf = judge(template="ultrafeedback").plan(TASKS[1])
    assert len(uf) == 12 and len({r.key for r in uf}) == 12
    pw = judge(template="pairwise").plan(TASKS[1])
    assert sorted(r.slots for r in pw) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert len({r.key for r in pw}) == 6
    edited = dataclasses.replace(TASKS[1], responses=("4", "5", "It is four!"))  # same ids, new text
    changed = [x.key != y.key for x, y in zip(a, judge().plan(edited))]
    assert changed == [False, False, True]
    new_prompt = [r.key for r in judge().plan(dataclasses.replace(TASKS[1], prompt="What is 2+2?"))]
    assert set(new_prompt).isdisjoint(r.key for r in a)


def test_payloads_hold_no_body_and_bodies_get_a_fresh_nonce_each():
    oracle, spec = judge(template="pairwise"), make_spec(oracle_config(**config(
        template="pairwise")))
    (request, *_) = oracle.plan(TASKS[0])
    assert request.payload == {"template": 0, "cut": ()}  # bodies (and nonces) are made when sent
    bodies = [chat_body(spec, request) for _ in range(3)]
    texts = [b["messages"][1]["content"] for b in bodies]
    nonces = [t.split("[[BEGIN INSTRUCTION ")[1][:32] for t in texts]
    assert len(set(nonces)) == 3 and all(len(n) == 32 for n in nonces)
    assert judge(template="pairwise").plan(TASKS[0])[0].key == request.key  # key: no nonce
    assert all(SECRET not in json.dumps(b) for b in bodies)
    fmt = chat_body(spec, request, "json_schema")["response_format"]
    assert fmt["json_schema"]["schema"]["properties"]["winner"]["enum"] == ["A", "B", "tie"]
    assert list(fmt["json_schema"]["schema"]["properties"])[0] == "winner"  # answer first
    assert chat_body(spec, request, retry=True)["temperature"] == 0.7


def test_a_context_too_small_for_the_template_is_a_config_error():
    with pytest.raises(ConfigError, match="--judge_context"):
        judge(context_tokens=400)


def test_resolve_means_whole_aspects_and_never_invents_a_rating():
    oracle = judge(template="ultrafeedback")
    reqs = oracle.plan(TASKS[1])
    values = {0: [5, 4, 5, 4], 1: [1, None, 2, None], 2: [None] * 4}
    answers = {}
    for r in reqs:
        aspect = r.payload["template"]
        v = values[r.slots[0]][aspect]
        answers[r.key] = answer(r.key, v, None if v else "unparsable: x")
    j = oracle.resolve(TASKS[1], answers)
    np.testing.assert_allclose(j.ratings, [4.5, np.nan, np.nan])  # 1 misses two aspects
    assert j.pairs == []


def test_pairwise_needs_both_orders_and_disagreement_is_a_tie():
    oracle = judge(template="pairwise")
    reqs = {r.slots: r.key for r in oracle.plan(TASKS[1])}
    answers = {reqs[(0, 1)]: answer(reqs[(0, 1)], 1.0), reqs[(1, 0)]: answer(reqs[(1, 0)], 0.0),
               reqs[(0, 2)]: answer(reqs[(0, 2)], 1.0), reqs[(2, 0)]: answer(reqs[(2, 0)], 1.0),
               reqs[(1, 2)]: answer(reqs[(1, 2)], 0.2)}  # (2, 1) missing
    j = oracle.resolve(TASKS[1], answers)
    assert j.pairs == [(0, 1, 1.0), (0, 2, 0.5)]  # position bias (always A) -> tie
    assert np.isnan(j.ratings).all()


def test_prices_are_per_million_tokens_and_every_paid_reply_counts():
    cfg = oracle_config(**config(price_in=2.5, price_out=10.0))
    paid = [ChatResult("I like turtles.", prompt_tokens=1000, completion_tokens=100),
            ChatResult("Rating: 4", prompt_tokens=1000, completion_tokens=10)]
    assert price(cfg, paid) == pytest.approx((2000 * 2.5 + 110 * 10.0) / 1e6)
    spec = make_spec(cfg)
    (request, *_) = judge().plan(TASKS[0])
    a = answer_from(spec, request, paid)
    assert a.value == 4.0 and a.tokens == 2110 and a.cost == pytest.approx(0.0061)
    failed = ChatResult(None, prompt_tokens=500, completion_tokens=0,
                        error="transport: empty content (after 6 attempts)")
    b = answer_from(spec, request, [failed])  # billed, then failed: still priced
    assert not is_final(b) and b.cost == pytest.approx(500 * 2.5 / 1e6)


def test_finality():
    assert is_final(answer("k", 3.0))
    assert is_final(answer("k", None, "unparsable: no answer at the start of 2 replies"))
    assert is_final(answer("k", None, "refused: no"))
    assert not is_final(answer("k", None, "transport: timeout (after 6 attempts)"))


def test_the_judge_oracle_leaves_the_chunk_to_the_caller():
    assert judge().chunk is None


@pytest.mark.server
def test_live_judging_with_cost_and_tokens(llama_server, fault_proxy, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url)
    oracle = judge(proxy.base_url, price_in=1000.0,
                   price_out=2000.0, concurrency=4, answer_format="auto")
    reqs = [r for t in TASKS for r in oracle.plan(t)]
    got = {a.key: a for a in oracle.send(reqs)}
    oracle.close()
    assert sorted(got) == sorted(r.key for r in reqs)
    for a in got.values():
        assert a.error is None, a  # llama-cpp-python's JSON mode: always an answer
        assert a.tokens > 0 and a.cost >= a.tokens * 1e-3  # priced per million tokens
        assert 1.0 <= a.value <= 5.0
        assert a.judge.startswith("smollm2/overall@")
    assert max(proxy.answers.values()) == 1  # no request paid twice
    formats = [json.loads(b).get("response_format", {}).get("type") for _, b in proxy.seen]
    # json_schema is tried first and dropped once refused: only requests already in flight
    # (at most the concurrency) try it, every later one uses llama-cpp's JSON mode
    assert formats[0] == "json_schema" and set(formats) == {"json_schema", "json_object"}
    assert formats.count("json_schema") <= 4 and formats.count("json_object") == len(reqs)
    assert all("Bearer sk-no-key-needed" == h for h in proxy.auth)  # the key stays here
    j = oracle.resolve(TASKS[1], got)
    assert j.ratings.shape == (3,)


@pytest.mark.server
def test_unparsable_reply_is_retried_once_then_missing(llama_server, fault_proxy, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "nonsense")
    oracle = judge(proxy.base_url, price_in=1.0)
    (a,) = list(oracle.send(oracle.plan(TASKS[0])[:1]))
    assert a.value is None and a.error.startswith("unparsable") and is_final(a)
    first, second = (json.loads(b) for _, b in proxy.seen)
    assert proxy.n == 2 and first["temperature"] == 0.0 and second["temperature"] == 0.7
    assert first["messages"] != second["messages"]  # a fresh nonce for the retry
    assert a.raw.count("I like turtles.") == 2 and a.tokens == 28
    assert a.cost == pytest.approx(20 / 1e6)  # both paid replies priced


@pytest.mark.server
def test_a_paid_unparsable_reply_stays_final_when_its_retry_fails(llama_server, fault_proxy,
                                                                   monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "nonsense" if n == 1 else "500")
    oracle = judge(proxy.base_url, retries=1)
    (a,) = list(oracle.send(oracle.plan(TASKS[0])[:1]))
    assert a.value is None and is_final(a) and "retry failed (transport: http 500" in a.error
    assert proxy.n == 3 and a.tokens == 14


@pytest.mark.server
def test_wrong_typed_replies_are_retried_and_never_raise(llama_server, fault_proxy,
                                                         monkeypatch):
    from servers import WRONG_TYPE_TEXTS

    from aeuf.backends import openai_client

    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    # the jittered back-off (tested on its own) would sleep ~14 minutes over these retries
    monkeypatch.setattr(openai_client, "backoff_delay", lambda *a, **k: 0.01)
    bad = len(WRONG_TYPE_TEXTS)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "wrong_types")
    oracle = judge(proxy.base_url, retries=bad - 1, concurrency=1)
    (a,) = list(oracle.send(oracle.plan(TASKS[0])[:1]))
    assert a.value is None and not is_final(a)  # a transport failure: a rerun asks again
    assert a.error.startswith("transport: ") and proxy.n == bad
    ok = fault_proxy(llama_server.base_url, lambda n, b: "wrong_types" if n < bad else "ok")
    oracle = judge(ok.base_url, retries=bad, concurrency=1)
    (b,) = list(oracle.send(oracle.plan(TASKS[0])[:1]))
    assert b.error is None or b.error.startswith("unparsable"), b


def test_a_multi_aspect_judgement_is_whole_or_absent():
    """An aspect missing for one response leaves that response unrated: no label from half a
    judgement, and none that flips when the missing aspect arrives."""
    oracle = judge(template="ultrafeedback")
    task = TASKS[1]
    requests = oracle.plan(task)  # 4 aspects x 3 responses
    full = {r.key: answer(r.key, 5.0 if r.slots == (0,) else 3.0) for r in requests}
    whole = oracle.resolve(task, full)
    assert np.isfinite(whole.ratings).all() and len(whole.pairs) == 3
    one_missing = dict(full)
    one_missing.pop(next(r.key for r in requests if r.slots == (0,)))
    partial = oracle.resolve(task, one_missing)
    assert np.isnan(partial.ratings[0]) and np.isfinite(partial.ratings[1:]).all()
    assert [(i, j) for i, j, _ in partial.pairs] == [(1, 2)]
    unparsable = {**one_missing, requests[0].key: answer(requests[0].key, None, "unparsable: x")}
    assert np.isnan(oracle.resolve(task, unparsable).ratings[0])
