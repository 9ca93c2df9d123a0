"""How the benchmark scripts write what they measured: a Markdown table (printed, and saved
beside a JSON of the raw numbers) and a line plot. One format for every script, so a row can
be pasted into BENCHMARKS.md as printed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "—" if v is None else str(v)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A Markdown table; floats get 3 significant digits, None prints as '—'."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(path: str | Path, data) -> Path:
    """data as indented JSON at path (folders made); -> the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


def write_table(path: str | Path, header: Sequence[str], rows: Iterable[Sequence],
                title: str = "") -> str:
    """Write the Markdown table (under `title` when given) to path and return its text."""
    text = (f"{title}\n\n" if title else "") + markdown_table(header, list(rows))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def plot_lines(path: str | Path, panels: dict, xlabel: str, log: bool = False) -> Path:
    """A PNG with one panel per entry of panels = {y label: {series name: (x, y)}}, x shared
    (log-log when `log`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels.items()):
        for name, (x, y) in series.items():
            ax.plot(x, y, marker="o", label=name)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
