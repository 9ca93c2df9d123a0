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

from aeuf.commands.files import add_judge_files, judge_files
from aeuf.commands.flags import add_flags, build, flags_of
from aeuf.config import OracleConfig, SpendConfig

# the cascade belongs to the main command: `aeuf judge` asks one judge
NOT_HERE = ("cheap_judge", "cheap_judge_margin")
ORACLE_FLAGS = [f for f in flags_of(OracleConfig) if f.path[0] not in NOT_HERE]
SPEND_FLAGS = list(flags_of(SpendConfig))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="annotations.jsonl from `aeuf`, or a pool file")
    parser.add_argument("--output_dir", default=None,
                        help="folder for judgements.jsonl and judged.jsonl (default: input's)")
    add_judge_files(parser, cascade=False)
    add_flags(parser, ORACLE_FLAGS, OracleConfig(), "oracle (judge)")
    add_flags(parser, SPEND_FLAGS, SpendConfig(), "spending")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")


def oracle_config(args: argparse.Namespace) -> OracleConfig:
    """OracleConfig from --judge FILE and the flags that were given (flags win)."""
    file, names = judge_files(args, ORACLE_FLAGS, {})
    return build(OracleConfig, args, ORACLE_FLAGS, file=file, where=", ".join(names) or "settings")


def spend_config(args: argparse.Namespace) -> SpendConfig:
    """SpendConfig from the --max_cost, --max_requests, --retry_unparsable flags."""
    return build(SpendConfig, args, SPEND_FLAGS)


def run(args: argparse.Namespace) -> int:
    from aeuf.run.jobs.judging import judge_file, plan_file

    if args.dry_run:
        p = plan_file(oracle_config(args), args.input, args.output_dir, spend_config(args))
        cost = "free" if p.cost is None else f"at most ${p.cost:.4f}"
        lost = (f", {p.unanswered} sent by an earlier run without a logged answer (possibly "
                "paid; not sent again without --retry_unanswered)" if p.unanswered else "")
        print(f"aeuf judge --dry_run: {p.prompts} prompts, {p.requests} requests to the "
              f"{p.oracle} oracle ({p.answered} already answered{lost}), {cost}; nothing was "
              "sent or written")
        return 0
    s = judge_file(oracle_config(args), args.input, args.output_dir,
                   progress=not args.no_progress, spend=spend_config(args))
    print(f"aeuf judge: {s.decided} of {s.prompts} prompts decided by the {s.oracle} oracle; "
          f"{s.sent} requests sent now, cost ${s.cost:.4f}"
          f"{' (stopped at the budget)' if s.exhausted else ''}; {s.output}", file=sys.stderr)
    if s.possibly_paid:
        print(f"aeuf judge: {s.possibly_paid}.", file=sys.stderr)
    return 0
