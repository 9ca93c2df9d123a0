"""Messy real pools: empty responses are kept as (bad) candidates, missing ones make a prompt
ragged; R is --num_responses or the most common count; prompts with fewer are skipped and
listed; malformed cells still get one line naming file, row and column."""

import json

import numpy as np
import pandas as pd
import pytest

from aeuf.config import InputConfig
from aeuf.errors import ConfigError, InputError
from aeuf.io import read_pool

PROMPTS = ["p0?", "p1?", "p2?", "p3?"]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def read(path, **kw):
    return read_pool(InputConfig(path=str(path), **kw))


def error_of(path, **kw) -> str:
    with pytest.raises(InputError) as e:
        read(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def wide(rows: list[list]) -> pd.DataFrame:
    """One row per prompt, response columns r0, r1, ... (None = missing cell)."""
    return pd.DataFrame([{"prompt_id": f"q{p}", "prompt": PROMPTS[p],
                          **{f"r{j}": v for j, v in enumerate(row)}}
                         for p, row in enumerate(rows)])


@pytest.mark.parametrize("suffix", ["jsonl", "parquet", "json"])
def test_empty_and_blank_responses_are_kept(tmp_path, suffix):
    df = wide([["a", ""], ["   ", "b"], ["c", "\n"]])
    path = tmp_path / f"e.{suffix}"
    if suffix == "parquet":
        df.to_parquet(path)
    else:
        recs = df.to_dict(orient="records")
        path.write_text(json.dumps(recs) if suffix == "json" else
                        "".join(json.dumps(r) + "\n" for r in recs))
    pool = read(path)
    assert pool.shape == (3, 2) and pool.skipped == ()
    assert pool.responses.tolist() == [["a", ""], ["   ", "b"], ["c", "\n"]]


def test_empty_completion_and_empty_chosen_are_kept(tmp_path):
    comp = write_jsonl(tmp_path / "c.jsonl", [
        {"prompt": "x?", "completions": [{"model": "m", "response": ""},
                                         {"model": "n", "response": "ok"}]}])
    assert read(comp).responses.tolist() == [["", "ok"]]
    pair = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "x?", "chosen": "fine", "rejected": ""}])
    assert read(pair).responses.tolist() == [["fine", ""]]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_null_response_is_no_response(tmp_path, suffix):
    df = wide([["a", "b", "c"], ["d", None, "f"], ["g", "h", "i"]])
    path = tmp_path / f"n.{suffix}"
    df.to_parquet(path) if suffix == "parquet" else write_jsonl(path, df.to_dict("records"))
    pool = read(path)  # most prompts have 3: q1 is skipped
    assert pool.prompt_ids.tolist() == ["q0", "q2"] and pool.skipped == ("q1",)
    pool = read(path, num_responses=2)  # q1 keeps its first two: r0 and r2
    assert pool.responses[1].tolist() == ["d", "f"]
    assert pool.response_ids[1].tolist() == ["q1:r0", "q1:r2"]
    assert pool.response_ids[0].tolist() == ["q0:r0", "q0:r1"]


def test_absent_json_key_and_null_completion_are_no_response(tmp_path):
    path = write_jsonl(tmp_path / "k.jsonl", [
        {"prompt": "a?", "r0": "x", "r1": "y"}, {"prompt": "b?", "r0": "x"},
        {"prompt": "c?", "r0": "x", "r1": "y"}])
    assert read(path).prompts.tolist() == ["a?", "c?"]
    comp = write_jsonl(tmp_path / "c.jsonl", [
        {"prompt": "a?", "completions": [{"model": "m", "response": None},
                                         {"model": "n", "response": "y"},
                                         {"model": "o", "response": "z"}]}])
    pool = read(comp)
    assert pool.responses.tolist() == [["y", "z"]] and pool.models.tolist() == [["n", "o"]]
    assert pool.response_ids[0, 0].endswith(":1")  # the slot is the record's own position


@pytest.mark.parametrize("counts,R", [([3, 3, 2, 2], 3), ([2, 2, 2, 3], 2), ([3, 2, 4, 4], 4)])
def test_r_is_the_most_common_count_ties_to_the_larger(tmp_path, counts, R):
    rows = [[f"t{p}{j}" for j in range(n)] + [None] * (4 - n) for p, n in enumerate(counts)]
    path = tmp_path / "r.parquet"
    wide(rows).to_parquet(path)
    pool = read(path)
    kept = [p for p, n in enumerate(counts) if n >= R]
    assert pool.shape == (len(kept), R)
    assert pool.skipped == tuple(f"q{p}" for p, n in enumerate(counts) if n < R)
    assert pool.responses.tolist() == [[f"t{p}{j}" for j in range(R)] for p in kept]


