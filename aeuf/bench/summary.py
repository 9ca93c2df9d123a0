"""summary.json: one flat row per (label mode, head, rule) with one field per number (pure).

`summarise(results, config, bench)` -> {"regime", "config", "split", "fields", "rows",
"reference"}. Every row holds ROW_KEYS plus the documented fields of its regime
(ONCE_FIELDS or BUDGET_FIELDS); a field `x` is the mean over seeds and `x_se` its standard
error (sample std / sqrt(seeds); None for one seed, where a per-round curve's band is 0);
a `d_` field is the paired difference against `random` at the same seeds; None where a
number is undefined (e.g. nothing exported). `fields` in the file repeats these descriptions.
"""

from __future__ import annotations

import numpy as np

from aeuf.bench import agreement
from aeuf.bench.metrics import (
    Evaluation,
    area_under_curve,
    labels_saved,
    labels_saved_band,
    labels_to_reach,
    mean_se,
    paired_difference,
)
from aeuf.bench.quality import dataset_quality
from aeuf.bench.runner import Results

ROW_KEYS = {
    "regime": "budget or once",
    "label_mode": "replay labels: deterministic, bernoulli or soft",
    "head": "reward head of the run (and of the reward model trained on its pairs)",
    "rule": "acquisition rule, or a no-call baseline (length, delta)",
    "kind": "rule (oracle calls through the round engine) or baseline (no call)",
    "seeds": "seeds averaged",
    "agreement_rounds": "per round, means over seeds: the head's agreement with the oracle "
                        "before the labels, each cheap signal's (length, model, centrality) "
                        "on the same pairs, and the best signal (null: no round had a head)",
}

ONCE_MEANS = {
    "best_of_n": "share of the labelled prompts whose chosen is a gold-best response "
                 "(a prompt that exported nothing counts as a miss)",
    "worst_of_n": "share of exported pairs whose rejected is a gold-worst response",
    "correct": "share of exported pairs whose chosen has strictly higher gold than rejected",
    "wrong": "share of exported pairs whose chosen has strictly lower gold than rejected",
    "gold_gap": "mean gold(chosen) - gold(rejected) over exported pairs (logit units)",
    "gold_gap_per_prompt": "sum of gold(chosen) - gold(rejected) over the labelled prompts, "
                           "divided by their number (a dropped prompt adds 0)",
    "gold_gap_share": "gold_gap / West-of-N's gold_gap at the same seed",
    "gold_gap_per_prompt_share": "gold_gap_per_prompt / West-of-N's at the same seed",
    "exported": "share of the labelled prompts with an exported pair",
    "ties": "share of the labelled prompts whose judged responses all tied (dropped)",
    "unanswered": "share of the labelled prompts without a usable answer or pair (dropped)",
    "calls_per_prompt": "oracle calls per prompt = responses shown to the judge",
    "tokens_per_prompt": "estimated judge input tokens per prompt: (prompt + response "
                         "characters) / 4 per shown response",
    "wasted_calls": "share of the calls spent on prompts that exported nothing (ties)",
    "rm_accuracy": "a fresh head trained on the exported pairs: accuracy on every gold-"
                   "ordered pair of the held-out prompts",
    "rm_log_likelihood": "that head's mean log-likelihood of the held-out pairs' labels",
    "rm_regret": "that head's best-of-N regret on the held-out prompts (logit units)",
    "rm_pairs": "pairs that head trained on",
    "d_best_of_n": "best_of_n minus random's (paired by seed)",
    "d_gold_gap_per_prompt": "gold_gap_per_prompt minus random's (paired by seed)",
    "d_rm_accuracy": "rm_accuracy minus random's (paired by seed)",
}
LC = ("best_of_n", "worst_of_n", "correct", "wrong", "gold_gap", "gold_gap_per_prompt",
      "gold_gap_share", "gold_gap_per_prompt_share", "d_best_of_n", "d_gold_gap_per_prompt")
LC_NOTE = {"lc": " -- against the length-controlled gold (the gold with the effect of the "
                 "standardised log-length regressed out within prompts, the model identity in the "
                 "regression and kept, as AlpacaEval's LC win rate; aeuf.bench.quality.lc_gold)",
           "lcl": " -- against the gold with every length signal regressed out (length alone "
                  "in the regression, so the part of the models' quality that goes with "
                  "writing long is removed too)"}
for _v, _note in LC_NOTE.items():
    ONCE_MEANS.update({(f"d_{_v}_{k[2:]}" if k.startswith("d_") else f"{_v}_{k}"):
                       ONCE_MEANS[k] + _note for k in LC})

