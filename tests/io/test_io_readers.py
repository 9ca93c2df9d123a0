"""Every input format and layout read into the same ResponsePool, and every bad input
turned into one InputError line naming the file, row and column."""

import hashlib
import json
import time

import numpy as np
import pandas as pd
import pytest

from aeuf.config import InputConfig
from aeuf.errors import InputError
from aeuf.io import read_pool, read_prompts, read_table

PROMPTS = ["Name a prime number.", "What is the capital of France?", "Say hi in Spanish."]
COLS = ["response_a", "response_b", "response_c"]
TEXTS = [["2 is prime.", "Nine.", "Seven is prime."],
         ["Paris.", "Lyon.", "The capital is Paris."],
         ["Hola.", "Bonjour.", "None"]]  # "None" is text, not a missing value
MODELS = [["m1", "m2", "m3"], ["m1", "m2", "m3"], ["m1", "m2", "m3"]]
SCORES = [[4.0, 1.0, 5.0], [4.5, 2.0, np.nan], [5.0, 0.5, 1.0]]


def columns_frame() -> pd.DataFrame:
    """AEPO layout with model/score side columns and metadata that must not be responses."""
    rows = []
    for p, texts, models, scores in zip(PROMPTS, TEXTS, MODELS, SCORES):
        row = {"prompt": p, "dataset": "toy", "n_tokens": len(p)}
        for c, t, m, s in zip(COLS, texts, models, scores):
            row.update({c: t, f"{c}_model": m, f"{c}_score": s})
        rows.append(row)
    return pd.DataFrame(rows)


def completions_records() -> list[dict]:
    return [{"instruction": p, "source": "toy",
             "completions": [{"model": m, "response": t, "overall_score": s}
                             for t, m, s in zip(texts, models, scores)]}
            for p, texts, models, scores in zip(PROMPTS, TEXTS, MODELS, SCORES)]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def expected_ids() -> list[str]:
    return [hashlib.sha256(p.encode()).hexdigest()[:16] for p in PROMPTS]


def check_pool(pool, slots):
    assert pool.shape == (3, 3)
    assert list(pool.prompts) == PROMPTS
    assert list(pool.prompt_ids) == expected_ids()
    assert pool.responses.tolist() == TEXTS
    assert pool.models.tolist() == MODELS
    np.testing.assert_array_equal(pool.gold, np.array(SCORES))
    assert pool.gold_kind == "score"
    assert pool.response_ids.tolist() == [[f"{i}:{s}" for s in slots] for i in expected_ids()]


def save_csv(df, path):
    df.to_csv(path, index=False)


def save_tsv(df, path):
    df.to_csv(path, index=False, sep="\t")


def save_jsonl(df, path):
    write_jsonl(path, json.loads(df.to_json(orient="records")))


def save_json(df, path):
    path.write_text(df.to_json(orient="records"), encoding="utf-8")


def save_parquet(df, path):
    df.to_parquet(path, index=False)


def save_hf(df, path):
    import datasets

    datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(str(path))


@pytest.mark.parametrize("name,save", [
    ("in.csv", save_csv), ("in.tsv", save_tsv), ("in.jsonl", save_jsonl), ("in.json", save_json),
    ("in.parquet", save_parquet), ("hf_folder", save_hf)])
def test_columns_layout_same_pool_from_every_format(tmp_path, name, save):
    save(columns_frame(), tmp_path / name)
    check_pool(read_pool(InputConfig(path=str(tmp_path / name))), COLS)


def test_completions_layout_from_jsonl_parquet_and_csv(tmp_path):
    recs = completions_records()
    check_pool(read_pool(InputConfig(path=write_jsonl(tmp_path / "c.jsonl", recs))),
               ["0", "1", "2"])
    pd.DataFrame(recs).to_parquet(tmp_path / "c.parquet")  # list<struct> column
    check_pool(read_pool(InputConfig(path=str(tmp_path / "c.parquet"))), ["0", "1", "2"])
    df = pd.DataFrame(recs).assign(completions=lambda d: d.completions.map(json.dumps))
    df.to_csv(tmp_path / "c.csv", index=False)  # completions as a JSON string per cell
    check_pool(read_pool(InputConfig(path=str(tmp_path / "c.csv"))), ["0", "1", "2"])


