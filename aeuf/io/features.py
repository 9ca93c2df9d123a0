"""Precomputed feature files: a .npy matrix with an ids file, or a table with an id column
and a vector column (parquet, JSON lines, `save_to_disk` folder)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aeuf.errors import InputError
from aeuf.io.cells import describe, first_repeat, where
from aeuf.io.tables import decode_text, read_table

ID_COLUMNS = ("id", "response_id")
VECTOR_COLUMNS = ("features", "feature", "embedding", "embeddings", "vector", "values")
ROWS_PER_CHUNK = 8192  # rows read at a time from a memory-mapped matrix
_ID_FILE_SUFFIXES = (".ids.txt", "_ids.txt", ".txt", ".ids.json", ".json", ".ids.parquet",
                     ".parquet")


def read_precomputed_features(path: str, ids_path: str | None = None
                              ) -> tuple[list[str], np.ndarray]:
    """-> (ids [N], f32[N, D]). A .npy needs ids: `ids_path`, or a file next to it named
    <stem>.ids.txt / <stem>_ids.txt / <stem>.txt / <stem>(.ids).json / <stem>(.ids).parquet.
    Ids must be unique and values finite; otherwise InputError naming file and row.
    """
    p = Path(path)
    if p.suffix.lower() == ".npy" and p.is_file():
        values = _read_npy(p)
        idp = Path(ids_path) if ids_path else _find_ids_file(p)
        ids = read_ids(idp)
        if len(ids) != len(values):
            raise InputError(f"{idp}: has {len(ids)} ids but {p} has {len(values)} rows; "
                             "give one id per row, in row order")
    else:
        ids, values = _read_vector_table(path)
    _check_unique(ids, str(ids_path or path))
    _check_finite(values, str(path))
    return ids, values


def write_precomputed_features(folder: Path, values: np.ndarray, ids: Sequence[str]) -> Path:
    """folder/features.npy (f32[N, D]) and folder/features.ids.txt (one id per line), each
    written atomically, in the layout read_precomputed_features reads: -> the .npy path."""
    from aeuf.io.atomic import atomic_write, atomic_write_text

    path = Path(folder) / "features.npy"
    array = np.ascontiguousarray(values, np.float32)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    atomic_write(path, save)
    atomic_write_text(Path(folder) / "features.ids.txt", "".join(f"{i}\n" for i in ids))
    return path


def align_features(ids: Sequence[str], values: np.ndarray, wanted_ids: Sequence[str], *,
                   source: str = "features file") -> np.ndarray:
    """Rows of `values` [n, D] reordered to `wanted_ids` [N] -> [N, D] in values' float dtype.

    Ids already in the wanted order return `values` itself (a memory map stays one); other
    orders are gathered in chunks. An id in `wanted_ids` that `ids` lacks raises InputError
    naming `source` and that id.
    """
    if len(ids) == len(wanted_ids) and all(str(a) == str(b) for a, b in zip(ids, wanted_ids)):
        return values
    row = {str(k): n for n, k in enumerate(ids)}
    idx = np.array([row.get(str(w), -1) for w in wanted_ids], dtype=np.int64)
    missing = np.flatnonzero(idx < 0)
    if missing.size:
        first = wanted_ids[int(missing[0])]
        example = f" (it has ids like '{ids[0]}')" if len(ids) else ""
        raise InputError(
            f"{source}: no features for id '{first}' ({missing.size} of {len(wanted_ids)} "
            f"missing){example}; its ids must be the pool's response ids, "
            "'<prompt_id>:<response column or position>'")
    out = np.empty((len(idx), values.shape[1]), values.dtype)
    for start in range(0, len(idx), ROWS_PER_CHUNK):
        out[start:start + ROWS_PER_CHUNK] = values[idx[start:start + ROWS_PER_CHUNK]]
    return out


def read_ids(p: Path) -> list[str]:
    """Ids from a .txt (one per line), .json (a list) or .parquet (an id column)."""
    if not p.is_file():
        raise InputError(f"{p}: no such ids file; check the path")
    if p.suffix.lower() == ".parquet":
        return _id_column(read_table(str(p)), str(p))
    text = decode_text(p)
    if p.suffix.lower() == ".json":
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: line {e.lineno} is not valid JSON ({e.msg})") from None
        if isinstance(ids, dict):
            ids = ids.get("ids", ids.get("id"))
        if not isinstance(ids, list):
            raise InputError(f"{p}: expected a JSON list of ids (or {{\"ids\": [...]}})")
        return [str(i) for i in ids]
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read_npy(p: Path) -> np.ndarray:
    """float16/float32 matrices as a read-only memory map (a pool's features are never held
    twice); other numbers become float32 in memory."""
    try:
        values = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{p}: not a readable .npy file ({e}); save it with numpy.save") \
            from None
    if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
        raise InputError(f"{p}: expected a numeric matrix [rows, dim], got {values.dtype} "
                         f"with shape {values.shape}")
    return values if values.dtype in (np.float16, np.float32) else np.asarray(values, np.float32)


def _find_ids_file(p: Path) -> Path:
    stem = p.with_suffix("")
    for suffix in _ID_FILE_SUFFIXES:
        candidate = Path(f"{stem}{suffix}")
        if candidate.is_file():
            return candidate
    raise InputError(f"{p}: needs an ids file (one response id per row); put {stem.name}.ids.txt "
                     "next to it or pass the ids file")


def _read_vector_table(path: str) -> tuple[list[str], np.ndarray]:
    df = read_table(path)
    ids = _id_column(df, path)
    column = _vector_column(df, path)
    cells = df[column].tolist()
    dims = np.array([np.size(v) if isinstance(v, (list, tuple, np.ndarray)) else -1
                     for v in cells])
    bad = np.flatnonzero((dims < 1) | (dims != dims[0]))
    if bad.size:
        n = int(bad[0])
        got = f"a vector of length {dims[n]}" if dims[n] >= 0 else describe(cells[n])
        raise InputError(f"{where(path, n + 1, column)}: holds {got}; every row needs a "
                         f"list of numbers of the same length (row 1 has {max(dims[0], 0)})")
    try:
        return ids, np.asarray(np.stack([np.asarray(v, np.float32) for v in cells]))
    except (ValueError, TypeError):
        raise InputError(f"{where(path, None, column)}: holds values that are not numbers; "
                         "store numeric vectors") from None


def _id_column(df: pd.DataFrame, source: str) -> list[str]:
    names = [c for c in ID_COLUMNS if c in df.columns]
    if not names and len(df.columns) == 1:
        names = list(df.columns)
    if not names:
        raise InputError(f"{source}: no id column (expected 'id' or 'response_id'); "
                         "add the response ids as a column")
    return [str(v) for v in df[names[0]].tolist()]


def _vector_column(df: pd.DataFrame, source: str) -> str:
    named = [c for c in VECTOR_COLUMNS if c in df.columns]
    if named:
        return named[0]
    listy = [c for c in df.columns
             if len(df) and isinstance(df[c].iloc[0], (list, tuple, np.ndarray))]
    if len(listy) == 1:
        return listy[0]
    raise InputError(f"{source}: cannot tell which column holds the vectors; name it "
                     f"'features' or 'embedding' (columns: {', '.join(map(str, df.columns))})")


def _check_unique(ids: list[str], source: str) -> None:
    if (rep := first_repeat(ids)) is not None:
        n, m = rep
        raise InputError(f"{source}: row {n} repeats the id '{ids[n - 1]}' of row {m}; "
                         "ids must be unique")


def _check_finite(values: np.ndarray, source: str) -> None:
    for start in range(0, len(values), ROWS_PER_CHUNK):  # chunks: a memory map stays mapped
        bad = np.flatnonzero(~np.isfinite(values[start:start + ROWS_PER_CHUNK]).all(axis=1))
        if bad.size:
            raise InputError(f"{source}: row {start + int(bad[0]) + 1} holds NaN or infinite "
                             "values; recompute or drop that row")
