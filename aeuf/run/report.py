"""report.md of a run: what was made, how, at what cost, and what went wrong (pure text).

`run_facts` gathers the figures from a finished run's pieces; `render` turns them into
markdown that links the PNGs written beside it (aeuf.run.plots).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from aeuf import io
from aeuf.card.words import esc
from aeuf.config import RunConfig
from aeuf.oracle import Capabilities, capabilities
from aeuf.oracle.agreement import agreement, agreement_line
from aeuf.oracle.hygiene import hygiene_json, hygiene_lines, judge_hygiene
from aeuf.run.plots import has_progress, plot_progress, plot_ratings
from aeuf.run.round import signals
from aeuf.types import SELF_LABEL, JudgeAnswer, Labelled, ResponsePool


def failure_kinds(answers: list[JudgeAnswer]) -> dict[str, int]:
    """Answers without a value, by kind ("transport", "unparsable", "refused", "missing", ...:
    the word before the first colon of the error)."""
    return dict(Counter((a.error or "unknown").split(":", 1)[0] for a in answers
                        if a.value is None))


def length_bias(pool: ResponsePool, labelled: list[Labelled]) -> float | None:
    """Share of decided prompts whose chosen response is the longer of the exported pair
    (0.5 = no length preference; shipped GPT-4 judges sit near 0.68)."""
    decided = [x for x in labelled if not x.tie]
    lengths = [(len(str(pool.responses[x.prompt, x.slots[x.chosen]])),
                len(str(pool.responses[x.prompt, x.slots[x.rejected]]))) for x in decided]
    lengths = [(c, r) for c, r in lengths if c != r]
    return float(np.mean([c > r for c, r in lengths])) if lengths else None


class AskedKeys:
    """The ledger as the loop's judge sees it, noting the keys of every request a round asks
    for (sent now or answered before), so each answer's cost is charged to one round."""

    def __init__(self, ledger) -> None:
        self.ledger, self.keys = ledger, []

    def judge(self, oracle, tasks, **options):
        return self.ledger.judge(oracle, tasks, planned=self.keys, **options)


def cost_per_round(round_keys: list[set[str]], answers: list[JudgeAnswer]) -> list[float]:
    """Oracle cost of each round: each answer charged once, to the first round that asked
    for its key (a later round that revisits a prompt pays only for its new requests)."""
    cost = {a.key: a.cost for a in answers}
    charged: set[str] = set()
    out = []
    for keys in round_keys:
        new = set(keys) - charged
        charged |= new
        out.append(float(sum(cost.get(k, 0.0) for k in new)))
    return out


def _table(rows: list[dict]) -> list[str]:
    """The per-round table; who labelled the rows (head / cheap judge / strong judge) when
    self-labelling or a cascade took part."""
    routed = any(r.get("self_labelled") or r.get("cheap_only") for r in rows)
    extra = " self-labelled (share) | cheap judge only | strong judge |" if routed else ""
    out = ["| round | rule | asked | labelled | ties | no label | head agreed before label | "
           "best single feature, same pairs | pair std | cost |" + extra,
           "|---" * (10 + 3 * routed) + "|"]
    for r in rows:
        agree = "—" if r.get("agreement") is None else f"{r['agreement']:.2f}"
        unc = "—" if r.get("uncertainty") is None else f"{r['uncertainty']:.3f}"
        top = signals.best(r.get("baselines"))
        base = "—" if top is None else f"{top[1]:.2f} ({top[0]})"
        line = (f"| {r['round']} | {r['rule']} | {r['asked']} | {r['labelled']} | {r['ties']} "
                f"| {r['unanswered']} | {agree} | {base} | {unc} | ${r.get('cost', 0.0):.4f} |")
        if routed:
            line += (f" {r.get('self_labelled', 0)} ({r.get('self_label_share', 0.0):.2f}) | "
                     f"{r.get('cheap_only', 0)} | {r.get('strong', 0)} |")
        out.append(line)
    return out


def _ties(f: dict) -> str:
    """The ties line: how many, and whether they are rows of the export."""
    kept = f.get("ties_kept", 0)
    if not f["ties"]:
        return "0"
    if kept == f["ties"]:
        return f"{kept} (exported as rows with `tie` = true and margin 0: --keep_ties)"
    if kept:
        return f"{f['ties']} ({kept} exported as rows with `tie` = true, the rest not)"
    return f"{f['ties']} (not exported; --keep_ties keeps them as rows)"


