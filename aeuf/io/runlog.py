"""The run directory's own files: config.json (run identity), responses.parquet (the pool),
judgements.jsonl (append-only oracle answers, fsync'd per append) and, for `aeuf generate`,
generations.jsonl (append-only finished responses), and intents.jsonl beside judgements.jsonl
(one line per paid request, fsync'd before it is sent: aeuf.run.ledger reconciles the two)."""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aeuf.errors import InputError
from aeuf.io.atomic import atomic_write, strict_json
from aeuf.io.jsonl import JsonlLog, encoded, json_object, lines
from aeuf.types import Intent, JudgeAnswer, ResponsePool

_POOL_META = b"aeuf"


# --- responses.parquet ----------------------------------------------------------------------

def write_pool(path: Path, pool: ResponsePool) -> None:
    """The pool as one row per response (prompt-major): prompt_id, prompt, slot,
    response_id, response, model[, gold]; shape, gold_kind and source in the file metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    P, R = pool.shape
    cols: dict[str, Any] = {
        "prompt_id": np.repeat(pool.prompt_ids, R), "prompt": np.repeat(pool.prompts, R),
        "slot": np.tile(np.arange(R, dtype=np.int32), P),
        "response_id": pool.response_ids.reshape(-1), "response": pool.responses.reshape(-1),
        "model": pool.models.reshape(-1)}
    if pool.gold is not None:
        cols["gold"] = np.asarray(pool.gold, np.float64).reshape(-1)
    if pool.messages is not None:
        cols["messages"] = np.repeat([json.dumps(m, ensure_ascii=False) for m in pool.messages], R)
    table = pa.Table.from_pandas(pd.DataFrame(cols), preserve_index=False)
    meta = {"shape": [P, R], "gold_kind": pool.gold_kind, "source": pool.source,
            "skipped": list(pool.skipped)}
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _POOL_META: json.dumps(meta).encode()})
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def load_pool(path: Path) -> ResponsePool:
    """The ResponsePool `write_pool` wrote (same arrays, dtypes and metadata)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_POOL_META, b"{}"))
    df = table.to_pandas()
    if "shape" not in meta or len(df) != meta["shape"][0] * meta["shape"][1]:
        raise InputError(f"{path}: not a pool written by aeuf (or damaged); delete it so the "
                         "input is read again")
    P, R = meta["shape"]

    def grid(column: str) -> np.ndarray:
        return np.asarray(df[column].tolist(), dtype=object).reshape(P, R)

    models = [v if isinstance(v, str) else None for v in df["model"].tolist()]
    gold = df["gold"].to_numpy(np.float64).reshape(P, R) if "gold" in df.columns else None
    messages = None
    if "messages" in df.columns:
        messages = np.empty(P, dtype=object)
        messages[:] = [json.loads(m) for m in grid("messages")[:, 0]]
    return ResponsePool(
        prompt_ids=grid("prompt_id")[:, 0].copy(), prompts=grid("prompt")[:, 0].copy(),
        responses=grid("response"),
        models=np.asarray(models, dtype=object).reshape(P, R), response_ids=grid("response_id"),
        gold=gold, gold_kind=meta.get("gold_kind"), source=meta.get("source", ""),
        messages=messages, skipped=tuple(meta.get("skipped", ())))


# --- judgements.jsonl, generations.jsonl ---------------------------------------------------

class JudgementLog(JsonlLog[JudgeAnswer]):
    """judgements.jsonl: one JudgeAnswer per line (aeuf.io.jsonl.JsonlLog); load() ->
    {key: answer}, append(answer), extend(answers) with a single fsync (for fast oracles
    such as replay). A damaged middle line raises InputError naming file and line.
    `intents`: the IntentLog beside it (intents.jsonl)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, parse=_parse_answer, dump=_answer_line,
                         key=lambda a: a.key, what="a judgement record",
                         hint=" (its answer will be asked again)", dump_many=_answer_lines)
        self.intents = IntentLog(self.path.parent / "intents.jsonl")


class IntentLog(JsonlLog[Intent]):
    """intents.jsonl: one Intent per paid request, written before it is sent; load() ->
    {key: latest intent}."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, parse=_parse_intent, dump=lambda i: strict_json(i._asdict()),
                         key=lambda i: i.key, what="an intent record",
                         hint=" (its request then counts as never sent)")


def _parse_intent(line: bytes) -> Intent | None:
    """An Intent from one line; None if the line is not a complete record."""
    rec = json_object(line, ("key", "prompt_id", "after"))
    if rec is None or not isinstance(rec["after"], int):
        return None
    return Intent(str(rec["key"]), str(rec["prompt_id"]), str(rec.get("purpose", "")),
                  str(rec.get("time", "")), rec["after"], float(rec.get("estimate") or 0.0))


class GenLog(JsonlLog[dict]):
    """generations.jsonl: one dict per finished response (aeuf.run.jobs.gen_run.record), each with
    at least "key" and "response"; load() -> {key: record}."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, parse=_parse_generation,
                         dump=lambda rec: json.dumps(rec, ensure_ascii=False),
                         key=lambda rec: rec["key"], what="a generation record")


def _parse_generation(line: bytes) -> dict | None:
    """A generation record from one line; None if the line is not a complete record."""
    return json_object(line, ("key", "response"))


def _answer_line(a: JudgeAnswer) -> str:
    rec = a._asdict()
    rec["response_ids"] = list(a.response_ids)
    if a.cut:
        rec["cut"] = list(a.cut)
    else:
        rec.pop("cut", None)
    return strict_json(rec)  # NaN/inf -> null: None means "no answer" (types.JudgeAnswer)


def _answer_lines(answers: list[JudgeAnswer]) -> str:
    """_answer_line of each answer with a newline, a field at a time (a batch of replay
    answers); a batch holding a cut answer (a line with one more field) answer by answer."""
    if not answers or any(a.cut for a in answers):
        return "".join(_answer_line(a) + "\n" for a in answers)
    fields = dict(zip(JudgeAnswer._fields, zip(*answers, strict=True), strict=True))
    del fields["cut"]
    ids = fields.pop("response_ids")
    columns = {k: encoded(list(v), strict_json) for k, v in fields.items()}
    columns["response_ids"] = _id_lists(ids)
    names = [k for k in JudgeAnswer._fields if k != "cut"]
    return lines(names, [columns[k] for k in names])


def _id_lists(ids: tuple) -> list[str]:
    """Each answer's response ids as the JSON list strict_json writes."""
    if set(map(type, chain.from_iterable(ids))) <= {str}:
        return ["[" + ", ".join(map(json.encoder.encode_basestring, x)) + "]" for x in ids]
    return [strict_json(list(x)) for x in ids]


def _parse_answer(line: bytes) -> JudgeAnswer | None:
    """A JudgeAnswer from one line; None if the line is not a complete record."""
    rec = json_object(line, ("key", "prompt_id", "response_ids"))
    if rec is None:
        return None
    fields = {k: rec[k] for k in JudgeAnswer._fields if k in rec}
    fields["response_ids"] = tuple(rec["response_ids"])
    fields["cut"] = tuple(str(x) for x in rec.get("cut") or ())
    fields.setdefault("value", None)
    fields.setdefault("raw", "")
    fields.setdefault("judge", "")
    return JudgeAnswer(**fields)
