"""A judge cascade: a cheap judge first, the strong judge only where it is needed.

Every pair the engine sends goes to the cheap judge. The strong judge sees a pair when the
cheap judge is unsure (its two scores differ by less than --cheap_judge_margin, in its own
units: rating points of the log-prob expected rating, or 2p - 1 for the pairwise
template; no usable answer counts as unsure), when the cheap judge's favourite is not the
head's, or when the pair was drawn for the check slice. The other pairs keep the cheap
judge's label. On check pairs the cheap judge would have decided alone and the strong judge
decides (not a tie), the strong judge's verdict measures the cheap judge's flip rate (aeuf.run.round.routes.flip_rate); the head learns a
cheap label softened by it (p -> eps + (1 - 2 eps) p), a strong label as it is.

Both judges go through the same ledger: a request's key names the judge's model, so the
cheap and the strong judge never share a key, and neither is ever paid twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from aeuf import dataset
from aeuf.config import RunConfig
from aeuf.oracle import Oracle
from aeuf.run.round.routes import Verdicts, take
from aeuf.types import JudgeAnswer, Judgement

Judge = Callable  # (plan, tasks) -> list[Judgement]


class JudgeCost(NamedTuple):
    """What one judge cost over a run's whole judgement log."""

    judge: str
    requests: int
    tokens: int
    cost: float


def scores2(j: Judgement) -> tuple[float, float]:
    """The two scores of a pair's judgement (ratings, or Borda counts of its pairs)."""
    s = dataset.judgement_scores(j)
    return float(s[0]), float(s[1])


def sure(j: Judgement, margin: float) -> bool:
    """Both scores present and at least `margin` apart (a tie is never sure)."""
    a, b = scores2(j)
    return math.isfinite(a) and math.isfinite(b) and a != b and abs(a - b) >= margin


def favourite(j: Judgement) -> int:
    a, b = scores2(j)
    return 0 if a > b else 1


def alone(plan, i: int, j: Judgement, margin: float) -> bool:
    """The cheap judge may label row i alone: sure, and the head (if any) agrees."""
    if not sure(j, margin):
        return False
    p = None if plan.head_p is None else float(plan.head_p[i])
    return p is None or not math.isfinite(p) or (0 if p >= 0.5 else 1) == favourite(j)


def cascade_judge(cheap: Judge, strong: Judge, margin: float, names: tuple[str, str]) -> Judge:
    """An engine judge: cheap first, then strong on the rows that need it -> Verdicts.
    names: (cheap judge's name, strong judge's name) for the exported rows."""

    def judge(plan, tasks):
        first = list(cheap(plan, tasks))
        ok = [alone(plan, i, j, margin) for i, j in enumerate(first)]
        check = [False] * len(tasks) if plan.check is None else [bool(c) for c in plan.check]
        need = [i for i in range(len(tasks)) if not ok[i] or check[i]]
        second = list(strong(take(plan, need), [tasks[i] for i in need])) if need else []
        return combine(first, ok, dict(zip(need, second)), names)

    return judge


def combine(first: list[Judgement], ok: list[bool], second: dict, names) -> Verdicts:
    """The final verdict per row: the strong judge's where it answered usably, else the
    cheap judge's where it could decide alone (else the strong judge's unusable answer)."""
    out = Verdicts([], [], [], [])
    for i, j in enumerate(first):
        s = second.get(i)
        usable = s is not None and all(map(math.isfinite, scores2(s)))
        if usable:
            agreed = favourite(s) == favourite(j) if ok[i] and sure(s, 0.0) else None
            row = (s, names[1], False, agreed)
        elif ok[i]:
            row = (j, names[0], True, None)
        else:
            row = (s if s is not None else j, names[1], False, None)
        for column, value in zip(out, row):
            column.append(value)
    return out


def through_ledger(strong: Judge, ledger, cheap_oracle: Oracle | None, cfg: RunConfig, *,
                   progress: bool, strong_name: str, **_) -> Judge:
    """The loop's judge: `strong` alone, or the cascade with the cheap oracle through the
    same ledger (never paid twice)."""
    if cheap_oracle is None:
        return strong
    chunk = max(4 * cfg.oracle.cheap_judge.concurrency, 16)

    def cheap(plan, tasks):
        return ledger.judge(cheap_oracle, tasks, chunk=chunk, progress=progress)

    return cascade_judge(cheap, strong, cfg.oracle.cheap_judge_margin,
                         (cheap_oracle.name, strong_name))


def judge_costs(answers: Iterable[JudgeAnswer]) -> list[JudgeCost]:
    """Requests, tokens and cost per judge model in a judgement log (the summary's
    per-judge costs). The judge of an LLM answer is "model/template@digest": the model
    names it."""
    table: dict[str, list] = {}
    for a in answers:
        row = table.setdefault(a.judge.split("/")[0], [0, 0, 0.0])
        row[0] += 1
        row[1] += int(a.tokens)
        row[2] += float(a.cost)
    return [JudgeCost(k, *v) for k, v in sorted(table.items())]


def describe_costs(costs: Sequence[JudgeCost]) -> str:
    """One line for the summary: 'cost per judge: m1 $0.0100 (12 requests), ...'."""
    parts = [f"{c.judge} ${c.cost:.4f} ({c.requests} requests, {c.tokens} tokens)"
             for c in costs]
    return "cost per judge: " + ", ".join(parts)
