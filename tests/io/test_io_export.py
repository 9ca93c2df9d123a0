"""The exported preference dataset, loaded back with `datasets` in all three files and all
three layouts; the dataset card in hf/ and on the hub."""

import math
import os

import numpy as np
import pandas as pd
import pytest

from aeuf.config import ExportConfig, InputConfig
from aeuf.errors import AeufError
from aeuf.io import read_pool, write_preferences

CFG = ExportConfig()


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
    paths = write_preferences(df, tmp_path / "run", CFG)
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
    paths = write_preferences(preferences(), tmp_path, CFG)
    for kind in ("jsonl", "parquet", "hf"):
        pool = read_pool(InputConfig(path=str(paths[kind])))
        assert pool.gold_kind == "pair" and pool.prompt_ids.tolist() == ["a1", "b2", "c3"]
        assert pool.responses[:, 0].tolist() == preferences()["chosen"].tolist()


def test_reexport_replaces_everything(tmp_path):
    write_preferences(preferences(), tmp_path, CFG)
    smaller = preferences().iloc[1:]
    paths = write_preferences(smaller, tmp_path, CFG)
    import datasets

    assert len(datasets.load_from_disk(str(paths["hf"]))) == 2
    assert len(pd.read_parquet(paths["parquet"])) == 2
    assert len(paths["jsonl"].read_text().splitlines()) == 2
    assert sorted(os.listdir(tmp_path)) == ["hf", "preferences.jsonl", "preferences.parquet"]


def test_failed_export_keeps_previous_one(tmp_path):
    write_preferences(preferences(), tmp_path, CFG)
    before = {n: (tmp_path / n).read_bytes() for n in ("preferences.jsonl",
                                                       "preferences.parquet")}
    bad = preferences().assign(rule=["dts", 3, {"x": 1}])  # jsonl is fine, parquet is not
    with pytest.raises(Exception):  # noqa: B017 (pyarrow's own error type)
        write_preferences(bad, tmp_path, CFG)
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert sorted(os.listdir(tmp_path)) == ["hf", "preferences.jsonl", "preferences.parquet"]


def test_push_to_hub_offline_is_clear_and_keeps_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AeufError, match="HF_HUB_OFFLINE") as e:
        write_preferences(preferences(), tmp_path, ExportConfig(push_to_hub="me/prefs"), "# card")
    assert "me/prefs" in str(e.value) and (tmp_path / "hf").is_dir()
    assert (tmp_path / "preferences.parquet").is_file()


def labelled_pool():
    """Two prompts (the first multi-turn) with three judged responses each, one tie."""
    from aeuf.types import Labelled, ResponsePool

    turns = [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Name a prime."}]
    pool = ResponsePool(
        np.array(["a1", "b2"], dtype=object), np.array(["Name a prime.", "Capital?"], dtype=object),
        np.array([["7.", "Nine.", "2 is."], ["Paris.", "Lyon.", "Nice."]], dtype=object),
        np.array([["m1", "m2", None], ["m2", "m1", "m3"]], dtype=object),
        np.array([["a1:0", "a1:1", "a1:2"], ["b2:0", "b2:1", "b2:2"]], dtype=object),
        messages=np.array([turns, None], dtype=object))
    labs = [Labelled(0, (0, 1, 2), np.array([5.0, 1.0, 4.0]), 0, 1, "dts", 0, 0.5, 1.0, "judge",
                     confidence=0.9),
            Labelled(1, (0, 1), np.array([3.0, 3.0]), 0, 1, "dts", 1, 0.1, 0.2, "judge", tie=True)]
    return pool, labs


@pytest.mark.parametrize("layout", ["standard", "conversational", "kto"])
def test_every_layout_loads_back_with_datasets(tmp_path, layout):
    import datasets

    from aeuf import dataset

    pool, labs = labelled_pool()
    cfg = ExportConfig(format=layout, keep_ties=layout != "kto")
    df = dataset.build_rows(pool, labs, cfg)
    assert len(df) == {"standard": 2, "conversational": 2, "kto": 2}[layout]
    paths = write_preferences(df, tmp_path, cfg, "# card")
    cache = str(tmp_path / "cache")
    for kind, builder in (("jsonl", "json"), ("parquet", "parquet")):
        same_rows(datasets.load_dataset(builder, data_files=str(paths[kind]), split="train",
                                        cache_dir=cache).to_list(), df)
    same_rows(datasets.load_from_disk(str(paths["hf"])).to_list(), df)


def test_card_is_written_into_hf(tmp_path):
    import datasets

    card = "---\nlicense: \"mit\"\n---\n\n# Prefs \u00e0 la carte\n"
    paths = write_preferences(preferences(), tmp_path, CFG, card)
    assert paths["card"] == tmp_path / "hf" / "README.md"
    assert paths["card"].read_text(encoding="utf-8") == card
    assert len(datasets.load_from_disk(str(paths["hf"]))) == 3
    paths = write_preferences(preferences(), tmp_path, CFG)  # no card: no README left behind
    assert "card" not in paths and not (tmp_path / "hf" / "README.md").exists()


def test_push_sends_the_card_before_the_data(tmp_path, monkeypatch):
    """The hub cannot be reached from the tests: record what push would send, in order."""
    import datasets
    import huggingface_hub

    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: calls.append(("create", repo_id, kw["repo_type"])))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", lambda self, **kw: calls.append(
        ("upload", kw["repo_id"], kw["path_in_repo"], open(kw["path_or_fileobj"]).read())))
    monkeypatch.setattr(datasets.Dataset, "push_to_hub",
                        lambda self, repo_id, **kw: calls.append(("data", repo_id, len(self))))
    write_preferences(preferences(), tmp_path, ExportConfig(push_to_hub="me/prefs"), "# card\n")
    assert calls == [("create", "me/prefs", "dataset"), ("upload", "me/prefs", "README.md", "# card\n"),
                     ("data", "me/prefs", 3)]


