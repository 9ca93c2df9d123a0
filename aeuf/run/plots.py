"""Pictures of a run (loop level: writes PNG files with matplotlib's Agg back-end)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def plot_progress(rows: list[dict], path: Path) -> Path:
    """Per round: the head's agreement with the oracle on pairs it had not seen yet, and the
    mean uncertainty of the pairs it chose. rows: [{round, labelled, agreement, uncertainty}]."""
    fig, left = plt.subplots(figsize=(6, 3.2), dpi=100)
    rounds = [r["round"] for r in rows]
    agree = [r["agreement"] if r["agreement"] is not None else float("nan") for r in rows]
    left.plot(rounds, agree, "o-", color="tab:blue", label="head agrees with oracle (before labelling)")
    left.axhline(0.5, color="grey", lw=0.8, ls=":")
    left.set_ylim(0, 1)
    left.set_xlabel("round")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("agreement", color="tab:blue")
    right = left.twinx()
    unc = [r["uncertainty"] if r["uncertainty"] is not None else float("nan") for r in rows]
    right.plot(rounds, unc, "s--", color="tab:orange", label="uncertainty of chosen pairs")
    right.set_ylabel("pair std", color="tab:orange")
    fig.legend(loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, path)


def plot_ratings(chosen: list[float], rejected: list[float], path: Path) -> Path:
    """Histogram of the oracle's scores of the exported chosen and rejected responses."""
    fig, ax = plt.subplots(figsize=(6, 3.0), dpi=100)
    finite = [x for x in (*chosen, *rejected) if x == x]
    bins = 20 if not finite else min(20, max(5, len(set(finite))))
    ax.hist([chosen, rejected], bins=bins, label=["chosen", "rejected"],
            color=["tab:green", "tab:red"], alpha=0.8)
    ax.set_xlabel("oracle score")
    ax.set_ylabel("responses")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
