"""The export stage: judged prompts -> rows in one of TRL's preference layouts.

Formats (`ExportConfig.format`, registry FORMATS):

  standard        `prompt`, `chosen`, `rejected` as text (TRL's standard preference format)
  conversational  the same rows with `prompt` a message list (the input's conversation before
                  the answer, or one user turn) and `chosen`/`rejected` one assistant message
                  each (TRL's conversational preference format)
  kto             one row per judged response: `prompt`, `completion`, boolean `label`
                  (TRL's unpaired preference format); label = the response's score is above
                  the median score of its prompt's judged responses (True) or below it (False);
                  a response exactly at the median gets no row. With two judged responses that
                  is chosen -> True, rejected -> False, as TRL's `unpair_preference_dataset`.

Pair rows carry provenance (prompt and response ids, models, oracle scores, the rule, the
head's uncertainty, the round, who labelled it and how confident), `margin` = chosen_score -
rejected_score in the oracle's own units (TRL's RewardTrainer reads it; 0 for a tie, and for
a self-labelled row, whose scores are null: the head's P(chosen beats rejected) is not on
the oracle's scale, it is the row's `confidence`), `tie` and `cut` (which response of
the pair the judge could not read whole, aeuf.oracle.overlong: "", "chosen", "rejected" or
"both"; kto: a boolean per completion). With k > 2 responses
judged per prompt the ranking is kept as `pref_1..pref_k` (best first, as AEPO writes it);
`all_pairs` emits one row per strictly ordered pair instead.

Ties (`Labelled.tie`) are dropped unless `keep_ties`; a kept tie is one row with tie=True and
margin 0 (kto cannot keep them: a tie has no desirable or undesirable response). The counts
are in the frame's `attrs` (see COUNT_KEYS).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aeuf.config import ExportConfig
from aeuf.dataset import kto, pairs  # noqa: F401  (they register their layouts)
from aeuf.dataset.rows import FORMATS, Format
from aeuf.errors import ConfigError
from aeuf.types import Judgement, Labelled, ResponsePool

__all__ = ["COUNT_KEYS", "FORMATS", "Format", "build_rows", "judgement_comparisons",
           "judgement_scores"]

# build_rows(...).attrs: format, rows, prompts (labelled prompts with a row), ties (tied
# labelled prompts, kept or not), ties_kept (of those, exported), and for kto desirable /
# undesirable (rows with label True / False); cut (rows with a response the judge could not
# read whole)
COUNT_KEYS = ("format", "rows", "prompts", "ties", "ties_kept", "desirable", "undesirable",
              "cut")


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


def build_rows(pool: ResponsePool, labelled: list[Labelled], cfg: ExportConfig) -> pd.DataFrame:
    """All exported rows in `cfg.format`, ordered by round then prompt: -> DataFrame (TRL
    columns first) whose `attrs` hold the counts named in COUNT_KEYS."""
    fmt = FORMATS.get(cfg.format)
    if cfg.keep_ties and not fmt.keeps_ties:
        raise ConfigError(f"--keep_ties: a tie has no desirable or undesirable response, so "
                          f"--format {cfg.format} cannot keep it; drop --keep_ties")
    ordered = sorted(labelled, key=lambda x: (x.round, x.prompt))
    shown = [lab for lab in ordered if cfg.keep_ties or not lab.tie]
    frame, counts = fmt.table(pool, shown, cfg)
    if "annotator" in frame:  # a row labelled by no person (the head, a judge): null
        who = frame["annotator"].astype(object)
        frame["annotator"] = who.where(who.notna(), None)
    frame.attrs.update(_counts(cfg.format, frame, ordered, list(zip(shown, counts))))
    return frame


def _counts(name: str, frame: pd.DataFrame, ordered: list[Labelled],
            shown: list[tuple[Labelled, int]]) -> dict:
    labels = frame["label"] if "label" in frame else pd.Series([], dtype=bool)
    return {"format": name, "rows": len(frame),
            "prompts": sum(1 for _, n in shown if n),
            "ties": sum(1 for lab in ordered if lab.tie),
            "ties_kept": sum(1 for lab, n in shown if lab.tie and n),
            "desirable": int(labels.sum()), "undesirable": int((~labels.astype(bool)).sum()),
            "cut": int(frame["cut"].astype(bool).sum()) if "cut" in frame else 0}
