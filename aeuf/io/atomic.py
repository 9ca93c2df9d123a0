"""Atomic writes: a temp file in the target's folder, fsync, then os.replace.

A reader never sees a half-written file: after a crash the target holds either the old
content or the new one, plus at most a stray `.<name>.tmp-*` file that every reader ignores.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

TMP_MARK = ".tmp-"  # every temp file or folder name contains this; readers skip such names


def is_temp_name(name: str) -> bool:
    """True for names of temp files/folders left behind by an interrupted atomic write."""
    return TMP_MARK in name


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` to fill a temp file, then fsync it and rename it onto `path`.

    If `write` raises, the temp file is removed and `path` keeps its old content (or stays
    absent). Returns `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write `obj` as indented UTF-8 JSON to `path` atomically (serialised before any write).

    Strict JSON: NaN and infinities become null (readers in other languages reject `NaN`)."""
    return atomic_write_text(path, strict_json(obj, indent=2) + "\n")


def strict_json(obj: Any, **kw: Any) -> str:
    """json.dumps with NaN/inf as null and numpy/Path values as plain JSON.

    Tried first as it is (json refuses a NaN or an infinity anywhere, in C); only an object
    that holds one is walked in Python to null them (the walk cost 40 % of a ledger write)."""
    dumps = _STRICT.encode if not kw else partial(json.dumps, ensure_ascii=False,
                                                   allow_nan=False, default=_json_default, **kw)
    try:
        return dumps(obj)
    except ValueError:
        return dumps(_finite(obj))


def json_floats(a: Any) -> list:
    """A float array as (nested) lists of Python floats of the same values, NaN and
    infinities as None: what strict_json writes, without walking a record in Python."""
    a = np.asarray(a)
    out = a.astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def _finite(obj: Any) -> Any:
    """obj with every non-finite float (also inside lists, dicts, numpy arrays) as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _finite(obj.tolist())
    return obj


def atomic_write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write `df` (index dropped) to a parquet file at `path` atomically."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder `src` onto `dst`, removing an older `dst` afterwards.

    A crash between the two renames leaves `dst` absent and the old copy under a temp name
    (ignored by readers, removed by the next call); it never leaves a half-written `dst`.
    """
    old = dst.with_name(f".{dst.name}{TMP_MARK}old")
    if old.exists():
        shutil.rmtree(old)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    fsync_dir(dst.parent)
    if old.exists():
        shutil.rmtree(old)


def _json_default(obj: Any) -> Any:
    """numpy scalars/arrays, Paths and tuples-in-sets as plain JSON values."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


# strict_json without options: one encoder, made once (json.dumps with options makes one per
# call: 9.7 -> 6.2 us a ledger answer)
_STRICT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_default)
