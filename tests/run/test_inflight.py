"""Issue 24, item 26: requests in flight at a kill are never paid twice.

Before a paid request is sent, its intent is logged (intents.jsonl, fsync'd); its answer in
judgements.jsonl closes it. A rerun does not send a key with an open intent again (it may have
been paid), says so, and --retry_unanswered asks exactly those again. A full disk while writing
an intent sends nothing. Oracles that are not paid write no intents (Capabilities.paid).
"""

import json
import os
import sys
from pathlib import Path

import pytest
from killing import kill_after_lines, log_lines

from aeuf import io
from aeuf.cli import main
from aeuf.oracle import Capabilities, Oracle
from aeuf.oracle.base import TRANSPORT, announced, nothing
from aeuf.run.ledger import Ledger
from aeuf.types import JudgeAnswer, Judgement, JudgeRequest, JudgeTask

pytest_plugins = ["servers"]

WORDS = ("good", "poor", "fair", "excellent")
ROWS = [{"prompt_id": f"k{i}", "prompt": f"Question {i}?",
         "response_ids": [f"k{i}:{j}" for j in range(4)],
         "responses": [f"{w} answer {i}." for w in WORDS]} for i in range(6)]  # 24 requests


def write_rows(folder: Path) -> Path:
    path = folder / "annotations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def judge_args(path, url, *extra):
    return ["judge", str(path), "--judge_base_url", url, "--judge_model", "honest",
            "--judge_context", "4096", "--judge_max_tokens", "64", "--judge_concurrency", "4",
            "--no_progress", *extra]


def intent_keys(folder: Path) -> set[str]:
    path = folder / "intents.jsonl"
    return {json.loads(x)["key"] for x in path.read_text().splitlines()} if path.exists() \
        else set()


@pytest.mark.server
@pytest.mark.slow
def test_kills_never_send_a_key_twice_and_the_flag_asks_exactly_the_unanswered(
        honest_judge, fault_proxy, tmp_path, capsys):
    from servers import canonical

    judge = honest_judge(context=4096)
    proxy = fault_proxy(judge.base_url, lambda n, b: "slow", slow_seconds=0.4)
    path, log = write_rows(tmp_path), tmp_path / "judgements.jsonl"
    args = judge_args(path, proxy.base_url)
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    kills = 2
    for _ in range(kills):  # kill -9 with requests in flight, twice
        kill_after_lines([sys.executable, "-m", "aeuf", *args], log,
                         lines=len(log_lines(log)) + 3, env=env)
    assert main(args) == 0  # the rerun: finishes what was never sent
    said = capsys.readouterr().err
    answered = {x["key"] for x in log_lines(log)}
    unanswered = intent_keys(tmp_path) - answered
    seen = [canonical(body) for _, body in proxy.seen]
    assert len(seen) == len(set(seen))  # never a key sent twice
    assert unanswered, "no kill caught a request in flight"
    assert len(answered) + len(unanswered) == 24
    # every request the server saw was answered or is logged as possibly paid (a kill can fall
    # between an intent's fsync and its request leaving: at most one such intent per kill)
    assert len(answered) <= len(seen) <= len(answered) + len(unanswered)
    assert len(seen) >= len(answered) + len(unanswered) - kills
    assert f"{len(unanswered)} requests sent by an earlier run have no logged answer" in said
    assert "--retry_unanswered" in said

    assert main([*args, "--dry_run"]) == 0  # the dry run counts them, sends nothing
    assert f"{len(unanswered)} sent by an earlier run without a logged answer" in \
        capsys.readouterr().out
    assert len(proxy.seen) == len(seen)

    assert main([*args, "--retry_unanswered"]) == 0  # knowingly: exactly those, once each
    again = [canonical(body) for _, body in proxy.seen[len(seen):]]
    assert len(again) == len(set(again)) == len(unanswered)
    # those the server never got are exactly the intents whose request never left
    assert len(set(again) - set(seen)) == len(answered) + len(unanswered) - len(seen)
    assert {x["key"] for x in log_lines(log)} == answered | unanswered
    assert "no logged answer" not in capsys.readouterr().err
    assert main(args) == 0 and len(proxy.seen) == len(seen) + len(again)  # nothing left


