"""What every export layout shares: the Format record and its registry, and the helpers
that turn one judged prompt's fields into column values (see aeuf.dataset)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from aeuf.config import ExportConfig
from aeuf.registry import Registry
from aeuf.types import SELF_LABEL, Labelled, ResponsePool


class Format(NamedTuple):
    """An export layout: table(pool, labs, cfg) -> (the rows of the judged prompts `labs`, in
    their order, as one DataFrame; how many rows each prompt gave); keeps_ties: whether a
    tied prompt can be a row."""

    table: Callable[[ResponsePool, list[Labelled], ExportConfig], tuple[pd.DataFrame, list[int]]]
    keeps_ties: bool


FORMATS: Registry[Format] = Registry("export format")
NAN = float("nan")


def row_table(rows_of: Callable[[ResponsePool, Labelled, ExportConfig], list[dict]]) -> Callable:
    """A Format.table from a function giving one judged prompt's rows as dicts."""
    def table(pool: ResponsePool, labs: list[Labelled], cfg: ExportConfig):
        per = [rows_of(pool, lab, cfg) for lab in labs]
        return pd.DataFrame([row for rows in per for row in rows]), [len(rows) for rows in per]
    return table


def cells(values) -> np.ndarray:
    """A pool's column (or grid) as an object array to index with arrays (no copy when it is
    one already)."""
    return np.asarray(values, dtype=object)


def texts(values: np.ndarray) -> list[str]:
    """The cells as str, in order."""
    return list(map(str, values))


def models(values: np.ndarray) -> list[str | None]:
    """The model names of the cells; None where a cell names none."""
    return [m if isinstance(m, str) and m else None for m in values]


def annotator(lab: Labelled) -> str | None:
    """The people who labelled the row, comma-separated (human and web oracles), else None."""
    return ",".join(lab.annotators) if lab.annotators else None


def annotator_column(lab: Labelled) -> dict:
    """{"annotator": annotator(lab)} for a person's label, else {} (build_rows fills null
    where other rows have one)."""
    return {"annotator": annotator(lab)} if lab.annotators else {}


CUT_LABELS = {(False, False): "", (True, False): "chosen", (False, True): "rejected",
              (True, True): "both"}


def cut_label(lab: Labelled, win: int, lose: int) -> str:
    """Which of the pair the judge could not read whole (--judge_overlong): "", "chosen",
    "rejected" or "both"."""
    return CUT_LABELS[win in lab.cut, lose in lab.cut]


def oracle_score(lab: Labelled, i: int) -> float:
    """The oracle's score of position i; NaN for a self-labelled pair (the head's P is not
    on the oracle's scale: it is in `confidence`)."""
    return NAN if lab.judge == SELF_LABEL else float(lab.scores[i])


def model(pool: ResponsePool, p: int, r: int) -> str | None:
    """The model that wrote response r of prompt p, or None."""
    return models([pool.models[p][r]])[0]


def ranking(scores: np.ndarray) -> list[int]:
    """Positions of the rated responses, best first (stable for ties); NaN dropped."""
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    return [int(i) for i in order if np.isfinite(scores[i])]
