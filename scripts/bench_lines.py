"""JSON lines written a column at a time against a line per record, in one process.

    python scripts/bench_lines.py POOL [--rows 100000] [--repeats 3]

POOL: a pool with gold scores (scripts/bench_scale.py makes OUT/data_P/pool.parquet). With
the collector's threshold the CLI sets (cli.quiet_gc), best of --repeats, the two ways
alternating:

- the export's preferences.jsonl: `aeuf.io.export.json_lines` of the rows `build_rows` makes
  for one exported pair per prompt, against `json.dumps(row, ensure_ascii=False)` of every
  `json_records` row (the way before);
- the judgement log: `_answer_lines` of one replay answer per response of --rows / 4 prompts
  (the two of each shown pair), against `_answer_line` of each (the way before).

Also the seconds of `read_pool` and of `build_rows` (no baseline in this process: their
earlier versions are gone; BENCHMARKS.md has them A/B in the main command). Every pair of
outputs is checked equal.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from aeuf.cli import quiet_gc
from aeuf.config import ExportConfig, InputConfig
from aeuf.dataset import build_rows
from aeuf.io import read_pool
from aeuf.io.export import json_lines, json_records
from aeuf.io.runlog import _answer_line, _answer_lines
from aeuf.types import JudgeAnswer, Labelled


def best(fn, repeats: int) -> tuple[float, object]:
    """(the fewest seconds of `repeats` calls, the last call's result)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def labelled_of(pool, rows: int) -> list[Labelled]:
    """One exported pair per prompt (the first `rows` prompts), as the main command makes."""
    rng = np.random.default_rng(0)
    P, R = pool.shape
    out = []
    for p in range(min(rows, P)):
        a, b = (int(x) for x in rng.choice(R, 2, replace=False))
        scores = np.asarray(pool.gold[p, [a, b]], np.float64)
        out.append(Labelled(p, (a, b), scores, int(scores[1] > scores[0]),
                            int(scores[1] <= scores[0]), "dts", p % 4, float(rng.random()),
                            float(rng.normal()), "replay", tie=bool(scores[0] == scores[1])))
    return out


def answers_of(pool, rows: int) -> list[JudgeAnswer]:
    """A replay answer for each response of the first rows / 4 prompts' shown pairs."""
    P, R = pool.shape
    return [JudgeAnswer(f"replay:deterministic:{pool.response_ids[p, r]}:{p:016x}",
                        str(pool.prompt_ids[p]), (str(pool.response_ids[p, r]),),
                        float(pool.gold[p, r]), "", "replay")
            for p in range(min(rows // 4, P)) for r in (0, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    quiet_gc()
    read_s, pool = best(lambda: read_pool(InputConfig(path=args.pool)), args.repeats)
    labs = labelled_of(pool, args.rows)
    rows_s, df = best(lambda: build_rows(pool, labs, ExportConfig()), args.repeats)
    old_s, old = best(lambda: "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                      for r in json_records(df)), args.repeats)
    new_s, new = best(lambda: "".join(json_lines(df)), args.repeats)
    assert old == new
    answers = answers_of(pool, args.rows)
    log_old_s, a = best(lambda: "".join(_answer_line(x) + "\n" for x in answers), args.repeats)
    log_new_s, b = best(lambda: _answer_lines(answers), args.repeats)
    assert a == b
    print(json.dumps({
        "pool": list(pool.shape), "read_pool_s": round(read_s, 3),
        "build_rows_s": round(rows_s, 3), "export_rows": len(df),
        "jsonl_per_row_s": round(old_s, 3), "jsonl_columns_s": round(new_s, 3),
        "jsonl_speedup": round(old_s / new_s, 2), "ledger_answers": len(answers),
        "ledger_per_answer_s": round(log_old_s, 3), "ledger_columns_s": round(log_new_s, 3),
        "ledger_speedup": round(log_old_s / log_new_s, 2)}, indent=1))


if __name__ == "__main__":
    main()
