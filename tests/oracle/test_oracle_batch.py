"""Batch API mode against a small fake of the OpenAI Files + Batches endpoints (tests/support/servers.py)
whose batches run every line on a real server: the llama.cpp server for the round trip and
the kill test, the honest stand-in judge (tests/support/honest_judge.py, instant) for the ways a
batch can end (failed, expired, cancelled, error lines, failed polls, a paged batch list)."""

import ast
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from configs import oracle_config
from paths import REPO

from aeuf.io import BatchStore
from aeuf.oracle import is_final, make_oracle
from aeuf.oracle.batch import live_keys, read_output, shard_id
from aeuf.types import JudgeTask

pytest_plugins = ["servers"]

SECRET = "sk-batch-test-777777777777-secret"
TASKS = [JudgeTask(f"b{i}", f"Name a fruit ({i}).", (f"b{i}:x", f"b{i}:y"),
                   ("An apple.", "A carrot.")) for i in range(2)]
QUALITY = [JudgeTask(f"q{i}", "Say something about cats.", (f"q{i}:x", f"q{i}:y"),
                     ("good: cats purr.", "poor: cats are dogs.")) for i in range(4)]


def batch_oracle(api, store, **kw):
    cfg = oracle_config(**({"name": "batch", "judge_base_url": api.base_url,
                            "judge_model": "smollm2", "api_key_env": "AEUF_TEST_KEY",
                            "max_tokens": 16, "batch_shard_size": 2, "batch_poll_seconds": 0.05,
                            "context_tokens": 2048, "retries": 1} | kw))
    return make_oracle(cfg, has_gold=False, store=store)


@pytest.fixture
def api(llama_server, fake_batch, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    return fake_batch(llama_server.base_url)


@pytest.fixture
def quick(honest_judge, fake_batch, monkeypatch):
    """A fake batch API whose lines run on the honest stand-in judge."""
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    return fake_batch(honest_judge(context=2048).base_url)


def store_at(tmp_path: Path) -> BatchStore:
    return BatchStore(tmp_path / "batches")


def test_read_output_lines():
    ok = {"choices": [{"message": {"content": "Rating: 4"}}], "usage": {"prompt_tokens": 5}}
    expired = {"custom_id": "k3", "response": None,
               "error": {"code": "batch_expired", "message": "not run in time"}}
    wrong = {"custom_id": "k4", "response": {"status_code": 200, "body": {"choices": "x"}}}
    text = "\n".join([json.dumps({"custom_id": "k1", "response": {"status_code": 200, "body": ok}}),
                      json.dumps({"custom_id": "k2", "response": {"status_code": 500, "body": {}}}),
                      json.dumps(expired), json.dumps(wrong), "not json", "[1, 2]",
                      json.dumps({"custom_id": 7}), "[" * 50_000, ""])
    out = read_output(text)
    assert set(out) == {"k1", "k2", "k3", "k4"}
    assert out["k1"].text == "Rating: 4" and out["k1"].prompt_tokens == 5
    assert out["k2"].error.startswith("transport: batch line http 500")
    assert out["k3"].error == "transport: batch line http None: batch_expired: not run in time"
    assert out["k4"].error.startswith("transport: malformed reply")
    assert live_keys({"status": "completed", "keys": ["a", "b"], "answered": ["a"]}) == ["a"]
    assert live_keys({"status": "in_progress", "keys": ["a", "b"]}) == ["a", "b"]
    assert shard_id("first", ["b", "a"]) == shard_id("first", ["a", "b"])


def test_the_batch_oracle_takes_a_whole_round_and_never_imports_openai():
    from aeuf.oracle.batch import ALL_AT_ONCE

    assert ALL_AT_ONCE >= 10**6
    oracle_dir = REPO / "aeuf" / "oracle"
    for path in oracle_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "openai" for n in names), path


