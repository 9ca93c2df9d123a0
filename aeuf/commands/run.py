"""`aeuf PROMPTS ...` (also `aeuf run PROMPTS ...`): the whole active-labelling job.

Flags keep AEPO's names (`--num_responses`, `--num_annotations`, `--num_instructions`,
`--west_of_n`); every flag is generated from a field of a stage config in aeuf.config.
"""

from __future__ import annotations

import argparse
import sys

from aeuf.commands.files import add_judge_files, judge_files, read_config_file
from aeuf.commands.flags import add_flags, build, flags_of, given, merge
from aeuf.config import RunConfig, to_dict
from aeuf.config.fields import SettingError, coerce
from aeuf.errors import ConfigError

FLAGS = list(flags_of(RunConfig))
SECTION_TITLES = {"input": "input", "features": "features", "head": "reward head",
                  "acquire": "acquisition", "loop": "rounds", "oracle": "oracle (judge)",
                  "spend": "spending", "export": "export", "cluster": "cluster (Ray)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", nargs="?", default=None,
                        help="CSV/TSV/JSONL/JSON/parquet file, save_to_disk folder or hub "
                             "dataset id (or `prompts:` in the --config file)")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="settings from a YAML or TOML file (flags override it)")
    add_judge_files(parser, cascade=True)
    for section, title in SECTION_TITLES.items():
        add_flags(parser, [f for f in FLAGS if f.path[0] == section], RunConfig(), title)
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig: defaults < --config file < flags given; the positional is the input path
    (else the file's `prompts`). The file's `no_progress` lands on args."""
    path = getattr(args, "config", None)
    file = read_config_file(path, FLAGS, extras=("prompts", "no_progress", "judge",
                                                 "cheap_judge"))
    file, names = judge_files(args, FLAGS, file)
    quiet = _extra(file, "no_progress", bool, path)
    args.no_progress = bool(getattr(args, "no_progress", False) or quiet)
    named = _extra(file, "prompts", str, path)
    prompts = args.prompts or named or file.get("input", {}).get("path")
    if not prompts:
        raise ConfigError("no input: give PROMPTS (a pool file), or `prompts: FILE` in the "
                          "--config file")
    fixed = {"input": {"path": prompts}}
    where = ", ".join([f"--config {path}"] * bool(path) + names) or "settings"
    cfg = build(RunConfig, args, FLAGS, file=file, fixed=fixed, where=where)
    return resumed(cfg, args, file, fixed, where)


def resumed(cfg: RunConfig, args: argparse.Namespace, file: dict, fixed: dict,
            where: str) -> RunConfig:
    """cfg with the settings the run already in its output folder started with, wherever the
    user gave none (neither a flag nor the --config file): a default changed since never
    refuses an old run. A setting given that differs is still refused by the run. Which kept
    settings differ from today's defaults lands on args.kept (the note print_kept shows)."""
    from aeuf.run.loop import started_with

    kept = started_with(cfg)
    if not kept:
        return cfg
    args.kept = unlike_defaults(kept, merge(merge(file, given(args, FLAGS)), fixed),
                                to_dict(RunConfig()))
    return build(RunConfig, args, FLAGS, file=merge(kept, file), fixed=fixed, where=where)


def unlike_defaults(kept: dict, explicit: dict, defaults: dict, prefix: str = "") -> list:
    """(dotted key, kept value, today's default) for each kept setting the user did not give
    whose value differs from today's default."""
    out = []
    for key, value in kept.items():
        mine, default = explicit.get(key), defaults.get(key)
        if isinstance(value, dict):
            out += unlike_defaults(value, mine if isinstance(mine, dict) else {},
                                   default if isinstance(default, dict) else {}, f"{prefix}{key}.")
        elif key not in explicit and _plain(value) != _plain(default):
            out.append((f"{prefix}{key}", value, default))
    return out


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def print_kept(args: argparse.Namespace, cfg: RunConfig) -> None:
    """One line when a rerun keeps settings that are no longer the defaults."""
    from aeuf.run.loop import output_dir

    kept = getattr(args, "kept", None)
    if kept:
        shown = ", ".join(f"{k} {v!r} (default now {d!r})" for k, v, d in kept)
        out = output_dir(cfg)
        print(f"aeuf: resuming {out} with the settings it was "
              f"started with: {shown}; to change one, start another run (--output_dir)",
              file=sys.stderr)


def _extra(file: dict, key: str, kind: type, path: str | None):
    """A command-level setting of the --config file (removed from `file`), type-checked."""
    if key not in file:
        return None
    try:
        return coerce(file.pop(key), kind)
    except SettingError as err:
        raise err.at(key, f"--config {path}") from None


def print_summary(s) -> None:
    say = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    if s.annotation_file is not None:
        say(f"aeuf: no oracle available (no gold columns, no --judge_base_url): wrote the "
            f"selected responses to {s.annotation_file}. Judge them with "
            f"`aeuf judge {s.annotation_file} --judge_base_url URL --judge_model NAME`, or rerun "
            f"with --oracle local or --judge_base_url URL.")
        return
    say(f"aeuf: {s.labelled} of {s.prompts} prompts labelled by the {s.oracle} oracle "
        f"({s.ties} ties, {s.failed} without a usable label, "
        f"{f'{s.not_reached} not reached (cost cap), ' if s.not_reached else ''}"
        f"{f'{s.no_gold} with fewer than 2 gold scores, ' if s.no_gold else ''}"
        f"{s.skipped} skipped while reading); {s.comparisons} comparisons, {s.requests_logged} oracle requests "
        f"({s.requests_sent} sent now), cost ${s.cost:.4f} (USD at --judge_price_in/--judge_price_out "
        f"per 1M tokens).")
    agree = [f"{r['agreement']:.2f}" for r in s.progress if r["agreement"] is not None]
    if agree:
        say(f"aeuf: head agreed with the oracle before labelling, per round: {', '.join(agree)}")
    if any(r.get("self_labelled") for r in s.progress):
        share = [f"{r.get('self_label_share', 0.0):.2f}" for r in s.progress]
        say(f"aeuf: share of each round's pairs labelled by the head itself: {', '.join(share)}")
    if s.cost_line:
        say(f"aeuf: {s.cost_line}")
    for line in s.judge_lines:
        say(f"aeuf: judge {line}")
    if s.possibly_paid:
        say(f"aeuf: {s.possibly_paid}.")
    if s.stopped_why:
        say(f"aeuf: {s.stopped_why}.")
    if s.stopped_by_budget:
        say("aeuf: stopped at the --max_cost/--max_requests budget (each request's upper cost is "
            "reserved before it is sent); raise it and rerun the same command to continue.")
    data = s.files.get("jsonl")
    if data is not None:
        say(f"aeuf: dataset: {data} ({s.rows} rows; also {s.files.get('parquet')} and "
            f"{s.files.get('hf')}); report: {s.files.get('report')}")
    elif s.files.get("report"):
        say(f"aeuf: nothing to export; see {s.files['report']}")


def run(args: argparse.Namespace) -> int:
    from aeuf.run.loop import run as run_loop

    cfg = config_from_args(args)
    print_kept(args, cfg)
    summary = run_loop(cfg, progress=not args.no_progress)
    if not cfg.spend.dry_run:  # the dry run printed its plan: there is nothing to summarise
        print_summary(summary)
    return 0