def test_num_responses_skips_prompts_with_fewer(tmp_path):
    path = tmp_path / "r.parquet"
    wide([["a", "b", "c"], ["d", "e", None], ["g", "h", "i"], ["j", None, None]]).to_parquet(path)
    pool = read(path, num_responses=3)
    assert pool.skipped == ("q1", "q3") and pool.shape == (2, 3)
    pool = read(path, num_responses=2)
    assert pool.skipped == ("q3",) and pool.shape == (3, 2)
    pool = read(path, num_responses=2, num_instructions=2)
    assert pool.prompt_ids.tolist() == ["q0", "q1"] and pool.skipped == ()


def test_all_prompts_short_is_one_clear_error(tmp_path):
    path = tmp_path / "s.parquet"
    wide([["a", "b", None, None], ["c", None, "e", "x"], ["f", "g", None, None]]).to_parquet(path)
    msg = error_of(path, num_responses=4)
    assert "no prompt has 4 responses" in msg
    assert "prompts have 2 responses (2 prompts), 3 (1 prompt)" in msg
    assert "--num_responses 3 or less" in msg


def test_no_prompt_with_two_responses(tmp_path):
    path = tmp_path / "one.parquet"
    wide([["a", None], [None, "b"]]).to_parquet(path)
    msg = error_of(path)
    assert "no prompt has 2 or more responses" in msg and "1 (2 prompts)" not in msg
    assert "prompts have 1 responses (2 prompts)" in msg and "aeuf generate" in msg


@pytest.mark.parametrize("value,kind", [(["a", "b"], "list"), ({"text": "a"}, "dict"),
                                        (7, "int"), (True, "bool")])
def test_non_text_response_is_malformed(tmp_path, value, kind):
    path = write_jsonl(tmp_path / "m.jsonl", [{"prompt": "a?", "r0": "x", "r1": "y"},
                                              {"prompt": "b?", "r0": "x", "r1": value}])
    msg = error_of(path)
    assert "row 2" in msg and "column 'r1'" in msg and kind in msg and "not text" in msg


def test_num_responses_below_two_is_a_config_error(tmp_path):
    path = tmp_path / "x.parquet"
    wide([["a", "b"]]).to_parquet(path)
    with pytest.raises(ConfigError, match="--num_responses must be at least 2"):
        read(path, num_responses=1)
    with pytest.raises(ConfigError, match="num_instructions.*must be at least 1"):
        read(path, num_instructions=0)


def test_ragged_long_table_with_missing_and_empty_responses(tmp_path):
    rows = [{"prompt_id": p, "instruction": f"{p}?", "model": m, "response": r, "score": s}
            for p, m, r, s in [("a", "m1", "x", 0.2), ("a", "m2", "", 0.1), ("a", "m3", "z", 0.9),
                               ("b", "m1", "x", 0.5), ("b", "m2", None, 0.5),
                               ("b", "m3", "y", None), ("c", "m2", "u", 0.3),
                               ("c", "m1", "v", 0.4), ("c", "m3", "w", 0.6)]]
    path = tmp_path / "long.parquet"
    pd.DataFrame(rows).to_parquet(path)
    pool = read(path)
    assert pool.prompt_ids.tolist() == ["a", "c"] and pool.skipped == ("b",)
    assert pool.responses.tolist() == [["x", "", "z"], ["v", "u", "w"]]  # by model name
    pool = read(path, num_responses=2)
    assert pool.response_ids[1].tolist() == ["b:m1", "b:m3"]
    assert np.isnan(pool.gold[1, 1]) and pool.gold_kind == "score"  # empty score: no gold


@pytest.mark.parametrize("column,value,what", [
    ("response", ["a", "list"], "not text"), ("prompt_id", None, "empty prompt id"),
    ("score", "high", "not a number"), ("score", 3.0, "not a win probability")])
def test_long_table_bad_cell_names_row_and_column(tmp_path, column, value, what):
    rows = [{"prompt_id": p, "prompt": f"{p}?", "model": m, "response": "x", "score": 0.5}
            for p in ("a", "b") for m in ("m1", "m2")]
    rows[2][column] = value
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    msg = error_of(path)
    assert "row 3" in msg and f"column '{column}'" in msg and what in msg


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_score_columns_with_no_score_at_all_are_no_gold(tmp_path, layout):
    """Score columns present but every cell empty: the pool has no gold (so --oracle auto
    does not pick the replay oracle, which could label nothing); one score is gold."""
    if layout == "wide":
        df = wide([["a", "b"], ["c", "d"]])
        df["r0_score"], df["r1_score"] = np.nan, np.nan
    else:
        df = pd.DataFrame({"prompt": ["p0?", "p0?", "p1?", "p1?"], "model": ["m", "n"] * 2,
                           "response": ["a", "b", "c", "d"], "score": [np.nan] * 4})
    df.to_csv(tmp_path / "pool.csv", index=False)
    pool = read(tmp_path / "pool.csv")
    assert pool.gold is None and pool.gold_kind is None
    score = "r0_score" if layout == "wide" else "score"
    df.loc[1, score] = 0.5
    df.to_csv(tmp_path / "pool.csv", index=False)
    assert read(tmp_path / "pool.csv").gold_kind == "score"
