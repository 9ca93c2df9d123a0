"""`aeuf judge FILE`: judge an annotation (or pool) file into a folder's judgements.jsonl.

Answers go to the same append-only log a run uses (through the ledger: never paid twice),
so rerunning the main command with the same judge reuses every one. judged.jsonl gets one
line per prompt: ratings, pairs, the ids of responses too long to show whole (`cut`,
--judge_overlong), chosen / rejected response ids.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from aeuf import io
from aeuf.config import OracleConfig, SpendConfig
from aeuf.dataset import judgement_scores
from aeuf.errors import ConfigError
from aeuf.oracle import ORACLES, auto_name, make_oracle
from aeuf.oracle.judge import estimate_cost, make_spec, plan_requests
from aeuf.run.annotators import link_options
from aeuf.run.ledger import Ledger, unanswered_note
from aeuf.types import Judgement


class JudgePlan(NamedTuple):
    """What `aeuf judge --dry_run` would do: requests still unanswered and their cost cap."""

    prompts: int
    requests: int
    answered: int
    cost: float | None
    oracle: str
    unanswered: int = 0  # possibly paid by an earlier run, no logged answer: not sent again


class JudgeSummary(NamedTuple):
    decided: int
    prompts: int
    oracle: str
    sent: int
    cost: float
    exhausted: bool
    output: Path
    possibly_paid: str = ""  # requests an earlier run sent without a logged answer


def judged_line(j: Judgement) -> dict:
    """One prompt's result: ratings (null = missing), pairs, chosen / rejected ids."""
    scores = [float(s) for s in judgement_scores(j)]
    seen = [i for i, s in enumerate(scores) if math.isfinite(s)]
    best = max(seen, key=lambda i: scores[i], default=None)
    worst = min(seen, key=lambda i: scores[i], default=None)
    decided = best is not None and scores[best] > scores[worst]
    return {"prompt_id": j.task.prompt_id, "response_ids": list(j.task.response_ids),
            "ratings": [float(r) if math.isfinite(r) else None for r in j.ratings],
            "pairs": [[i, k, p] for i, k, p in j.pairs],
            "cut": [j.task.response_ids[c] for c in j.cut],
            "chosen_id": j.task.response_ids[best] if decided else None,
            "rejected_id": j.task.response_ids[worst] if decided else None}


def _check_labels(oracle) -> None:
    if not oracle.caps.labels:
        raise ConfigError("nothing to judge with: pass --judge_base_url URL --judge_model NAME, "
                          "--oracle local or --oracle human")


def plan_file(cfg: OracleConfig, path: str, out: Path | None,
              spend: SpendConfig | None = None) -> JudgePlan:
    """The dry run of judge_file: what it would send, read from the input and any existing
    judgements.jsonl; nothing is sent, nothing is written (no folder, no lock), no key or
    model is needed."""
    tasks, has_gold = io.read_judge_tasks(path)
    out = Path(out) if out else Path(path).resolve().parent
    name, plan, estimate = _planner(cfg, has_gold)
    ledger = Ledger.open(io.JudgementLog(out / "judgements.jsonl"), **_retries(spend or SpendConfig()))
    requests = [r for t in tasks for r in plan(t)]
    todo, skipped = ledger.pending(requests), ledger.skipped(requests)
    cost = None if estimate is None else sum(estimate(r) for r in todo)
    return JudgePlan(len(tasks), len(todo), len(requests) - len(todo) - len(skipped), cost,
                     name, len(skipped))


def _retries(spend: SpendConfig) -> dict:
    return {"retry_unparsable": spend.retry_unparsable, "retry_unanswered": spend.retry_unanswered}


def _planner(cfg: OracleConfig, has_gold: bool):
    """(oracle name, plan(task), estimate(request) or None) without opening the oracle: an
    LLM judge's requests from its spec (no API key, no server, no model loaded)."""
    name = auto_name(cfg, has_gold=has_gold)
    kind = ORACLES.get(name)
    if kind.caps.llm_judge:
        spec = make_spec(cfg, kind.model(cfg) if kind.model is not None else None)
        estimate = (lambda r: estimate_cost(spec, r)) if kind.caps.paid else None
        return name, (lambda task: plan_requests(spec, task)), estimate
    oracle = make_oracle(cfg, has_gold=has_gold)
    try:
        _check_labels(oracle)
        return name, oracle.plan, oracle.estimate
    finally:
        oracle.close()


def judge_file(cfg: OracleConfig, path: str, out: Path | None, *, progress: bool = True,
               spend: SpendConfig | None = None) -> JudgeSummary:
    """Judge every task of `path` into `out` (default: the file's folder), within `spend`'s
    caps."""
    spend = spend or SpendConfig()
    tasks, has_gold = io.read_judge_tasks(path)
    out = Path(out) if out else Path(path).resolve().parent
    box: dict = {}  # the ledger, once open: who answered what before (--oracle web)
    oracle = make_oracle(cfg, has_gold=has_gold, store=io.BatchStore(out / "batches"),
                         **link_options(cfg, out, box, has_gold=has_gold))
    _check_labels(oracle)
    try:
        with io.RunDir(out) as rd:
            ledger = box["ledger"] = Ledger.open(
                rd.judgements, max_requests=spend.max_requests, max_cost=spend.max_cost,
                retry_unparsable=spend.retry_unparsable,
                retry_unanswered=spend.retry_unanswered)
            judgements = ledger.judge(oracle, tasks, chunk=oracle.chunk or max(4 * cfg.judge.concurrency, 16),
                                      progress=progress and not oracle.caps.interactive)
            lines = [judged_line(j) for j in judgements]
            io.atomic_write_text(out / "judged.jsonl",
                                 "".join(io.strict_json(x) + "\n" for x in lines))
    finally:
        oracle.close()
    decided = [x["prompt_id"] for x in lines if x["chosen_id"] is not None]
    return JudgeSummary(len(decided), len(lines), oracle.name, ledger.sent, ledger.cost,
                        ledger.exhausted, out / "judged.jsonl",
                        unanswered_note(list(ledger.left_out.values()), decided))