def test_all_shards_are_in_flight_together(quick, tmp_path):
    quick.hold = threading.Event()  # no batch ends until released
    oracle = batch_oracle(quick, store_at(tmp_path), batch_shard_size=1, template="pairwise",
                          logprobs=False)
    assert oracle.chunk is not None and oracle.chunk >= 10**6
    requests = [r for t in QUALITY for r in oracle.plan(t)]
    out = []
    sender = threading.Thread(target=lambda: out.extend(oracle.send(requests)))
    sender.start()
    deadline = time.monotonic() + 60
    while len(quick.batches) < len(requests):
        assert time.monotonic() < deadline, len(quick.batches)
        time.sleep(0.02)
    assert not out  # every shard submitted before any batch ended
    quick.hold.set()
    sender.join(60)
    assert sorted(a.key for a in out) == sorted(r.key for r in requests)
    assert all(a.value == (1.0 if a.response_ids[0].endswith("x") else 0.0) for a in out)


@pytest.mark.parametrize("outcome", ["failed", "expired", "cancelled"])
def test_batches_that_end_badly_give_what_they_have_and_a_rerun_asks_the_rest(quick, tmp_path,
                                                                               outcome):
    quick.outcome = lambda bid: outcome if bid == "batch-1" else "completed"
    store = store_at(tmp_path)
    oracle = batch_oracle(quick, store, batch_shard_size=4)
    requests = [r for t in QUALITY for r in oracle.plan(t)]  # 8 requests: 2 shards
    answers = {a.key: a for a in oracle.send(requests)}
    assert sorted(answers) == sorted(r.key for r in requests)
    first = set(json.loads(x)["custom_id"] for x in
                quick.files[quick.batches["batch-1"]["input_file_id"]].decode().splitlines())
    answered = {k for k in first if answers[k].value is not None}
    assert len(answered) == {"failed": 0, "expired": 2, "cancelled": 2}[outcome]
    for key in first - answered:
        a = answers[key]
        assert not is_final(a) and a.error.startswith("transport: "), a
        if outcome == "failed":
            assert "invalid_request: the input file is invalid" in a.error
        if outcome == "expired":
            assert "batch_expired" in a.error
    assert all(is_final(answers[r.key]) for r in requests if r.key not in first - answered)
    quick.outcome = lambda bid: "completed"
    todo = [r for r in requests if not is_final(answers[r.key])]
    again = {a.key: a for a in batch_oracle(quick, store).send(todo)}
    assert set(again) == first - answered and all(a.value is not None for a in again.values())
    assert all(quick.lines_run[r.key, 0.0] == 1 for r in requests)  # nothing paid twice


def test_failed_polls_are_survived_and_a_rerun_polls_again(quick, tmp_path):
    store = store_at(tmp_path)
    quick.hold = threading.Event()
    quick.poll_faults = 10**6  # every poll fails (the client retries once, then gives up)
    oracle = batch_oracle(quick, store)
    requests = oracle.plan(QUALITY[0])
    answers = list(oracle.send(requests))
    assert all(not is_final(a) and "batch poll" in a.error for a in answers)
    quick.poll_faults = 0
    quick.hold.set()
    again = list(batch_oracle(quick, store).send(requests))
    assert all(a.value is not None for a in again)
    assert len(quick.batches) == 1  # polled again, not resubmitted


def test_a_batch_created_just_before_a_crash_is_found_on_a_later_page(quick, tmp_path):
    store = store_at(tmp_path)
    oracle = batch_oracle(quick, store)
    requests = oracle.plan(QUALITY[0])
    list(oracle.send(requests))
    (record,) = [r for r in store.records() if r["stage"] == "first"]
    store.save({k: record[k] for k in ("shard", "stage", "keys")} | {"status": "submitting"})
    for _ in range(9):  # newer batches push it to the fifth page of two
        quick.add_batch()
    quick.page_size = 2
    before, pages = len(quick.batches), quick.pages_served
    again = list(batch_oracle(quick, store).send(requests))
    assert len(again) == 2 and all(a.value is not None for a in again)
    assert len(quick.batches) == before  # found by its metadata, not resubmitted
    assert quick.pages_served - pages == 5
    assert store.get(record["shard"])["batch_id"] == record["batch_id"]