def test_chosen_rejected_layout_text_and_chat(tmp_path):
    rows = [{"prompt": p, "chosen": t[0], "rejected": t[1], "chosen_model": "good"}
            for p, t in zip(PROMPTS, TEXTS)]
    pool = read_pool(InputConfig(path=write_jsonl(tmp_path / "p.jsonl", rows)))
    assert pool.shape == (3, 2) and pool.gold_kind == "pair"
    assert pool.responses.tolist() == [t[:2] for t in TEXTS]
    np.testing.assert_array_equal(pool.gold, np.tile([1.0, 0.0], (3, 1)))
    assert pool.models[:, 0].tolist() == ["good"] * 3 and pool.models[:, 1].tolist() == [None] * 3
    chat = [{"prompt": p, "chosen": [{"role": "user", "content": p},
                                     {"role": "assistant", "content": t[0]}],
             "rejected": [{"role": "user", "content": p},
                          {"role": "assistant", "content": t[1]}]}
            for p, t in zip(PROMPTS, TEXTS)]
    pd.DataFrame(chat).to_parquet(tmp_path / "chat.parquet")
    pool2 = read_pool(InputConfig(path=str(tmp_path / "chat.parquet")))
    assert pool2.responses.tolist() == pool.responses.tolist()


def test_no_gold_prompt_id_instruction_and_limits(tmp_path):
    df = pd.DataFrame({"prompt_id": ["007", "p-b", "p-c"], "instruction": PROMPTS,
                       **{c: [t[i] for t in TEXTS] for i, c in enumerate(COLS)}})
    path = tmp_path / "x.csv"
    df.to_csv(path, index=False)
    pool = read_pool(InputConfig(path=str(path), num_responses=2, num_instructions=2))
    assert pool.shape == (2, 2) and pool.gold is None and pool.gold_kind is None
    assert pool.prompt_ids.tolist() == ["007", "p-b"]  # ids stay text
    assert pool.response_ids[1].tolist() == ["p-b:response_a", "p-b:response_b"]
    assert pool.responses.tolist() == [t[:2] for t in TEXTS[:2]]
    ids, prompts = read_prompts(str(path), num_instructions=2)
    assert (ids, prompts) == (["007", "p-b"], PROMPTS[:2])


def test_custom_prompt_column_and_bom_csv(tmp_path):
    df = columns_frame().rename(columns={"prompt": "question"})
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode("utf-8"))
    check_pool(read_pool(InputConfig(path=str(path), prompt_column="question")), COLS)
    ids, prompts = read_prompts(str(path), prompt_column="question")
    assert prompts == PROMPTS and ids == expected_ids()


def test_jsonl_saved_as_json_is_read(tmp_path):
    path = tmp_path / "lines.json"
    write_jsonl(path, json.loads(columns_frame().to_json(orient="records")))
    check_pool(read_pool(InputConfig(path=str(path))), COLS)


# --- bad input -------------------------------------------------------------------------

def error_of(path, **kw) -> str:
    with pytest.raises(InputError) as e:
        read_pool(InputConfig(path=str(path), **kw))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file(tmp_path):
    msg = error_of(tmp_path / "nope.csv")
    assert "no such file" in msg


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("prompt,a,b\nhello,x,y\ncaf\u00e9,x,y\n".encode("latin-1"))
    msg = error_of(path)
    assert "line 3" in msg and "UTF-8" in msg


@pytest.mark.parametrize("content", [b"", b"   \n", b"prompt,a,b\n"])
def test_empty_file_or_header_only(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    assert "empty" in error_of(path) or "no data rows" in error_of(path)


def test_no_prompt_column_lists_columns(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"question": ["q"], "a": ["x"], "b": ["y"]}).to_csv(path, index=False)
    msg = error_of(path)
    assert "no prompt column" in msg and "question" in msg and "--prompt_column" in msg


def test_duplicate_prompts_name_both_rows(tmp_path):
    path = tmp_path / "dup.csv"
    pd.DataFrame({"prompt": ["a", "b", "a"], "r1": ["x"] * 3, "r2": ["y"] * 3}).to_csv(
        path, index=False)
    msg = error_of(path)
    assert "row 3" in msg and "row 1" in msg and "'prompt'" in msg


def test_empty_csv_cell_is_an_empty_response_and_its_prompt_is_kept(tmp_path):
    """A CSV cannot tell an empty cell from an empty string: an empty response cell is an
    empty answer (judged, and it loses), as "" is in JSON lines (issue 24)."""
    path = tmp_path / "e.csv"
    pd.DataFrame({"prompt": ["a", "b", "c"], "r1": ["x", "y", "z"], "r2": ["y", "", "w"]}).to_csv(
        path, index=False)
    pool = read_pool(InputConfig(path=str(path)))
    assert pool.shape == (3, 2) and pool.skipped == ()
    assert pool.responses.tolist() == [["x", "y"], ["y", ""], ["z", "w"]]


def test_non_text_response_names_row_and_column(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"prompt": "a", "r1": "x", "r2": "y"},
                                              {"prompt": "b", "r1": "x", "r2": 3.5}])
    msg = error_of(path)
    assert "row 2" in msg and "'r2'" in msg and "float" in msg and "not text" in msg


