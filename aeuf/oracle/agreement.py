"""How much annotators agree (web oracle, --votes_per_pair k > 1). Pure functions.

    agreement(answers) -> {"fleiss_kappa", "pairs", "votes_per_pair", "annotators": {...}}
    agreement_line(report) -> one line for the run summary and report.md

Each vote is a category of its pair (first shown wins, second wins, tie); votes on one pair
share the pair's slot order, so they compare directly. Fleiss' kappa is computed over the
pairs with the most common number of votes (at least 2); each annotator's agreement is the
share of their votes equal to their pair's majority (a split is a tie).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from aeuf.oracle.web_board import majority, pair_of
from aeuf.types import JudgeAnswer


def _votes(answers: Iterable[JudgeAnswer]) -> dict[str, dict[str, tuple[str, float]]]:
    """{pair: {slot key: (annotator, value)}} of the web answers with a value (later lines
    of a key win, so an undone answer does not count)."""
    latest: dict[str, JudgeAnswer] = {}
    for a in answers:
        if a.judge.startswith("web:"):
            latest[a.key] = a
    pairs: dict[str, dict] = defaultdict(dict)
    for key, a in latest.items():
        if a.value is not None and math.isfinite(a.value):
            pairs[pair_of(key)][key] = (a.judge.split(":", 1)[1], float(a.value))
    return pairs


def fleiss_kappa(table: list[Counter]) -> float:
    """Fleiss' kappa of items (each a Counter of category -> votes, all with n votes)."""
    if not table:
        return math.nan
    n = sum(table[0].values())
    cats = {c for row in table for c in row}
    p_bar = sum((sum(v * v for v in row.values()) - n) / (n * (n - 1)) for row in table)
    p_bar /= len(table)
    p_e = sum((sum(row[c] for row in table) / (len(table) * n)) ** 2 for c in cats)
    return math.nan if p_e >= 1 else (p_bar - p_e) / (1 - p_e)


def agreement(answers: Iterable[JudgeAnswer]) -> dict:
    """Fleiss' kappa overall and each annotator's agreement with the majority."""
    pairs = [v for v in _votes(answers).values() if len(v) >= 2]
    sizes = Counter(len(v) for v in pairs)
    n = max(sizes, key=lambda s: (sizes[s], s)) if sizes else 0
    table = [Counter(val for _, val in v.values()) for v in pairs if len(v) == n]
    agree: dict[str, list[int]] = defaultdict(list)
    for votes in pairs:
        top = majority([val for _, val in votes.values()])
        for who, val in votes.values():
            agree[who].append(int(val == top))
    kappa = fleiss_kappa(table)
    return {"fleiss_kappa": None if math.isnan(kappa) else kappa, "pairs": len(table),
            "votes_per_pair": n,
            "annotators": {w: {"votes": len(x), "agrees_with_majority": sum(x) / len(x)}
                           for w, x in sorted(agree.items())}}


def agreement_line(report: dict) -> str:
    """One line: kappa and each annotator's agreement with the majority."""
    kappa = report["fleiss_kappa"]
    who = "; ".join(f"{w} agrees with the majority on {100 * x['agrees_with_majority']:.1f}% "
                    f"of {x['votes']} votes" for w, x in report["annotators"].items())
    head = (f"annotators: Fleiss' kappa {kappa:.2f}" if kappa is not None
            else "annotators: Fleiss' kappa n/a")
    return (f"{head} over {report['pairs']} pairs with {report['votes_per_pair']} votes each"
            + (f"; {who}" if who else ""))
