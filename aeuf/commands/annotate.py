"""`aeuf annotate RUN_DIR`: people label a run without an oracle in their browser.

RUN_DIR is a run that wrote annotations.jsonl (`aeuf PROMPTS ... --oracle none`, or auto
without a judge or gold scores). It serves the web oracle's page (`--oracle web`: one link
per annotator, --votes_per_pair people per pair) on those pairs; every answer goes to the
run's judgements.jsonl, so rerunning the run's command with `--oracle web` and the same
--annotators / --votes_per_pair exports the dataset without asking anything again. Stopping
and rerunning `aeuf annotate` loses no answer and prints the same links.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aeuf.commands.flags import add_flags, build, flags_of
from aeuf.config import OracleConfig
from aeuf.errors import InputError

WEB_FLAGS = [f for f in flags_of(OracleConfig) if f.path[0] == "web"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder holding annotations.jsonl")
    add_flags(parser, WEB_FLAGS, OracleConfig(), "the page")
    parser.add_argument("--no_progress", action="store_true", help="(no progress bar is shown)")


def run(args: argparse.Namespace) -> int:
    from aeuf.run.jobs.judging import judge_file

    folder = Path(args.run_dir)
    path = folder / "annotations.jsonl"
    if not path.is_file():
        raise InputError(f"{folder}: no annotations.jsonl here; run `aeuf PROMPTS --oracle none "
                         f"--output_dir {folder}` first (it writes the pairs to annotate)")
    cfg = build(OracleConfig, args, WEB_FLAGS, fixed={"name": "web"}, where="settings")
    s = judge_file(cfg, str(path), folder, progress=False)
    print(f"aeuf annotate: {s.decided} of {s.prompts} prompts decided by the annotators; "
          f"{s.output}. Rerun the run's command with --oracle web (and the same --annotators "
          f"/ --votes_per_pair) to export the dataset", file=sys.stderr)
    return 0
