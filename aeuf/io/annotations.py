"""Reading what `aeuf judge` judges: an annotations.jsonl written by a run without an oracle
(one prompt per line: prompt_id, prompt, response_ids, responses), or any pool file."""

from __future__ import annotations

import json
from pathlib import Path

from aeuf.config import InputConfig
from aeuf.errors import InputError
from aeuf.io.pool import read_pool
from aeuf.types import JudgeTask, turns_of


def _annotation_task(line: str, path: str, n: int) -> JudgeTask:
    try:
        row = json.loads(line)
        responses = tuple(str(r) for r in row["responses"])
        ids = tuple(str(i) for i in row.get("response_ids") or
                    [f"{row['prompt_id']}:{j}" for j in range(len(responses))])
        turns = tuple((str(r), str(t)) for r, t in row.get("turns") or ()) or None
        task = JudgeTask(str(row["prompt_id"]), str(row["prompt"]), ids, responses, turns=turns)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: line {n} is not an annotation record ({err})") from None
    if len(ids) != len(responses) or len(responses) < 2:
        raise InputError(f"{path}: line {n} needs two or more responses, one id each")
    return task


def is_annotation_file(path: Path) -> bool:
    """A JSON-lines file whose first record has a `responses` list."""
    if path.suffix not in (".jsonl", ".json") or not path.is_file():
        return False
    with open(path, encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        rec = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(rec, dict) and "responses" in rec


def read_judge_tasks(path: str) -> tuple[list[JudgeTask], bool]:
    """(tasks, has_gold) from an annotation file or a pool file (every response judged)."""
    if is_annotation_file(Path(path)):
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [_annotation_task(line, path, n) for n, line in enumerate(lines, 1)
                if line.strip()], False
    pool = read_pool(InputConfig(path=path))
    gold = pool.gold
    tasks = [JudgeTask(str(pool.prompt_ids[p]), str(pool.prompts[p]),
                       tuple(str(x) for x in pool.response_ids[p]),
                       tuple(str(x) for x in pool.responses[p]),
                       None if gold is None else tuple(float(x) for x in gold[p]),
                       None if pool.messages is None else turns_of(pool.messages[p]))
             for p in range(pool.shape[0])]
    return tasks, gold is not None
