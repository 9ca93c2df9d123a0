"""How good an exported dataset is, judged on gold (the `once` regime of the benchmark).

Pure: the Labelled records a run exports (aeuf.types.Labelled: prompt index, shown slots,
chosen/rejected positions, tie) and the gold utilities f64[P, R] of the pool they index.
"""

from __future__ import annotations

import numpy as np

from aeuf.types import Labelled


def dataset_quality(labelled: list[Labelled], gold: np.ndarray, shown: int) -> dict:
    """Per run: best_of_n (chosen is a gold-best response, share of ALL P prompts),
    worst_of_n (rejected is a gold-worst one, share of decided prompts), gold_gap (mean
    gold(chosen) - gold(rejected) over decided prompts), correct (share of decided prompts
    whose chosen has the higher gold), ties and unlabelled (shares of P), and responses shown
    to the oracle per prompt."""
    gold = np.asarray(gold, np.float64)
    P = gold.shape[0]
    decided = [x for x in labelled if not x.tie]
    if not decided:
        return {"best_of_n": 0.0, "worst_of_n": None, "gold_gap": None, "correct": None,
                "ties": len(labelled) / P, "unlabelled": 1.0 - len(labelled) / P,
                "shown_per_prompt": shown / P}
    c = np.array([gold[x.prompt, x.slots[x.chosen]] for x in decided])
    r = np.array([gold[x.prompt, x.slots[x.rejected]] for x in decided])
    rows = np.array([x.prompt for x in decided])
    best = np.nanmax(gold[rows], axis=1)
    worst = np.nanmin(gold[rows], axis=1)
    return {"best_of_n": float(np.sum(c >= best) / P), "worst_of_n": float(np.mean(r <= worst)),
            "gold_gap": float(np.mean(c - r)), "correct": float(np.mean(c > r)),
            "ties": sum(x.tie for x in labelled) / P, "unlabelled": 1.0 - len(labelled) / P,
            "shown_per_prompt": shown / P}
