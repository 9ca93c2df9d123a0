"""PNG figures of a benchmark summary (matplotlib, Agg): learning curves (budget regime) and
dataset quality against oracle calls (once regime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_head(summary: dict, mode: str) -> dict:
    out: dict = {}
    for r in summary["rows"]:
        if r["label_mode"] == mode:
            out.setdefault(r["head"], []).append(r)
    return out


def plot_curves(summary: dict, mode: str, path: Path, feature_set: str | None = None) -> None:
    """Accuracy and log-likelihood vs labels (mean ± SE band) for every head and rule of one
    label mode, with the length baseline, each head's ceiling and, when the budget exceeds
    the pool, a dotted line where each pass ends."""
    plt = _pyplot()
    heads = _by_head(summary, mode)
    fig, axes = plt.subplots(2, len(heads), figsize=(4.2 * len(heads), 6), squeeze=False)
    pool = summary["split"]["pool_prompts"]
    for col, (head, rows) in enumerate(heads.items()):
        for row, metric in enumerate(("accuracy", "log_likelihood")):
            ax = axes[row, col]
            for r in rows:
                x, m, se = (np.asarray(r[k], np.float64) for k in ("labels", metric, f"{metric}_se"))
                ax.plot(x, m, marker=".", label=r["rule"])
                ax.fill_between(x, m - se, m + se, alpha=0.2)
            for end in range(pool, int(rows[0]["labels"][-1]), pool):
                ax.axvline(end, color="0.6", ls="-.", lw=0.8)  # a pass over the pool ends
            _reference_lines(ax, summary, head, metric, feature_set)
            ax.set_xlabel("labels")
            ax.set_ylabel(f"test {metric.replace('_', '-')}")
            ax.set_title(f"{head} ({mode})", fontsize=9)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


def _reference_lines(ax, summary: dict, head: str, metric: str, feature_set: str | None) -> None:
    ceil = {e["features"]: e for e in summary["reference"]
            if e["kind"] == "ceiling" and e["name"] == head}
    fs = feature_set if feature_set in ceil else next(iter(ceil), None)
    if fs is not None and ceil[fs][metric] is not None:
        ax.axhline(ceil[fs][metric], color="k", ls=":", lw=1, label=f"ceiling ({fs})")
    length = [e for e in summary["reference"] if e["kind"] == "baseline" and e["name"] == "length"]
    if length and length[0][metric] is not None:
        ax.axhline(length[0][metric], color="gray", ls="--", lw=1, label="longer wins")


QUALITY_PANELS = (("best_of_n", "chosen is the gold-best"),
                  ("gold_gap_per_prompt_share", "gold gap per prompt / West-of-N's"),
                  ("rm_accuracy", "RM on exported pairs: held-out acc"))


def plot_quality(summary: dict, mode: str, path: Path, feature_set: str | None = None) -> None:
    """Dataset quality against oracle calls per prompt, one point (± SE) per rule and
    baseline, one marker per head: chosen-is-best, the gold gap as a share of West-of-N's,
    and the held-out accuracy of a reward model trained on the exported pairs."""
    plt = _pyplot()
    heads = _by_head(summary, mode)
    fig, axes = plt.subplots(1, len(QUALITY_PANELS), figsize=(4.4 * len(QUALITY_PANELS), 3.8))
    calls = sorted({r["calls_per_prompt"] for r in summary["rows"]})
    for ax, (metric, title) in zip(axes, QUALITY_PANELS):
        for n, ((head, rows), marker) in enumerate(zip(heads.items(), "os^D")):
            shift = 0.08 * (n - (len(heads) - 1) / 2)  # heads side by side at each x
            for i, r in enumerate(r for r in rows if r[metric] is not None):
                ax.errorbar(r["calls_per_prompt"] + shift, r[metric], yerr=r[f"{metric}_se"],
                            marker=marker, color=f"C{n}", ls="none", ms=4,
                            label=head if i == 0 else None)
                ax.annotate(r["rule"], (r["calls_per_prompt"] + shift, r[metric]), fontsize=5,
                            xytext=(3, 1), textcoords="offset points", color=f"C{n}")
        ax.set_xticks(calls)
        ax.set_xlabel("oracle calls per prompt")
        ax.set_title(f"{title} ({mode})", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
