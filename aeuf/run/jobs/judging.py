"""`aeuf judge FILE`: judge an annotation (or pool) file into a folder's judgements.jsonl.

Answers go to the same append-only log a run uses (through the ledger: never paid twice),
so rerunning the main command with the same judge reuses every one. judged.jsonl gets one
line per prompt: ratings, pairs, chosen / rejected response ids.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from aeuf import io
from aeuf.config import OracleConfig
from aeuf.dataset import judgement_scores
from aeuf.errors import ConfigError
from aeuf.oracle import make_oracle
from aeuf.run.ledger import Ledger
from aeuf.types import Judgement


class JudgeSummary(NamedTuple):
    decided: int
    prompts: int
    oracle: str
    sent: int
    cost: float
    exhausted: bool
    output: Path


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
            "chosen_id": j.task.response_ids[best] if decided else None,
            "rejected_id": j.task.response_ids[worst] if decided else None}


def judge_file(cfg: OracleConfig, path: str, out: Path | None, *,
               progress: bool = True) -> JudgeSummary:
    """Judge every task of `path` into `out` (default: the file's folder)."""
    tasks, has_gold = io.read_judge_tasks(path)
    out = Path(out) if out else Path(path).resolve().parent
    oracle = make_oracle(cfg, has_gold=has_gold, workdir=out)
    if oracle.name == "none":
        raise ConfigError("nothing to judge with: pass --judge_base_url URL --judge_model NAME, "
                          "--oracle local or --oracle human")
    try:
        with io.RunDir(out) as rd:
            ledger = Ledger.open(rd.judgements, max_requests=cfg.max_requests,
                                 max_cost=cfg.max_cost, retry_unparsable=cfg.retry_unparsable)
            judgements = ledger.judge(oracle, tasks, chunk=oracle.chunk or max(4 * cfg.judge.concurrency, 16),
                                      progress=progress and oracle.name != "human")
            lines = [judged_line(j) for j in judgements]
            io.atomic_write_text(out / "judged.jsonl",
                                 "".join(io.strict_json(x) + "\n" for x in lines))
    finally:
        oracle.close()
    return JudgeSummary(sum(x["chosen_id"] is not None for x in lines), len(lines), oracle.name,
                        ledger.sent, ledger.cost, ledger.exhausted, out / "judged.jsonl")