def _tie_rows(f: dict) -> str:
    kept = f.get("ties_kept", 0)
    return f", {kept} of them ties" if kept else ""


def render(f: dict) -> str:
    """The markdown report from the facts dict (keys as `aeuf.run.loop` fills them)."""
    lines = [f"# aeuf run: {esc(f['name'])}", "",
             f"{f['rows']} preference rows from {f['prompts']} prompts x {f['responses']} "
             f"responses ({esc(f['input'])}), labelled by the **{f['oracle']}** oracle"
             f"{' (' + esc(f['judge']) + ')' if f.get('judge') else ''}.", "",
             "| | |", "|---|---|",
             f"| rows exported | {f['rows']} (`preferences.jsonl`, `preferences.parquet`, `hf/`)"
             f"{_tie_rows(f)} |",
             f"| prompts labelled | {f['labelled'] + f['ties']} of {f['prompts']}: "
             f"{f['labelled']} decided, {f['ties']} tied |",
             f"| ties | {_ties(f)} |",
             f"| prompts without a usable label | {f['unanswered']} |",
             *([f"| prompts the oracle cannot label (fewer than 2 responses with a gold "
                f"score) | {f['no_gold']} |"] if f.get("no_gold") else []),
             f"| labelled prompts with a response too long for the judge | {f.get('cut', 0)} "
             f"(`cut` column; --judge_overlong {f.get('overlong', 'loss')}) |",
             f"| prompts skipped while reading | {f['skipped']} (fewer responses than the rest) |",
             f"| oracle requests | {f['requests']} ({f['sent_now']} sent by this run) |",
             f"| cost | ${f['cost']:.4f} |",
             f"| selection | first round `{f['initial_rule']}`, then `{f['rule']}` on a "
             f"`{f['head']}` head over `{f['features']}` features |", ""]
    if f.get("stopped"):
        lines += [f"**Stopped early:** {f['stopped']}.", ""]
    if f.get("possibly_paid"):
        lines += [f"**Possibly paid, no answer:** {esc(f['possibly_paid'])}.", ""]
    if f.get("failures"):
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(f["failures"].items()))
        lines += [f"**Oracle answers without a value:** {kinds}. The raw replies are in "
                  "`judgements.jsonl` (field `raw`, `error`); transport failures are asked "
                  "again on a rerun" + (", unparsable ones with `--retry_unparsable`."
                                        if f["failures"].get("unparsable") else "."), ""]
    if f.get("length_bias") is not None:
        lines += [f"**Length preference:** the chosen response is the longer one in "
                  f"{f['length_bias']:.0%} of the decided pairs (50% = none).", ""]
    if f.get("hygiene_lines"):
        lines += ["## The judge", "", "What the judge's own answers say about it (also in "
                  "`judge_hygiene.json`):", "", *[f"- {x}" for x in f["hygiene_lines"]], ""]
    lines += ["## Rounds", "", *_table(f["rounds"]), ""]
    if f.get("cost_elsewhere", 0.0) > 5e-5:
        lines += [f"The cost column charges each answer once, to the round that asked for it; "
                  f"${f['cost_elsewhere']:.4f} of the total is for answers in "
                  "`judgements.jsonl` that no round of this run asked for (e.g. an earlier "
                  "`aeuf judge` of its annotation file).", ""]
    if f["rounds"] and "progress" not in f.get("plots", {}):
        lines += ["No progress plot: the head's agreement and uncertainty are measured from "
                  "the second round on (the first round is model-free).", ""]
    lines += [f"![{name}]({path})" for name, path in f.get("plots", {}).items()]
    return "\n".join(lines) + "\n"


