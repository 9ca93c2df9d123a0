"""The absorb half of a round (aeuf.run.round.engine.absorb): the Labelled record of a judged prompt,
the comparisons appended for the head, and how often the head agreed with the oracle.

Pure. Typed against the round's records (aeuf.run.round.types).

Shape letters: b prompts in a round, R responses per prompt.
"""

from __future__ import annotations

import math

import numpy as np

from aeuf import acquire, dataset
from aeuf.run.round.selflabel import HEAD
from aeuf.run.round.types import Plan
from aeuf.types import Comparisons, Judgement, Labelled


def labelled(plan: Plan, i: int, p: int, slots, j: Judgement, pairing: str, seed: int,
             judge: str) -> Labelled | None:
    """The Labelled record of one judged prompt (row i of the plan); None when fewer than two
    responses got a score; a tie when every score is equal."""
    scores = dataset.judgement_scores(j)
    finite = [x for x in scores.tolist() if math.isfinite(x)]  # k is small: no numpy calls
    if len(finite) < 2:
        return None
    tie = max(finite) == min(finite)
    win, lose = (0, 1) if tie else acquire.pick_pair(scores, pairing, key=seed)
    return Labelled(p, slots, scores, int(win), int(lose), plan.rule, plan.t,
                    float(plan.uncertainty[i]), float(plan.score[i]), judge, tie,
                    cut=tuple(int(c) for c in j.cut), annotators=tuple(j.annotators))


def judged(lab: Labelled) -> bool:
    """Labelled by a judge (not self-labelled by the head)."""
    return lab.judge != HEAD


def agreement(plan: Plan, labelled: list[Labelled]) -> float | None:
    """Share of decided prompts labelled by a judge (self-labels left out) where the head,
    when it chose (before the label), ranked chosen above rejected; a pair it scored equal
    counts half, as for the cheap signals (aeuf.run.round.signals). None without a head, a
    decided prompt or an opinion: a head that scored every such pair equal agreed with
    nothing and disagreed with nothing (the report shows "—", not 0.00)."""
    decided = [x for x in labelled if not x.tie and judged(x)]
    if plan.mean is None or not decided:
        return None
    where = {int(p): i for i, p in enumerate(plan.prompts)}
    row = np.array([where[x.prompt] for x in decided])
    won = plan.mean[row, [x.slots[x.chosen] for x in decided]]
    lost = plan.mean[row, [x.slots[x.rejected] for x in decided]]
    if (won == lost).all():
        return None
    return float(np.where(won > lost, 1.0, np.where(won < lost, 0.0, 0.5)).mean())


def append(comps: Comparisons, rows: list[tuple[int, int, int, float]]) -> Comparisons:
    """comps followed by rows of (prompt, a, b, p)."""
    if not rows:
        return comps
    p, a, b, q = (np.asarray(c) for c in zip(*rows))
    return Comparisons(np.concatenate([comps.prompt, p.astype(np.int32)]),
                       np.concatenate([comps.a, a.astype(np.int32)]),
                       np.concatenate([comps.b, b.astype(np.int32)]),
                       np.concatenate([comps.p, q.astype(np.float32)]))
