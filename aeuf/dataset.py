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

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from aeuf.config import ExportConfig
from aeuf.errors import ConfigError
from aeuf.registry import Registry
from aeuf.types import SELF_LABEL, Judgement, Labelled, ResponsePool

# build_rows(...).attrs: format, rows, prompts (labelled prompts with a row), ties (tied
# labelled prompts, kept or not), ties_kept (of those, exported), and for kto desirable /
# undesirable (rows with label True / False); cut (rows with a response the judge could not
# read whole)
COUNT_KEYS = ("format", "rows", "prompts", "ties", "ties_kept", "desirable", "undesirable",
              "cut")


class Format(NamedTuple):
    """An export layout: rows(pool, lab, cfg) -> rows of one judged prompt; keeps_ties: whether
    a tied prompt can be a row."""

    rows: Callable[[ResponsePool, Labelled, ExportConfig], list[dict]]
    keeps_ties: bool


FORMATS: Registry[Format] = Registry("export format")


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
    per_prompt = [(lab, fmt.rows(pool, lab, cfg) if cfg.keep_ties or not lab.tie else [])
                  for lab in sorted(labelled, key=lambda x: (x.round, x.prompt))]
    frame = pd.DataFrame([row for _, rows in per_prompt for row in rows])
    if "annotator" in frame:  # a row labelled by no person (the head, a judge): null
        who = frame["annotator"].astype(object)
        frame["annotator"] = who.where(who.notna(), None)
    frame.attrs.update(_counts(cfg.format, frame, per_prompt))
    return frame


def _counts(name: str, frame: pd.DataFrame, per_prompt: list[tuple[Labelled, list]]) -> dict:
    labels = frame["label"] if "label" in frame else pd.Series([], dtype=bool)
    return {"format": name, "rows": len(frame),
            "prompts": sum(1 for _, rows in per_prompt if rows),
            "ties": sum(1 for lab, _ in per_prompt if lab.tie),
            "ties_kept": sum(1 for lab, rows in per_prompt if lab.tie and rows),
            "desirable": int(labels.sum()), "undesirable": int((~labels.astype(bool)).sum()),
            "cut": int(frame["cut"].astype(bool).sum()) if "cut" in frame else 0}


# --- standard ------------------------------------------------------------------------------

def pair_row(pool: ResponsePool, lab: Labelled, win: int, lose: int) -> dict:
    """One (prompt, chosen, rejected) row with provenance; win, lose: positions in lab.slots."""
    p, (c, r) = lab.prompt, (lab.slots[win], lab.slots[lose])
    chosen_score, rejected_score = oracle_score(lab, win), oracle_score(lab, lose)
    honest = not lab.tie and np.isfinite(chosen_score) and np.isfinite(rejected_score)
    return {
        "prompt": str(pool.prompts[p]),
        "chosen": str(pool.responses[p, c]),
        "rejected": str(pool.responses[p, r]),
        "margin": chosen_score - rejected_score if honest else 0.0,
        "tie": bool(lab.tie),
        "prompt_id": str(pool.prompt_ids[p]),
        "chosen_id": str(pool.response_ids[p, c]),
        "rejected_id": str(pool.response_ids[p, r]),
        "chosen_model": _model(pool, p, c),
        "rejected_model": _model(pool, p, r),
        "chosen_score": chosen_score,
        "rejected_score": rejected_score,
        "rule": lab.rule,
        "round": int(lab.round),
        "uncertainty": float(lab.uncertainty),
        "acquisition_score": float(lab.acquisition_score),
        "judge": lab.judge,
        "confidence": float(lab.confidence),
        "cut": cut_label(lab, win, lose),
        **annotator_column(lab),
    }


def annotator_column(lab: Labelled) -> dict:
    """{"annotator": the people who labelled the row, comma-separated} for a person's label
    (human and web oracles), else {} (build_rows fills null where other rows have one)."""
    return {"annotator": ",".join(lab.annotators)} if lab.annotators else {}


CUT_LABELS = {(False, False): "", (True, False): "chosen", (False, True): "rejected",
              (True, True): "both"}


def cut_label(lab: Labelled, win: int, lose: int) -> str:
    """Which of the pair the judge could not read whole (--judge_overlong): "", "chosen",
    "rejected" or "both"."""
    return CUT_LABELS[win in lab.cut, lose in lab.cut]


