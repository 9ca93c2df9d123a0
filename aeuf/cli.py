"""aeuf builds LLM preference datasets (prompt, chosen, rejected) with as few judge calls as possible.

The command line is thin: it parses (flags generated from aeuf.config), calls one library
function and prints. `aeuf PROMPTS ...` is the AEPO-compatible main job; `aeuf SUBCOMMAND ...`
runs one stage. Errors the user can fix become one red line and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys

from aeuf.commands.flags import suggest
from aeuf.errors import AeufError

# subcommand -> module under aeuf.commands with add_arguments(parser) and run(args) -> int
COMMANDS = {
    "run": ("run", "label a pool actively and export a preference dataset (the default)"),
    "generate": ("generate", "generate candidate responses from a pool of LLMs"),
    "judge": ("judge", "judge an annotation file with an LLM judge or a human"),
    "embed": ("embed", "compute (and cache) features for a pool"),
    "bench": ("bench", "label-efficiency benchmark on a pool with gold scores"),
}


def _available() -> dict[str, object]:
    """The subcommand modules that exist in this install."""
    out = {}
    for name, (module, _) in COMMANDS.items():
        try:
            out[name] = importlib.import_module(f"aeuf.commands.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"aeuf.commands.{module}":
                raise
    return out


USAGE = """aeuf PROMPTS [--num_responses N] [--num_annotations K] [options]
       aeuf COMMAND ..."""
EPILOG = """examples:
  aeuf dataset/prompts.csv --num_responses 8 --num_annotations 2
      label every prompt once with the pair that teaches the head most (the AEPO form)
  aeuf pool.parquet --budget 400 --judge_base_url http://127.0.0.1:8000/v1 --judge_model judge
      label 400 prompts chosen actively with an OpenAI-compatible judge
  aeuf run --help      every option of the main job, with its default"""


class Parser(argparse.ArgumentParser):
    """argparse that answers a mistyped flag with the closest valid one."""

    def error(self, message: str):
        bad = re.findall(r"(--[\w-]+)", message) if "unrecognized" in message else []
        hint = "".join(suggest(b, _flags(self)) for b in bad[:1])
        self.exit(2, f"aeuf: error: {message}{hint}\n(see `{self.prog} --help`)\n")


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every --flag of a parser and its subcommands."""
    out = []
    for action in parser._actions:
        out += [s for s in action.option_strings if s.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _flags(sub)
    return out


def build_parser(modules: dict) -> argparse.ArgumentParser:
    parser = Parser(prog="aeuf", usage=USAGE, description=__doc__.splitlines()[0],
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module in modules.items():
        p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
        module.add_arguments(p)
    return parser


def _error(message: str) -> None:
    red, reset = ("\033[31m", "\033[0m") if sys.stderr.isatty() else ("", "")
    print(f"{red}aeuf: error: {message}{reset}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = _available()
    if argv and argv[0] not in modules and not argv[0].startswith("-"):
        argv = ["run", *argv]  # the bare AEPO form: aeuf PROMPTS --num_responses 8 ...
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return modules[args.command].run(args)
    except AeufError as err:
        _error(str(err).splitlines()[0] if str(err) else type(err).__name__)
        return 1
    except KeyboardInterrupt:
        _error("interrupted; rerun the same command to resume where it stopped")
        return 130
    except OSError as err:  # a read-only folder, a full disk, ...: one line, not a traceback
        _error(disk_error(err))
        return 1


_DISK_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and rerun the same command (it resumes)",
    errno.EDQUOT: "the disk quota is used up: free some space and rerun the same command",
    errno.EACCES: "no permission to write there: choose another --output_dir or fix the "
                  "folder's permissions",
    errno.EPERM: "no permission to write there: choose another --output_dir or fix the "
                 "folder's permissions",
    errno.EROFS: "the file system is read-only: choose another --output_dir",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another --output_dir",
}


def disk_error(err: OSError) -> str:
    """One line for an OSError: the file, what the system said and what to do."""
    where = f"{err.filename}: " if err.filename else ""
    what = err.strerror or str(err).splitlines()[0] if str(err) else type(err).__name__
    hint = _DISK_HINTS.get(err.errno, "check the path and rerun the same command")
    return f"{where}{what}; {hint}"


if __name__ == "__main__":
    raise SystemExit(main())
