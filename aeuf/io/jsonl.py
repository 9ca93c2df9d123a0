"""Append-only JSON-lines logs that survive a kill at any point.

One record per line; every append is flushed and fsync'd. A kill mid-write leaves a partial
last line: load() ignores it and the first append of a new instance cuts it away (or, when
the record is complete and only its newline was lost, keeps it and ends the line). A damaged
line anywhere else raises InputError naming the file and the line.

`encoded` and `lines` write many records' JSON lines a column at a time (the same text as a
json.dumps per record): the judgement log's batches and the export's preferences.jsonl.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from aeuf.errors import InputError

T = TypeVar("T")
_BOOLS = {True: "true", False: "false"}
_DIRECT = {str: json.encoder.encode_basestring, int: int.__repr__, bool: _BOOLS.__getitem__,
           type(None): lambda _: "null"}  # types whose JSON text needs no encoder call


class JsonlLog(Generic[T]):
    """An append-only log of records of type T.

    parse: one line's bytes -> record, or None when the line is not a complete record.
    dump:  record -> its JSON text (one line, no newline).
    key:   record -> its key; in load(), a later line with the same key wins.
    what:  how an error names a record ("a judgement record"); hint: appended to the
           "delete that line" advice.
    dump_many: records -> their lines, each ending in a newline, exactly as `dump` writes
           them (optional: a faster way for extend()).
    """

    def __init__(self, path: Path, *, parse: Callable[[bytes], T | None],
                 dump: Callable[[T], str], key: Callable[[T], str],
                 what: str = "a record", hint: str = "",
                 dump_many: Callable[[list[T]], str] | None = None) -> None:
        self.path = Path(path)
        self._parse, self._dump, self._key = parse, dump, key
        self._dump_many = dump_many
        self._what, self._hint = what, hint
        self._repaired = False

    def load(self) -> dict[str, T]:
        """key -> record for every complete line, in file order."""
        return self.load_at()[0]

    def load_at(self) -> tuple[dict[str, T], dict[str, int]]:
        """(key -> record, key -> byte offset of the line that record came from): load() and
        where each key's last line starts (what an intent's `after` is compared with)."""
        if not self.path.is_file():
            return {}, {}
        lines = self.path.read_bytes().split(b"\n")
        out: dict[str, T] = {}
        at: dict[str, int] = {}
        pos = 0
        for n, line in enumerate(lines[:-1], 1):
            if line.strip():
                rec = self._parse(line)
                if rec is None:
                    raise InputError(f"{self.path}: line {n} is not {self._what}; delete "
                                     f"that line{self._hint}")
                out[self._key(rec)] = rec
                at[self._key(rec)] = pos
            pos += len(line) + 1
        tail = self._parse(lines[-1]) if lines[-1].strip() else None
        if tail is not None:  # complete record, only its newline was lost
            out[self._key(tail)] = tail
            at[self._key(tail)] = pos
        return out, at

    def end(self) -> int:
        """The log's size in bytes once a partial last line is cut away: where the next
        record will start."""
        self._repair()
        return self.path.stat().st_size if self.path.exists() else 0

    def append(self, rec: T) -> None:
        """Write one record as a line, then flush and fsync."""
        self.extend([rec])

    def extend(self, recs: Iterable[T]) -> None:
        """Write many records with a single fsync."""
        text = self._dump_many(list(recs)) if self._dump_many is not None else \
            "".join(self._dump(r) + "\n" for r in recs)
        data = text.encode("utf-8")
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
        start, tail = last_line(self.path)
        if not tail:
            return
        with open(self.path, "rb+") as f:
            if self._parse(tail) is not None:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            else:
                f.truncate(start)
            f.flush()
            os.fsync(f.fileno())


def last_line(path: Path, block: int = 1 << 16) -> tuple[int, bytes]:
    """(offset, bytes) of the text after the file's last newline (b"" if it ends with one);
    reads the file backwards in `block`-byte steps, so a long log is not read whole."""
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


def json_object(line: bytes, required: Iterable[str] = ()) -> dict | None:
    """The JSON object on one line if it parses and has every `required` key, else None
    (a partial line, other JSON, or bytes that are not UTF-8)."""
    try:
        rec = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return rec if isinstance(rec, dict) and all(k in rec for k in required) else None


# --- JSON lines a column at a time -------------------------------------------------------------

def encoded(values: list, other: Callable[[Any], str]) -> list[str]:
    """The JSON text of each value of one column, as json's encoder writes it: str, int,
    bool, None and finite floats directly (a column of one such type in one C-level map);
    anything else, and non-finite floats, through `other` (which decides NaN and nesting)."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is float and all(map(math.isfinite, values)):
            return list(map(float.__repr__, values))
        if kind in _DIRECT:
            return list(map(_DIRECT[kind], values))
    return [_value(v, other) for v in values]


def _value(v: Any, other: Callable[[Any], str]) -> str:
    kind = type(v)
    if kind is float:
        return float.__repr__(v) if math.isfinite(v) else other(v)
    plain = _DIRECT.get(kind)
    return plain(v) if plain is not None else other(v)


def lines(names: list[str], columns: list[list[str]]) -> str:
    """Rows of encoded columns as JSON lines, '{"name": text, ...}' and a newline each:
    what json.dumps writes for a dict of those keys and values (default separators)."""
    keys = [json.encoder.encode_basestring(n).replace("%", "%%") for n in names]
    line = "{" + ", ".join(f"{k}: %s" for k in keys) + "}\n"
    return "".join([line % row for row in zip(*columns, strict=True)])
