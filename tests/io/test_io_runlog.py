"""The run directory: judgement log recovery, config identity, pool round trip, and atomic
writers that never leave a partial file."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from aeuf.config import InputConfig, RunConfig, to_dict
from aeuf.errors import InputError
from aeuf.io import (
    JsonlLog,
    JudgementLog,
    RunDir,
    atomic_write,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    load_pool,
    read_pool,
    write_pool,
)
from aeuf.io.jsonl import json_object, last_line
from aeuf.types import JudgeAnswer


def answer(i: int, value=0.75) -> JudgeAnswer:
    return JudgeAnswer(key=f"k{i}", prompt_id=f"p{i}", response_ids=(f"p{i}:a", f"p{i}:b"),
                       value=value, raw=f"Rating: {i} \u2713\n", judge="replay", cost=0.001 * i,
                       tokens=3 * i, error=None if i % 2 else "timeout")


def lines(path) -> list[str]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.decode().splitlines()


# --- judgements.jsonl ---------------------------------------------------------------------

def test_log_round_trip(tmp_path):
    log = JudgementLog(tmp_path / "j.jsonl")
    assert log.load() == {}
    answers = [answer(1), answer(2, None), answer(3, float("nan"))]
    for a in answers[:2]:
        log.append(a)
    log.extend(answers[2:])
    got = JudgementLog(tmp_path / "j.jsonl").load()
    assert list(got) == ["k1", "k2", "k3"]
    assert got["k1"] == answers[0] and got["k2"] == answers[1]
    assert got["k3"] == answers[2]._replace(value=None)  # NaN is stored as "no answer"
    assert isinstance(got["k1"].response_ids, tuple)
    assert len(lines(tmp_path / "j.jsonl")) == 3


def test_truncated_last_line_is_ignored_then_cut(tmp_path):
    path = tmp_path / "j.jsonl"
    log = JudgementLog(path)
    log.extend([answer(1), answer(2)])
    full = path.read_bytes()
    half = json.dumps(answer(3)._asdict())[:40].encode()
    path.write_bytes(full + half)  # killed in the middle of writing line 3
    resumed = JudgementLog(path)
    assert list(resumed.load()) == ["k1", "k2"]
    resumed.append(answer(4))
    assert path.read_bytes().startswith(full)
    assert [json.loads(x)["key"] for x in lines(path)] == ["k1", "k2", "k4"]
    assert list(JudgementLog(path).load()) == ["k1", "k2", "k4"]


def test_truncation_without_load_first(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"key": "k1", "prompt_id": "p1", "resp')  # nothing complete at all
    JudgementLog(path).append(answer(2))
    assert [json.loads(x)["key"] for x in lines(path)] == ["k2"]


def test_complete_last_record_missing_newline_is_kept(tmp_path):
    path = tmp_path / "j.jsonl"
    JudgementLog(path).append(answer(1))
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    log = JudgementLog(path)
    assert list(log.load()) == ["k1"]
    log.append(answer(2))
    assert [json.loads(x)["key"] for x in lines(path)] == ["k1", "k2"]


def test_damaged_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "j.jsonl"
    JudgementLog(path).extend([answer(1), answer(2)])
    text = path.read_text().splitlines()
    path.write_text(text[0] + "\n{oops\n" + text[1] + "\n")
    with pytest.raises(InputError) as e:
        JudgementLog(path).load()
    assert str(path) in str(e.value) and "line 2" in str(e.value)


def test_last_line_found_across_read_blocks(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"first line\n" + b"x" * 50)
    assert last_line(path, block=8) == (11, b"x" * 50)
    path.write_bytes(b"y" * 30)
    assert last_line(path, block=8) == (0, b"y" * 30)
    path.write_bytes(b"a\nbc\n")
    assert last_line(path, block=8) == (5, b"")


def test_generic_log_keeps_the_latest_record_per_key(tmp_path):
    log = JsonlLog(tmp_path / "g.jsonl", parse=lambda b: json_object(b, ("id",)),
                   dump=json.dumps, key=lambda r: r["id"], what="a thing")
    log.extend([{"id": "a", "v": 1}, {"id": "b", "v": 2}])
    log.append({"id": "a", "v": 3})
    assert log.load() == {"a": {"id": "a", "v": 3}, "b": {"id": "b", "v": 2}}
    with open(log.path, "ab") as f:
        f.write(b'{"v": 4}\n{"id": "c"}\n')  # a middle line without its key
    with pytest.raises(InputError, match="line 4 is not a thing"):
        log.load()


# --- config.json --------------------------------------------------------------------------

def check_run_config(folder, config: dict) -> None:
    RunDir(folder).check_config(config)


def config(**input_kw) -> dict:
    d = to_dict(RunConfig(input=InputConfig(path="data.csv", **input_kw)))
    d["export"]["output_dir"] = "runs/a"
    return d


def test_same_or_harmlessly_changed_config_resumes(tmp_path):
    check_run_config(tmp_path, config())
    check_run_config(tmp_path, config())
    changed = config()
    changed["export"]["output_dir"] = "elsewhere"
    changed["spend"]["max_cost"] = 5.0
    changed["features"]["batch_size"] = 8
    check_run_config(tmp_path, changed)
    assert json.loads((tmp_path / "config.json").read_text())["spend"]["max_cost"] == 5.0


def test_different_run_is_refused_naming_file_and_key(tmp_path):
    check_run_config(tmp_path, config())
    other = config()
    other["head"]["members"] = 4
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(InputError) as e:
        check_run_config(tmp_path, other)
    msg = str(e.value)
    assert str(tmp_path / "config.json") in msg and "head.members" in msg
    assert "16" in msg and "4" in msg and "--output_dir" in msg and "\n" not in msg
    assert (tmp_path / "config.json").read_bytes() == before
    with pytest.raises(InputError, match="input.num_responses"):
        check_run_config(tmp_path, config(num_responses=4))
    with pytest.raises(InputError, match="batch_size"):  # head.batch_size is not harmless
        check_run_config(tmp_path, {**config(), "head": {**config()["head"], "batch_size": 1}})


def test_unreadable_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json"):
        check_run_config(tmp_path, config())


# --- responses.parquet ----------------------------------------------------------------------

@pytest.mark.parametrize("gold", [True, False])
def test_pool_round_trip(tmp_path, gold):
    rows = [{"prompt": f"q{i}", "r1": f"a{i}", "r2": f"b{i}", "r3": f"c{i}",
             "r1_model": "m1", **({"r2_score": [1.0, np.nan][i % 2]} if gold else {})}
            for i in range(4)]
    pd.DataFrame(rows).to_parquet(tmp_path / "in.parquet")
    pool = read_pool(InputConfig(path=str(tmp_path / "in.parquet")))
    write_pool(tmp_path / "responses.parquet", pool)
    back = load_pool(tmp_path / "responses.parquet")
    for name in ("prompt_ids", "prompts", "responses", "models", "response_ids"):
        a, b = getattr(pool, name), getattr(back, name)
        assert a.shape == b.shape and a.dtype == b.dtype and a.tolist() == b.tolist(), name
    assert (back.gold_kind, back.source) == (pool.gold_kind, pool.source)
    if gold:
        np.testing.assert_array_equal(back.gold, pool.gold)
    else:
        assert back.gold is None
    df = pd.read_parquet(tmp_path / "responses.parquet")
    assert {"prompt_id", "response_id", "prompt", "response", "model"} <= set(df.columns)


# --- atomic writers -------------------------------------------------------------------------

def leftovers(folder) -> list[str]:
    return [n for n in os.listdir(folder) if n != "target"]


def test_write_failing_midway_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "target"

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
            f.flush()
            raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half_then_fail)
    assert not target.exists() and leftovers(tmp_path) == []
    atomic_write_text(target, "old")
    with pytest.raises(OSError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_parquet_and_json_failures_keep_old_content(tmp_path):
    target = tmp_path / "target"
    atomic_write_parquet(target, pd.DataFrame({"a": [1, 2]}))
    bad = pd.DataFrame({"a": [1, {"x": object()}]})  # pyarrow cannot convert this column
    with pytest.raises(Exception):  # noqa: B017 (pyarrow's own error type)
        atomic_write_parquet(target, bad)
    assert pd.read_parquet(target)["a"].tolist() == [1, 2] and leftovers(tmp_path) == []
    atomic_write_json(target, {"a": [1, np.float32(2.5)]})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": [1, 2.5]} and leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float64("nan"),
                                 np.array([1.0, np.nan], np.float32)])
def test_strict_json_nulls_every_non_finite_value_wherever_it_sits(bad):
    from aeuf.io import strict_json

    obj = {"a": [1, (2.5, bad)], "b": {"c": bad}, "d": np.int64(3), "e": np.float32(0.5)}
    text = strict_json(obj)
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert back["d"] == 3 and back["e"] == 0.5 and back["a"][1][0] == 2.5
    want = [1.0, None] if isinstance(bad, np.ndarray) else None
    assert back["a"][1][1] == want and back["b"]["c"] == want
    clean = {"a": [1, (2.5, 3.0)], "d": np.int64(3), "p": np.array([1.5, 2.0])}
    assert json.loads(strict_json(clean)) == {"a": [1, [2.5, 3.0]], "d": 3, "p": [1.5, 2.0]}


def _odd_answers(n: int, seed: int) -> list[JudgeAnswer]:
    """Answers with every kind of field value a ledger line may hold."""
    rng = np.random.default_rng(abs(seed))
    values = [None, float("nan"), float("inf"), -0.0, 1e-320, 0.1, 7, np.float64(2.5),
              np.float64("nan"), True]
    texts = ["", 'q "x" \\ %s %% \n\t\x00 r\u00e9 \U0001F600', "ok"]
    out = []
    for i in range(n):
        ids = (f"p{i}:{rng.integers(9)}", f"p{i}:\u00e9%") if i % 5 else (i, f"p{i}")
        out.append(JudgeAnswer(
            f"k{i}", f"p{i}", ids, values[i % len(values)], texts[i % 3], "judge",
            cost=float(rng.random()) if i % 2 else 0.0, tokens=int(i), error=None if i % 4 else "e",
            cut=(f"p{i}:1",) if i == seed else ()))
    return out


@pytest.mark.parametrize("seed", [-1, 3])
def test_a_batch_of_answers_is_written_as_answer_by_answer(tmp_path, seed):
    """The ledger writes a batch a field at a time; the text must be what _answer_line
    writes for each (strict JSON: NaN and infinities null), with or without a cut answer
    (seed 3 puts one in), and read back the same."""
    from aeuf.io.runlog import _answer_line, _answer_lines

    answers = _odd_answers(40, seed)
    want = "".join(_answer_line(a) + "\n" for a in answers)
    assert _answer_lines(answers) == want
    assert "NaN" not in want and "Infinity" not in want
    uniform = [a for a in answers if isinstance(a.response_ids[0], str) and not a.cut]
    assert _answer_lines(uniform) == "".join(_answer_line(a) + "\n" for a in uniform)
    log = JudgementLog(tmp_path / "judgements.jsonl")
    log.extend(answers)
    assert (tmp_path / "judgements.jsonl").read_text(encoding="utf-8") == want
    assert list(log.load()) == [a.key for a in answers]
