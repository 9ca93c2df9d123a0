"""30% faults between the judge and the real llama.cpp server, through the ledger and
judgements.jsonl: the judging process is SIGKILLed once and rerun, then rerun with
--retry_unanswered for the requests that were in flight at the kill. Every request ends with
one final answer or a transport failure a rerun retries; no key is paid twice (beyond the
requests in flight at the kill); the API key, which travels here on purpose and is echoed
by 401 errors, appears nowhere in the log.

Written against the ledger API of aeuf.run.ledger: Ledger.open(io.JudgementLog(path)),
ledger.judge(oracle, tasks, chunk=...)."""

import json
import random
import sys
from collections import Counter

import pytest
from killing import kill_after_lines, log_lines

from aeuf import io
from aeuf.config import OracleConfig, from_dict
from aeuf.oracle import make_oracle
from aeuf.run.ledger import Ledger
from aeuf.types import JudgeTask

pytest_plugins = ["servers"]
pytestmark = [pytest.mark.server, pytest.mark.slow]

SECRET = "sk-ledger-test-1618033988-secret"
KINDS = ["429", "500", "401", "cut", "garbage", "truncated", "empty_choices", "refusal", "slow",
         "wrong_types", "billed_empty"]
CONCURRENCY = 3
TASKS = [JudgeTask(f"q{i}", f"Name a colour, please ({i}).", (f"q{i}:a", f"q{i}:b"),
                   ("Blue.", "I refuse.")) for i in range(6)]

CHILD = """
import json, sys
from pathlib import Path
from aeuf import io
from aeuf.config import OracleConfig, from_dict
from aeuf.oracle import make_oracle
from aeuf.run.ledger import Ledger
from aeuf.types import JudgeTask
cfg, log, tasks = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
chunk = int(sys.argv[4])
oracle = make_oracle(from_dict(OracleConfig, cfg), has_gold=False)
ledger = Ledger.open(io.JudgementLog(Path(log)))
ledger.judge(oracle, [JudgeTask(t[0], t[1], tuple(t[2]), tuple(t[3])) for t in tasks],
             chunk=chunk, progress=False)
oracle.close()
"""


def config(url: str) -> dict:
    return {"name": "judge", "template": "overall", "max_tokens": 16, "context_tokens": 2048,
            "answer_format": "json_object",
            "judge": {"base_url": url, "model": "smollm2", "api_key_env": "AEUF_TEST_KEY",
                      "retries": 2, "timeout": 600.0, "concurrency": CONCURRENCY,
                      "send_key_to_local": True}}


def final(line: dict) -> bool:
    return line["error"] is None or not line["error"].startswith("transport:")


def test_thirty_percent_faults_a_kill_and_a_rerun_pay_for_nothing_twice(
        llama_server, fault_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    rng = random.Random(7)
    plan = lambda n, b: rng.choice(KINDS) if rng.random() < 0.3 else "ok"  # noqa: E731
    proxy = fault_proxy(llama_server.base_url, plan, slow_seconds=2.0)
    log = tmp_path / "judgements.jsonl"
    tasks = [[t.prompt_id, t.prompt, t.response_ids, t.responses] for t in TASKS]
    kill_after_lines([sys.executable, "-c", CHILD, json.dumps(config(proxy.base_url)), str(log),
                      json.dumps(tasks), str(CONCURRENCY)], log, timeout=1200, poll=0.1)
    before = log_lines(log)
    paid_before = {x["key"] for x in before if final(x)}

    oracle = make_oracle(from_dict(OracleConfig, config(proxy.base_url)), has_gold=False)
    ledger = Ledger.open(io.JudgementLog(log))
    judgements = ledger.judge(oracle, TASKS, chunk=CONCURRENCY, progress=False)
    lost = set(ledger.left_out)  # in flight at the kill (possibly paid): not sent again ...
    assert len(lost) <= CONCURRENCY
    retry = Ledger.open(io.JudgementLog(log), retry_unanswered=True)  # ... unless asked to
    judgements = retry.judge(oracle, TASKS, chunk=CONCURRENCY, progress=False)
    oracle.close()

    keys = {r.key for t in TASKS for r in oracle.plan(t)}
    lines = log_lines(log)
    assert {x["key"] for x in lines} == keys  # every request answered or failed
    assert ledger.sent == len(keys - paid_before - lost)  # the rerun asked only what was missing
    assert retry.sent >= len(lost)
    assert not paid_before & {x["key"] for x in lines[len(before):]}
    finals = Counter(x["key"] for x in lines if final(x))
    assert max(finals.values()) == 1  # no key has two final answers
    repeats = sum(n - 1 for n in proxy.answers.values())
    assert repeats <= CONCURRENCY  # at most the requests in flight at the kill
    assert sum(proxy.faults[k] for k in KINDS) >= 3  # faults really happened
    for x in lines:
        assert (x["value"] is None) != (x["error"] is None), x
        assert x["value"] is None or 1.0 <= x["value"] <= 5.0
    assert any((x["error"] or "").startswith("transport: http 401") for x in lines) or \
        proxy.faults["401"] == 0
    assert f"Bearer {SECRET}" in proxy.auth  # the key did travel ...
    assert SECRET not in log.read_text()  # ... and never reached the log
    assert len(judgements) == len(TASKS)
