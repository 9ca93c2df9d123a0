"""Cheap signals the labels reveal, as baselines for the head's agreement with the oracle.

The head should rank responses at least as well as any single signal a few labels already
show: the response's length, its generating model, and its centrality among the prompt's
responses (AEPO's representativeness). Each round the engine measures, on the same decided
pairs as the head's agreement, how often each signal alone picks the oracle's winner, with
what the labels before the round reveal of it:

    length, centrality: the direction (longer / more central wins, or the reverse) that the
        earlier comparisons favour (longer and more central by default, before any label);
    model: each model's smoothed win rate (wins + 1) / (games + 2) in the earlier comparisons
        (every model 0.5 before any label: no call reveals it).

A signal that cannot tell the two responses apart (equal lengths, same model, no model known)
counts one half. Pure: arrays in, numbers out.

Shape letters: P prompts, R responses per prompt, M comparisons.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import Float, Int

from aeuf.types import Comparisons, Labelled, ResponsePool


class Signals(NamedTuple):
    """length: f32[P, R] characters; model: int32[P, R] model index (-1: unknown), or None;
    centrality: f32[P, R] mean cosine similarity to the prompt's other responses, or None."""

    length: Float[np.ndarray, "P R"]
    model: Int[np.ndarray, "P R"] | None = None
    centrality: Float[np.ndarray, "P R"] | None = None


def of_pool(pool: ResponsePool, features: np.ndarray | None = None) -> Signals:
    """The pool's signals: lengths, model indices (None if no model is known) and, given the
    composed features f32[P, R, D], centrality."""
    from aeuf.acquire.aepo import cosine_sim, representativeness

    length = np.vectorize(len, otypes=[np.float32])(pool.responses.astype(str))
    names = np.asarray(pool.models, dtype=object)
    known = sorted({m for m in names.ravel() if isinstance(m, str) and m})
    model = None
    if known:
        index = {m: i for i, m in enumerate(known)}
        model = np.vectorize(lambda m: index.get(m, -1), otypes=[np.int32])(names)
    cent = None
    if features is not None and features.shape[1] > 1:
        cent = representativeness(cosine_sim(features)).astype(np.float32)
    return Signals(length, model, cent)


def _vote(x_c: np.ndarray, x_r: np.ndarray) -> np.ndarray:
    """1 where chosen's value is higher, 0 lower, 0.5 equal."""
    return np.where(x_c > x_r, 1.0, np.where(x_c < x_r, 0.0, 0.5))


def direction(score: Float[np.ndarray, "P R"], comps: Comparisons) -> float:
    """+1 if the earlier comparisons favour the higher score (or none decide), else -1."""
    if comps.size == 0:
        return 1.0
    sa, sb = score[comps.prompt, comps.a], score[comps.prompt, comps.b]
    agree = np.where(sa > sb, comps.p, np.where(sa < sb, 1.0 - comps.p, 0.5))
    return 1.0 if agree.mean() >= 0.5 else -1.0


def model_rates(model: Int[np.ndarray, "P R"], comps: Comparisons) -> np.ndarray:
    """Smoothed win rate per model index from the comparisons: float64 [number of models]."""
    n = int(model.max()) + 1 if model.size else 0
    wins, games = np.zeros(n + 1), np.zeros(n + 1)  # the last slot collects unknown models
    ma, mb = model[comps.prompt, comps.a], model[comps.prompt, comps.b]
    np.add.at(wins, ma, comps.p)
    np.add.at(wins, mb, 1.0 - comps.p)
    np.add.at(games, ma, 1.0)
    np.add.at(games, mb, 1.0)
    return ((wins + 1.0) / (games + 2.0))[:n]


def scores(signals: Signals, comps: Comparisons) -> dict[str, np.ndarray]:
    """Each signal as a score f32/f64[P, R] (higher = predicted better) from what the
    comparisons `comps` reveal."""
    out = {"length": direction(signals.length, comps) * signals.length}
    if signals.model is not None:
        rates = np.append(model_rates(signals.model, comps), 0.5)  # index -1: unknown
        out["model"] = rates[signals.model]
    if signals.centrality is not None:
        out["centrality"] = direction(signals.centrality, comps) * signals.centrality
    return out


def agreements(signals: Signals | None, comps: Comparisons, labelled: list[Labelled], *,
               keep) -> dict[str, float] | None:
    """Per signal, the share of the decided rows (ties and rows `keep` rejects left out) whose
    chosen response the signal ranks above the rejected one, from what `comps` (the labels
    before this round) reveal. None without signals or a decided row."""
    decided = [x for x in labelled if not x.tie and keep(x)]
    if signals is None or not decided:
        return None
    p = np.array([x.prompt for x in decided])
    c = np.array([x.slots[x.chosen] for x in decided])
    r = np.array([x.slots[x.rejected] for x in decided])
    return {name: float(_vote(s[p, c], s[p, r]).mean())
            for name, s in scores(signals, comps).items()}


def best(baselines: dict[str, float] | None) -> tuple[str, float] | None:
    """The signal with the highest agreement: (name, agreement), or None."""
    if not baselines:
        return None
    name = max(baselines, key=lambda k: baselines[k])
    return name, baselines[name]
