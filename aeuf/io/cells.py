"""Cell-level checks shared by the pool readers: one-line errors naming file, row, column.

Rows are 1-based data rows (the CSV header is not counted), i.e. DataFrame position + 1.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from aeuf.errors import InputError
from aeuf.io.tables import EMPTY_IS_TEXT

PROMPT_COLUMNS = ("prompt", "instruction")
CONVERSATION_COLUMNS = ("messages", "conversations", "conversation")  # OpenAI or ShareGPT turns


def where(source: str, row: int | None = None, column: str | None = None) -> str:
    """'file, row 3, column 'x'' with the parts that are known."""
    parts = [str(source)]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column '{column}'")
    return ", ".join(parts)


def describe(value: Any) -> str:
    """A short description of a bad cell value for messages: `a float (nan)`."""
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__} ({text})"


def is_text(value: Any) -> bool:
    """A non-empty (not only whitespace) string: what a prompt must be."""
    return isinstance(value, str) and bool(value.strip())


def response_texts(df: pd.DataFrame, column: str, source: str) -> list[str | None]:
    """[rows] the column's responses (response_text of each cell); in a CSV/TSV table
    (df.attrs flag) an empty cell is an empty response, not a missing one."""
    values = df[column].tolist()
    if set(map(type, values)) <= {str}:  # every cell a plain str (the common case): as it is
        return values
    empty = "" if df.attrs.get(EMPTY_IS_TEXT) else None
    return [empty if empty is not None and is_missing(v) else response_text(v, source, n, column)
            for n, v in enumerate(values, 1)]


def response_text(value: Any, source: str, row: int, column: str) -> str | None:
    """A response cell -> its text ("" and whitespace kept: an empty response is a legitimate,
    bad candidate), or None when the cell is missing (null/NaN: no response). Anything else
    (a number, a list, a record) raises one line naming the cell."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value
    raise InputError(f"{where(source, row, column)}: the response is {describe(value)}, not "
                     "text; put text in that cell (or leave it empty for no response)")


def text_error(source: str, row: int, column: str, value: Any, what: str) -> InputError:
    """The error for a cell that should hold a non-empty `what` (prompt/response) string."""
    if isinstance(value, str) or is_missing(value):
        return InputError(f"{where(source, row, column)}: empty {what}; fill it in or remove "
                          "the row")
    return InputError(f"{where(source, row, column)}: the {what} is {describe(value)}, not "
                      "text; put text in that cell")


def check_text_column(df: pd.DataFrame, column: str, source: str, what: str) -> list[str]:
    """The column's cells as a list of strings [rows]; the first empty/non-text cell raises."""
    values = df[column].tolist()
    for n, v in enumerate(values):
        if not is_text(v):
            raise text_error(source, n + 1, column, v, what)
    return values


def find_prompt_column(df: pd.DataFrame, source: str, wanted: str | None,
                       required: bool = True) -> str | None:
    """The prompt column: `wanted` if given, else 'prompt' or 'instruction', else a
    conversation column ('messages', 'conversations', 'conversation'). None when there is
    none and not `required` (chosen/rejected conversations can carry the prompt)."""
    names = (wanted,) if wanted else PROMPT_COLUMNS + CONVERSATION_COLUMNS
    for name in names:
        if name in df.columns:
            return name
    if not required and not wanted:
        return None
    cols = ", ".join(map(str, df.columns[:12])) + (", ..." if len(df.columns) > 12 else "")
    expected = f"'{wanted}'" if wanted else "'prompt', 'instruction' or 'messages'"
    raise InputError(f"{source}: no prompt column (expected {expected}; columns: {cols}); "
                     "rename that column or pass --prompt_column")


def prompt_ids(df: pd.DataFrame, keys: list[str], source: str, prompt_column: str | None,
               what: str = "prompt") -> list[str]:
    """[P] ids: the `prompt_id` column if present, else a content hash of each key (the
    prompt text, or a conversation as JSON).

    Without ids, a repeated key raises (naming both rows); with ids, a repeated id does.
    """
    if "prompt_id" in df.columns:
        ids = [id_text(v, source, n + 1) for n, v in enumerate(df["prompt_id"].tolist())]
        _first_repeat(ids, source, "prompt_id", "prompt id")
        return ids
    _first_repeat(keys, source, prompt_column, what)
    return [content_hash(k) for k in keys]


def content_hash(text: str, n: int = 16) -> str:
    """A stable id for a text: the first `n` hex digits of its sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:n]


def numeric_column(df: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """float64 [rows] of a score column; empty cells are NaN, non-numbers and infinities raise
    (an infinite gold score would otherwise be quietly taken as missing)."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero((np.isnan(values) & ~raw.isna().to_numpy()) | np.isinf(values))
    if bad.size:
        n = int(bad[0])
        what = "not a finite number" if np.isinf(values[n]) else "not a number"
        raise InputError(f"{where(source, n + 1, column)}: the score is "
                         f"{describe(raw.iloc[n])}, {what}; fix it or leave it empty")
    return values


def as_list(value: Any, source: str, row: int, column: str) -> list:
    """A list-valued cell (a JSON string in CSV, a numpy array from parquet) as a list."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(f"{where(source, row, column)}: not a JSON list; write the list "
                             "as JSON") from None
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    raise InputError(f"{where(source, row, column)}: expected a list, got {describe(value)}")


def id_text(value: Any, source: str, row: int) -> str:
    """A prompt_id cell as text; an empty one raises."""
    if is_missing(value) or str(value).strip() == "":
        raise InputError(f"{where(source, row, 'prompt_id')}: empty prompt id; fill it in or "
                         "drop the prompt_id column")
    return str(value)


def first_repeat(values: list[str]) -> tuple[int, int] | None:
    """(row, earlier row), 1-based, of the first value that occurred before; None if all
    values are distinct."""
    seen: dict[str, int] = {}
    for n, v in enumerate(values, 1):
        if v in seen:
            return n, seen[v]
        seen[v] = n
    return None


def _first_repeat(values: list[str], source: str, column: str | None, what: str) -> None:
    if (rep := first_repeat(values)) is not None:
        raise InputError(f"{where(source, rep[0], column)}: repeats the {what} of row "
                         f"{rep[1]}; remove the duplicate row")


def is_missing(value: Any) -> bool:
    """None, pd.NA or a float NaN: a cell with no value."""
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