@pytest.mark.server
def test_a_full_disk_while_logging_an_intent_sends_nothing(honest_judge, tmp_path, capsys):
    judge = honest_judge(context=4096)
    path = write_rows(tmp_path)
    (tmp_path / "intents.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    assert main(judge_args(path, judge.base_url)) == 1
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert "No space left on device" in line and "was not sent" in line
    assert "Traceback" not in line
    assert judge.requests == {}  # nothing was sent, so nothing was paid
    (tmp_path / "intents.jsonl").unlink()
    assert main(judge_args(path, judge.base_url)) == 0
    assert judge.requests == {200: 24}


# --- the ledger's reconciliation, with oracles whose send the test controls ----------------

TASKS = [JudgeTask(f"p{i}", f"Question {i}?", (f"p{i}:a",), ("an answer",)) for i in range(4)]


def scripted(paid: bool, *, error: str | None = None, stop_after: int | None = None,
             sent: list | None = None) -> Oracle:
    """An oracle with one request per task that answers 1.0 (or `error`); `stop_after`: the
    process dies (KeyboardInterrupt from the send) once that many answers were yielded, with
    the rest of the chunk in flight; `sent` collects the keys it was handed."""

    def send(requests, before=None):
        flying = list(announced(requests, before))  # all "in flight" at once
        for n, r in enumerate(flying):
            if stop_after is not None and n == stop_after:
                raise KeyboardInterrupt
            if sent is not None:
                sent.append(r.key)
            yield JudgeAnswer(r.key, r.task.prompt_id, r.task.response_ids, None if error else 1.0,
                              "", "scripted", 0.01, 1, error)

    def plan(task):
        return [JudgeRequest(f"k:{task.prompt_id}", task, (0,))]

    def resolve(task, answers):
        return Judgement(task, [], [])

    return Oracle("scripted", plan, send, resolve, nothing, estimate=lambda r: 0.02,
                  caps=Capabilities(paid=paid))


def judge_all(log: Path, oracle: Oracle, **options) -> Ledger:
    ledger = Ledger.open(io.JudgementLog(log), **options)
    ledger.judge(oracle, TASKS, chunk=10, progress=False)
    return ledger


def test_only_a_paid_oracle_logs_intents(tmp_path):
    judge_all(tmp_path / "judgements.jsonl", scripted(paid=False))
    assert not (tmp_path / "intents.jsonl").exists()
    judge_all(tmp_path / "b" / "judgements.jsonl", scripted(paid=True))
    assert intent_keys(tmp_path / "b") == {f"k:p{i}" for i in range(4)}


def test_an_intent_without_an_answer_is_not_sent_again_and_counts_as_spent(tmp_path):
    log, sent = tmp_path / "judgements.jsonl", []
    with pytest.raises(KeyboardInterrupt):  # killed with two of four requests in flight
        judge_all(log, scripted(paid=True, stop_after=2))
    ledger = judge_all(log, scripted(paid=True, sent=sent))
    assert sent == [] and sorted(ledger.left_out) == ["k:p2", "k:p3"]
    assert ledger.paid_requests == 4
    assert ledger.total_cost == pytest.approx(2 * 0.01 + 2 * 0.02)  # answers + reserved
    ledger = judge_all(log, scripted(paid=True, sent=sent), retry_unanswered=True)
    assert sent == ["k:p2", "k:p3"] and ledger.unanswered == {}
    assert Ledger.open(io.JudgementLog(log)).unanswered == {}  # their answers closed them


def test_a_transport_failure_closes_its_intent_and_a_later_intent_reopens_the_key(tmp_path):
    log, sent = tmp_path / "judgements.jsonl", []
    judge_all(log, scripted(paid=True, error=f"{TRANSPORT} 500"))
    assert Ledger.open(io.JudgementLog(log)).unanswered == {}  # answered (a failure): retried
    with pytest.raises(KeyboardInterrupt):  # the retry is killed in flight
        judge_all(log, scripted(paid=True, stop_after=0))
    assert sorted(Ledger.open(io.JudgementLog(log)).unanswered) == [f"k:p{i}" for i in range(4)]
    judge_all(log, scripted(paid=True, sent=sent))
    assert sent == []  # an earlier failure does not make a possibly paid request free


@pytest.mark.server
@pytest.mark.slow
def test_the_main_command_reports_a_lost_answer_and_does_not_pay_for_it_again(
        honest_judge, tmp_path, capsys):
    import pandas as pd

    words = ["good", "poor", "fair", "excellent", "terrible", "good"]
    rows = [{"instruction": f"Question {p}?", "response_0": f"{words[p]} answer {p}.",
             "response_1": f"{words[-1 - p]} reply {p}."} for p in range(6)]
    pd.DataFrame(rows).to_csv(tmp_path / "pool.csv", index=False)
    judge, out = honest_judge(context=4096), tmp_path / "run"
    args = [str(tmp_path / "pool.csv"), "--num_responses", "2", "--num_annotations", "2",
            "--oracle", "judge", "--judge_base_url", judge.base_url, "--judge_model", "honest",
            "--judge_context", "4096", "--judge_max_tokens", "64", "--output_dir", str(out),
            "--features", "stats", "--members", "4", "--hidden", "16,16", "--epochs", "3",
            "--batch_size", "6", "--no_progress"]
    assert main(args) == 0
    sent = dict(judge.requests)
    log = (out / "judgements.jsonl").read_text().splitlines()
    lost = json.loads(log[-1])  # as if killed while its request was in flight: the answer
    (out / "judgements.jsonl").write_text("".join(x + "\n" for x in log[:-1]))  # never landed
    capsys.readouterr()
    assert main(args) == 0
    said = capsys.readouterr().err
    assert judge.requests == sent  # possibly paid: not sent again
    assert "1 requests sent by an earlier run have no logged answer" in said
    assert f"1 prompts lack that label: {lost['prompt_id']}" in said
    assert "Possibly paid, no answer" in (out / "report.md").read_text()
    assert main([*args, "--retry_unanswered"]) == 0
    assert sum(judge.requests.values()) == sum(sent.values()) + 1
    assert "no logged answer" not in capsys.readouterr().err
