"""report.md of a run: what was made, how, at what cost, and what went wrong (pure text).

`run_facts` gathers the figures from a finished run's pieces; `render` turns them into
markdown that links the PNGs written beside it (aeuf.run.plots).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from aeuf import io
from aeuf.config import RunConfig
from aeuf.oracle.hygiene import hygiene_json, hygiene_lines, judge_hygiene
from aeuf.run.plots import plot_progress, plot_ratings
from aeuf.run.round import signals
from aeuf.types import JudgeAnswer, Labelled, ResponsePool


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


def cost_per_round(rows: list[dict], plans_prompts: list[set[str]],
                   answers: list[JudgeAnswer]) -> list[float]:
    """Oracle cost of each round: the answers about that round's prompts."""
    by_prompt: Counter = Counter()
    for a in answers:
        by_prompt[a.prompt_id] += a.cost
    return [float(sum(by_prompt[p] for p in prompts)) for prompts in plans_prompts]


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


def render(f: dict) -> str:
    """The markdown report from the facts dict (keys as `aeuf.run.loop` fills them)."""
    lines = [f"# aeuf run: {f['name']}", "",
             f"{f['rows']} preference rows from {f['prompts']} prompts x {f['responses']} "
             f"responses ({f['input']}), labelled by the **{f['oracle']}** oracle"
             f"{' (' + f['judge'] + ')' if f.get('judge') else ''}.", "",
             "| | |", "|---|---|",
             f"| rows exported | {f['rows']} (`preferences.jsonl`, `preferences.parquet`, `hf/`) |",
             f"| prompts labelled | {f['labelled']} of {f['prompts']} |",
             f"| ties (not exported) | {f['ties']} |",
             f"| prompts without a usable label | {f['unanswered']} |",
             f"| prompts skipped while reading | {f['skipped']} (fewer responses than the rest) |",
             f"| oracle requests | {f['requests']} ({f['sent_now']} sent by this run) |",
             f"| cost | ${f['cost']:.4f} |",
             f"| selection | first round `{f['initial_rule']}`, then `{f['rule']}` on a "
             f"`{f['head']}` head over `{f['features']}` features |", ""]
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
    lines += [f"![{name}]({path})" for name, path in f.get("plots", {}).items()]
    return "\n".join(lines) + "\n"


def facts(cfg: RunConfig, out: Path, pool: ResponsePool, answers: list[JudgeAnswer], s,
          labelled: list[Labelled]) -> dict:
    """Everything the report (and the dataset card) says about a finished run.
    s: the run's RunSummary."""
    costs = cost_per_round(s.progress, [r["prompt_ids"] for r in s.progress], answers)
    judge = cfg.oracle.judge.model and f"{cfg.oracle.judge.model}, template {cfg.oracle.template}"
    return {"name": out.name, "input": cfg.input.path, "prompts": s.prompts,
            "responses": pool.shape[1], "oracle": s.oracle,
            "judge": judge if s.oracle in ("judge", "batch", "local") else None,
            "rows": s.rows, "labelled": s.labelled, "ties": s.ties, "unanswered": s.failed,
            "skipped": s.skipped, "requests": s.requests_logged, "sent_now": s.requests_sent,
            "cost": s.cost, "initial_rule": cfg.loop.initial_rule, "rule": cfg.acquire.rule,
            "head": cfg.head.name, "features": cfg.features.features,
            "failures": failure_kinds(answers), "length_bias": length_bias(pool, labelled),
            "tokens": int(sum(a.tokens for a in answers)),
            **_hygiene(s.oracle, answers, pool),
            "rounds": [{k: v for k, v in r.items() if k != "prompt_ids"} | {"cost": c}
                       for r, c in zip(s.progress, costs)]}


def _hygiene(oracle: str, answers: list[JudgeAnswer], pool: ResponsePool) -> dict:
    """The LLM judge's hygiene figures (aeuf.oracle.hygiene), for judge oracles only."""
    if oracle not in ("judge", "batch", "local") or not answers:
        return {"hygiene": {}, "hygiene_lines": []}
    texts = dict(zip(pool.response_ids.reshape(-1).tolist(), pool.responses.reshape(-1).tolist()))
    report = judge_hygiene(answers, texts)
    return {"hygiene": hygiene_json(report), "hygiene_lines": hygiene_lines(report)}


def write(out: Path, f: dict, labelled: list[Labelled]) -> Path:
    """report.md with progress.png and ratings.png beside it: -> the report's path."""
    plots = {}
    if f["rounds"]:
        plots["progress"] = plot_progress(f["rounds"], out / "progress.png").name
    decided = [x for x in labelled if not x.tie]
    if decided:
        plots["ratings"] = plot_ratings([float(x.scores[x.chosen]) for x in decided],
                                        [float(x.scores[x.rejected]) for x in decided],
                                        out / "ratings.png").name
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
        for name in ("swap_consistency", "longer_wins", "length_spearman", "tie_rate"):
            if h.get(name) is not None:
                hygiene[f"{judge} {name.replace('_', ' ')}"] = round(h[name], 3)
    agree = [r["agreement"] for r in f["rounds"] if r.get("agreement") is not None]
    if agree:
        hygiene["head/oracle agreement, last round"] = round(agree[-1], 3)
    return {"name": f"{f['name']} (aeuf)", "repo_id": cfg.export.push_to_hub,
            "format": cfg.export.format, "columns": list(frame.columns),
            "pool": {"source": cfg.input.path, "prompts": s.prompts,
                     "responses_per_prompt": pool.shape[1], "models": models,
                     "skipped": s.skipped},
            "features": cfg.features.features, "encoder": cfg.features.encoder,
            "head": {"name": cfg.head.name, "members": cfg.head.members},
            "rules": list(dict.fromkeys([cfg.loop.initial_rule, cfg.acquire.rule])),
            "num_annotations": cfg.acquire.num_annotations,
            "oracle": {"name": s.oracle, "model": cfg.oracle.judge.model,
                       "template": cfg.oracle.template, "label_mode": cfg.oracle.label_mode},
            "rounds": len(f["rounds"]), "budget": cfg.loop.budget, "seed": cfg.loop.seed,
            "counts": {**frame.attrs, "failed": s.failed},
            "cost": {"total": s.cost, "requests": s.requests_logged, "tokens": f["tokens"]},
            "hygiene": hygiene, "report": "report.md"}
