"""Read prompts, or a pool of prompts with candidate responses, from any table `read_table`
reads. Three layouts are recognised, first match wins (see CONVENTION_ORDER):

  completions  a `completions` column of lists of {model, response[, overall_score|score]}
               records (ActiveUltraFeedback / UltraFeedback); the score is gold
  pair         `chosen` and `rejected` columns (text, or chat message lists whose last turn is
               the answer): R = 2, gold [1, 0], gold_kind "pair" (BAL-PM setting)
  columns      every other text column is a candidate response (AEPO), except metadata:
               META_COLUMNS, `*_id`, `<col>_model`, `<col>_score`, `score_<col>`;
               gold from a numeric `<col>_score` / `score_<col>`, model from `<col>_model`
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from aeuf.config import InputConfig
from aeuf.errors import ConfigError, InputError
from aeuf.io import cells
from aeuf.io.tables import read_table
from aeuf.registry import Registry
from aeuf.types import ResponsePool

META_COLUMNS = frozenset({
    "prompt_id", "id", "idx", "index", "uid", "dataset", "source", "split", "subset",
    "category", "task", "lang", "language", "generator", "model", "models", "tags", "url",
    "license", "system", "system_prompt", "custom_system_prompt", "messages", "principle",
})
GOLD_KEYS = ("overall_score", "score")  # inside a completions record, first found wins


class Block(NamedTuple):
    """The responses of a pool, as a convention reads them.

    responses: [P, R] object str;  models: [P, R] object (str or None);
    slots: [R] names used in response ids;  gold: [P, R] float64 or None
    """

    responses: np.ndarray
    models: np.ndarray
    slots: list[str]
    gold: np.ndarray | None
    gold_kind: str | None


class Convention(NamedTuple):
    """matches(df) -> bool;  build(df, source, prompt_column, num_responses) -> Block."""

    matches: Callable[[pd.DataFrame], bool]
    build: Callable[[pd.DataFrame, str, str, int | None], Block]


CONVENTIONS: Registry[Convention] = Registry("pool convention")
CONVENTION_ORDER = ("completions", "pair", "columns")


def read_prompts(path: str, prompt_column: str | None = None,
                 num_instructions: int | None = None) -> tuple[list[str], list[str]]:
    """The prompts of a table for `aeuf generate` -> (prompt_ids [P], prompts [P])."""
    df = _head(read_table(path), num_instructions, "--num_instructions")
    column = cells.find_prompt_column(df, path, prompt_column)
    prompts = cells.check_text_column(df, column, path, "prompt")
    return cells.prompt_ids(df, prompts, path, column), prompts


def read_pool(cfg: InputConfig) -> ResponsePool:
    """The first num_instructions prompts with their first num_responses responses each.

    Returns a ResponsePool of shape [P, R]; response ids are f"{prompt_id}:{slot}" with the
    slot a column name (columns, pair) or a 0-based position (completions).
    """
    source = cfg.path
    df = _head(read_table(source), cfg.num_instructions, "--num_instructions")
    column = cells.find_prompt_column(df, source, cfg.prompt_column)
    prompts = cells.check_text_column(df, column, source, "prompt")
    ids = cells.prompt_ids(df, prompts, source, column)
    _positive(cfg.num_responses, "--num_responses")
    block = _convention(df).build(df, source, column, cfg.num_responses)
    pid = np.asarray(ids, dtype=object)
    rid = np.array([[f"{p}:{s}" for s in block.slots] for p in ids], dtype=object)
    return ResponsePool(
        prompt_ids=pid, prompts=np.asarray(prompts, dtype=object), responses=block.responses,
        models=block.models, response_ids=rid.reshape(len(ids), len(block.slots)),
        gold=block.gold, gold_kind=block.gold_kind, source=str(source))


def _head(df: pd.DataFrame, n: int | None, flag: str) -> pd.DataFrame:
    _positive(n, flag)
    return df if n is None else df.iloc[:n]


def _positive(n: int | None, flag: str) -> None:
    if n is not None and n < 1:
        raise ConfigError(f"{flag} must be at least 1 (got {n})")


def _convention(df: pd.DataFrame) -> Convention:
    """The first convention in CONVENTION_ORDER whose columns the table has."""
    matching = (CONVENTIONS.get(n) for n in CONVENTION_ORDER)
    return next(c for c in matching if c.matches(df))  # "columns" matches every table


def _object_grid(columns: list[list[Any]]) -> np.ndarray:
    """R lists of P values -> object [P, R]."""
    out = np.empty((len(columns[0]), len(columns)), dtype=object)
    for r, col in enumerate(columns):
        out[:, r] = col
    return out


def _too_few(source: str, have: int, what: str, num: int | None) -> None:
    """Raise when fewer than max(2, num_responses) responses are available."""
    if num is not None and have < num:
        raise InputError(f"{source}: has {have} {what} but --num_responses is {num}; lower "
                         "--num_responses or add responses")
    if have < 2:
        raise InputError(f"{source}: has {have} {what}, at least 2 are needed to compare; "
                         "add responses (or create them with `aeuf generate`)")


# --- columns (AEPO) ---------------------------------------------------------------------

def is_meta_column(name: Any) -> bool:
    """True for metadata columns that are never candidate responses."""
    n = str(name).lower()
    return (n in META_COLUMNS or n.endswith(("_id", "_model", "_score"))
            or n.startswith("score_"))


def response_columns(df: pd.DataFrame, prompt_column: str) -> list[str]:
    """Text columns other than the prompt and metadata, in file order."""
    return [c for c in df.columns if c != prompt_column and not is_meta_column(c)
            and _is_text_column(df[c])]


def _is_text_column(s: pd.Series) -> bool:
    if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
        return False
    return any(isinstance(v, str) for v in s.tolist())


def _build_columns(df: pd.DataFrame, source: str, prompt_column: str,
                   num: int | None) -> Block:
    cols = response_columns(df, prompt_column)
    _too_few(source, len(cols), f"response column(s) ({', '.join(map(str, cols)) or 'none'})",
             num)
    cols = cols[:num] if num else cols
    texts = [cells.check_text_column(df, c, source, "response") for c in cols]
    models = [_models_of(df, f"{c}_model") for c in cols]
    scores = [_score_of(df, c, source) for c in cols]
    gold = None
    if any(s is not None for s in scores):
        nan = np.full(len(df), np.nan)
        gold = np.stack([nan if s is None else s for s in scores], axis=1)
    return Block(_object_grid(texts), _object_grid(models), [str(c) for c in cols], gold,
                 None if gold is None else "score")


def _models_of(df: pd.DataFrame, column: str) -> list[str | None]:
    if column not in df.columns:
        return [None] * len(df)
    return [v if isinstance(v, str) and v else None for v in df[column].tolist()]


def _score_of(df: pd.DataFrame, column: str, source: str) -> np.ndarray | None:
    for name in (f"{column}_score", f"score_{column}"):
        if name in df.columns:
            return cells.numeric_column(df, name, source)
    return None


CONVENTIONS.register("columns")(Convention(lambda df: True, _build_columns))


# --- pair (chosen / rejected) -----------------------------------------------------------

def _build_pair(df: pd.DataFrame, source: str, prompt_column: str, num: int | None) -> Block:
    _too_few(source, 2, "responses per prompt (chosen, rejected)", num)
    texts = [[_answer_text(v, source, n + 1, c) for n, v in enumerate(df[c].tolist())]
             for c in ("chosen", "rejected")]
    models = [_models_of(df, f"{c}_model") for c in ("chosen", "rejected")]
    gold = np.tile(np.array([1.0, 0.0]), (len(df), 1))
    return Block(_object_grid(texts), _object_grid(models), ["chosen", "rejected"], gold,
                 "pair")


def _answer_text(value: Any, source: str, row: int, column: str) -> str:
    """A response cell: text, or a chat message list whose last message is the answer."""
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0:
        last = value[-1]
        value = last.get("content") if isinstance(last, dict) else last
    if not cells.is_text(value):
        raise cells.text_error(source, row, column, value, "response")
    return value


CONVENTIONS.register("pair")(
    Convention(lambda df: {"chosen", "rejected"} <= set(df.columns), _build_pair))


# --- completions (ActiveUltraFeedback) --------------------------------------------------

def _build_completions(df: pd.DataFrame, source: str, prompt_column: str,
                       num: int | None) -> Block:
    rows = [cells.as_list(v, source, n + 1, "completions")
            for n, v in enumerate(df["completions"].tolist())]
    R = _completions_width(rows, source, num)
    parsed = [[_completion(item, source, n + 1, j) for j, item in enumerate(items[:R])]
              for n, items in enumerate(rows)]
    texts = [[row[r][0] for row in parsed] for r in range(R)]
    models = [[row[r][1] for row in parsed] for r in range(R)]
    gold = np.array([[item[2] for item in row] for row in parsed], dtype=np.float64)
    has_gold = bool(np.isfinite(gold).any())
    return Block(_object_grid(texts), _object_grid(models), [str(r) for r in range(R)],
                 gold if has_gold else None, "score" if has_gold else None)


def _completions_width(rows: list[list], source: str, num: int | None) -> int:
    """R: num_responses if every row has that many, else the common length of all rows."""
    counts = np.array([len(r) for r in rows])
    low = int(np.argmin(counts))
    need = num if num is not None else int(counts.max())
    if counts[low] < max(need, 2):
        hint = (f"lower --num_responses to {counts[low]}" if num is not None
                else f"pass --num_responses {counts[low]} to use the first {counts[low]}")
        hint = hint if counts[low] >= 2 else "add responses or remove the row"
        raise InputError(f"{cells.where(source, low + 1, 'completions')}: has {counts[low]} "
                         f"responses, {need} wanted; {hint}")
    return need


def _completion(item: Any, source: str, row: int, j: int) -> tuple[str, str | None, float]:
    """(response, model, gold score or NaN) of one {model, response, ...} record."""
    column = f"completions[{j}]"
    if not isinstance(item, dict):
        raise InputError(f"{cells.where(source, row, column)}: expected a record "
                         f"{{model, response}}, got {cells.describe(item)}")
    text = item.get("response")
    if not cells.is_text(text):
        raise cells.text_error(source, row, column + ".response", text, "response")
    model = item.get("model")
    return text, model if isinstance(model, str) and model else None, _gold_of(item)


def _gold_of(item: dict) -> float:
    for key in GOLD_KEYS:
        value = item.get(key)
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
    return float("nan")


CONVENTIONS.register("completions")(
    Convention(lambda df: "completions" in df.columns, _build_completions))
