"""The terminal human oracle (issue 24, item 25): undo is an append-only retraction that a
rerun asks again, the end of input is not "your request", and the header counts through the
whole run. Driven through real streams, the real ledger and the main command."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from aeuf.config import OracleConfig
from aeuf.errors import Stopped
from aeuf.io import JudgementLog
from aeuf.oracle import is_final, make_oracle
from aeuf.run.ledger import Ledger
from aeuf.types import JudgeTask

TASK = JudgeTask("p1", "Q?", ("p1:a", "p1:b", "p1:c"), ("A", "B", "C"))


def human(lines: str, **kw):
    out = io.StringIO()
    return make_oracle(OracleConfig(name="human"), has_gold=False, stdin=io.StringIO(lines),
                       stdout=out, **kw), out


def test_undo_retracts_the_last_answer_and_shows_the_pair_again():
    oracle, out = human("a\nu\nb\ntie\nskip\n")
    requests = oracle.plan(TASK)
    said = list(oracle.send(requests))
    assert [a.raw for a in said] == ["a", "undo", "b", "tie", "skip"]
    assert [a.key for a in said[:3]] == [requests[0].key] * 3
    assert said[1].value is None and not is_final(said[1])  # the retraction: asked again
    log = {}
    for a in said:  # later lines win, as in judgements.jsonl
        log[a.key] = a
    assert log[requests[0].key].value == 0.0 and len(log) == 3
    assert out.getvalue().count("=== pair 1 of 3") == 2 and "undone: pair 1" in out.getvalue()


def test_undo_before_any_answer_of_the_round_undoes_nothing():
    oracle, out = human("u\na\na\na\n")
    said = list(oracle.send(oracle.plan(TASK)))
    assert [a.raw for a in said] == ["a", "a", "a"]
    assert "nothing to undo" in out.getvalue()


def test_a_retraction_is_logged_and_a_rerun_asks_that_pair_again(tmp_path):
    ledger = Ledger.open(JudgementLog(tmp_path / "judgements.jsonl"))
    oracle, _ = human("a\nb\nu\n")  # then the input ends
    with pytest.raises(Stopped, match="end of input"):
        ledger.judge(oracle, [TASK], chunk=10**9, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "judgements.jsonl").read_text().splitlines()]
    assert [x["raw"] for x in lines] == ["a", "b", "undo"]  # append-only
    again = Ledger.open(JudgementLog(tmp_path / "judgements.jsonl"))
    requests = oracle.plan(TASK)
    assert again.pending(requests) == requests[1:]  # the undone pair and the unanswered one
    assert again.paid_requests == 1


def test_end_of_input_and_quit_are_told_apart():
    oracle, _ = human("a\n")
    with pytest.raises(Stopped) as eof:
        list(oracle.send(oracle.plan(TASK)))
    assert "end of input" in str(eof.value) and "your request" not in str(eof.value)
    oracle, _ = human("q\n")
    with pytest.raises(Stopped, match="stopped at your request"):
        list(oracle.send(oracle.plan(TASK)))


def test_the_header_counts_through_the_whole_run(tmp_path, monkeypatch, capsys):
    from aeuf.cli import main

    rng = np.random.default_rng(0)
    rows = [{"instruction": f"Question {p}?",
             **{f"response_{r}": f"answer {p} {r} " + "x" * int(rng.integers(1, 30))
                for r in range(3)}} for p in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "pool.csv", index=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("a\n" * 4))
    args = [str(tmp_path / "pool.csv"), "--oracle", "human", "--num_responses", "3",
            "--output_dir", str(tmp_path / "run"), "--features", "stats", "--head", "bll",
            "--batch_size", "2", "--no_progress"]
    assert main(args) == 0
    shown = capsys.readouterr().out
    for done in range(4):
        assert f"{done} of at most 4 answered in the whole run" in shown
