"""The run directory's own files: config.json (run identity), responses.parquet (the pool)
and judgements.jsonl (append-only oracle answers, fsync'd per append)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aeuf.errors import InputError
from aeuf.io.atomic import atomic_write, atomic_write_json
from aeuf.types import JudgeAnswer, ResponsePool

# config keys that may change between runs in one directory: they do not change what is
# selected or judged (paths, rate limits, spending caps, export layout)
HARMLESS_KEYS = frozenset({
    "output_dir", "push_to_hub", "west_of_n", "all_pairs", "concurrency", "timeout",
    "retries", "requests_per_minute", "tokens_per_minute", "max_cost", "max_requests",
    "api_key_env", "price_per_1k_input", "price_per_1k_output", "features.batch_size",
    "batch_shard_size", "batch_poll_seconds",
    # the judge may change between runs (e.g. `aeuf judge` on the annotation file of a run
    # that had no oracle): judgement keys name the judge, so answers never mix silently
    "oracle.name", "judge_base_url", "judge_model", "template", "temperature", "max_tokens",
    "logprobs", "local_model",
})
_POOL_META = b"aeuf"


# --- config.json --------------------------------------------------------------------------

def check_run_config(run_dir: Path, config: dict) -> None:
    """Write `config` to run_dir/config.json, unless it holds a different run.

    Differences in HARMLESS_KEYS (by dotted path or last key) are allowed; any other
    difference raises InputError naming the file and the first differing key.
    """
    path = Path(run_dir) / "config.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(f"{path}: not valid JSON; delete it or choose another "
                             "--output_dir") from None
        key = first_difference(old, json.loads(json.dumps(config, default=_plain)))
        if key is not None:
            raise InputError(
                f"{path}: this folder holds a different run ({key}: {_get(old, key)!r} there, "
                f"{_get(config, key)!r} now); choose another --output_dir or delete "
                f"{Path(run_dir)}")
    atomic_write_json(path, config)


def first_difference(old: dict, new: dict, prefix: str = "") -> str | None:
    """The first dotted key (sorted order) whose value differs, harmless keys skipped."""
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        if path in HARMLESS_KEYS or str(key) in HARMLESS_KEYS:
            continue
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if isinstance(a, dict) and isinstance(b, dict):
            sub = first_difference(a, b, f"{path}.")
            if sub is not None:
                return sub
        elif a != b:
            return path
    return None


_MISSING = "<not set>"


def _get(d: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part, _MISSING) if isinstance(d, dict) else _MISSING
    return d


def _plain(obj: Any) -> Any:
    return obj.tolist() if hasattr(obj, "tolist") else os.fspath(obj)


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
    table = pa.Table.from_pandas(pd.DataFrame(cols), preserve_index=False)
    meta = {"shape": [P, R], "gold_kind": pool.gold_kind, "source": pool.source}
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
    return ResponsePool(
        prompt_ids=grid("prompt_id")[:, 0].copy(), prompts=grid("prompt")[:, 0].copy(),
        responses=grid("response"),
        models=np.asarray(models, dtype=object).reshape(P, R), response_ids=grid("response_id"),
        gold=gold, gold_kind=meta.get("gold_kind"), source=meta.get("source", ""))


# --- judgements.jsonl -----------------------------------------------------------------------

class JudgementLog:
    """Append-only JSON lines, one per JudgeAnswer; each append is flushed and fsync'd.

    A last line cut short by a kill is ignored by load() and cut away before the next
    append; a damaged line elsewhere raises InputError naming file and line.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._repaired = False

    def load(self) -> dict[str, JudgeAnswer]:
        """key -> answer for every complete line (a later line with the same key wins)."""
        if not self.path.is_file():
            return {}
        lines = self.path.read_bytes().split(b"\n")
        out = {}
        for n, line in enumerate(lines[:-1], 1):
            if line.strip():
                answer = _parse_answer(line)
                if answer is None:
                    raise InputError(f"{self.path}: line {n} is not a judgement record; "
                                     "delete that line (its answer will be asked again)")
                out[answer.key] = answer
        tail = _parse_answer(lines[-1]) if lines[-1].strip() else None
        if tail is not None:  # complete record, only its newline was lost
            out[tail.key] = tail
        return out

    def append(self, answer: JudgeAnswer) -> None:
        """Write one answer as a line, then flush and fsync."""
        self.extend([answer])

    def extend(self, answers: Iterable[JudgeAnswer]) -> None:
        """Write many answers with a single fsync (for fast oracles such as replay)."""
        data = "".join(_answer_line(a) for a in answers).encode("utf-8")
        if not data:
            return
        self._repair()
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _repair(self) -> None:
        """Once per instance: cut a partial last line, or end a complete one with a newline."""
        if self._repaired:
            return
        self._repaired = True
        if not self.path.is_file() or self.path.stat().st_size == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        start, tail = _last_line(self.path)
        if not tail:
            return
        with open(self.path, "rb+") as f:
            if _parse_answer(tail) is not None:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            else:
                f.truncate(start)
            f.flush()
            os.fsync(f.fileno())


def _last_line(path: Path, block: int = 1 << 16) -> tuple[int, bytes]:
    """(offset, bytes) of the text after the file's last newline (b"" if it ends with one)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        pos = size
        while pos > 0:
            pos = max(0, pos - block)
            f.seek(pos)
            chunk = f.read(size - pos)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                return pos + cut + 1, chunk[cut + 1:]
        f.seek(0)
        return 0, f.read()


def _answer_line(a: JudgeAnswer) -> str:
    rec = a._asdict()
    rec["response_ids"] = list(a.response_ids)
    if isinstance(a.value, float) and not math.isfinite(a.value):
        rec["value"] = None  # NaN/inf are not JSON; None means "no answer" (types.JudgeAnswer)
    return json.dumps(rec, ensure_ascii=False, default=_plain) + "\n"


def _parse_answer(line: bytes) -> JudgeAnswer | None:
    """A JudgeAnswer from one line; None if the line is not a complete record."""
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or not {"key", "prompt_id", "response_ids"} <= set(rec):
        return None
    fields = {k: rec[k] for k in JudgeAnswer._fields if k in rec}
    fields["response_ids"] = tuple(rec["response_ids"])
    fields.setdefault("value", None)
    fields.setdefault("raw", "")
    fields.setdefault("judge", "")
    return JudgeAnswer(**fields)
