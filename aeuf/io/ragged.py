"""What a pool convention reads (prompts with any number of responses each) and how it
becomes a ResponsePool [P, R]: R = --num_responses if given, else the most common number of
responses per prompt (at least 2; ties -> the larger); each prompt keeps its first R
responses, prompts with fewer are skipped and their ids recorded in `pool.skipped`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import chain, repeat
from operator import attrgetter
from typing import NamedTuple

import numpy as np
import pandas as pd

from aeuf.config import InputConfig
from aeuf.errors import ConfigError, InputError
from aeuf.io import cells, chat
from aeuf.registry import Registry
from aeuf.types import ResponsePool


class Cand(NamedTuple):
    """One candidate response as read: text ("" is an empty response), the model that wrote
    it (or None), its slot (the tail of its response id) and its gold utility (NaN if none)."""

    text: str
    model: str | None
    slot: str
    gold: float = float("nan")


class Rows(NamedTuple):
    """A convention's reading of a table, one entry per prompt (prompt p has n_p candidates).

    ids, prompts: [P] str;  messages: [P] turns before the answer, or None (plain text);
    cands: [P] lists of n_p Cand;  gold_kind: "score", "pair" or None (no gold)
    """

    ids: list[str]
    prompts: list[str]
    messages: list[chat.Turns] | None
    cands: list[list[Cand]]
    gold_kind: str | None


class Convention(NamedTuple):
    """matches(df, prompt_column) -> bool;  build(df, source, cfg) -> Rows.

    build reads only the first cfg.num_instructions prompts."""

    matches: Callable[[pd.DataFrame, str | None], bool]
    build: Callable[[pd.DataFrame, str, InputConfig], Rows]


CONVENTIONS: Registry[Convention] = Registry("pool convention")


def head(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """The first n rows (all when n is None)."""
    return df if n is None else df.iloc[:n]


class WidePrompts(NamedTuple):
    """The prompts of a one-row-per-prompt table: ids, texts [P], messages [P] or None."""

    ids: list[str]
    texts: list[str]
    messages: list[chat.Turns] | None
    column: str


def wide_prompts(df: pd.DataFrame, source: str, column: str) -> WidePrompts:
    """Prompts (text or conversation) and their ids; a repeated prompt or id raises."""
    side = chat.prompts_of(df, source, column)
    keys = [chat.key(t, c) for t, c in zip(side.texts, side.contexts)]
    what = "conversation" if any(k != t for k, t in zip(keys, side.texts)) else "prompt"
    ids = cells.prompt_ids(df, keys, source, column, what)
    return WidePrompts(ids, side.texts, chat.with_user_turns(side.texts, side.contexts), column)


def response_count(counts: np.ndarray, num: int | None, source: str) -> int:
    """R from the numbers of responses per prompt counts [P]: `num` if given, else the most
    common count of at least 2 (ties -> the larger). Raises when no prompt has R."""
    usable = counts[counts >= 2]
    if usable.size == 0:
        raise InputError(f"{source}: no prompt has 2 or more responses ({_histogram(counts)}); "
                         "at least 2 are needed to compare; add responses (or create them "
                         "with `aeuf generate`)")
    if num is None:
        tally = Counter(usable.tolist())
        top = max(tally.values())
        return max(r for r, n in tally.items() if n == top)
    if not (counts >= num).any():
        raise InputError(f"{source}: no prompt has {num} responses ({_histogram(counts)}); "
                         f"pass --num_responses {int(usable.max())} or less")
    return num


def _histogram(counts: np.ndarray) -> str:
    """'prompts have 3 responses (5 prompts), 2 (1 prompt)': most common first, at most 4."""
    tally = Counter(counts.tolist()).most_common()
    parts = [f"{r} ({n} prompt{'s' if n != 1 else ''})" for r, n in tally[:4]]
    parts[0] = parts[0].replace(" ", " responses ", 1)
    return "prompts have " + ", ".join(parts) + (", ..." if len(tally) > 4 else "")


def square(rows: Rows, num: int | None, source: str) -> ResponsePool:
    """Rows -> ResponsePool [Q, R]: the first R candidates of every prompt that has R;
    the others' ids go to `skipped`."""
    if num is not None and num < 2:
        raise ConfigError(f"--num_responses must be at least 2 to compare responses (got {num})")
    counts = np.array([len(c) for c in rows.cands], dtype=np.int64)
    R = response_count(counts, num, source)
    keep = np.flatnonzero(counts >= R)
    ids = [rows.ids[p] for p in keep]
    cands = [rows.cands[p][:R] for p in keep]
    gold, kind = None, rows.gold_kind
    if kind is not None:
        gold = np.array([[c.gold for c in row] for row in cands], dtype=np.float64)
        if not np.isfinite(gold).any():  # score columns, every cell empty: no gold at all
            gold, kind = None, None
    flat = list(chain.from_iterable(cands))  # Q * R cells, row-major
    field = lambda f: _grid(list(map(f, flat)), R)  # noqa: E731
    return ResponsePool(
        prompt_ids=_column(ids), prompts=_column([rows.prompts[p] for p in keep]),
        responses=field(attrgetter("text")), models=field(attrgetter("model")),
        response_ids=_grid(list(map("{}:{}".format, chain.from_iterable(repeat(i, R) for i in ids),
                                    map(attrgetter("slot"), flat))), R),
        gold=gold, gold_kind=kind, source=str(source),
        messages=None if rows.messages is None else _column([rows.messages[p] for p in keep]),
        skipped=tuple(rows.ids[p] for p in np.flatnonzero(counts < R)))


def _column(values: list) -> np.ndarray:
    """object [Q]; a value that is itself a list (a conversation) stays one cell."""
    out = np.empty(len(values), dtype=object)
    for q, v in enumerate(values):
        out[q] = v
    return out


def _grid(values: list, R: int) -> np.ndarray:
    """object [Q, R] from Q * R values, row-major (each value one cell)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(-1, R)
