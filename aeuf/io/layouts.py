"""The one-row-per-prompt pool conventions: columns (AEPO), pair (chosen/rejected) and
completions (ActiveUltraFeedback). Each reads every prompt's responses, any number of them
(missing cells are no response, "" is an empty one; in a CSV/TSV, which cannot tell them
apart, an empty response cell is an empty response); ragged.square makes them [P, R].
"""

from __future__ import annotations

import sys
from functools import partial
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from aeuf.config import InputConfig
from aeuf.errors import InputError
from aeuf.io import cells, chat
from aeuf.io.cells import where
from aeuf.io.ragged import CONVENTIONS, Cand, Convention, Rows, head, wide_prompts
from aeuf.io.tables import EMPTY_IS_TEXT

META_COLUMNS = frozenset({
    "prompt_id", "id", "idx", "index", "uid", "dataset", "source", "split", "subset",
    "category", "task", "lang", "language", "generator", "model", "models", "tags", "url",
    "license", "system", "system_prompt", "custom_system_prompt", "principle",
    *cells.CONVERSATION_COLUMNS,
})
GOLD_KEYS = ("overall_score", "score")  # inside a completions record, first found wins


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


def _build_columns(df: pd.DataFrame, source: str, cfg: InputConfig) -> Rows:
    df = head(df, cfg.num_instructions)
    wide = wide_prompts(df, source, cells.find_prompt_column(df, source, cfg.prompt_column))
    cols = response_columns(df, wide.column)
    _not_text_columns(df, wide.column, cols, source)
    _too_few_columns(source, cols, cfg.num_responses)
    per_col = [_column_cands(df, c, source) for c in cols]
    gaps = _ragged_gaps(df, cols)
    if gaps.any() or any(None in col for col in per_col):
        cands = [[c for j, col in enumerate(per_col) if (c := col[p]) is not None
                  and not gaps[p, j]] for p in range(len(df))]
    else:  # every prompt has every column's response (the common case): one zip
        cands = list(map(list, zip(*per_col, strict=True)))
    has_gold = any(f"{c}_score" in df.columns or f"score_{c}" in df.columns for c in cols)
    return Rows(wide.ids, wide.texts, wide.messages, cands, "score" if has_gold else None)


def _not_text_columns(df: pd.DataFrame, prompt_column: str, cols: list[str],
                      source: str) -> None:
    """A column with <name>_model or <name>_score beside it is a response column even when it
    holds no text: all empty (no responses from it: a note, then left out like any empty
    cell) or numbers (InputError: the text they stood for is unknown)."""
    for c in df.columns:
        beside = _companions(df, c)
        if c == prompt_column or c in cols or is_meta_column(c) or not beside:
            continue
        if df[c].isna().all():
            print(f"aeuf: {source}: column '{c}' is empty in every row: no responses from it "
                  f"(its {beside} column is left out too)", file=sys.stderr)
            continue
        raise InputError(f"{where(source, None, c)}: holds {df[c].dtype} values, not response "
                         f"text, beside its {beside} column; store the responses as text "
                         f"(quoted) or remove '{c}' and {beside}")


def _companions(df: pd.DataFrame, column: Any) -> str:
    """The <column>_model / _score columns present, as one phrase ('' when none)."""
    names = (f"{column}_model", f"{column}_score", f"score_{column}")
    return "/".join(f"'{n}'" for n in names if n in df.columns)


def _too_few_columns(source: str, cols: list[str], num: int | None) -> None:
    what = f"{len(cols)} response column(s) ({', '.join(map(str, cols)) or 'none'})"
    if num is not None and len(cols) < num:
        raise InputError(f"{source}: has {what} but --num_responses is {num}; lower "
                         "--num_responses or add responses")
    if len(cols) < 2:
        raise InputError(f"{source}: has {what}, at least 2 are needed to compare; add "
                         "responses (or create them with `aeuf generate`)")


