"""The exported preference dataset, loaded back with `datasets` in all three formats."""

import math
import os

import numpy as np
import pandas as pd
import pytest

from aeuf.config import InputConfig
from aeuf.errors import AeufError
from aeuf.io import read_pool, write_preferences


def preferences() -> pd.DataFrame:
    return pd.DataFrame({
        "prompt": ["Name a prime.", "Capital of France?", "Say hi \u00e0 la fran\u00e7aise."],
        "chosen": ["7 is prime.", "Paris.", "Bonjour !"],
        "rejected": ["Nine.", "Lyon.", "Hello."],
        "prompt_id": ["a1", "b2", "c3"],
        "chosen_model": ["m1", "m2", None],
        "rejected_model": ["m2", "m1", "m3"],
        "chosen_score": [5.0, 4.5, np.nan],
        "rejected_score": [1.0, 2.0, 3.0],
        "rule": ["dts", "dts", "random"],
        "uncertainty": [0.25, 1e-7, 0.123456789012345],
        "round": [0, 0, 1],
    })


def same_rows(got: list[dict], want: pd.DataFrame):
    assert len(got) == len(want)
    for g, w in zip(got, want.to_dict("records")):
        assert set(g) == set(w)
        for k, v in w.items():
            missing = v is None or (isinstance(v, float) and math.isnan(v))
            gv = g[k]
            if missing:
                assert gv is None or (isinstance(gv, float) and math.isnan(gv)), k
            else:
                assert gv == v and type(gv) is type(v), (k, gv, v)


def test_export_loads_back_with_datasets(tmp_path):
    import datasets

    df = preferences()
    paths = write_preferences(df, tmp_path / "run")
    assert paths == {"jsonl": tmp_path / "run/preferences.jsonl",
                     "parquet": tmp_path / "run/preferences.parquet", "hf": tmp_path / "run/hf"}
    cache = str(tmp_path / "cache")
    for kind, builder in (("jsonl", "json"), ("parquet", "parquet")):
        ds = datasets.load_dataset(builder, data_files=str(paths[kind]), split="train",
                                   cache_dir=cache)
        same_rows(ds.to_list(), df)
    same_rows(datasets.load_from_disk(str(paths["hf"])).to_list(), df)
    assert sorted(os.listdir(tmp_path / "run")) == ["hf", "preferences.jsonl",
                                                    "preferences.parquet"]


def test_export_reads_back_as_a_pair_pool(tmp_path):
    paths = write_preferences(preferences(), tmp_path)
    for kind in ("jsonl", "parquet", "hf"):
        pool = read_pool(InputConfig(path=str(paths[kind])))
        assert pool.gold_kind == "pair" and pool.prompt_ids.tolist() == ["a1", "b2", "c3"]
        assert pool.responses[:, 0].tolist() == preferences()["chosen"].tolist()


def test_reexport_replaces_everything(tmp_path):
    write_preferences(preferences(), tmp_path)
    smaller = preferences().iloc[1:]
    paths = write_preferences(smaller, tmp_path)
    import datasets

    assert len(datasets.load_from_disk(str(paths["hf"]))) == 2
    assert len(pd.read_parquet(paths["parquet"])) == 2
    assert len(paths["jsonl"].read_text().splitlines()) == 2
    assert sorted(os.listdir(tmp_path)) == ["hf", "preferences.jsonl", "preferences.parquet"]


def test_failed_export_keeps_previous_one(tmp_path):
    write_preferences(preferences(), tmp_path)
    before = {n: (tmp_path / n).read_bytes() for n in ("preferences.jsonl",
                                                       "preferences.parquet")}
    bad = preferences().assign(rule=["dts", 3, {"x": 1}])  # jsonl is fine, parquet is not
    with pytest.raises(Exception):  # noqa: B017 (pyarrow's own error type)
        write_preferences(bad, tmp_path)
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert sorted(os.listdir(tmp_path)) == ["hf", "preferences.jsonl", "preferences.parquet"]


def test_push_to_hub_offline_is_clear_and_keeps_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AeufError, match="HF_HUB_OFFLINE") as e:
        write_preferences(preferences(), tmp_path, push_to_hub="me/prefs")
    assert "me/prefs" in str(e.value) and (tmp_path / "hf").is_dir()
    assert (tmp_path / "preferences.parquet").is_file()
