"""Pictures of a run (loop level: writes PNG files with matplotlib's Agg back-end)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def has_progress(rows: list[dict]) -> bool:
    """Whether plot_progress has anything to draw: a round with an agreement or an
    uncertainty (the first, model-free round has neither)."""
    return any(r.get("agreement") is not None or r.get("uncertainty") is not None for r in rows)


def plot_progress(rows: list[dict], path: Path) -> Path:
    """Per round: the head's agreement with the oracle on pairs it had not seen yet, and the
    mean uncertainty of the pairs it chose. rows: [{round, labelled, agreement, uncertainty}]
    (has_progress(rows) should hold)."""
    fig, left = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    rounds = [r["round"] for r in rows]
    agree = [_nan(r.get("agreement")) for r in rows]
    left.plot(rounds, agree, "o-", color="tab:blue", label="head agrees with oracle (before labelling)")
    left.axhline(0.5, color="grey", lw=0.8, ls=":")
    left.set_ylim(0, 1)
    left.set_xlabel("round")
    _round_ticks(left, rounds)
    left.set_ylabel("agreement", color="tab:blue")
    left.set_title("Reward head per round")
    right = left.twinx()
    unc = [_nan(r.get("uncertainty")) for r in rows]
    right.plot(rounds, unc, "s--", color="tab:orange", label="uncertainty of chosen pairs")
    finite = [u for u in unc if u == u]
    right.set_ylim(0, 1.1 * max(finite) if finite and max(finite) > 0 else 1)
    right.set_ylabel("pair std", color="tab:orange")
    fig.legend(loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path)


def _nan(v) -> float:
    return float("nan") if v is None else float(v)


def _round_ticks(ax, rounds: list[int]) -> None:
    """Whole-number round ticks (each round when there are few), a half round of margin."""
    if len(rounds) <= 15:
        ax.set_xticks(rounds)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(min(rounds) - 0.5, max(rounds) + 0.5)


def plot_ratings(chosen: list[float], rejected: list[float], path: Path) -> Path:
    """Histogram of the oracle's scores of the exported chosen and rejected responses."""
    fig, ax = plt.subplots(figsize=(6, 3.0), dpi=100)
    finite = [x for x in (*chosen, *rejected) if x == x]
    bins = 20 if not finite else min(20, max(5, len(set(finite))))
    ax.hist([chosen, rejected], bins=bins, label=["chosen", "rejected"],
            color=["tab:green", "tab:red"], alpha=0.8)
    ax.set_title(f"Oracle scores of the {len(chosen)} exported decided pairs")
    ax.set_xlabel("oracle score")
    ax.set_ylabel("responses")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, bbox_inches="tight", pad_inches=0.15)  # no axis label cut off
    plt.close(fig)
    tmp.replace(path)
    return path