def _ragged_gaps(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """bool [rows, cols]: CSV cells that are no response at all. A CSV cannot tell an empty
    response from none, so an empty cell is an empty response, except where the table has a
    `<column>_model` column and that cell is empty too: no model wrote anything there, the row
    simply has fewer responses (a ragged pool)."""
    out = np.zeros((len(df), len(cols)), bool)
    if not df.attrs.get(EMPTY_IS_TEXT):
        return out
    for j, c in enumerate(cols):
        if f"{c}_model" in df.columns:
            unnamed = np.array([m is None for m in _models_of(df, f"{c}_model")], bool)
            out[:, j] = df[c].isna().to_numpy() & unnamed
    return out


def _column_cands(df: pd.DataFrame, column: str, source: str) -> list[Cand | None]:
    """[rows] the column's candidates; None where the cell is missing."""
    models = _models_of(df, f"{column}_model")
    gold = _score_of(df, column, source)
    texts = cells.response_texts(df, column, source)
    if None not in texts:  # Cand._make of each cell, without a Python call per cell
        return list(map(partial(tuple.__new__, Cand), zip(texts, models, repeat(str(column)), gold)))
    return [None if t is None else Cand(t, m, str(column), g)
            for t, m, g in zip(texts, models, gold)]


def _models_of(df: pd.DataFrame, column: str) -> list[str | None]:
    if column not in df.columns:
        return [None] * len(df)
    return [v if isinstance(v, str) and v else None for v in df[column].tolist()]


def _score_of(df: pd.DataFrame, column: str, source: str) -> np.ndarray:
    for name in (f"{column}_score", f"score_{column}"):
        if name in df.columns:
            return cells.numeric_column(df, name, source)
    return np.full(len(df), np.nan)


CONVENTIONS.register("columns")(Convention(lambda df, col: True, _build_columns))


# --- pair (chosen / rejected) -----------------------------------------------------------

def _build_pair(df: pd.DataFrame, source: str, cfg: InputConfig) -> Rows:
    df = head(df, cfg.num_instructions)
    column = cells.find_prompt_column(df, source, cfg.prompt_column, required=False)
    sides = {c: [_pair_cell(v, source, n, c, hh=column is None)
                 for n, v in enumerate(df[c].tolist(), 1)] for c in ("chosen", "rejected")}
    contexts = [ch[0] if ch[0] is not None else rj[0]
                for ch, rj in zip(sides["chosen"], sides["rejected"])]
    if column is None:
        ids, texts, messages = _prompts_from_answers(df, source, contexts)
    else:
        wide = wide_prompts(df, source, column)
        ids, texts = wide.ids, wide.texts
        messages = _merge(wide.messages, contexts, texts)
    models = {c: _models_of(df, f"{c}_model") for c in sides}
    cands = [[Cand(text, models[c][p], c, gold) for c, gold in (("chosen", 1.0), ("rejected", 0.0))
              if (text := sides[c][p][1]) is not None] for p in range(len(df))]
    return Rows(ids, texts, messages, cands, "pair")


def _pair_cell(value: Any, source: str, row: int, column: str,
               hh: bool) -> tuple[chat.Turns | None, str | None]:
    """(context, answer) of a chosen/rejected cell: text (context None), a conversation whose
    last turn is the answer, or (hh: no prompt column) an HH-RLHF transcript."""
    turns = chat.hh_turns(value) if hh and isinstance(value, str) else None
    if turns is None and not chat.is_list(value):
        return None, cells.response_text(value, source, row, column)
    parts = chat.split(turns or chat.conversation(value, source, row, column))
    if parts.answer is None:
        raise InputError(f"{cells.where(source, row, column)}: the conversation does not "
                         "end with an assistant answer; end it with the response")
    return parts.context, parts.answer


def _prompts_from_answers(df: pd.DataFrame, source: str, contexts: list) -> tuple:
    """ids, prompts and messages when chosen/rejected conversations carry the prompt."""
    if all(not ctx for ctx in contexts):
        cells.find_prompt_column(df, source, None)  # raises: no prompt column
    for n, ctx in enumerate(contexts, 1):
        if not ctx:
            raise InputError(f"{cells.where(source, n, 'chosen')}: no conversation to take the "
                             "prompt from (the table has no prompt column); give chosen and "
                             "rejected as conversations, or add a prompt column")
    texts = [chat.last_user(ctx, source, n, "chosen") for n, ctx in enumerate(contexts, 1)]
    keys = [chat.key(t, c) for t, c in zip(texts, contexts)]
    return cells.prompt_ids(df, keys, source, "chosen", "conversation"), texts, contexts


def _merge(prompt_turns: list | None, contexts: list, texts: list[str]) -> list | None:
    """Each row's turns before the answer: the prompt column's conversation (or its text as
    one user turn), then the turns the chosen conversation has before its answer, unless
    those already start with the prompt's turns."""
    if prompt_turns is None and all(not c for c in contexts):
        return None
    out = []
    for pt, ctx, text in zip(prompt_turns or [None] * len(texts), contexts, texts):
        pt, ctx = pt or [{"role": "user", "content": text}], ctx or []
        out.append(ctx if ctx[:len(pt)] == pt else pt + ctx)
    return out


CONVENTIONS.register("pair")(Convention(
    lambda df, col: {"chosen", "rejected"} <= set(df.columns), _build_pair))


# --- completions (ActiveUltraFeedback) --------------------------------------------------

def _build_completions(df: pd.DataFrame, source: str, cfg: InputConfig) -> Rows:
    df = head(df, cfg.num_instructions)
    wide = wide_prompts(df, source, cells.find_prompt_column(df, source, cfg.prompt_column))
    cands = [_completions_of(v, source, n) for n, v in enumerate(df["completions"].tolist(), 1)]
    has_gold = any(np.isfinite(c.gold) for row in cands for c in row)
    return Rows(wide.ids, wide.texts, wide.messages, cands, "score" if has_gold else None)


def _completions_of(value: Any, source: str, row: int) -> list[Cand]:
    """A completions cell -> its candidates; a record with a null response is left out."""
    items = [] if cells.is_missing(value) else cells.as_list(value, source, row, "completions")
    cands = (_completion(item, source, row, j) for j, item in enumerate(items))
    return [c for c in cands if c is not None]


def _completion(item: Any, source: str, row: int, j: int) -> Cand | None:
    """The Cand of one {model, response, ...} record (slot: its position); None if the
    response is null."""
    column = f"completions[{j}]"
    if not isinstance(item, dict) or "response" not in item:
        raise InputError(f"{cells.where(source, row, column)}: expected a record "
                         f"{{model, response}}, got {cells.describe(item)}")
    text = cells.response_text(item["response"], source, row, column + ".response")
    model = item.get("model")
    model = model if isinstance(model, str) and model else None
    return None if text is None else Cand(text, model, str(j), _gold_of(item, source, row, column))


def _gold_of(item: dict, source: str, row: int, column: str) -> float:
    for key in GOLD_KEYS:
        value = item.get(key)
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            if np.isinf(value):
                raise InputError(f"{cells.where(source, row, f'{column}.{key}')}: the score is "
                                 f"{value}, not a finite number; fix it or leave it empty")
            return float(value)
    return float("nan")


CONVENTIONS.register("completions")(
    Convention(lambda df, col: "completions" in df.columns, _build_completions))
