"""Per round: the head's agreement with the oracle against the best single cheap signal.

Each round of a run records (aeuf.run.engine.Outcome) how often the head, before the labels,
ranked the oracle's winner first, and how often each cheap signal the earlier labels reveal
(length, generating model, centrality: aeuf.run.round.signals) did on the same pairs. Here these
are averaged over seeds per round, for summary.json (`agreement_rounds`) and a table in
report.md. Pure.
"""

from __future__ import annotations

import numpy as np


def round_record(outcome) -> dict:
    """What a run keeps of one round's Outcome."""
    return {"head": outcome.agreement, "baselines": outcome.baselines}


def _mean(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return round(float(np.mean(v)), 4) if v else None


def rounds(per_seed: list[list[dict]]) -> list[dict] | None:
    """Per round, means over seeds: head agreement, each signal's, and the best signal.
    per_seed: each seed's round records. None when no round had a head."""
    n = max((len(r) for r in per_seed), default=0)
    out = []
    for t in range(n):
        recs = [r[t] for r in per_seed if t < len(r)]
        names = sorted({k for x in recs for k in (x["baselines"] or {})})
        base = {k: _mean([(x["baselines"] or {}).get(k) for x in recs]) for k in names}
        base = {k: v for k, v in base.items() if v is not None}
        top = max(base, key=lambda k: base[k]) if base else None
        out.append({"round": t, "head": _mean([x["head"] for x in recs]), "signals": base,
                    "best_signal": top, "best_signal_agreement": base.get(top)})
    return out if any(r["head"] is not None for r in out) else None


def markdown_lines(summary: dict) -> list[str]:
    """A table per (label mode, head): per rule, the head's agreement per round against the
    best single signal's on the same pairs ("—" for a round without a head)."""
    rows = [r for r in summary["rows"] if r.get("agreement_rounds")]
    if not rows:
        return []
    lines = ["", "**Head vs the best single cheap signal**: per round, the share of the "
             "round's decided pairs where the head (before the labels) ranked the oracle's "
             "winner first / where the best of length, model and centrality (as the earlier "
             "labels reveal them) did, mean over seeds", "",
             "| mode | head | rule | per round: head / best signal |", "|---|---|---|---|"]
    for r in rows:
        cells = []
        for x in r["agreement_rounds"]:
            h = "—" if x["head"] is None else f"{x['head']:.2f}"
            b = ("—" if x["best_signal"] is None else
                 f"{x['best_signal_agreement']:.2f} ({x['best_signal']})")
            cells.append(f"{h} / {b}")
        lines.append(f"| {r['label_mode']} | {r['head']} | {r['rule']} | {'; '.join(cells)} |")
    return lines
