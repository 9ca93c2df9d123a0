"""Replay (gold), none, auto selection and the human oracle (driven through real streams)."""

import io

import numpy as np
import pytest
from configs import oracle_config

from aeuf.config import OracleConfig
from aeuf.errors import ConfigError, Stopped
from aeuf.oracle import ORACLES, auto_name, is_final, make_oracle
from aeuf.oracle.resolve import sigmoid
from aeuf.types import JudgeTask

TASK = JudgeTask("p1", "Q?", ("p1:a", "p1:b", "p1:c", "p1:d"), ("A", "B", "C", "D"),
                 (2.0, 0.5, 2.0, float("nan")))


def run(oracle, task=TASK):
    answers = {a.key: a for a in oracle.send(oracle.plan(task))}
    return oracle.resolve(task, answers), answers


def test_registry_and_auto():
    assert ORACLES.names() == ["batch", "human", "judge", "local", "none", "replay", "reward_model",
                              "web"]
    assert auto_name(OracleConfig(), has_gold=True) == "replay"
    assert auto_name(oracle_config(judge_base_url="http://127.0.0.1:1/v1"), has_gold=False) == "judge"
    assert auto_name(OracleConfig(), has_gold=False) == "none"
    assert auto_name(OracleConfig(name="human"), has_gold=True) == "human"
    with pytest.raises(ConfigError, match="unknown oracle"):
        make_oracle(OracleConfig(name="oracle-of-delphi"), has_gold=False)


def test_replay_deterministic_free_and_missing_gold():
    j, answers = run(make_oracle(OracleConfig(), has_gold=True))
    assert {k.rsplit(":", 1)[0] for k in answers} == {f"replay:deterministic:p1:{c}" for c in "abcd"}
    assert all(a.cost == 0 for a in answers.values())
    missing = next(a for k, a in answers.items() if k.startswith("replay:deterministic:p1:d:"))
    assert missing.value is None and is_final(missing)
    np.testing.assert_array_equal(j.ratings, [2.0, 0.5, 2.0, np.nan])
    assert j.pairs == [(0, 1, 1.0), (0, 2, 0.5), (1, 2, 0.0)]


def test_replay_soft_and_bernoulli():
    j, _ = run(make_oracle(OracleConfig(label_mode="soft"), has_gold=True))
    assert j.pairs[0] == (0, 1, pytest.approx(sigmoid(1.5)))
    bern = make_oracle(OracleConfig(label_mode="bernoulli"), has_gold=True)
    j1, _ = run(bern)
    j2, _ = run(make_oracle(OracleConfig(label_mode="bernoulli"), has_gold=True))
    assert j1.pairs == j2.pairs  # seeded by the keys: a rerun agrees
    assert {p for _, _, p in j1.pairs} <= {0.0, 1.0}
    # over many prompts the draws follow sigmoid(u_i - u_j)
    wins = []
    for n in range(400):
        t = JudgeTask(f"q{n}", "Q", (f"q{n}:a", f"q{n}:b"), ("A", "B"), (1.0, 0.0))
        wins.append(run(bern, t)[0].pairs[0][2])
    assert abs(np.mean(wins) - sigmoid(1.0)) < 0.07


def test_replay_needs_gold_and_none_plans_nothing():
    with pytest.raises(ConfigError, match="gold"):
        make_oracle(OracleConfig(name="replay"), has_gold=False).plan(
            JudgeTask("p", "Q", ("a", "b"), ("A", "B")))
    none = make_oracle(OracleConfig(), has_gold=False)
    assert none.name == "none" and none.plan(TASK) == [] and list(none.send([])) == []
    assert np.isnan(none.resolve(TASK, {}).ratings).all()


def human(lines):
    out = io.StringIO()
    oracle = make_oracle(OracleConfig(name="human"), has_gold=False,
                         stdin=io.StringIO(lines), stdout=out)
    return oracle, out