def test_non_text_prompt(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"prompt": "a", "r1": "x", "r2": "y"},
                                              {"prompt": ["b"], "r1": "x", "r2": "y"}])
    msg = error_of(path)  # a list in the prompt column is read as a conversation
    assert "row 2" in msg and "column 'prompt[0]'" in msg and "turn" in msg


def test_fewer_responses_than_num_responses(tmp_path):
    path = tmp_path / "few.csv"
    pd.DataFrame({"prompt": ["a"], "r1": ["x"], "r2": ["y"]}).to_csv(path, index=False)
    msg = error_of(path, num_responses=3)
    assert "2 response column(s) (r1, r2)" in msg and "--num_responses is 3" in msg


def test_single_response_column_is_not_a_pool(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"prompt": ["a"], "output": ["x"]}).to_csv(path, index=False)
    assert "at least 2" in error_of(path)


def test_completions_row_with_too_few_is_skipped(tmp_path):
    recs = completions_records()
    recs[1]["completions"] = recs[1]["completions"][:2]
    path = write_jsonl(tmp_path / "c.jsonl", recs)
    pool = read_pool(InputConfig(path=path))
    assert pool.shape == (2, 3) and pool.prompts.tolist() == [PROMPTS[0], PROMPTS[2]]
    assert pool.skipped == (expected_ids()[1],)
    assert read_pool(InputConfig(path=path, num_responses=2)).shape == (3, 2)
    msg = error_of(path, num_responses=4)
    assert "no prompt has 4 responses" in msg and "--num_responses 3 or less" in msg


def test_completion_with_non_text_response(tmp_path):
    recs = completions_records()
    recs[2]["completions"][1]["response"] = 3
    msg = error_of(write_jsonl(tmp_path / "c.jsonl", recs))
    assert "row 3" in msg and "completions[1].response" in msg and "not text" in msg


def test_bad_score_names_row_and_column(tmp_path):
    df = columns_frame()
    df["response_b_score"] = df["response_b_score"].astype(object)
    df.loc[1, "response_b_score"] = "high"
    path = tmp_path / "s.jsonl"
    save_jsonl(df, path)
    msg = error_of(path)
    assert "row 2" in msg and "'response_b_score'" in msg and "not a number" in msg


@pytest.mark.parametrize("layout", ["columns", "completions"])
def test_an_infinite_score_is_refused_not_taken_as_missing(tmp_path, layout):
    if layout == "columns":
        df = columns_frame()
        df.loc[1, "response_b_score"] = np.inf
        df.to_csv(path := tmp_path / "s.csv", index=False)  # written as "inf"
        where_ = "'response_b_score'"
    else:
        recs = completions_records()
        recs[1]["completions"][0]["overall_score"] = float("-inf")
        path = write_jsonl(tmp_path / "c.jsonl", recs)
        where_ = "completions[0].overall_score"
    msg = error_of(path)
    assert "row 2" in msg and where_ in msg and "not a finite number" in msg


def test_bad_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "r1": "x", "r2": "y"}\n{"prompt": "b",\n')
    assert "line 2" in error_of(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK")
    assert ".csv" in error_of(path)


def test_hub_id_offline_is_a_quick_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(InputError, match="HF_HUB_OFFLINE") as e:
        read_table("someone/some-dataset")
    assert "someone/some-dataset" in str(e.value) and time.monotonic() - t < 5


def test_hub_unreachable_is_a_quick_clear_error(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(InputError) as e:
        read_table("someone/some-dataset:train")
    msg = str(e.value)
    assert "someone/some-dataset" in msg and "\n" not in msg


def test_empty_csv_cell_with_no_model_named_is_no_response(tmp_path):
    """A ragged CSV: where the `<column>_model` cell is empty too, no model wrote anything and
    the prompt simply has fewer responses; an empty cell whose model is named is an empty
    response (judged, and it loses)."""
    path = tmp_path / "r.csv"
    pd.DataFrame({"prompt": ["a", "b", "c"], "r1": ["x", "y", "z"], "r2": ["y", "", "w"],
                  "r3": ["q", "", ""], "r1_model": ["m1"] * 3, "r2_model": ["m2"] * 3,
                  "r3_model": ["m3", "", "m3"]}).to_csv(path, index=False)
    pool = read_pool(InputConfig(path=str(path), num_responses=3))
    assert pool.prompts.tolist() == ["a", "c"] and len(pool.skipped) == 1
    assert pool.responses.tolist() == [["x", "y", "q"], ["z", "w", ""]]
    two = read_pool(InputConfig(path=str(path), num_responses=2))
    assert two.responses.tolist() == [["x", "y"], ["y", ""], ["z", "w"]]