BUDGET_MEANS = {
    "final_accuracy": "held-out pair accuracy of the head after the last round",
    "final_log_likelihood": "held-out mean log-likelihood after the last round",
    "final_regret": "held-out best-of-N regret after the last round (logit units)",
    "auc_accuracy": "mean held-out accuracy over the curve (trapezoid area / label range)",
    "d_final_accuracy": "final_accuracy minus random's (paired by seed)",
    "d_auc_accuracy": "auc_accuracy minus random's (paired by seed)",
    "d_final_log_likelihood": "final_log_likelihood minus random's (paired by seed)",
    "d_final_regret": "final_regret minus random's (paired by seed)",
    "calls": "oracle calls = responses shown, per run",
    "passes": "passes over the pool completed (a budget above the pool re-opens prompts)",
    "fit_s": "wall seconds of the head's fits per run",
    "select_s": "wall seconds of choosing (and judging by replay) per run",
}

BUDGET_OTHER = {
    "labels": "labels (comparisons) after each round, shared by every seed",
    "accuracy": "held-out accuracy after each round (mean over seeds; accuracy_se: SE)",
    "log_likelihood": "held-out log-likelihood after each round (log_likelihood_se: SE)",
    "regret": "held-out best-of-N regret after each round (regret_se: SE)",
    "target_accuracy": "random's mean final accuracy (the labels-saved target)",
    "labels_to_target": "labels at which the rule's mean curve first reaches the target "
                        "(linear interpolation; None: never)",
    "labels_saved": "1 - labels_to_target / random's (None: the target is not reached)",
    "labels_saved_lo": "2.5th percentile of labels_saved over a paired bootstrap of the "
                       "seeds (None: not reached in that resample)",
    "labels_saved_hi": "97.5th percentile of the same bootstrap",
    "labels_saved_reached": "share of bootstrap resamples in which the target is reached",
    "beats_length": "final mean accuracy above the longer-response-wins baseline's",
}

REFERENCE_FIELDS = {
    "kind": "baseline (no learning) or ceiling (the head trained on all pool pairs)",
    "name": "random (coin flip), length (the longer response wins), or the ceiling's head",
    "features": "feature set of a ceiling (None for a baseline)",
    "accuracy": "held-out pair accuracy", "log_likelihood": "held-out log-likelihood (None: "
    "no probabilities)", "regret": "held-out best-of-N regret",
}


def fields_of(regime: str) -> dict:
    """Every row field of a regime -> its description (`x_se` for each mean field `x`)."""
    means = ONCE_MEANS if regime == "once" else BUDGET_MEANS
    out = dict(ROW_KEYS)
    for name, text in means.items():
        out[name], out[f"{name}_se"] = text, f"standard error of {name} over seeds"
    if regime == "budget":
        out.update(BUDGET_OTHER)
        out.update({f"{m}_se": f"standard error of {m} per round" for m in
                    ("accuracy", "log_likelihood", "regret")})
    return out


def _ms(values: list) -> tuple:
    """(mean, se) of the defined values (None, None when none is; se None from one value:
    one seed has no spread to show)."""
    v = [x for x in values if x is not None and np.isfinite(x)]
    if not v:
        return None, None
    m, se = mean_se(v)
    return round(float(m), 6), (round(float(se), 6) if len(v) > 1 else None)


def _put(row: dict, name: str, values: list) -> None:
    row[name], row[f"{name}_se"] = _ms(values)


def _paired(row: dict, name: str, mine: list, ref: list | None) -> None:
    ok = ref is not None and all(x is not None for x in (*mine, *ref))
    m, se = paired_difference(mine, ref) if ok else (None, None)
    row[f"d_{name}"] = None if m is None else round(m, 6)
    row[f"d_{name}_se"] = None if se is None or len(mine) < 2 else round(se, 6)


def once_runs(curves: list, gold, lc: dict | None = None) -> list[dict]:
    """Per seed: the quality numbers and the reward model's of one rule's runs; with `lc`
    (name -> a length-controlled gold) each gold number again as <name>_<number>."""
    out = []
    for c in curves:
        q = dataset_quality(c.labelled, gold, shown=c.shown, tokens=c.tokens)
        for v, g in (lc or {}).items():
            q.update({f"{v}_{k}": x for k, x in
                      dataset_quality(c.labelled, g, shown=c.shown, tokens=c.tokens).items()
                      if k in LC})
        rm = c.rm._asdict() if c.rm is not None else dict.fromkeys(Evaluation._fields)
        q.update({f"rm_{k}": v for k, v in rm.items()})
        q["rm_pairs"] = sum(not x.tie for x in c.labelled)
        out.append(q)
    return out


