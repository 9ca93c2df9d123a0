"""The round step's records: key purposes keep their integers (a resumed run draws what the
first run drew), a plan's routing travels with its rows and through its round record, and
every decision about an oracle reads its capabilities, never its name."""

import re

import jax
import numpy as np
import pandas as pd
import pytest
from gold_pool import FAST, R, write_gold_pool
from paths import REPO

from aeuf import oracle as oracle_stage
from aeuf.cli import main
from aeuf.config import EndpointConfig, OracleConfig
from aeuf.errors import ConfigError
from aeuf.oracle import ORACLES, OracleKind
from aeuf.oracle.replay import REPLAY, replay_oracle
from aeuf.run import records
from aeuf.run.round import routes
from aeuf.run.round.types import Keys, Plan, Purpose, Routing
from aeuf.types import ResponsePool

ROOT = REPO


def test_key_purposes_keep_the_integers_runs_were_made_with():
    assert {p.name: int(p) for p in Purpose} == {
        "CHOOSE": 0, "FIT": 1, "BELIEF": 2, "PAIRING": 3, "PROMPTS": 4, "TEST_BELIEF": 5,
        "SWAP": 6, "REPEATS": 7, "CHECK": 8}
    keys = Keys.of(7)
    for purpose in Purpose:
        bare = jax.random.fold_in(jax.random.fold_in(jax.random.key(7), 3), int(purpose))
        assert np.array_equal(jax.random.key_data(keys.round(3, purpose)),
                              jax.random.key_data(bare))


def _pool(P: int = 3, k: int = 2) -> ResponsePool:
    ids = np.array([f"p{i}" for i in range(P)], object)
    rids = np.array([[f"p{i}:{r}" for r in range(k)] for i in range(P)], object)
    texts = np.array([[f"answer {i}.{r}" for r in range(k)] for i in range(P)], object)
    return ResponsePool(ids, ids.copy(), texts, np.full((P, k), None, object), rids)


def _plan() -> Plan:
    routing = Routing(head_p=np.array([0.9, np.nan, 0.2]), check=np.array([False, True, False]),
                      self_labelled=np.array([True, False, False]), threshold=0.85)
    return Plan(4, "dts", np.array([2, 0, 1]), np.array([[0, 1], [1, 0], [0, 1]]),
                np.array([0.5, 0.25, 0.125], np.float32), np.array([0.1, np.nan, 0.3], np.float32),
                routing=routing)


def test_a_plans_routing_travels_with_its_rows_and_through_its_round_record():
    plan = _plan()
    sub = routes.take(plan, [2, 0])
    assert sub.prompts.tolist() == [1, 2]
    assert sub.routing.head_p.tolist() == [0.2, 0.9]
    assert sub.routing.check.tolist() == [False, False]
    assert sub.routing.self_labelled.tolist() == [False, True]
    assert sub.routing.threshold == 0.85

    rec = records.plan_record(plan, _pool())
    assert rec["self_label_threshold"] == 0.85 and rec["check"] == [False, True, False]
    back = records.plan_from(rec)
    assert back.routing.threshold == 0.85
    assert np.array_equal(back.routing.head_p, plan.routing.head_p, equal_nan=True)
    for name in ("check", "self_labelled"):
        assert getattr(back.routing, name).tolist() == getattr(plan.routing, name).tolist()
    bare = records.plan_from(records.plan_record(plan._replace(routing=Routing()), _pool()))
    assert bare.routing == Routing()