def test_failed_lines_are_transport_errors_and_only_they_are_resubmitted(quick, tmp_path):
    store = store_at(tmp_path)
    oracle = batch_oracle(quick, store)
    requests = [r for t in QUALITY[:2] for r in oracle.plan(t)]
    bad = requests[1].key
    quick.fail_lines.add(bad)
    answers = {a.key: a for a in oracle.send(requests)}
    assert answers[bad].value is None and not is_final(answers[bad])
    assert answers[bad].error.startswith("transport: batch line http 500")
    assert sum(is_final(a) for a in answers.values()) == 3
    quick.fail_lines.clear()
    todo = [r for r in requests if not is_final(answers[r.key])]
    again = list(batch_oracle(quick, store).send(todo))
    assert [a.key for a in again] == [bad]
    assert quick.lines_run[bad, 0.0] == 2
    assert all(quick.lines_run[r.key, 0.0] == 1 for r in requests if r.key != bad)


@pytest.mark.server
def test_batch_round_trip_records_shards_and_matches_the_online_judge(api, tmp_path):
    oracle = batch_oracle(api, store_at(tmp_path), answer_format="json_object")
    requests = [r for t in TASKS for r in oracle.plan(t)]
    answers = {a.key: a for a in oracle.send(requests)}
    assert sorted(answers) == sorted(r.key for r in requests)
    first = [b for b in api.batches.values() if b["metadata"]["aeuf_shard"].startswith("first")]
    assert len(first) == 2  # 4 requests in shards of 2
    assert all(api.lines_run[k, 0.0] == 1 for k in answers)
    records = BatchStore(tmp_path / "batches").records()
    assert {r["batch_id"] for r in records} == set(api.batches)
    online = make_oracle(oracle_config(name="judge", judge_base_url="http://127.0.0.1:9/v1",
                                       judge_model="smollm2", max_tokens=16), has_gold=False)
    assert [r.key for r in online.plan(TASKS[0])] == [r.key for r in oracle.plan(TASKS[0])]
    for a in answers.values():
        assert a.tokens > 0 and a.value is not None  # JSON mode: every reply has an answer
    on_disk = "".join(p.read_text() for p in (tmp_path / "batches").iterdir())
    assert SECRET not in on_disk


CHILD = """
import json, sys
from aeuf.config import OracleConfig, from_dict
from aeuf.io import BatchStore
from aeuf.oracle import make_oracle
from aeuf.types import JudgeTask
cfg, folder, tasks = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
oracle = make_oracle(from_dict(OracleConfig, cfg), has_gold=False, store=BatchStore(folder))
tasks = [JudgeTask(t[0], t[1], tuple(t[2]), tuple(t[3])) for t in tasks]
for answer in oracle.send([r for t in tasks for r in oracle.plan(t)]):
    print(answer.key, flush=True)
"""


@pytest.mark.server
def test_a_killed_process_polls_its_batches_instead_of_resubmitting(api, tmp_path):
    api.hold = threading.Event()  # batches stay in progress until released
    cfg = {"name": "batch", "judge": {"base_url": api.base_url, "model": "smollm2",
                                      "api_key_env": "AEUF_TEST_KEY"},
           "max_tokens": 16, "batch_shard_size": 2, "batch_poll_seconds": 0.1,
           "context_tokens": 2048, "answer_format": "json_object"}
    tasks = [[t.prompt_id, t.prompt, t.response_ids, t.responses] for t in TASKS]
    store = store_at(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(store.folder),
                              json.dumps(tasks)], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(api.batches) < 2 or len([r for r in store.records() if "batch_id" in r]) < 2:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)  # killed while polling its two batches
    child.wait()
    assert child.stdout.read() == b""  # it never got an answer
    rerun = batch_oracle(api, store, answer_format="json_object")
    requests = [r for t in TASKS for r in rerun.plan(t)]
    api.hold.set()
    answers = list(rerun.send(requests))
    assert sorted(a.key for a in answers) == sorted(r.key for r in requests)
    first = [b for b in api.batches.values() if b["metadata"]["aeuf_shard"].startswith("first")]
    assert len(first) == 2  # polled, not resubmitted
    assert all(api.lines_run[r.key, 0.0] == 1 for r in requests)
