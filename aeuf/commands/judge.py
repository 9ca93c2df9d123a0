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
from typing import NamedTuple

from aeuf.config import InputConfig, OracleConfig
from aeuf.errors import ConfigError, InputError
from aeuf.types import Judgement, JudgeTask


class OracleFlag(NamedTuple):
    name: str
    field: str
    type: type | None  # None: a store_true switch
    help: str


ORACLE_FLAGS = [
    OracleFlag("oracle", "name", str, "judge, batch, local, human, replay or auto"),
    OracleFlag("judge_base_url", "judge_base_url", str, "OpenAI-compatible base URL of the judge"),
    OracleFlag("judge_model", "judge_model", str, "judge model name"),
    OracleFlag("api_key_env", "api_key_env", str, "environment variable holding the API key"),
    OracleFlag("judge_template", "template", str,
               "overall, ultrafeedback, pairwise, an aspect, or template file(s), comma-separated"),
    OracleFlag("judge_temperature", "temperature", float, "judge sampling temperature"),
    OracleFlag("judge_max_tokens", "max_tokens", int, "judge reply length cap"),
    OracleFlag("no_logprobs", "logprobs", None, "do not ask the judge for log-probs"),
    OracleFlag("concurrency", "concurrency", int, "judge requests in flight"),
    OracleFlag("rpm", "requests_per_minute", float, "judge requests-per-minute cap"),
    OracleFlag("tpm", "tokens_per_minute", float, "judge tokens-per-minute cap"),
    OracleFlag("timeout", "timeout", float, "seconds per judge request"),
    OracleFlag("retries", "retries", int, "retries per judge request"),
    OracleFlag("max_cost", "max_cost", float, "stop cleanly when this much is spent"),
    OracleFlag("max_requests", "max_requests", int, "stop cleanly after this many requests"),
    OracleFlag("price_in", "price_per_1k_input", float, "price per 1,000 prompt tokens"),
    OracleFlag("price_out", "price_per_1k_output", float, "price per 1,000 completion tokens"),
    OracleFlag("batch_shard_size", "batch_shard_size", int, "batch oracle: requests per shard"),
    OracleFlag("batch_poll_seconds", "batch_poll_seconds", float, "batch oracle: poll interval"),
    OracleFlag("local_model", "local_model", str, "local oracle: GGUF file (default SmolLM2-135M)"),
    OracleFlag("label_mode", "label_mode", str, "replay: deterministic, soft or bernoulli"),
]


def add_oracle_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The oracle flags (all default None = the OracleConfig default)."""
    for f in ORACLE_FLAGS:
        if f.name in skip:
            continue
        if f.type is None:
            parser.add_argument(f"--{f.name}", action="store_true", default=None, help=f.help)
        else:
            parser.add_argument(f"--{f.name}", type=f.type, default=None, help=f.help)


def oracle_config(args: argparse.Namespace) -> OracleConfig:
    """OracleConfig from the flags that were given (no_logprobs inverts logprobs)."""
    given = {f.field: getattr(args, f.name) for f in ORACLE_FLAGS
             if getattr(args, f.name, None) is not None}
    if given.get("logprobs"):
        given["logprobs"] = False
    return OracleConfig(**given)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="annotations.jsonl from `aeuf`, or a pool file")
    parser.add_argument("--output_dir", default=None,
                        help="folder for judgements.jsonl and judged.jsonl (default: input's)")
    add_oracle_arguments(parser)
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


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
    from aeuf.ledger import Ledger
    from aeuf.oracle import make_oracle

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
        judgements = ledger.judge(oracle, tasks, chunk=max(4 * cfg.concurrency, 16),
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