def test_human_choices_orientation_and_reasking():
    task = JudgeTask("p9", "Pick one", ("p9:a", "p9:b", "p9:c"),
                     ("alpha", "beta\x1b[2J\x1b]0;pwned\x07", "gamma"))
    oracle, out = human("b\nmaybe\ntie\nskip\n")
    requests = oracle.plan(task)
    assert len(requests) == 3 and len({r.key for r in requests}) == 3
    answers = {a.key: a for a in oracle.send(requests)}
    assert "'maybe' is not one of" in out.getvalue()
    assert "--- Response A ---" in out.getvalue() and "gamma" in out.getvalue()
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()  # no terminal escapes
    first, second, third = (answers[r.key] for r in requests)
    assert (first.value, second.value, third.value) == (0.0, 0.5, None)
    assert third.error.startswith("skipped") and is_final(third)
    j = oracle.resolve(task, answers)
    i, k = requests[0].slots  # "b" means the second shown response won
    expected = (min(i, k), max(i, k), 0.0 if i < k else 1.0)
    assert expected in j.pairs and len(j.pairs) == 2


def test_human_quit_stops_and_a_rerun_asks_only_what_is_missing():
    task = JudgeTask("p8", "Pick", ("p8:a", "p8:b", "p8:c"), ("x", "y", "z"))
    oracle, out = human("a\nq\n")
    requests = oracle.plan(task)
    first = []
    with pytest.raises(Stopped, match="rerun the same command"):
        for answer in oracle.send(requests):
            first.append(answer)
    assert len(first) == 1
    oracle2, _ = human("a\nb\n")  # rerun: only what is missing is asked
    rest = list(oracle2.send([r for r in requests if r.key != first[0].key]))
    assert len(rest) == 2
    oracle3, _ = human("")  # Ctrl-D right away: stops, nothing recorded
    with pytest.raises(Stopped):
        list(oracle3.send(requests))
    assert oracle.chunk and oracle.chunk >= 10**6  # a round's pairs come in one send


def test_human_keys_name_the_texts_shown():
    a = JudgeTask("p8", "Pick", ("p8:a", "p8:b"), ("x", "y"))
    b = JudgeTask("p8", "Pick", ("p8:a", "p8:b"), ("x", "changed"))
    oracle, _ = human("")
    assert {r.key for r in oracle.plan(a)}.isdisjoint(r.key for r in oracle.plan(b))


def test_replay_keys_name_the_texts_judged():
    oracle = make_oracle(OracleConfig(), has_gold=True)
    a = JudgeTask("p1", "Q?", ("p1:a", "p1:b"), ("yes", "no"), (1.0, 0.0))
    b = JudgeTask("p1", "Q?", ("p1:a", "p1:b"), ("no", "yes"), (1.0, 0.0))  # texts swapped
    keys_a, keys_b = [r.key for r in oracle.plan(a)], [r.key for r in oracle.plan(b)]
    assert set(keys_a).isdisjoint(keys_b)
    assert keys_a == [r.key for r in oracle.plan(a)]  # stable


def test_free_replay_answers_are_logged_a_chunk_per_fsync_and_paid_ones_one_by_one(
        tmp_path, monkeypatch):
    import aeuf.io.jsonl as jsonl
    from aeuf.io import JudgementLog
    from aeuf.run.ledger import Ledger

    syncs = []
    real = jsonl.os.fsync
    monkeypatch.setattr(jsonl.os, "fsync", lambda fd: syncs.append(fd) or real(fd))
    tasks = [JudgeTask(f"p{i}", "q", (f"p{i}:a", f"p{i}:b"), ("x", "y"), (float(i), 0.0))
             for i in range(300)]
    replay = make_oracle(OracleConfig(name="replay"), has_gold=True)
    ledger = Ledger.open(JudgementLog(tmp_path / "j.jsonl"))
    ledger.judge(replay, tasks, chunk=replay.chunk, progress=False)
    assert len(ledger.answers) == 600 and len(syncs) <= 2  # 600 answers, one chunk
    assert len(JudgementLog(tmp_path / "j.jsonl").load()) == 600  # all on disk
    syncs.clear()
    paid = replay._replace(name="paid", durable=True)  # an oracle whose answers cost money
    ledger = Ledger.open(JudgementLog(tmp_path / "k.jsonl"))
    ledger.judge(paid, tasks[:10], chunk=4096, progress=False)
    assert len(syncs) >= 20  # each of the 20 answers fsync'd before the next is used
