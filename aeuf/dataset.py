"""The export stage: judged selections -> rows in the format TRL's DPO and reward trainers read.

Every row has `prompt`, `chosen`, `rejected` plus provenance (prompt and response ids, models,
oracle scores, the rule that chose the pair, the head's uncertainty, the round). With k > 2
responses judged per prompt the ranking is kept as `pref_1..pref_k` (best first, as AEPO
writes it); `all_pairs` emits one row per strictly ordered pair instead of best vs worst.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aeuf.types import Judgement, Labelled, ResponsePool


def judgement_scores(j: Judgement) -> np.ndarray:
    """Per-response scores of a judgement: its ratings when any are present, else the
    Borda count of its pairwise preferences (sum of P(i beats j) over j): -> f64[k]."""
    ratings = np.asarray(j.ratings, np.float64)
    if np.isfinite(ratings).sum() >= 2 or not j.pairs:
        return ratings
    k = len(j.task.responses)
    wins, seen = np.zeros(k), np.zeros(k, bool)
    for a, b, p in j.pairs:
        wins[a] += p
        wins[b] += 1.0 - p
        seen[[a, b]] = True
    return np.where(seen, wins, np.nan)


def judgement_comparisons(j: Judgement, prompt: int, slots: tuple[int, ...]) -> list[tuple[int, int, int, float]]:
    """A judgement's pairs as (prompt, a, b, p) in pool response indices, for the head."""
    return [(prompt, slots[a], slots[b], float(p)) for a, b, p in j.pairs if np.isfinite(p)]


def _base_row(pool: ResponsePool, lab: Labelled, win: int, lose: int) -> dict:
    p = lab.prompt
    c, r = lab.slots[win], lab.slots[lose]
    return {
        "prompt": str(pool.prompts[p]),
        "chosen": str(pool.responses[p, c]),
        "rejected": str(pool.responses[p, r]),
        "prompt_id": str(pool.prompt_ids[p]),
        "chosen_id": str(pool.response_ids[p, c]),
        "rejected_id": str(pool.response_ids[p, r]),
        "chosen_model": _model(pool, p, c),
        "rejected_model": _model(pool, p, r),
        "chosen_score": float(lab.scores[win]),
        "rejected_score": float(lab.scores[lose]),
        "rule": lab.rule,
        "round": int(lab.round),
        "uncertainty": float(lab.uncertainty),
        "acquisition_score": float(lab.acquisition_score),
        "judge": lab.judge,
    }


def _model(pool: ResponsePool, p: int, r: int) -> str | None:
    m = pool.models[p, r]
    return m if isinstance(m, str) and m else None


def ranking(scores: np.ndarray) -> list[int]:
    """Positions of the rated responses, best first (stable for ties); NaN dropped."""
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    return [int(i) for i in order if np.isfinite(scores[i])]


def rows_for(pool: ResponsePool, lab: Labelled, *, all_pairs: bool = False) -> list[dict]:
    """The exported rows of one judged prompt (one row, or every strictly ordered pair)."""
    if not all_pairs:
        row = _base_row(pool, lab, lab.chosen, lab.rejected)
        if len(lab.slots) > 2:
            row.update(pref_columns(pool, lab))
        return [row]
    order = ranking(lab.scores)
    return [_base_row(pool, lab, win, lose) for i, win in enumerate(order) for lose in order[i + 1:]
            if lab.scores[win] > lab.scores[lose]]


def pref_columns(pool: ResponsePool, lab: Labelled) -> dict:
    """pref_1..pref_k: the judged responses ranked best first (AEPO's k-way export)."""
    order = ranking(lab.scores)
    return {f"pref_{i + 1}": str(pool.responses[lab.prompt, lab.slots[s]]) for i, s in enumerate(order)}


def build_rows(pool: ResponsePool, labelled: list[Labelled], *, all_pairs: bool = False) -> pd.DataFrame:
    """All exported rows, ordered by round then prompt: -> DataFrame (TRL columns first)."""
    rows = [row for lab in sorted(labelled, key=lambda x: (x.round, x.prompt))
            for row in rows_for(pool, lab, all_pairs=all_pairs)]
    return pd.DataFrame(rows)
