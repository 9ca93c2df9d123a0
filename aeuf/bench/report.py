"""Summaries of benchmark results: summary.json content, a markdown table, PNG curves.

`summarise` is pure (Results -> a JSON-ready dict); `write_report` writes summary.json,
report.md and one learning_curves_<mode>.png per label mode into a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aeuf.bench.metrics import (
    Evaluation,
    area_under_curve,
    labels_saved,
    labels_to_reach,
    mean_se,
    paired_difference,
)
from aeuf.bench.quality import dataset_quality
from aeuf.bench.runner import Results


def _ms(values) -> dict:
    """{"mean", "se"} of [S] or [S, n] values (lists for curves)."""
    m, se = mean_se(values)
    return {"mean": np.round(m, 6).tolist(), "se": np.round(se, 6).tolist()}


def _eval(e: Evaluation) -> dict:
    return {k: (None if v is None else round(float(v), 6)) for k, v in e._asdict().items()}


def _paired(curves, ref) -> dict:
    """Rule - random per seed: final accuracy, AUC, final log-likelihood, final regret."""
    pick = {
        "final_accuracy": lambda c: c.accuracy[-1],
        "auc_accuracy": lambda c: area_under_curve(c.labels, c.accuracy),
        "final_log_likelihood": lambda c: c.log_likelihood[-1],
        "final_regret": lambda c: c.regret[-1],
    }
    out = {}
    for name, f in pick.items():
        m, se = paired_difference([f(c) for c in curves], [f(c) for c in ref])
        out[name] = {"mean": round(m, 6), "se": round(se, 6)}
    return out


def rule_summary(curves: list, ref: list | None, length_acc: float) -> dict:
    """One rule's entry: curves [Curve per seed]; ref: random's curves (same seeds) or None."""
    labels = curves[0].labels
    acc = np.stack([c.accuracy for c in curves])
    auc = [area_under_curve(c.labels, c.accuracy) for c in curves]
    out = {
        "seeds": len(curves),
        "labels": [int(x) for x in labels],
        "accuracy": _ms(acc),
        "log_likelihood": _ms(np.stack([c.log_likelihood for c in curves])),
        "regret": _ms(np.stack([c.regret for c in curves])),
        "auc_accuracy": _ms(auc),
        "final_accuracy": _ms(acc[:, -1]),
        "beats_length_baseline": bool(acc[:, -1].mean() > length_acc),
        "wall_s": {"fit": round(float(np.mean([c.fit_s for c in curves])), 3),
                   "select": round(float(np.mean([c.select_s for c in curves])), 3)},
        "oracle_responses_shown": int(np.mean([c.shown for c in curves])),
    }
    if ref is not None:
        ref_mean = np.stack([c.accuracy for c in ref]).mean(axis=0)
        target = float(ref_mean[-1])
        n_rule = labels_to_reach(labels, acc.mean(axis=0), target)
        out["target_accuracy"] = round(target, 6)
        out["labels_to_target"] = None if n_rule is None else round(n_rule, 2)
        saved = labels_saved(labels, acc.mean(axis=0), ref_mean)
        out["labels_saved"] = None if saved is None else round(saved, 4)
        out["vs_random"] = _paired(curves, ref)
    return out


def quality_summary(curves: list, gold) -> dict:
    """One rule's entry in the `once` regime: each dataset-quality figure, mean and SE."""
    runs = [dataset_quality(c.labelled, gold, c.shown) for c in curves]
    out = {"seeds": len(curves)}
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = _ms(values) if values else None
    return out


def summarise(results: Results, config: dict, data=None) -> dict:
    """Results -> the JSON-ready summary (see the module docstring of aeuf.commands.bench).
    data: the BenchData (gold of the pool prompts, for the `once` regime)."""
    table: dict = {}
    if not results.baselines:  # the once regime: no held-out prompts
        gold = data.pool.gold[data.split[0]]
        for mode, heads in results.curves.items():
            for head, rules in heads.items():
                table.setdefault(mode, {})[head] = {
                    r: quality_summary(c, gold) for r, c in rules.items()}
        return {"config": config, "split": results.split, "regime": "once", "results": table}
    length_acc = results.baselines["length"].accuracy
    for mode, heads in results.curves.items():
        for head, rules in heads.items():
            ref = rules.get("random")
            table.setdefault(mode, {})[head] = {
                r: rule_summary(c, ref, length_acc) for r, c in rules.items()}
    return {"regime": "budget",
        "config": config,
        "split": results.split,
        "baselines": {k: _eval(v) for k, v in results.baselines.items()},
        "ceilings": {h: {f: _eval(e) for f, e in d.items()} for h, d in results.ceilings.items()},
        "results": table,
    }


def _pm(d: dict, scale: float = 1.0, digits: int = 3) -> str:
    return f"{d['mean'] * scale:.{digits}f} ± {d['se'] * scale:.{digits}f}"