def oracle_score(lab: Labelled, i: int) -> float:
    """The oracle's score of position i; NaN for a self-labelled pair (the head's P is not
    on the oracle's scale: it is in `confidence`)."""
    return float("nan") if lab.judge == SELF_LABEL else float(lab.scores[i])


def _model(pool: ResponsePool, p: int, r: int) -> str | None:
    m = pool.models[p, r]
    return m if isinstance(m, str) and m else None


def ranking(scores: np.ndarray) -> list[int]:
    """Positions of the rated responses, best first (stable for ties); NaN dropped."""
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    return [int(i) for i in order if np.isfinite(scores[i])]


def tie_pair(lab: Labelled) -> tuple[int, int]:
    """The two positions a tied prompt is exported with: its chosen/rejected, else the first two."""
    return (lab.chosen, lab.rejected) if lab.chosen != lab.rejected else (0, 1)


def standard_rows(pool: ResponsePool, lab: Labelled, cfg: ExportConfig) -> list[dict]:
    """The text rows of one judged prompt (one row, or every strictly ordered pair)."""
    if lab.tie:
        return [pair_row(pool, lab, *tie_pair(lab))]
    if not cfg.all_pairs:
        row = pair_row(pool, lab, lab.chosen, lab.rejected)
        if len(lab.slots) > 2:
            row.update(pref_columns(pool, lab))
        return [row]
    order = ranking(lab.scores)
    return [pair_row(pool, lab, win, lose) for i, win in enumerate(order) for lose in order[i + 1:]
            if lab.scores[win] > lab.scores[lose]]


def pref_columns(pool: ResponsePool, lab: Labelled) -> dict:
    """pref_1..pref_k: the judged responses ranked best first (AEPO's k-way export)."""
    order = ranking(lab.scores)
    return {f"pref_{i + 1}": str(pool.responses[lab.prompt, lab.slots[s]]) for i, s in enumerate(order)}


# --- conversational ------------------------------------------------------------------------

def prompt_messages(pool: ResponsePool, p: int) -> list[dict]:
    """Prompt p as a message list: the input's conversation before the answer when there is
    one, else one user turn; each message reduced to {"role", "content"} strings."""
    msgs = None if pool.messages is None else pool.messages[p]
    if not isinstance(msgs, (list, tuple, np.ndarray)) or len(msgs) == 0:
        return [{"role": "user", "content": str(pool.prompts[p])}]
    return [{"role": str(m["role"]), "content": _text(m.get("content"))} for m in msgs]


def _text(content) -> str:
    return "" if content is None else str(content)


def assistant(text: str) -> list[dict]:
    """A response as TRL's conversational completion: one assistant message."""
    return [{"role": "assistant", "content": text}]


def conversational_rows(pool: ResponsePool, lab: Labelled, cfg: ExportConfig) -> list[dict]:
    """The standard rows with the prompt as messages and each response an assistant turn."""
    rows = standard_rows(pool, lab, cfg)
    return [{k: assistant(v) if _is_response(k) else v for k, v in row.items()}
            | {"prompt": prompt_messages(pool, lab.prompt)} for row in rows]


def _is_response(column: str) -> bool:
    return column in ("chosen", "rejected") or column.startswith("pref_")


# --- kto -----------------------------------------------------------------------------------

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
        "completion": str(pool.responses[p, r]),
        "label": bool(lab.scores[i] > median),
        "prompt_id": str(pool.prompt_ids[p]),
        "completion_id": str(pool.response_ids[p, r]),
        "completion_model": _model(pool, p, r),
        "score": oracle_score(lab, i),
        "median_score": float("nan") if lab.judge == SELF_LABEL else median,
        "rule": lab.rule,
        "round": int(lab.round),
        "uncertainty": float(lab.uncertainty),
        "acquisition_score": float(lab.acquisition_score),
        "judge": lab.judge,
        "cut": i in lab.cut,
        **annotator_column(lab),
    }


FORMATS.register("standard")(Format(standard_rows, keeps_ties=True))
FORMATS.register("conversational")(Format(conversational_rows, keeps_ties=True))
FORMATS.register("kto")(Format(kto_rows, keeps_ties=False))
