"""Batch API mode against a small fake of the OpenAI Files + Batches endpoints whose batches
run every line on the real llama.cpp server (llama.cpp itself has no Batch API)."""

import json
import signal
import subprocess
import sys
import threading
import time

import pytest
from configs import oracle_config

from aeuf.io import BatchStore
from aeuf.oracle import is_final, make_oracle
from aeuf.oracle.batch import live_keys, read_output, shard_id
from aeuf.types import JudgeTask

pytest_plugins = ["servers"]
pytestmark = pytest.mark.server

SECRET = "sk-batch-test-777777777777-secret"
TASKS = [JudgeTask(f"b{i}", f"Name a fruit ({i}).", (f"b{i}:x", f"b{i}:y"),
                   ("An apple.", "A carrot.")) for i in range(2)]


def batch_oracle(api, workdir, **kw):
    cfg = oracle_config(**({"name": "batch", "judge_base_url": api.base_url, "judge_model": "smollm2",
                           "api_key_env": "AEUF_TEST_KEY", "max_tokens": 16, "batch_shard_size": 2,
                           "batch_poll_seconds": 0.1} | kw))
    return make_oracle(cfg, has_gold=False, workdir=workdir)


@pytest.fixture
def api(llama_server, fake_batch, monkeypatch):
    monkeypatch.setenv("AEUF_TEST_KEY", SECRET)
    return fake_batch(llama_server.base_url)


def test_read_output_lines():
    ok = {"choices": [{"message": {"content": "Rating: 4"}}], "usage": {"prompt_tokens": 5}}
    text = "\n".join([json.dumps({"custom_id": "k1", "response": {"status_code": 200, "body": ok}}),
                      json.dumps({"custom_id": "k2", "response": {"status_code": 500, "body": {}}}),
                      "not json", ""])
    out = read_output(text)
    assert out["k1"].text == "Rating: 4" and out["k1"].prompt_tokens == 5
    assert out["k2"].error.startswith("transport:") and set(out) == {"k1", "k2"}
    assert live_keys({"status": "completed", "keys": ["a", "b"], "answered": ["a"]}) == ["a"]
    assert live_keys({"status": "in_progress", "keys": ["a", "b"]}) == ["a", "b"]
    assert shard_id("first", ["b", "a"]) == shard_id("first", ["a", "b"])


def test_batch_round_trip_records_shards_and_matches_the_online_judge(api, tmp_path):
    oracle = batch_oracle(api, tmp_path)
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
        assert a.tokens > 0 and (a.value is not None or is_final(a))
    on_disk = "".join(p.read_text() for p in (tmp_path / "batches").iterdir())
    assert SECRET not in on_disk


CHILD = """
import json, sys
from aeuf.config import OracleConfig, from_dict
from aeuf.oracle import make_oracle
from aeuf.types import JudgeTask
cfg, workdir, tasks = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
oracle = make_oracle(from_dict(OracleConfig, cfg), has_gold=False, workdir=workdir)
tasks = [JudgeTask(t[0], t[1], tuple(t[2]), tuple(t[3])) for t in tasks]
for answer in oracle.send([r for t in tasks for r in oracle.plan(t)]):
    print(answer.key, flush=True)
"""


def test_a_killed_process_polls_its_batches_instead_of_resubmitting(api, tmp_path):
    api.hold = threading.Event()  # batches stay in progress until released
    cfg = {"name": "batch", "judge": {"base_url": api.base_url, "model": "smollm2",
                                      "api_key_env": "AEUF_TEST_KEY"},
           "max_tokens": 16, "batch_shard_size": 2, "batch_poll_seconds": 0.1}
    tasks = [[t.prompt_id, t.prompt, t.response_ids, t.responses] for t in TASKS]
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(tmp_path),
                              json.dumps(tasks)], stdout=subprocess.PIPE)
    store, deadline = BatchStore(tmp_path / "batches"), time.monotonic() + 120
    while len(api.batches) < 2 or len([r for r in store.records() if "batch_id" in r]) < 2:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)  # killed while polling its two batches
    child.wait()
    assert child.stdout.read() == b""  # it never got an answer
    rerun = batch_oracle(api, tmp_path)
    requests = [r for t in TASKS for r in rerun.plan(t)]
    api.hold.set()
    answers = list(rerun.send(requests))
    assert sorted(a.key for a in answers) == sorted(r.key for r in requests)
    first = [b for b in api.batches.values() if b["metadata"]["aeuf_shard"].startswith("first")]
    assert len(first) == 2  # polled, not resubmitted
    assert all(api.lines_run[r.key, 0.0] == 1 for r in requests)


def test_recovers_a_batch_created_just_before_the_crash(api, tmp_path):
    oracle = batch_oracle(api, tmp_path)
    requests = oracle.plan(TASKS[0])
    list(oracle.send(requests))
    store = BatchStore(tmp_path / "batches")
    (record,) = [r for r in store.records() if r["stage"] == "first"]
    crashed = {k: record[k] for k in ("shard", "stage", "keys")} | {"status": "submitting"}
    store.save(crashed)  # as if killed between batches.create and saving its id
    before = len(api.batches)
    again = list(batch_oracle(api, tmp_path).send(requests))
    assert len(again) == 2 and len(api.batches) == before  # found by metadata
    assert store.get(record["shard"])["batch_id"] == record["batch_id"]


def test_failed_lines_are_transport_errors_and_only_they_are_resubmitted(api, tmp_path):
    oracle = batch_oracle(api, tmp_path)
    requests = [r for t in TASKS for r in oracle.plan(t)]
    bad = requests[1].key
    api.fail_lines.add(bad)
    answers = {a.key: a for a in oracle.send(requests)}
    assert answers[bad].value is None and not is_final(answers[bad])
    assert answers[bad].error.startswith("transport: batch line http 500")
    assert sum(is_final(a) for a in answers.values()) == 3
    api.fail_lines.clear()
    todo = [r for r in requests if not is_final(answers[r.key])]
    again = list(batch_oracle(api, tmp_path).send(todo))
    assert [a.key for a in again] == [bad]
    assert api.lines_run[bad, 0.0] == 2
    assert all(api.lines_run[r.key, 0.0] == 1 for r in requests if r.key != bad)
