"""Multi-turn input: OpenAI and ShareGPT conversations, chosen/rejected message lists
(UltraFeedback-binarized, TRL's implicit and explicit prompt), HH-RLHF transcripts. No turn
is lost: pool.messages keeps every turn before the answer, pool.prompts the last user turn."""

import hashlib
import json

import pandas as pd
import pytest

from aeuf.config import InputConfig
from aeuf.errors import InputError
from aeuf.io import read_pool, read_prompts

SYS = {"role": "system", "content": "Be brief."}


def user(text):
    return {"role": "user", "content": text}


def bot(text):
    return {"role": "assistant", "content": text}


def sharegpt(turns):
    names = {"user": "human", "assistant": "gpt", "system": "system"}
    return [{"from": names[t["role"]], "value": t["content"]} for t in turns]


CONVS = [[SYS, user("Name a fruit."), bot("Apple."), user("Another one?")],
         [user("Name a colour."), bot("Red."), user("Another one?")],  # same last user turn
         [user("Hi!")]]
ANSWERS = [["Pear.", "A banana."], ["Blue.", "Green!"], ["Hello.", "Hey."]]


def read(path, **kw):
    return read_pool(InputConfig(path=str(path), **kw))


def error_of(path) -> str:
    with pytest.raises(InputError) as e:
        read(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    return str(e.value)


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def table(column, convert):
    return pd.DataFrame({column: [convert(c) for c in CONVS],
                         "response_a": [a[0] for a in ANSWERS],
                         "response_b": [a[1] for a in ANSWERS]})


@pytest.mark.parametrize("column,convert,suffix", [
    ("messages", lambda c: c, "parquet"), ("messages", lambda c: c, "jsonl"),
    ("conversations", sharegpt, "parquet"), ("conversations", sharegpt, "jsonl"),
    ("messages", json.dumps, "csv")])
def test_conversation_column_keeps_every_turn(tmp_path, column, convert, suffix):
    df = table(column, convert)
    path = tmp_path / f"t.{suffix}"
    {"parquet": lambda: df.to_parquet(path), "csv": lambda: df.to_csv(path, index=False),
     "jsonl": lambda: path.write_text(df.to_json(orient="records", lines=True))}[suffix]()
    pool = read(path)
    assert pool.shape == (3, 2)
    assert pool.prompts.tolist() == ["Another one?", "Another one?", "Hi!"]
    assert pool.messages.shape == (3,) and list(pool.messages) == CONVS
    assert pool.responses.tolist() == ANSWERS
    # the same last user turn in two conversations: two prompts, two ids
    assert len(set(pool.prompt_ids)) == 3
    assert pool.prompt_ids[2] == sha("Hi!")  # a one-turn conversation: the plain-text id
    ids, prompts = read_prompts(str(path))
    assert prompts == pool.prompts.tolist() and ids == pool.prompt_ids.tolist()


def test_final_assistant_turn_is_left_out_when_there_are_responses(tmp_path):
    df = table("messages", lambda c: c + [bot("An old answer.")])
    df.to_parquet(tmp_path / "t.parquet")
    pool = read(tmp_path / "t.parquet")
    assert list(pool.messages) == CONVS and pool.responses.tolist() == ANSWERS


def test_text_prompt_with_a_messages_column_and_chosen_rejected_lists(tmp_path):
    # UltraFeedback-binarized: prompt text, chosen/rejected conversations, messages = chosen
    rows = [{"prompt": c[-1]["content"], "prompt_id": f"id{n}", "chosen": c + [bot(a[0])],
             "rejected": c + [bot(a[1])], "messages": c + [bot(a[0])],
             "score_chosen": 8.0, "score_rejected": 3.0}
            for n, (c, a) in enumerate(zip(CONVS, ANSWERS))]
    pd.DataFrame(rows).to_parquet(tmp_path / "uf.parquet")
    pool = read(tmp_path / "uf.parquet")
    assert pool.gold_kind == "pair" and pool.responses.tolist() == ANSWERS
    assert list(pool.messages) == CONVS and pool.prompt_ids.tolist() == ["id0", "id1", "id2"]


def test_trl_implicit_and_explicit_prompt(tmp_path):
    implicit = [{"chosen": c + [bot(a[0])], "rejected": c + [bot(a[1])]}
                for c, a in zip(CONVS, ANSWERS)]
    pd.DataFrame(implicit).to_parquet(tmp_path / "i.parquet")
    explicit = [{"prompt": c, "chosen": [bot(a[0])], "rejected": [bot(a[1])]}
                for c, a in zip(CONVS, ANSWERS)]
    pd.DataFrame(explicit).to_parquet(tmp_path / "e.parquet")
    for name in ("i.parquet", "e.parquet"):
        pool = read(tmp_path / name)
        assert pool.prompts.tolist() == ["Another one?", "Another one?", "Hi!"]
        assert list(pool.messages) == CONVS and pool.responses.tolist() == ANSWERS


def test_hh_rlhf_transcripts(tmp_path):
    context = "\n\nHuman: What is 2+2?\n\nAssistant: 4.\n\nHuman: And 3+3?"
    rows = [{"chosen": context + "\n\nAssistant: 6.", "rejected": context + "\n\nAssistant: 7."},
            {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: "}]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pool = read(path)
    assert pool.prompts.tolist() == ["And 3+3?", "Hi"]
    assert pool.responses.tolist() == [["6.", "7."], ["Hello!", ""]]
    assert list(pool.messages[0]) == [user("What is 2+2?"), bot("4."), user("And 3+3?")]


def test_long_conversations_without_a_response_column(tmp_path):
    rows = [{"prompt_id": f"q{p}", "model": m, "messages": CONVS[p] + [bot(ANSWERS[p][j])]}
            for p in range(3) for j, m in enumerate(["m1", "m2"])]
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pool = read(path)
    assert pool.responses.tolist() == ANSWERS and list(pool.messages) == CONVS
    assert pool.response_ids[0].tolist() == ["q0:m1", "q0:m2"]


@pytest.mark.parametrize("bad,where,what", [
    ([user("a"), {"role": "robot", "content": "b"}], "'messages[1]'", "unknown role"),
    ([{"from": "human", "value": 3}], "'messages[0]'", "not text"),
    (["just text"], "'messages[0]'", "expected a turn"),
    ([SYS, bot("hello")], "'messages'", "no user turn"),
    ([], "'messages'", "empty conversation"),
    ("[not json", "'messages'", "not a JSON list")])
def test_bad_conversations_name_row_and_column(tmp_path, bad, where, what):
    rows = [{"messages": [user("fine")], "a": "x", "b": "y"}, {"messages": bad, "a": "x", "b": "y"}]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    msg = error_of(path)
    assert "row 2" in msg and f"column {where}" in msg and what in msg


def test_pair_conversation_must_end_with_the_answer(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"chosen": [user("q"), bot("a")], "rejected": [user("q")]}) + "\n")
    msg = error_of(path)
    assert "row 1" in msg and "'rejected'" in msg and "assistant answer" in msg


def test_plain_pair_without_prompt_column_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"chosen": "a", "rejected": "b"}) + "\n")
    assert "no prompt column" in error_of(path)
