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
import sys

from aeuf.commands.flags import add_flags, build, flags_of
from aeuf.config import OracleConfig

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


def run(args: argparse.Namespace) -> int:
    from aeuf.run.jobs.judging import judge_file

    s = judge_file(oracle_config(args), args.input, args.output_dir,
                   progress=not args.no_progress)
    print(f"aeuf judge: {s.decided} of {s.prompts} prompts decided by the {s.oracle} oracle; "
          f"{s.sent} requests sent now, cost ${s.cost:.4f}"
          f"{' (stopped at the budget)' if s.exhausted else ''}; {s.output}", file=sys.stderr)
    return 0
