"""The pair layouts, built a column at a time: standard (TRL's `prompt`, `chosen`, `rejected`
as text, with provenance) and conversational (the same rows as message lists); see
aeuf.dataset."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from aeuf.config import ExportConfig
from aeuf.dataset.rows import (
    FORMATS,
    Format,
    annotator,
    cells,
    cut_label,
    models,
    oracle_score,
    ranking,
    texts,
)
from aeuf.types import Labelled, ResponsePool


class Pair(NamedTuple):
    """One exported row of the pair layouts: the judged prompt, then the positions in
    lab.slots of its chosen and rejected response."""

    lab: Labelled
    win: int
    lose: int


def pair_columns(pool: ResponsePool, pairs: list[Pair]) -> dict[str, list]:
    """The (prompt, chosen, rejected) rows with provenance of many pairs, a column at a time:
    {column: [n values]} (`annotator` only when a person labelled one; None elsewhere)."""
    n = len(pairs)
    p = np.fromiter((x.lab.prompt for x in pairs), np.int64, n)
    c = np.fromiter((x.lab.slots[x.win] for x in pairs), np.int64, n)
    r = np.fromiter((x.lab.slots[x.lose] for x in pairs), np.int64, n)
    labs = [x.lab for x in pairs]
    chosen = [oracle_score(x.lab, x.win) for x in pairs]
    rejected = [oracle_score(x.lab, x.lose) for x in pairs]
    finite = math.isfinite
    margin = [a - b if not lab.tie and finite(a) and finite(b) else 0.0
              for lab, a, b in zip(labs, chosen, rejected, strict=True)]
    prompts, ids = cells(pool.prompts), cells(pool.prompt_ids)
    responses, response_ids, names = cells(pool.responses), cells(pool.response_ids), cells(pool.models)
    cols = {
        "prompt": texts(prompts[p]), "chosen": texts(responses[p, c]),
        "rejected": texts(responses[p, r]), "margin": margin,
        "tie": [bool(lab.tie) for lab in labs], "prompt_id": texts(ids[p]),
        "chosen_id": texts(response_ids[p, c]), "rejected_id": texts(response_ids[p, r]),
        "chosen_model": models(names[p, c]), "rejected_model": models(names[p, r]),
        "chosen_score": chosen, "rejected_score": rejected,
        "rule": [lab.rule for lab in labs], "round": [int(lab.round) for lab in labs],
        "uncertainty": [float(lab.uncertainty) for lab in labs],
        "acquisition_score": [float(lab.acquisition_score) for lab in labs],
        "judge": [lab.judge for lab in labs],
        "confidence": [float(lab.confidence) for lab in labs],
        "cut": [cut_label(x.lab, x.win, x.lose) for x in pairs],
    }
    if any(lab.annotators for lab in labs):
        cols["annotator"] = [annotator(lab) for lab in labs]
    return cols


def tie_pair(lab: Labelled) -> tuple[int, int]:
    """The two positions a tied prompt is exported with: its chosen/rejected, else the first two."""
    return (lab.chosen, lab.rejected) if lab.chosen != lab.rejected else (0, 1)


def standard_pairs(lab: Labelled, cfg: ExportConfig) -> list[Pair]:
    """The rows of one judged prompt: its pair (a tie's tie_pair), or with all_pairs every
    strictly ordered pair of its ranking."""
    if lab.tie:
        return [Pair(lab, *tie_pair(lab))]
    if not cfg.all_pairs:
        return [Pair(lab, lab.chosen, lab.rejected)]
    order = ranking(lab.scores)
    return [Pair(lab, win, lose) for i, win in enumerate(order) for lose in order[i + 1:]
            if lab.scores[win] > lab.scores[lose]]


def standard_columns(pool: ResponsePool, labs: list[Labelled], cfg: ExportConfig
                     ) -> tuple[dict[str, list], list[int]]:
    """The text rows of the judged prompts `labs` as columns (pref_1..pref_k beside a k-way
    pair, NaN on the other rows), and how many rows each prompt gave."""
    per = [standard_pairs(lab, cfg) for lab in labs]
    pairs = [x for xs in per for x in xs]
    cols = pair_columns(pool, pairs)
    ranked = [] if cfg.all_pairs or all(len(lab.slots) == 2 for lab in labs) else [
        pref_columns(pool, x.lab) if not x.lab.tie and len(x.lab.slots) > 2 else {} for x in pairs]
    if any(ranked):  # the columns in the order rows first name them, as a list of dicts has
        cols = _with_ranks(cols, ranked, pairs)
    return cols, [len(xs) for xs in per]


def _with_ranks(cols: dict[str, list], ranked: list[dict], pairs: list[Pair]) -> dict[str, list]:
    """cols with the pref_i columns added, in the order a frame of row dicts (pair columns,
    annotator where a person labelled, then pref_i) would name them; NaN where absent."""
    shapes = dict.fromkeys((bool(x.lab.annotators), tuple(ranks))
                           for x, ranks in zip(pairs, ranked, strict=True))
    order: dict[str, None] = {}
    for person, names in shapes:
        order |= dict.fromkeys(k for k in cols if k != "annotator" or person)
        order |= dict.fromkeys(names)
    extra = {k: [ranks.get(k, np.nan) for ranks in ranked] for k in order if k not in cols}
    return {k: cols[k] if k in cols else extra[k] for k in order}


def standard_table(pool: ResponsePool, labs: list[Labelled], cfg: ExportConfig):
    """Format.table of the standard layout."""
    cols, counts = standard_columns(pool, labs, cfg)
    return _frame(cols), counts


def _frame(cols: dict[str, list]) -> pd.DataFrame:
    """A frame of the columns (no column at all when there is no row, as for no row dicts)."""
    return pd.DataFrame(cols) if cols and len(next(iter(cols.values()))) else pd.DataFrame([])


def pref_columns(pool: ResponsePool, lab: Labelled) -> dict:
    """pref_1..pref_k: the judged responses ranked best first (AEPO's k-way export)."""
    order = ranking(lab.scores)
    return {f"pref_{i + 1}": str(pool.responses[lab.prompt][lab.slots[s]]) for i, s in enumerate(order)}


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


def conversational_table(pool: ResponsePool, labs: list[Labelled], cfg: ExportConfig):
    """Format.table of the conversational layout: the standard rows with the prompt as
    messages and each response an assistant turn."""
    cols, counts = standard_columns(pool, labs, cfg)
    prompts = [lab.prompt for lab, n in zip(labs, counts, strict=True) for _ in range(n)]
    # a response cell is a str; a pref_i column's NaN (a row with fewer ranks) stays NaN
    cols = {k: [assistant(v) if isinstance(v, str) else v for v in vs] if _is_response(k) else vs
            for k, vs in cols.items()}
    if prompts:
        cols["prompt"] = [prompt_messages(pool, p) for p in prompts]
    return _frame(cols), counts


def _is_response(column: str) -> bool:
    return column in ("chosen", "rejected") or column.startswith("pref_")


FORMATS.register("standard")(Format(standard_table, keeps_ties=True))
FORMATS.register("conversational")(Format(conversational_table, keeps_ties=True))