def facts(cfg: RunConfig, out: Path, pool: ResponsePool, answers: list[JudgeAnswer], s,
          labelled: list[Labelled], ties_kept: int = 0) -> dict:
    """Everything the report (and the dataset card) says about a finished run.
    s: the run's RunSummary; ties_kept: tied prompts exported as rows (--keep_ties)."""
    costs = cost_per_round([r["keys"] for r in s.progress], answers)
    judge = cfg.oracle.judge.model and f"{cfg.oracle.judge.model}, template {cfg.oracle.template}"
    caps = capabilities(cfg.oracle, has_gold=pool.gold is not None)
    return {"name": out.name, "input": cfg.input.path, "prompts": s.prompts,
            "responses": pool.shape[1], "oracle": s.oracle,
            "judge": _judge_words(cfg, s.oracle, caps, judge, s.progress),
            "rows": s.rows, "labelled": s.labelled, "ties": s.ties, "ties_kept": ties_kept,
            "unanswered": s.failed, "stopped": _stopped(s), "possibly_paid": s.possibly_paid,
            "skipped": s.skipped, "no_gold": _without_gold(pool, caps),
            "requests": s.requests_logged, "sent_now": s.requests_sent,
            "cost": s.cost, "initial_rule": cfg.loop.initial_rule, "rule": cfg.acquire.rule,
            "head": cfg.head.name, "features": cfg.features.features,
            "failures": failure_kinds(answers), "length_bias": length_bias(pool, labelled),
            "cut": sum(1 for x in labelled if x.cut), "overlong": cfg.oracle.overlong,
            "tokens": int(sum(a.tokens for a in answers)),
            **_hygiene(caps.model_judge, answers, pool),
            "rounds": [{k: v for k, v in r.items() if k != "keys"} | {"cost": c}
                       for r, c in zip(s.progress, costs)],
            "cost_elsewhere": max(s.cost - sum(costs), 0.0)}


def _without_gold(pool: ResponsePool, caps: Capabilities) -> int:
    """Prompts an oracle that answers from the gold cannot label: fewer than two responses
    with a gold score (they are never chosen)."""
    if not caps.uses_gold or pool.gold is None:
        return 0
    return int(np.sum(np.isfinite(pool.gold).sum(axis=1) < 2))


def _judge_words(cfg: RunConfig, oracle: str, caps: Capabilities, judge: str | None,
                 rounds: list[dict]) -> str | None:
    """The judge's model and template, and a cascade's cheap judge with its share of rows."""
    if not caps.llm_judge:
        return None
    o = _oracle(cfg, oracle, caps, rounds)
    if "cheap_model" not in o:
        return judge
    return (f"{judge}; cheap judge {o['cheap_model']} first: {o['cheap_rows']} pairs labelled "
            f"by the cheap judge alone, {o['strong_rows']} by {o['model']}")


def _stopped(s) -> str:
    """Why the run ended before its last planned round, or ""."""
    if s.stopped_why:
        return s.stopped_why
    if s.stopped_by_budget:
        return ("the --max_cost/--max_requests budget was reached; raise it and rerun the "
                "same command to continue")
    return ""


def _hygiene(model_judge: bool, answers: list[JudgeAnswer], pool: ResponsePool) -> dict:
    """A model judge's hygiene figures (aeuf.oracle.hygiene): LLM judges, reward models; and
    when several people voted on pairs (web oracle), how much they agree."""
    out: dict = {"hygiene": {}, "hygiene_lines": []}
    if model_judge and answers:
        texts = dict(zip(pool.response_ids.reshape(-1).tolist(),
                         pool.responses.reshape(-1).tolist()))
        report = judge_hygiene(answers, texts)
        out = {"hygiene": hygiene_json(report), "hygiene_lines": hygiene_lines(report)}
    agree = agreement(answers)  # Fleiss' kappa, each annotator vs the majority
    if agree["annotators"]:
        out["hygiene"]["agreement"] = agree
        out["hygiene_lines"].append(agreement_line(agree))
    return out


def write(out: Path, f: dict, labelled: list[Labelled]) -> Path:
    """report.md with progress.png and ratings.png beside it: -> the report's path."""
    plots = {}
    if has_progress(f["rounds"]):
        plots["progress"] = plot_progress(f["rounds"], out / "progress.png").name
    else:  # e.g. one model-free round: nothing to draw, and no stale picture left
        (out / "progress.png").unlink(missing_ok=True)
    decided = [x for x in labelled if not x.tie and x.judge != SELF_LABEL]  # oracle scores
    if decided:
        plots["ratings"] = plot_ratings([float(x.scores[x.chosen]) for x in decided],
                                        [float(x.scores[x.rejected]) for x in decided],
                                        out / "ratings.png").name
    else:
        (out / "ratings.png").unlink(missing_ok=True)
    if f["hygiene"]:
        io.atomic_write_json(out / "judge_hygiene.json", f["hygiene"])
    path = out / "report.md"
    io.atomic_write_text(path, render({**f, "plots": plots}))
    return path


