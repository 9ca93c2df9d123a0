"""The end of a run: the export (preferences, hf/ with its card, report.md) and the
RunSummary that `aeuf` prints; also the annotation export of a run without an oracle."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from aeuf import dataset, io
from aeuf.card import render_card
from aeuf.config import RunConfig
from aeuf.errors import NothingLabelled
from aeuf.oracle import Oracle
from aeuf.run import cascade, records, report
from aeuf.run.ledger import Ledger, unanswered_note
from aeuf.run.round import engine
from aeuf.run.round.types import Context, State
from aeuf.types import ResponsePool


class RunSummary(NamedTuple):
    output_dir: Path
    prompts: int
    labelled: int
    ties: int
    rows: int
    comparisons: int
    requests_sent: int
    requests_logged: int
    failed: int
    skipped: int
    cost: float
    files: dict
    annotation_file: Path | None
    stopped_by_budget: bool
    oracle: str
    progress: list  # per round: labelled, head/oracle agreement before labelling, uncertainty
    judge_lines: tuple = ()  # the LLM judge's hygiene, one line per model/template
    cost_line: str = ""  # requests, tokens and cost per judge model when several judged
    stopped_why: str = ""  # why the run ended before its last round (--stop_when_agreement)
    not_reached: int = 0  # prompts chosen but never asked: the --max_cost/--max_requests cap
    possibly_paid: str = ""  # requests an earlier run sent without a logged answer (not re-sent)
    no_gold: int = 0  # prompts a gold oracle cannot label: fewer than two gold scores


def annotate(ctx: Context, rd: io.RunDir, pool: ResponsePool, ledger: Ledger,
              oracle: Oracle) -> RunSummary:
    """No oracle: one model-free round over the budget, written for annotation."""
    state = engine.initial_state(pool.shape[0])
    plan = engine.choose(ctx, state, 0, sum(engine.sizes_of(ctx)))
    rd.save_round(0, records.plan_record(plan, pool))
    path = rd.write_annotations(records.annotation_records(pool, plan))
    return _summary(rd, pool, ledger, oracle, state, [], {}, [], annotation=path)


def export(cfg: RunConfig, rd: io.RunDir, pool: ResponsePool, ledger: Ledger, oracle: Oracle,
            state: State, labelled: list, rows: list, why: str = "") -> RunSummary:
    """preferences.{jsonl,parquet}, hf/ with its dataset card, report.md and its pictures.
    why: why the run stopped before its last round ("" when it did not)."""
    frame = dataset.build_rows(pool, labelled, cfg.export)
    summary = _summary(rd, pool, ledger, oracle, state, labelled, {}, rows,
                       frame_rows=len(frame))._replace(stopped_why=why)
    facts = report.facts(cfg, rd.path, pool, list(ledger.answers.values()), summary, labelled,
                         ties_kept=frame.attrs.get("ties_kept", 0))
    card = render_card(report.card_facts(cfg, pool, summary, facts, frame))
    if len(frame):
        files = io.write_preferences(frame, rd.path, cfg.export, card)
    else:  # an export is the run's own or absent: never an earlier run's beside this report
        io.remove_preferences(rd.path)
        files = {}
    files["report"] = report.write(rd.path, facts, labelled)
    if summary.labelled == 0 and not summary.stopped_by_budget and not len(frame):
        raise NothingLabelled(_nothing_reason(facts, rd.path))
    costs = cascade.judge_costs(ledger.answers.values())
    return summary._replace(files=files, judge_lines=tuple(facts["hygiene_lines"]),
                            no_gold=facts["no_gold"],
                            cost_line=cascade.describe_costs(costs) if len(costs) > 1 else "")


def _nothing_reason(f: dict, out: Path) -> str:
    if f["ties"] and not f["failures"]:  # every answer came back, each a tie
        return (f"every answer of the {f['oracle']} oracle was a tie ({f['ties']} ties): no "
                f"chosen/rejected pair to export; rerun with --keep_ties to export them as rows "
                f"with tie=true (see {out / 'report.md'})")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(f["failures"].items())) or "no answers"
    hint = (" (rerun with --retry_unparsable, or try another --judge_template or a stronger "
            "--judge_model)" if f["failures"].get("unparsable") else "")
    return (f"no prompt got a usable label from the {f['oracle']} oracle ({f['ties']} ties; "
            f"answers without a value: {kinds}){hint}; the raw replies are in "
            f"{out / 'judgements.jsonl'} and {out / 'report.md'}")


def _summary(rd, pool, ledger: Ledger, oracle: Oracle, state: State, labelled: list, files: dict,
             rows: list, *, annotation=None, frame_rows: int = 0) -> RunSummary:
    asked = sum(r["asked"] for r in rows)
    unsent = _not_reached(pool, ledger, labelled, rows)
    done = {str(pool.prompt_ids[x.prompt]) for x in labelled}
    lost = {i.prompt_id for i in ledger.left_out.values()} - done  # possibly paid, not re-sent
    return RunSummary(
        output_dir=rd.path, prompts=pool.shape[0], labelled=sum(not x.tie for x in labelled),
        ties=sum(x.tie for x in labelled), rows=frame_rows, comparisons=state.comps.size,
        requests_sent=ledger.sent, requests_logged=ledger.paid_requests,
        failed=max(asked - len(labelled) - unsent - len(lost), 0), skipped=len(pool.skipped),
        cost=ledger.answered_cost, files=files, annotation_file=annotation,
        stopped_by_budget=ledger.exhausted, oracle=oracle.name, progress=rows,
        not_reached=unsent, possibly_paid=unanswered_note(list(ledger.left_out.values()), done))


def _not_reached(pool, ledger: Ledger, labelled: list, rows: list) -> int:
    """Prompts a round chose that got no label and no answer at all because the spending cap
    stopped the run first (not failures of the oracle)."""
    if not ledger.exhausted:
        return 0
    chosen = set().union(*(r.get("prompt_ids", set()) for r in rows))
    done = {str(pool.prompt_ids[x.prompt]) for x in labelled}
    answered = {str(a.prompt_id) for a in ledger.answers.values()}
    return len(chosen - done - answered)