def test_push_to_hub_keeps_the_cards_text_and_adds_its_metadata(tmp_path):
    """What `Dataset.push_to_hub` does to a README already in the repo (datasets' own code,
    run on a local folder standing in for the repo)."""
    import datasets
    from datasets.arrow_dataset import _get_updated_dataset_card
    from fsspec.implementations.dirfs import DirFileSystem
    from fsspec.implementations.local import LocalFileSystem

    from aeuf.card import render_card

    card = render_card({"format": "standard", "license": "mit", "counts": {"rows": 3}})
    (tmp_path / "README.md").write_text(card, encoding="utf-8")
    ds = datasets.Dataset.from_pandas(preferences(), preserve_index=False)
    split = datasets.SplitInfo(name="train", num_bytes=100, num_examples=3)
    new, _ = _get_updated_dataset_card(
        DirFileSystem(str(tmp_path), fs=LocalFileSystem()), config_name="default",
        splits_info=[split], features=ds.features, data_dir="data", set_default=None,
        uploaded_sizes=[100], deleted_sizes=[0], remove_other_splits=False)
    assert new.text == huggingface_hub_card(card).text  # the body is untouched
    data = new.data.to_dict()
    assert data["license"] == "mit" and "aeuf" in data["tags"]
    assert data["dataset_info"]["splits"][0]["num_examples"] == 3
    assert data["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "train", "path": "data/train-*"}]}]


def huggingface_hub_card(text: str):
    from huggingface_hub import DatasetCard

    return DatasetCard(text)


def test_the_json_lines_are_what_each_row_made_plain_gives():
    """json_records, a column at a time, gives the JSON of _jsonable(to_dict row) for every
    kind of column: float32/float64 with NaN and inf, ints, bools, nullable ints, strings,
    None, lists holding NaN and numpy scalars, timestamps."""
    import json

    from aeuf.io.export import _jsonable, json_records

    rng = np.random.default_rng(0)
    n = 50
    f64 = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, n)
    f64[[1, 5, 9]] = [np.nan, np.inf, -np.inf]
    f32 = f64.astype(np.float32)
    df = pd.DataFrame({
        "f64": f64, "f32": f32, "i": rng.integers(-5, 5, n), "u8": np.arange(n, dtype=np.uint8),
        "b": rng.random(n) < 0.5,
        "ni": pd.array([None if i % 7 == 0 else i for i in range(n)], dtype="Int64"),
        "s": [None if i % 5 == 0 else f"r\u00e9ponse {i} \U0001F600" for i in range(n)],
        "lst": [[float("nan"), np.float32(i), np.int64(i)] for i in range(n)],
        "t": pd.Timestamp("2026-12-07") + pd.to_timedelta(np.arange(n), "s"),
        "o": [np.float64(np.nan) if i % 3 == 0 else np.int32(i) for i in range(n)],
    })
    want = [json.dumps(_jsonable(r), ensure_ascii=False) for r in df.to_dict("records")]
    got = [json.dumps(r, ensure_ascii=False) for r in json_records(df)]
    assert got == want
    assert "NaN" not in "".join(got) and "Infinity" not in "".join(got)


@pytest.mark.parametrize("block", [1, 7, 65_536])
def test_json_lines_are_json_dumps_of_each_record(block):
    """json_lines encodes a column at a time and formats each row once; its text is exactly
    json.dumps(row, ensure_ascii=False) + newline for every json_records row: quotes,
    backslashes, control characters, '%' (the row template is a %-format), non-ASCII text,
    NaN and inf, ints past 2**53, bools, None, nested lists and dicts, odd column names, and
    blocks that split the rows anywhere."""
    import json

    from aeuf.io.export import json_lines, json_records

    rng = np.random.default_rng(1)
    n = 23
    f64 = rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n)
    f64[[0, 4]] = [np.nan, -np.inf]
    df = pd.DataFrame({
        "f64": f64, "f32": (f64 / 10.0 ** 280).astype(np.float32), "big": [2**63 - 1 - i for i in range(n)],
        "b": rng.random(n) < 0.5,
        "s": ["" if i == 3 else f'a "q" \\ %s %d %% \n\t\x00\x1f\u2028 r\u00e9 \U0001F600 {i}'
              for i in range(n)],
        'odd "name" %s\n': [None if i % 2 else i * 0.5 for i in range(n)],
        "msgs": [[{"role": "user", "content": f"x{i}\n"}] for i in range(n)],
        "obj": [True if i % 3 == 0 else (None if i % 3 == 1 else 1e-7) for i in range(n)],
        1: np.arange(n),
    })
    want = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in json_records(df))
    assert "".join(json_lines(df, block)) == want
    assert "".join(json_lines(df.iloc[:0], block)) == ""
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])  # one key per name, as a dict keeps
    assert "".join(json_lines(twice, block)) == json.dumps({"a": 2}) + "\n"
