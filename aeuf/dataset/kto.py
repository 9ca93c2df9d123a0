"""The kto layout: one row per judged response with a boolean `label` (see aeuf.dataset)."""

from __future__ import annotations

import numpy as np

from aeuf.config import ExportConfig
from aeuf.dataset.rows import (
    FORMATS,
    NAN,
    Format,
    annotator_column,
    model,
    oracle_score,
    row_table,
)
from aeuf.types import SELF_LABEL, Labelled, ResponsePool


def kto_rows(pool: ResponsePool, lab: Labelled, cfg: ExportConfig) -> list[dict]:
    """One row per judged response off its prompt's median score: label = above the median."""
    scores = np.asarray(lab.scores, np.float64)
    finite = scores[np.isfinite(scores)]
    if lab.tie or finite.size < 2:
        return []
    mid = float(np.median(finite))
    return [_kto_row(pool, lab, i, mid) for i in range(len(lab.slots))
            if np.isfinite(scores[i]) and scores[i] != mid]


def _kto_row(pool: ResponsePool, lab: Labelled, i: int, median: float) -> dict:
    p, r = lab.prompt, lab.slots[i]
    return {
        "prompt": str(pool.prompts[p]),
        "completion": str(pool.responses[p][r]),
        "label": bool(lab.scores[i] > median),
        "prompt_id": str(pool.prompt_ids[p]),
        "completion_id": str(pool.response_ids[p][r]),
        "completion_model": model(pool, p, r),
        "score": oracle_score(lab, i),
        "median_score": NAN if lab.judge == SELF_LABEL else median,
        "rule": lab.rule,
        "round": int(lab.round),
        "uncertainty": float(lab.uncertainty),
        "acquisition_score": float(lab.acquisition_score),
        "judge": lab.judge,
        "cut": i in lab.cut,
        **annotator_column(lab),
    }


FORMATS.register("kto")(Format(row_table(kto_rows), keeps_ties=False))
