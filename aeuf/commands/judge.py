"""`aeuf judge FILE`: judge an annotation file (or any pool file) with an oracle.

FILE is the annotations.jsonl that `aeuf` writes when it has no oracle (one line per prompt:
prompt_id, prompt, response_ids, responses), or a pool file (CSV/JSONL/parquet, AEPO or
ActiveUltraFeedback layout; every response of a prompt is judged). Answers go to
judgements.jsonl in --output_dir (default: FILE's folder, i.e. the run directory, so a rerun
of the main command with the same judge reuses them), appended and fsync'd as they arrive;
a rerun sends only what is missing. judged.jsonl gets one line per prompt: ratings, pairs,
and the chosen / rejected response ids.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from aeuf.commands.flags import add_flags, build, flags_of
from aeuf.config import InputConfig, OracleConfig
from aeuf.errors import ConfigError, InputError
from aeuf.types import Judgement, JudgeTask

ORACLE_FLAGS = [f for f in flags_of(OracleConfig)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="annotations.jsonl from `aeuf`, or a pool file")
    parser.add_argument("--output_dir", default=None,
                        help="folder for judgements.jsonl and judged.jsonl (default: input's)")
    add_flags(parser, ORACLE_FLAGS, OracleConfig(), "oracle (judge)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def oracle_config(args: argparse.Namespace) -> OracleConfig:
    """OracleConfig from the flags that were given."""
    return build(OracleConfig, args, ORACLE_FLAGS)


def _annotation_task(line: str, path: str, n: int) -> JudgeTask:
    try:
        row = json.loads(line)
        responses = tuple(str(r) for r in row["responses"])
        ids = tuple(str(i) for i in row.get("response_ids") or
                    [f"{row['prompt_id']}:{j}" for j in range(len(responses))])
        task = JudgeTask(str(row["prompt_id"]), str(row["prompt"]), ids, responses)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{path}: line {n} is not an annotation record ({err})") from None
    if len(ids) != len(responses) or len(responses) < 2:
        raise InputError(f"{path}: line {n} needs two or more responses, one id each")
    return task


def _is_annotation_file(path: Path) -> bool:
    if path.suffix not in (".jsonl", ".json") or not path.is_file():
        return False
    with open(path, encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict) and "responses" in json.loads(first)
    except json.JSONDecodeError:
        return False


def read_tasks(path: str) -> tuple[list[JudgeTask], bool]:
    """(tasks, has_gold) from an annotation file or a pool file."""
    if _is_annotation_file(Path(path)):
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [_annotation_task(line, path, n) for n, line in enumerate(lines, 1)
                if line.strip()], False
    from aeuf import io

    pool = io.read_pool(InputConfig(path=path))
    gold = pool.gold
    tasks = [JudgeTask(str(pool.prompt_ids[p]), str(pool.prompts[p]),
                       tuple(str(x) for x in pool.response_ids[p]),
                       tuple(str(x) for x in pool.responses[p]),
                       None if gold is None else tuple(float(x) for x in gold[p]))
             for p in range(pool.shape[0])]
    return tasks, gold is not None


def judged_line(j: Judgement) -> dict:
    """One prompt's result: ratings (null = missing), pairs, chosen / rejected ids."""
    from aeuf.dataset import judgement_scores

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


def run(args: argparse.Namespace) -> int:
    from aeuf import io
    from aeuf.oracle import make_oracle
    from aeuf.run.ledger import Ledger

    cfg = oracle_config(args)
    tasks, has_gold = read_tasks(args.input)
    out = Path(args.output_dir) if args.output_dir else Path(args.input).resolve().parent
    oracle = make_oracle(cfg, has_gold=has_gold, workdir=out)
    if oracle.name == "none":
        raise ConfigError("nothing to judge with: pass --judge_base_url URL --judge_model NAME, "
                          "--oracle local or --oracle human")
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.open(io.JudgementLog(out / "judgements.jsonl"),
                         max_requests=cfg.max_requests, max_cost=cfg.max_cost)
    try:
        judgements = ledger.judge(oracle, tasks, chunk=max(4 * cfg.judge.concurrency, 16),
                                  progress=not args.no_progress and oracle.name != "human")
    finally:
        oracle.close()
    lines = [judged_line(j) for j in judgements]
    io.atomic_write_text(out / "judged.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    decided = sum(x["chosen_id"] is not None for x in lines)
    print(f"aeuf judge: {decided} of {len(lines)} prompts decided by the {oracle.name} oracle; "
          f"{ledger.sent} requests sent now, cost ${ledger.cost:.4f}"
          f"{' (stopped at the budget)' if ledger.exhausted else ''}; "
          f"{out / 'judged.jsonl'}", file=sys.stderr)
    return 0
