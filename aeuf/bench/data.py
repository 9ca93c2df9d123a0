"""Pools with gold utilities for the benchmark.

`pool_from_long` turns a LONG table (one row per response) into a ResponsePool; it is a
general function so that io can adopt it for long-format inputs. `read_bench_pool` is the
benchmark's disk entry point (the only function here that touches the disk).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from aeuf.errors import InputError
from aeuf.types import ResponsePool

CLIP = 1e-4
PROMPT_COLUMNS = ("instruction", "prompt")


def score_to_utility(score, clip: float = CLIP) -> np.ndarray:
    """Win probability against a common reference -> utility: logit(clip(s, clip, 1 - clip)).

    score: float[...] in [0, 1] -> float64[...]; under Bradley-Terry,
    P(i beats j) = sigmoid(u_i - u_j) for two responses scored against the same reference.
    """
    s = np.clip(np.asarray(score, np.float64), clip, 1.0 - clip)
    return np.log(s) - np.log1p(-s)


def _column(df: pd.DataFrame, names: Sequence[str], source: str, what: str) -> str:
    for name in names:
        if name in df.columns:
            return name
    raise InputError(f"{source}: no {what} column (looked for {', '.join(names)}; "
                     f"it has {', '.join(map(str, df.columns))})")


def _check_rectangular(counts: pd.Series, source: str) -> int:
    """The common number R of responses per prompt, or InputError naming a prompt that differs."""
    r = int(counts.max())
    odd = counts[counts != r]
    if len(odd):
        raise InputError(f"{source}: prompt_id '{odd.index[0]}' has {int(odd.iloc[0])} responses, "
                         f"others have {r}; every prompt needs the same number")
    return r


def pool_from_long(df: pd.DataFrame, source: str = "", *, score_column: str = "score",
                   clip: float = CLIP) -> ResponsePool:
    """A long table (one row per response) -> ResponsePool [P, R].

    Columns: prompt_id, instruction (or prompt), response, and optionally model and
    `score_column` (a win probability in [0, 1] against a common reference). Prompts keep
    their first-appearance order; responses within a prompt are ordered by model name (then
    by row order), so the layout is stable. gold = logit(clip(score)) (gold_kind "score");
    response ids are "<prompt_id>:<model>" (or "<prompt_id>:<position>" without models).
    Raises InputError if a column is missing, a score is outside [0, 1] or NaN, a prompt id
    repeats a model, or prompts have different numbers of responses.
    """
    pcol = _column(df, PROMPT_COLUMNS, source, "prompt")
    for col in ("prompt_id", "response"):
        _column(df, (col,), source, col)
    d = df.reset_index(drop=True).copy()
    has_model = "model" in d.columns
    d["_order"] = pd.Categorical(d["prompt_id"], categories=pd.unique(d["prompt_id"])).codes
    d = d.sort_values(["_order", "model"] if has_model else ["_order"], kind="stable")
    counts = d.groupby("_order", sort=True).size()
    counts.index = pd.unique(d["prompt_id"])
    R = _check_rectangular(counts, source)
    P = len(counts)
    gold, kind = _gold(d, score_column, source, clip)
    models = d["model"].astype(object).to_numpy() if has_model else np.full(len(d), None, object)
    tags = models if has_model else np.tile(np.arange(R), P).astype(str)
    ids = np.array([f"{p}:{t}" for p, t in zip(d["prompt_id"], tags)], dtype=object)
    if len(set(ids)) != len(ids):
        raise InputError(f"{source}: a prompt_id has two responses from the same model")
    first = d.groupby("_order", sort=True).head(1)
    return ResponsePool(
        prompt_ids=first["prompt_id"].astype(str).to_numpy(object),
        prompts=first[pcol].astype(str).to_numpy(object),
        responses=d["response"].astype(str).to_numpy(object).reshape(P, R),
        models=models.reshape(P, R),
        response_ids=ids.reshape(P, R),
        gold=None if gold is None else gold.reshape(P, R),
        gold_kind=kind,
        source=source,
    )


def _gold(d: pd.DataFrame, column: str, source: str, clip: float):
    """(float64[N] utilities, "score") from the score column, or (None, None) without one."""
    if column not in d.columns:
        return None, None
    s = pd.to_numeric(d[column], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~((s >= 0) & (s <= 1)))
    if bad.size:
        row = int(d.index[bad[0]])
        raise InputError(f"{source}: row {row}, column '{column}': {d[column].iloc[bad[0]]!r} "
                         "is not a win probability in [0, 1]")
    return score_to_utility(s, clip), "score"


def is_long(df: pd.DataFrame) -> bool:
    """A long table: prompt_id and response columns, with some prompt_id on several rows."""
    return {"prompt_id", "response"} <= set(df.columns) and bool(df["prompt_id"].duplicated().any())


def read_bench_pool(path: str) -> ResponsePool:
    """A pool with gold for the benchmark: a long table (see `is_long`)
    becomes a pool via `pool_from_long`; any other file is read by aeuf.io.read_pool.
    Raises InputError if the pool has no gold utilities.
    """
    from aeuf import io

    pool = None
    if str(path).endswith((".parquet", ".csv", ".jsonl", ".json")):
        df = io.read_table(str(path))
        if is_long(df):
            pool = pool_from_long(df, str(path))
    if pool is None:
        from aeuf.config import InputConfig

        pool = io.read_pool(InputConfig(path=str(path)))
    if pool.gold is None:
        raise InputError(f"{path}: the benchmark needs gold scores per response (a 'score' "
                         "column or gold columns)")
    return pool