def card_facts(cfg: RunConfig, pool: ResponsePool, s, f: dict, frame) -> dict:
    """The dataset card's facts (aeuf.card) from the run's."""
    models = sorted({m for m in pool.models.reshape(-1) if isinstance(m, str) and m})
    hygiene = {}
    if f["length_bias"] is not None:
        hygiene["length bias"] = {"value": round(f["length_bias"], 3),
                                  "note": "share of pairs whose chosen response is the longer"}
    for judge, h in f["hygiene"].items():
        for name, note in HYGIENE_NOTES.items():
            if h.get(name) is not None:
                hygiene[f"{judge} {name.replace('_', ' ')}"] = {"value": round(h[name], 3),
                                                                "note": note}
    people = f["hygiene"].get("agreement") or {}  # the web oracle's annotators
    if people.get("fleiss_kappa") is not None:
        hygiene["annotators' Fleiss' kappa"] = {
            "value": round(people["fleiss_kappa"], 3),
            "note": f"agreement beyond chance of the annotators over {people['pairs']} pairs "
                    f"with {people['votes_per_pair']} votes each (1 = full, 0 = chance)"}
    agree = [r["agreement"] for r in f["rounds"] if r.get("agreement") is not None]
    if agree:
        hygiene["head/oracle agreement, last round"] = {
            "value": round(agree[-1], 3),
            "note": "share of the last round's pairs where the reward head, before the "
                    "label, favoured the response the oracle chose"}
    return {"name": f"{f['name']} (aeuf)", "repo_id": cfg.export.push_to_hub,
            "format": cfg.export.format, "columns": list(frame.columns),
            "pool": {"source": cfg.input.path, "prompts": s.prompts,
                     "responses_per_prompt": pool.shape[1], "models": models,
                     "skipped": s.skipped},
            "features": cfg.features.features, "encoder": cfg.features.encoder,
            "head": {"name": cfg.head.name, "members": cfg.head.members},
            "rules": list(dict.fromkeys([cfg.loop.initial_rule, cfg.acquire.rule])),
            "num_annotations": cfg.acquire.num_annotations,
            "oracle": _oracle(cfg, s.oracle, capabilities(cfg.oracle, has_gold=pool.gold is not None),
                              f["rounds"]),
            "rounds": len(f["rounds"]), "budget": cfg.loop.budget or "every prompt once",
            "seed": cfg.loop.seed,
            "counts": {**frame.attrs, "failed": s.failed},
            "cost": {"total": s.cost, "requests": s.requests_logged, "tokens": f["tokens"]},
            "hygiene": hygiene, "report": "report.md"}


HYGIENE_NOTES = {
    "swap_consistency": "share of pairs judged in both orders whose two verdicts agree "
                        "(1 = no position bias)",
    "longer_wins": "share of decided comparisons won by the longer response (0.5 = no "
                   "length preference)",
    "length_spearman": "Spearman correlation of the judge's ratings with response length "
                       "(0 = none)",
    "tie_rate": "share of judged prompts whose responses got equal ratings",
}


def _oracle(cfg: RunConfig, name: str, caps: Capabilities, rounds: list[dict]) -> dict:
    """The card's oracle: the judge's model and template for LLM judges only, the label mode
    for gold replay only, and a cascade's cheap judge with the rows each judge labelled."""
    o = {"name": name}
    if caps.llm_judge:
        o |= {"model": cfg.oracle.judge.model, "template": cfg.oracle.template}
    if caps.utilities:
        o["label_mode"] = cfg.oracle.label_mode
    if caps.reward_model:
        o["reward_model"] = cfg.oracle.rm.model
    if cfg.oracle.cheap_judge.model and caps.llm_judge:
        o["cheap_model"] = cfg.oracle.cheap_judge.model
        o["cheap_rows"] = int(sum(r.get("cheap_only", 0) for r in rounds))
        o["strong_rows"] = int(sum(r.get("strong", 0) for r in rounds))
    return o
