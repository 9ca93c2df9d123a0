"""Judge hygiene: what a judge's own answers say about the judge. Pure functions.

    judge_hygiene(answers, texts) -> {judge: Hygiene}   one entry per model/template
    texts_of(tasks) -> {response id: text}
    hygiene_json(report) -> JSON-ready dict;  hygiene_lines(report) -> lines for a summary

LLM judges have known biases users should see before trusting a dataset: they prefer the
longer answer and the answer shown first (shipped GPT-4 judges prefer the longer answer 68%
of the time and flip 12.9% of verdicts when the positions swap). For every judge (model +
template) this reports: swap consistency (pairwise: share of pairs asked in both orders
whose verdicts agree), how often the longer response wins a decided comparison, the Spearman
correlation of ratings with response length (rating templates), ties, parse failures,
refusals, transport failures, requests, tokens and cost.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from aeuf.types import JudgeAnswer, JudgeTask

EPS = 1e-9


class Hygiene(NamedTuple):
    """One judge's record (rates are NaN when there is nothing to measure them on).

    kind: "rating" or "pairwise"; requests: distinct keys answered (the last answer of a
    key counts); answered: with a value; unparsable / refused / transport: failures (the
    last are retried on a rerun); ties: pairwise answers of 0.5, or for ratings pairs of
    responses to one prompt with equal ratings, and tie_rate their share; swap_pairs: pairs
    answered in both orders, swap_consistency: the share whose two verdicts agree;
    longer_wins: share of decided comparisons won by the longer response (characters);
    length_spearman: Spearman correlation of ratings with length; cost (USD) and tokens:
    of every answer given, retried failures included; seconds and device: the compute a
    local scorer (a reward model) reports in its answers ("" when none).
    """

    judge: str
    kind: str
    requests: int
    answered: int
    unparsable: int
    refused: int
    transport: int
    ties: int
    tie_rate: float
    swap_pairs: int
    swap_consistency: float
    longer_wins: float
    length_spearman: float
    cost: float
    tokens: int
    seconds: float = 0.0
    device: str = ""


def texts_of(tasks: Iterable[JudgeTask]) -> dict[str, str]:
    """{response id: response text} of the tasks."""
    return {rid: text for t in tasks for rid, text in zip(t.response_ids, t.responses)}


def verdict(value: float) -> int:
    """+1 when the first shown wins, -1 when the second does, 0 for a tie."""
    return 0 if abs(value - 0.5) <= EPS else (1 if value > 0.5 else -1)


def _rate(hits: int, total: int) -> float:
    return hits / total if total else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN under 3 points or when
    either side is constant."""
    from scipy.stats import rankdata

    if len(x) < 3:
        return math.nan
    rx, ry = rankdata(x), rankdata(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _longer_wins(decided: list[tuple[str, str]], texts: Mapping[str, str]) -> float:
    """Share of (winner id, loser id) where the winner is longer (equal lengths skipped)."""
    sized = [(len(texts[w]), len(texts[lo])) for w, lo in decided if w in texts and lo in texts]
    sized = [(a, b) for a, b in sized if a != b]
    return _rate(sum(a > b for a, b in sized), len(sized))


def _pairwise(valued: list[JudgeAnswer], texts: Mapping[str, str]) -> dict:
    by_order = {a.response_ids: verdict(a.value) for a in valued}
    both = [(ids, v) for ids, v in by_order.items() if ids[::-1] in by_order and ids < ids[::-1]]
    decided = [(a.response_ids[0], a.response_ids[1]) if v > 0 else a.response_ids[::-1]
               for a in valued if (v := verdict(a.value)) != 0]
    ties = sum(verdict(a.value) == 0 for a in valued)
    return {"ties": ties, "tie_rate": _rate(ties, len(valued)), "swap_pairs": len(both),
            "swap_consistency": _rate(sum(v == -by_order[ids[::-1]] for ids, v in both),
                                      len(both)),
            "longer_wins": _longer_wins(decided, texts), "length_spearman": math.nan}


def _ratings(valued: list[JudgeAnswer], texts: Mapping[str, str]) -> dict:
    by_prompt: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for a in valued:
        by_prompt[a.prompt_id].append((a.response_ids[0], float(a.value)))
    pairs = [(x, y) for rows in by_prompt.values()
             for i, x in enumerate(rows) for y in rows[i + 1:]]
    ties = sum(abs(x[1] - y[1]) <= EPS for x, y in pairs)
    decided = [(x[0], y[0]) if x[1] > y[1] else (y[0], x[0])
               for x, y in pairs if abs(x[1] - y[1]) > EPS]
    sized = [(len(texts[a.response_ids[0]]), a.value) for a in valued
             if a.response_ids[0] in texts]
    return {"ties": ties, "tie_rate": _rate(ties, len(pairs)), "swap_pairs": 0,
            "swap_consistency": math.nan, "longer_wins": _longer_wins(decided, texts),
            "length_spearman": spearman([s[0] for s in sized], [s[1] for s in sized])}


def _one(judge: str, latest: list[JudgeAnswer], spent: list[JudgeAnswer],
         texts: Mapping[str, str]) -> Hygiene:
    errors = [a.error or "" for a in latest]
    valued = [a for a in latest if a.value is not None and math.isfinite(a.value)]
    kind = "pairwise" if any(len(a.response_ids) == 2 for a in latest) else "rating"
    stats = (_pairwise if kind == "pairwise" else _ratings)(valued, texts)
    return Hygiene(judge, kind, len(latest), len(valued),
                   sum(e.startswith("unparsable") for e in errors),
                   sum(e.startswith("refused") for e in errors),
                   sum(e.startswith("transport") for e in errors),
                   cost=float(sum(a.cost for a in spent)),
                   tokens=int(sum(a.tokens for a in spent)), **stats, **_compute(spent))


def _compute(spent: list[JudgeAnswer]) -> dict:
    """Seconds and device from answers whose raw text is a scorer's JSON record
    ({"seconds": s, "device": d, ...}, as the reward-model oracle writes); else nothing."""
    seconds, devices = 0.0, set()
    for a in spent:
        if not a.raw.startswith('{"aspects"'):
            continue
        try:
            record = json.loads(a.raw)
            seconds += float(record["seconds"])
            devices.add(str(record["device"]))
        except (ValueError, KeyError, TypeError):
            continue
    return {"seconds": seconds, "device": ",".join(sorted(devices))}


def judge_hygiene(answers: Iterable[JudgeAnswer], texts: Mapping[str, str]
                  ) -> dict[str, Hygiene]:
    """{judge: Hygiene} from answers in log order (a key answered again counts once, its
    last answer; cost and tokens count every answer). texts: {response id: text}, for the
    length statistics. Answers whose judge is not an LLM judge's "model/template@digest"
    count all the same, under their own judge name."""
    latest: dict[str, dict[str, JudgeAnswer]] = defaultdict(dict)
    spent: dict[str, list[JudgeAnswer]] = defaultdict(list)
    for a in answers:
        latest[a.judge][a.key] = a
        spent[a.judge].append(a)
    return {j: _one(j, list(latest[j].values()), spent[j], texts) for j in sorted(latest)}


def hygiene_json(report: Mapping[str, Hygiene]) -> dict:
    """A JSON-ready dict of a report (NaN -> None)."""
    def plain(v):
        return None if isinstance(v, float) and math.isnan(v) else v

    return {j: {k: plain(v) for k, v in h._asdict().items()} for j, h in report.items()}


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def hygiene_lines(report: Mapping[str, Hygiene]) -> list[str]:
    """One line per judge for a run summary."""
    out = []
    for h in report.values():
        rho = "n/a" if math.isnan(h.length_spearman) else f"{h.length_spearman:+.2f}"
        bias = (f"swap-consistent {_pct(h.swap_consistency)} of {h.swap_pairs} pairs"
                if h.kind == "pairwise" else f"rating~length Spearman {rho}")
        spent = (f"{h.seconds:.1f} s on {h.device}" if h.device
                 else f"${h.cost:.4f}, {h.tokens} tokens")
        out.append(f"{h.judge}: {h.requests} requests, {h.answered} answered, "
                   f"{h.unparsable} unparsable, {h.refused} refused, {h.transport} transport "
                   f"failures; ties {_pct(h.tie_rate)}; longer response wins "
                   f"{_pct(h.longer_wins)}; {bias}; {spent}")
    return out