def test_an_oracle_is_used_by_what_it_can_do_not_by_its_name(tmp_path, monkeypatch, capsys):
    """The replay oracle registered under another name runs the same run: the loop, the
    checks and the cost plan read its capabilities (gold only, free), never its name."""
    def gold_again(cfg, **options):
        return replay_oracle(cfg, **options)._replace(name="gold_again")

    monkeypatch.setitem(ORACLES._items, "gold_again", OracleKind(REPLAY, gold_again))
    pool = write_gold_pool(tmp_path / "pool.csv")
    args = [str(pool), "--num_responses", str(R), "--num_annotations", "2", "--label_mode", "soft",
            *FAST]
    assert main([*args, "--oracle", "replay", "--output_dir", str(tmp_path / "a")]) == 0
    assert main([*args, "--oracle", "gold_again", "--output_dir", str(tmp_path / "b")]) == 0
    a, b = (pd.read_json(tmp_path / x / "preferences.jsonl", lines=True) for x in "ab")
    assert set(a["judge"]) == {"replay"} and set(b["judge"]) == {"gold_again"}
    assert len(a) > 0 and a.drop(columns="judge").equals(b.drop(columns="judge"))
    capsys.readouterr()
    assert main([*args, "--oracle", "gold_again", "--judge_model", "m", "--dry_run",
                 "--output_dir", str(tmp_path / "c")]) == 1  # judge flags: no LLM judge here
    assert "--judge_model has no effect with the gold_again oracle" in capsys.readouterr().err
    assert oracle_stage.capabilities(OracleConfig(name="gold_again"), has_gold=True) == REPLAY


NAME_BRANCH = re.compile(
    r"""(oracle\w*\.name\s*(==|!=|\bin\b|\bnot in\b))"""
    r"""|(\bname\s*(==|!=)\s*["'](replay|judge|batch|local|human|none)["'])"""
    r"""|(["'](replay|judge|batch|local|human)["']\s*(==|!=)\s*\w*name)""")


def test_no_module_branches_on_an_oracles_name():
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in sorted((ROOT / "aeuf").rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if NAME_BRANCH.search(line)]
    assert hits == []


def test_the_batch_oracle_is_handed_its_store_by_the_run_layer():
    cfg = OracleConfig(name="batch", judge=EndpointConfig(base_url="http://127.0.0.1:9/v1",
                                                          model="m", api_key_env="NO_SUCH_KEY"))
    with pytest.raises(ConfigError, match="run directory"):
        oracle_stage.make_oracle(cfg, has_gold=False)


def test_a_round_record_holds_no_nan_for_the_writer_to_walk_and_reads_back_exactly():
    """plan_record writes NaN as null itself (so strict_json's plain json.dumps takes it
    at once); plan_from reads the same plan back, NaN included, and the ids by position."""
    import json

    plan = _plan()._replace(routing=Routing(), mean=np.array(
        [[0.5, np.nan], [np.inf, -1.0], [0.25, 0.125]], np.float32),
        std=np.full((3, 2), np.nan, np.float32))
    rec = records.plan_record(plan, _pool())
    text = json.dumps(rec, allow_nan=False)  # raises on a NaN left in the record
    assert rec["uncertainty"] == [np.float32(0.1).item(), None, np.float32(0.3).item()]
    assert rec["std"] == [[None, None]] * 3 and rec["mean"][1] == [None, -1.0]
    assert rec["prompt_ids"] == ["p2", "p0", "p1"]
    assert rec["response_ids"] == [["p2:0", "p2:1"], ["p0:1", "p0:0"], ["p1:0", "p1:1"]]
    back = records.plan_from(json.loads(text))
    for name in ("prompts", "slots", "score", "uncertainty"):
        np.testing.assert_array_equal(getattr(back, name), getattr(plan, name))
    np.testing.assert_array_equal(back.mean[[0, 2]], plan.mean[[0, 2]])


def test_an_empty_plan_is_recorded_and_read_back():
    """A round that finds nothing left to show (a later pass with every pair judged) writes
    an empty record, and a resume reads it back."""
    import json

    plan = Plan(3, "dts", np.zeros(0, np.int64), np.zeros((0, 2), np.int64),
                np.zeros(0, np.float32), np.zeros(0, np.float32))
    rec = json.loads(json.dumps(records.plan_record(plan, _pool()), allow_nan=False))
    assert rec["prompts"] == [] and rec["slots"] == [] and rec["response_ids"] == []
    back = records.plan_from(rec)
    assert back.prompts.size == 0 and back.slots.shape[0] == 0 and back.t == 3
