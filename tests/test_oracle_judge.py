"""The LLM judge oracle: stable keys, resolution, and real calls through a faulty network."""

import json
import random

import numpy as np
import pytest
from configs import oracle_config

from aeuf.oracle import is_final, make_oracle
from aeuf.types import JudgeAnswer, JudgeTask

pytest_plugins = ["servers"]

SECRET = "sk-judge-test-4242424242-secret"
TASKS = [
    JudgeTask("p1", "What is the capital of France?", ("p1:a", "p1:b"),
              ("The capital of France is Paris.", "Berlin.")),
    JudgeTask("p2", "What is 2 + 2?", ("p2:a", "p2:b", "p2:c"), ("4", "5", "It is four.")),
]


def judge(url="http://127.0.0.1:9/v1", **kw):
    cfg = oracle_config(**({"name": "judge", "judge_base_url": url, "judge_model": "smollm2",
                           "api_key_env": "AEUF_TEST_KEY", "max_tokens": 24,
                           "retries": 3} | kw))
    return make_oracle(cfg, has_gold=False)


def answer(key, value, error=None):
    return JudgeAnswer(key, "p", ("x",), value, "", "j", error=error)


def test_keys_are_stable_and_cover_model_template_and_order():
    a, b = judge().plan(TASKS[1]), judge().plan(TASKS[1])
    assert [r.key for r in a] == [r.key for r in b] and len({r.key for r in a}) == 3
    assert {r.key for r in judge(judge_model="other").plan(TASKS[1])}.isdisjoint(r.key for r in a)
    uf = judge(template="ultrafeedback").plan(TASKS[1])
    assert len(uf) == 12 and len({r.key for r in uf}) == 12
    pw = judge(template="pairwise").plan(TASKS[1])
    assert sorted(r.slots for r in pw) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert len({r.key for r in pw}) == 6
    assert all(SECRET not in json.dumps(r.payload) for r in pw)


def test_resolve_means_aspects_and_never_invents_a_rating():
    oracle = judge(template="ultrafeedback")
    reqs = oracle.plan(TASKS[1])
    values = {0: [5, 4, 5, 4], 1: [1, None, 2, None], 2: [None] * 4}
    answers = {}
    for r in reqs:
        aspect = r.payload["template"]
        v = values[r.slots[0]][aspect]
        answers[r.key] = answer(r.key, v, None if v else "unparsable: x")
    j = oracle.resolve(TASKS[1], answers)
    np.testing.assert_allclose(j.ratings, [4.5, 1.5, np.nan])
    assert j.pairs == [(0, 1, 1.0)]


def test_pairwise_needs_both_orders_and_disagreement_is_a_tie():
    oracle = judge(template="pairwise")
    reqs = {r.slots: r.key for r in oracle.plan(TASKS[1])}
    answers = {reqs[(0, 1)]: answer(reqs[(0, 1)], 1.0), reqs[(1, 0)]: answer(reqs[(1, 0)], 0.0),
               reqs[(0, 2)]: answer(reqs[(0, 2)], 1.0), reqs[(2, 0)]: answer(reqs[(2, 0)], 1.0),
               reqs[(1, 2)]: answer(reqs[(1, 2)], 0.2)}  # (2, 1) missing
    j = oracle.resolve(TASKS[1], answers)
    assert j.pairs == [(0, 1, 1.0), (0, 2, 0.5)]  # position bias (always A) -> tie
    assert np.isnan(j.ratings).all()


def test_finality():
    assert is_final(answer("k", 3.0))
    assert is_final(answer("k", None, "unparsable: no answer line in 2 replies"))
    assert is_final(answer("k", None, "refused: no"))
    assert not is_final(answer("k", None, "transport: timeout (after 6 attempts)"))


@pytest.mark.server
def test_live_judging_with_cost_and_tokens(llama_server, fault_proxy, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url)
    oracle = judge(proxy.base_url, price_per_1k_input=1.0, price_per_1k_output=2.0, concurrency=4)
    reqs = [r for t in TASKS for r in oracle.plan(t)]
    got = {a.key: a for a in oracle.send(reqs)}
    oracle.close()
    assert sorted(got) == sorted(r.key for r in reqs)
    for a in got.values():
        assert a.error is None or a.error.startswith("unparsable")
        assert a.tokens > 0 and a.cost > a.tokens * 1e-3  # priced per 1k tokens
        assert a.value is None or 1.0 <= a.value <= 5.0
        assert a.judge.startswith("smollm2/overall@")
    assert max(proxy.answers.values()) == 1  # no request paid twice
    j = oracle.resolve(TASKS[1], got)
    assert j.ratings.shape == (3,)


@pytest.mark.server
def test_unparsable_reply_is_retried_once_then_missing(llama_server, fault_proxy, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "nonsense")
    oracle = judge(proxy.base_url)
    (a,) = list(oracle.send(oracle.plan(TASKS[0])[:1]))
    assert a.value is None and a.error.startswith("unparsable") and is_final(a)
    first, second = (json.loads(b) for _, b in proxy.seen)
    assert proxy.n == 2 and first["temperature"] == 0.0 and second["temperature"] == 0.7
    assert a.raw.count("I like turtles.") == 2 and a.tokens == 28


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
@pytest.mark.slow
def test_thirty_percent_faults_every_judgement_recorded_or_failed_once(llama_server, fault_proxy,
                                                                        monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    rng = random.Random(7)
    kinds = ["429", "500", "cut", "garbage", "truncated", "empty_choices", "refusal", "slow"]
    plan = lambda n, b: rng.choice(kinds) if rng.random() < 0.3 else "ok"  # noqa: E731
    proxy = fault_proxy(llama_server.base_url, plan, slow_seconds=2.0)
    oracle = judge(proxy.base_url, retries=2, timeout=120.0, concurrency=4)
    tasks = [JudgeTask(f"q{i}", f"Name a colour, please ({i}).", (f"q{i}:a", f"q{i}:b"),
                       ("Blue.", "I refuse.")) for i in range(8)]
    reqs = [r for t in tasks for r in oracle.plan(t)]
    answers = list(oracle.send(reqs))
    keys = [a.key for a in answers]
    assert sorted(keys) == sorted(r.key for r in reqs)  # each exactly once
    assert sum(proxy.faults[k] for k in kinds) >= 3  # faults really happened
    for a in answers:
        assert (a.value is not None) != (a.error is not None)
        assert SECRET not in json.dumps(a._asdict())
    assert max(proxy.answers.values()) == 1
