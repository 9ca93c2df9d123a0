"""The long pool convention: one row per response.

Columns: `prompt_id` (or, without it, a repeated prompt text), the prompt (`prompt`,
`instruction`, --prompt_column or a conversation column), `response` (or, without it, the
final assistant turn of a conversation column), optionally `model` and `score` (a win
probability in [0, 1] against a common reference, read as the utility logit(clip(score)):
under Bradley-Terry P(i beats j) = sigmoid(u_i - u_j); an empty score is no gold).

Prompts keep their first-appearance order; a prompt's responses are ordered by model name
(then row order), or by row order without a model column. Response ids are
"<prompt_id>:<model>", or "<prompt_id>:<position among the prompt's rows>" without models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aeuf.config import InputConfig
from aeuf.errors import InputError
from aeuf.io import cells, chat
from aeuf.io.ragged import CONVENTIONS, Cand, Convention, Rows

CLIP = 1e-4


def score_to_utility(score, clip: float = CLIP) -> np.ndarray:
    """Win probability against a common reference -> utility: logit(clip(s, clip, 1 - clip)).

    score: float[...] in [0, 1] (NaN stays NaN) -> float64[...]
    """
    s = np.clip(np.asarray(score, np.float64), clip, 1.0 - clip)
    return np.log(s) - np.log1p(-s)


def is_long(df: pd.DataFrame, prompt_column: str | None = None) -> bool:
    """One row per response: a repeated `prompt_id` with a `response` (or conversation)
    column, or, without prompt_id, a repeated text prompt with a `response` column."""
    if "prompt_id" in df.columns:
        answers = "response" in df.columns or any(
            c in df.columns for c in cells.CONVERSATION_COLUMNS)
        return answers and bool(df["prompt_id"].astype(str).duplicated().any())
    column = cells.find_prompt_column(df, "", prompt_column, required=False)
    if "response" not in df.columns or column is None:
        return False
    texts = [v if isinstance(v, str) else f"\0{n}" for n, v in enumerate(df[column].tolist())]
    return bool(pd.Series(texts).duplicated().any())


def build_long(df: pd.DataFrame, source: str, cfg: InputConfig) -> Rows:
    """The first cfg.num_instructions prompts of a long table, any number of responses each."""
    side = chat.prompts_of(df, source, cells.find_prompt_column(df, source, cfg.prompt_column))
    groups = _groups(df, source, side)
    if cfg.num_instructions is not None:
        groups = dict(list(groups.items())[:cfg.num_instructions])
    texts = _responses(df, source, side)
    models = _models(df)
    gold = _utilities(df, source)
    cands = [_cands(rows, texts, models, gold, source) for rows in groups.values()]
    first = [rows[0] for rows in groups.values()]
    ids = list(groups) if "prompt_id" in df.columns else [cells.content_hash(k) for k in groups]
    messages = chat.with_user_turns([side.texts[r] for r in first],
                                    [side.contexts[r] for r in first])
    return Rows(ids, [side.texts[r] for r in first], messages, cands,
                None if gold is None else "score")


def _groups(df: pd.DataFrame, source: str, side: chat.Prompts) -> dict[str, list[int]]:
    """prompt key -> its 0-based rows, in first-appearance order."""
    if "prompt_id" in df.columns:
        keys = [cells.id_text(v, source, n) for n, v in enumerate(df["prompt_id"].tolist(), 1)]
    else:
        keys = [chat.key(t, c) for t, c in zip(side.texts, side.contexts)]
    groups: dict[str, list[int]] = {}
    for n, k in enumerate(keys):
        groups.setdefault(k, []).append(n)
    return groups


def _responses(df: pd.DataFrame, source: str, side: chat.Prompts) -> list[str | None]:
    """[rows] each row's response (None: missing): the `response` column, else the final
    assistant turn of the row's conversation."""
    if "response" not in df.columns:
        return side.answers
    return cells.response_texts(df, "response", source)


def _models(df: pd.DataFrame) -> list[str | None] | None:
    if "model" not in df.columns:
        return None
    return [v if isinstance(v, str) and v else None for v in df["model"].tolist()]


def _utilities(df: pd.DataFrame, source: str) -> np.ndarray | None:
    """float64 [rows] logit(clip(score)) (NaN where empty), or None without a score column."""
    if "score" not in df.columns:
        return None
    s = cells.numeric_column(df, "score", source)
    bad = np.flatnonzero(np.isfinite(s) & ~((s >= 0) & (s <= 1)))
    if bad.size:
        n = int(bad[0])
        raise InputError(f"{cells.where(source, n + 1, 'score')}: {df['score'].iloc[n]!r} is "
                         "not a win probability in [0, 1]; fix it or leave it empty")
    return score_to_utility(s)


def _cands(rows: list[int], texts: list, models: list | None, gold: np.ndarray | None,
           source: str) -> list[Cand]:
    """One prompt's candidates in layout order; a model answering twice raises."""
    position = {n: str(i) for i, n in enumerate(rows)}
    if models is not None:
        _no_repeated_model(rows, models, source)
        rows = sorted(rows, key=lambda n: (models[n] is None, models[n] or ""))
    model = (lambda n: None) if models is None else (lambda n: models[n])
    utility = (lambda n: float("nan")) if gold is None else (lambda n: float(gold[n]))
    return [Cand(texts[n], model(n), model(n) or position[n], utility(n))
            for n in rows if texts[n] is not None]


def _no_repeated_model(rows: list[int], models: list, source: str) -> None:
    seen: dict[str, int] = {}
    for n in rows:
        m = models[n]
        if m is not None and m in seen:
            raise InputError(f"{cells.where(source, n + 1, 'model')}: a second response from "
                             f"model '{m}' to the prompt of row {seen[m] + 1}; remove the "
                             "duplicate row")
        if m is not None:
            seen[m] = n


CONVENTIONS.register("long")(Convention(is_long, build_long))