def _rule_row(rule: str, s: dict) -> str:
    vs = s.get("vs_random")
    saved = s.get("labels_saved")
    cells = [
        rule, _pm(s["final_accuracy"]),
        _pm(vs["final_accuracy"]) if vs and rule != "random" else "—",
        _pm(s["auc_accuracy"]),
        _pm(vs["auc_accuracy"]) if vs and rule != "random" else "—",
        ("—" if rule == "random" else "not reached" if saved is None and vs else
         f"{saved * 100:.0f}%" if saved is not None else "—"),
        f"{s['log_likelihood']['mean'][-1]:.3f}", f"{s['regret']['mean'][-1]:.2f}",
        "yes" if s["beats_length_baseline"] else "**no**",
        f"{s['wall_s']['fit'] + s['wall_s']['select']:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| rule | final acc | Δ acc vs random | AUC (acc) | Δ AUC vs random | labels saved | "
          "test LL | regret | beats length? | s/run |\n|---|---|---|---|---|---|---|---|---|---|")


QUALITY_HEADER = ("| rule | chosen is best (of all prompts) | rejected is worst | gold gap | "
                  "correct | ties | unlabelled | shown/prompt |\n|---|---|---|---|---|---|---|---|")


def _quality_row(rule: str, s: dict) -> str:
    keys = ("best_of_n", "worst_of_n", "gold_gap", "correct", "ties", "unlabelled",
            "shown_per_prompt")
    return "| " + " | ".join([rule] + ["—" if s[k] is None else _pm(s[k]) for k in keys]) + " |"


def markdown(summary: dict) -> str:
    """Tables: baselines and ceilings, then one table per label mode and head."""
    if summary.get("regime") == "once":
        lines = []
        for mode, heads in summary["results"].items():
            for head, rules in heads.items():
                lines += ["", f"**{mode} labels, head `{head}`**, every prompt labelled once "
                          "(mean ± standard error over seeds)", "", QUALITY_HEADER]
                lines += [_quality_row(r, s) for r, s in rules.items()]
        return "\n".join(lines) + "\n"
    b = summary["baselines"]
    lines = ["| no-learning baseline | test acc | test LL | best-of-N regret |", "|---|---|---|---|"]
    for name, e in b.items():
        ll = "—" if e["log_likelihood"] is None else f"{e['log_likelihood']:.3f}"
        lines.append(f"| {name} | {e['accuracy']:.3f} | {ll} | {e['regret']:.2f} |")
    lines += ["", "| ceiling (all pool pairs) | feature set | test acc | test LL | regret |",
              "|---|---|---|---|---|"]
    for head, sets in summary["ceilings"].items():
        for fs, e in sets.items():
            lines.append(f"| {head} | {fs} | {e['accuracy']:.3f} | {e['log_likelihood']:.3f} | "
                         f"{e['regret']:.2f} |")
    for mode, heads in summary["results"].items():
        for head, rules in heads.items():
            first = next(iter(rules.values()))
            lines += ["", f"**{mode} labels, head `{head}`**, {first['seeds']} seeds, "
                      f"{first['labels'][-1]} labels (mean ± standard error; Δ = paired "
                      "difference vs random, same seeds and initial batch)", "", HEADER]
            lines += [_rule_row(r, s) for r, s in rules.items()]
    return "\n".join(lines) + "\n"


def plot_curves(summary: dict, mode: str, path: Path, feature_set: str | None = None) -> None:
    """Accuracy and log-likelihood vs labels (mean ± SE band) for every head and rule of one
    label mode, with the length baseline and each head's ceiling: writes a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heads = summary["results"][mode]
    fig, axes = plt.subplots(2, len(heads), figsize=(4.2 * len(heads), 6), squeeze=False)
    for col, (head, rules) in enumerate(heads.items()):
        for row, metric in enumerate(("accuracy", "log_likelihood")):
            ax = axes[row, col]
            for rule, s in rules.items():
                x, m, se = (np.asarray(v) for v in (s["labels"], s[metric]["mean"], s[metric]["se"]))
                ax.plot(x, m, marker=".", label=rule)
                ax.fill_between(x, m - se, m + se, alpha=0.2)
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
    ceil = summary["ceilings"].get(head, {})
    fs = feature_set if feature_set in ceil else next(iter(ceil), None)
    if fs is not None and ceil[fs][metric] is not None:
        ax.axhline(ceil[fs][metric], color="k", ls=":", lw=1, label=f"ceiling ({fs})")
    length = summary["baselines"]["length"][metric]
    if length is not None:
        ax.axhline(length, color="gray", ls="--", lw=1, label="longer wins")


def write_report(summary: dict, out_dir: Path, feature_set: str | None = None) -> dict:
    """Write summary.json, report.md and learning_curves_<mode>.png: -> {name: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"summary": out_dir / "summary.json", "report": out_dir / "report.md"}
    files["summary"].write_text(json.dumps(summary, indent=1) + "\n")
    files["report"].write_text(markdown(summary))
    for mode in summary["results"] if summary.get("regime") != "once" else ():
        files[f"curves_{mode}"] = out_dir / f"learning_curves_{mode}.png"
        plot_curves(summary, mode, files[f"curves_{mode}"], feature_set)
    return files
