"""report.md and the files of a benchmark run: summary.json, report.md, PNGs.

`markdown(summary)` is pure (the tables of either regime); `write_report` writes
summary.json, report.md and the regime's PNGs (aeuf.bench.plots) into a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from aeuf.bench import agreement, plots
from aeuf.bench.summary import summarise

__all__ = ["markdown", "summarise", "write_report"]


def _pm(row: dict, name: str, scale: float = 1.0, digits: int = 3, sign: bool = False) -> str:
    m, se = row.get(name), row.get(f"{name}_se")
    if m is None:
        return "—"
    fmt = f"{{:{'+' if sign else ''}.{digits}f}}"
    if se is None:  # one seed: no band to show
        return fmt.format(m * scale)
    return f"{fmt.format(m * scale)} ± {se * scale:.{digits}f}"


ONCE_HEADER = ("| rule | calls/prompt | tokens/prompt | chosen is best | rejected is worst | "
               "gold gap | % of West-of-N gap | gap per prompt, % of WoN | exported | ties | "
               "wasted calls | RM acc | RM LL | Δ RM acc vs random |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def _once_row(r: dict) -> str:
    cells = [r["rule"] if r["kind"] == "rule" else f"{r['rule']} (no call)",
             f"{r['calls_per_prompt']:.1f}", f"{r['tokens_per_prompt']:.0f}",
             _pm(r, "best_of_n"), _pm(r, "worst_of_n"), _pm(r, "gold_gap", digits=2),
             _pm(r, "gold_gap_share", 100, 0), _pm(r, "gold_gap_per_prompt_share", 100, 0),
             _pm(r, "exported"), _pm(r, "ties"), _pm(r, "wasted_calls"), _pm(r, "rm_accuracy"),
             _pm(r, "rm_log_likelihood"),
             "—" if r["rule"] == "random" else _pm(r, "d_rm_accuracy", sign=True)]
    return "| " + " | ".join(cells) + " |"


LC_HEADER = ("| rule | chosen is best | rejected is worst | chosen better | chosen worse | "
             "gold gap | % of West-of-N gap | gap per prompt, % of WoN | Δ chosen is best vs "
             "random | length alone: chosen is best | length alone: % of WoN gap |\n"
             "|---|---|---|---|---|---|---|---|---|---|---|")


def _lc_row(r: dict) -> str:
    cells = [r["rule"] if r["kind"] == "rule" else f"{r['rule']} (no call)",
             _pm(r, "lc_best_of_n"), _pm(r, "lc_worst_of_n"), _pm(r, "lc_correct"),
             _pm(r, "lc_wrong"), _pm(r, "lc_gold_gap", digits=2),
             _pm(r, "lc_gold_gap_share", 100, 0), _pm(r, "lc_gold_gap_per_prompt_share", 100, 0),
             "—" if r["rule"] == "random" else _pm(r, "d_lc_best_of_n", sign=True),
             _pm(r, "lcl_best_of_n"), _pm(r, "lcl_gold_gap_share", 100, 0)]
    return "| " + " | ".join(cells) + " |"


def _lc_table(rows: list[dict]) -> list[str]:
    """The quality columns again against the length-controlled gold (none if absent)."""
    if not any(r.get("lc_best_of_n") is not None for r in rows):
        return []
    return ["", "The same pairs against the **length-controlled gold** (the gold with the effect "
            "of the standardised log-length regressed out within prompts, the model identity in the "
            "regression and kept, as AlpacaEval's length-controlled win rate does; a rule that "
            "has only learned \"longer wins\" loses its edge here). The last two columns: "
            "against the gold with length alone regressed out (the models' length goes too):",
            "", LC_HEADER] + [_lc_row(r) for r in rows]


BUDGET_HEADER = ("| rule | final acc | Δ acc vs random | AUC (acc) | Δ AUC vs random | labels "
                 "saved [95% band] | test LL | regret | beats length? | calls | s/run |\n"
                 "|---|---|---|---|---|---|---|---|---|---|---|")


def _saved(r: dict) -> str:
    if r["rule"] == "random" or r["target_accuracy"] is None:
        return "—"
    pct = lambda v: "open" if v is None else f"{v * 100:.0f}%"  # noqa: E731
    point = "not reached" if r["labels_saved"] is None else f"{r['labels_saved'] * 100:.0f}%"
    return f"{point} [{pct(r['labels_saved_lo'])}, {pct(r['labels_saved_hi'])}]"


def _budget_row(r: dict) -> str:
    rand = r["rule"] == "random"
    cells = [r["rule"], _pm(r, "final_accuracy"),
             "—" if rand else _pm(r, "d_final_accuracy", sign=True), _pm(r, "auc_accuracy"),
             "—" if rand else _pm(r, "d_auc_accuracy", sign=True), _saved(r),
             _pm(r, "final_log_likelihood"), _pm(r, "final_regret", digits=2),
             {None: "—", True: "yes", False: "**no**"}[r["beats_length"]], f"{r['calls']:.0f}",
             f"{r['fit_s'] + r['select_s']:.1f}"]
    return "| " + " | ".join(cells) + " |"


def _groups(summary: dict):
    """(label mode, head) -> rows, in order."""
    out: dict = {}
    for r in summary["rows"]:
        out.setdefault((r["label_mode"], r["head"]), []).append(r)
    return out.items()


def _reference(summary: dict) -> list[str]:
    lines = ["| reference | features | test acc | test LL | best-of-N regret |",
             "|---|---|---|---|---|"]
    for e in summary["reference"]:
        ll = "—" if e["log_likelihood"] is None else f"{e['log_likelihood']:.3f}"
        name = e["name"] if e["kind"] == "baseline" else f"ceiling, {e['name']}"
        lines.append(f"| {name} | {e['features'] or '—'} | {e['accuracy']:.3f} | {ll} | "
                     f"{e['regret']:.2f} |")
    return lines


def _seeds(summary: dict) -> int:
    return min((r["seeds"] for r in summary["rows"]), default=0)


def markdown(summary: dict) -> str:
    """The tables of a summary: per label mode and head, one row per rule (and baseline)."""
    split = summary["split"]
    lines = [f"{split['pool_prompts']} pool prompts, {split['test_prompts']} held out "
             f"({split['test_pairs']} gold-ordered held-out pairs). "
             + ("Mean ± standard error over seeds." if _seeds(summary) > 1 else
                "One seed (n = 1): single values, no error band; pass more --seeds for one.")]
    once = summary["regime"] == "once"
    if not once:
        lines += [""] + _reference(summary)
    for (mode, head), rows in _groups(summary):
        what = ("every pool prompt labelled once; RM = a fresh head trained on the exported "
                "pairs, scored on the held-out prompts" if once else
                f"{rows[0]['labels'][-1]} labels; Δ = paired difference vs random")
        lines += ["", f"**{mode} labels, head `{head}`**, {rows[0]['seeds']} seeds, {what}", "",
                  ONCE_HEADER if once else BUDGET_HEADER]
        lines += [_once_row(r) if once else _budget_row(r) for r in rows]
        lines += _lc_table(rows) if once else []
    lines += agreement.markdown_lines(summary)
    return "\n".join(lines) + "\n"


def write_report(summary: dict, out_dir: Path, feature_set: str | None = None) -> dict:
    """Write summary.json, report.md and the regime's PNGs: -> {name: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"summary": out_dir / "summary.json", "report": out_dir / "report.md"}
    files["summary"].write_text(json.dumps(summary, indent=1) + "\n")
    files["report"].write_text(markdown(summary))
    modes = dict.fromkeys(r["label_mode"] for r in summary["rows"])
    for mode in modes:
        name = "dataset_quality" if summary["regime"] == "once" else "learning_curves"
        files[f"{name}_{mode}"] = out_dir / f"{name}_{mode}.png"
        draw = plots.plot_quality if summary["regime"] == "once" else plots.plot_curves
        draw(summary, mode, files[f"{name}_{mode}"], feature_set)
    return files