def once_row(runs: list[dict], won: list[dict] | None, ref: list[dict] | None) -> dict:
    """One rule's once-regime fields from its per-seed numbers; won / ref: West-of-N's and
    random's per-seed numbers (same seeds) or None."""
    row: dict = {}
    for name in ONCE_MEANS:
        if name.startswith("d_"):
            base = name[2:]
            _paired(row, base, [r.get(base) for r in runs],
                    None if ref is None else [r.get(base) for r in ref])
        elif name.endswith("_share"):
            base = name[: -len("_share")]
            vals = [None if w is None or not w.get(base) or r.get(base) is None else r[base] / w[base]
                    for r, w in zip(runs, won or [None] * len(runs))]
            _put(row, name, vals)
        else:
            _put(row, name, [r.get(name) for r in runs])
    return row


def budget_row(curves: list, ref: list | None, length_acc: float | None, bench) -> dict:
    """One rule's budget-regime fields; ref: random's curves (same seeds) or None."""
    labels = curves[0].labels
    row: dict = {"labels": [int(x) for x in labels]}
    for metric in ("accuracy", "log_likelihood", "regret"):
        m, se = mean_se(np.stack([getattr(c, metric) for c in curves]))
        row[metric], row[f"{metric}_se"] = np.round(m, 6).tolist(), np.round(se, 6).tolist()
    pick = {"final_accuracy": lambda c: c.accuracy[-1], "final_log_likelihood": lambda c: c.log_likelihood[-1],
            "final_regret": lambda c: c.regret[-1],
            "auc_accuracy": lambda c: area_under_curve(c.labels, c.accuracy)}
    for name, f in pick.items():
        _put(row, name, [float(f(c)) for c in curves])
        _paired(row, name, [float(f(c)) for c in curves],
                None if ref is None else [float(f(c)) for c in ref])
    for name, f in {"calls": lambda c: c.shown, "passes": lambda c: c.passes,
                    "fit_s": lambda c: c.fit_s, "select_s": lambda c: c.select_s}.items():
        _put(row, name, [float(f(c)) for c in curves])
    row.update(saved_fields(labels, curves, ref, bench))
    row["beats_length"] = None if length_acc is None else bool(row["final_accuracy"] > length_acc)
    return row


def saved_fields(labels, curves: list, ref: list | None, bench) -> dict:
    """target_accuracy, labels_to_target, labels_saved and its bootstrap band."""
    if ref is None:
        return dict.fromkeys(("target_accuracy", "labels_to_target", "labels_saved",
                              "labels_saved_lo", "labels_saved_hi", "labels_saved_reached"))
    acc = np.stack([c.accuracy for c in curves])
    racc = np.stack([c.accuracy for c in ref])
    target = float(racc.mean(0)[-1])
    n = labels_to_reach(labels, acc.mean(0), target)
    saved = labels_saved(labels, acc.mean(0), racc.mean(0))
    lo, hi, reached = labels_saved_band(labels, acc, racc, resamples=bench.bootstrap,
                                        seed=bench.split_seed)
    r4 = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
    return {"target_accuracy": round(target, 6), "labels_to_target": r4(n), "labels_saved": r4(saved),
            "labels_saved_lo": r4(lo), "labels_saved_hi": r4(hi), "labels_saved_reached": r4(reached)}


def _eval(kind: str, name: str, features, e: Evaluation) -> dict:
    vals = {k: (None if v is None else round(float(v), 6)) for k, v in e._asdict().items()}
    return {"kind": kind, "name": name, "features": features, **vals}


def summarise(results: Results, config: dict, bench) -> dict:
    """Results -> the JSON-ready summary (see the module docstring)."""
    rows, reference = [], []
    once = results.regime == "once"
    length = results.baselines.get("length")
    for mode, heads in results.curves.items():
        for head, rules in heads.items():
            per = ({r: once_runs(c, results.gold, results.lc_gold) for r, c in rules.items()}
                   if once else {})
            for rule, curves in rules.items():
                key = {"regime": results.regime, "label_mode": mode, "head": head, "rule": rule,
                       "kind": "rule" if rule in bench.rules else "baseline", "seeds": len(curves)}
                fields = (once_row(per[rule], per.get("west_of_n"), per.get("random")) if once
                          else budget_row(curves, rules.get("random"),
                                          None if length is None else length.accuracy, bench))
                fields["agreement_rounds"] = agreement.rounds([list(c.agreement) for c in curves])
                rows.append({**key, **fields})
    for name, e in results.baselines.items():
        reference.append(_eval("baseline", name, None, e))
    for head, sets in results.ceilings.items():
        reference += [_eval("ceiling", head, fs, e) for fs, e in sets.items()]
    return {"regime": results.regime, "config": config, "split": results.split,
            "fields": fields_of(results.regime), "reference_fields": REFERENCE_FIELDS,
            "rows": rows, "reference": reference}
