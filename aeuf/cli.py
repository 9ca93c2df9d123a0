"""aeuf builds LLM preference datasets (prompt, chosen, rejected) with as few judge calls as possible.

The command line is thin: it parses (flags generated from aeuf.config), calls one library
function and prints. `aeuf PROMPTS ...` is the AEPO-compatible main job; `aeuf SUBCOMMAND ...`
runs one stage. Errors the user can fix become one red line and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from aeuf import __version__
from aeuf.commands.flags import Renamed, add_renamed, suggest
from aeuf.config.paths import cache_home
from aeuf.errors import AeufError

TOP_LEVEL = ("-h", "--help", "--version")

# subcommand -> module under aeuf.commands with add_arguments(parser) and run(args) -> int
COMMANDS = {
    "run": ("run", "label a pool actively and export a preference dataset (the default)"),
    "generate": ("generate", "generate candidate responses from a pool of LLMs"),
    "judge": ("judge", "judge an annotation file with an LLM judge or a human"),
    "annotate": ("annotate", "label a run's annotations.jsonl in the browser (the web page)"),
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
    """argparse that answers a mistyped flag with the closest valid flag of the command."""

    commands: dict[str, argparse.ArgumentParser] = {}
    command: str | None = None  # the subcommand being parsed (set by main)

    def error(self, message: str):
        bad = re.findall(r"(--[\w-]+)", message) if "unrecognized" in message else []
        hint = "".join(_hint(b, self.commands, self.command) for b in bad[:1])
        prog = f"aeuf {self.command}" if self.command else self.prog
        self.exit(2, f"aeuf: error: {message}{hint}\n(see `{prog} --help`)\n")


def _hint(flag: str, commands: dict, command: str | None) -> str:
    """The closest flag of `command` (never `flag` itself); if `flag` belongs to other
    commands only, says which."""
    own = _flags(commands[command]) if command in commands else []
    where = [name for name, p in commands.items() if name != command and flag in _flags(p)]
    if where and flag not in own:
        return f"; {flag} is an option of `aeuf {where[0]}`, not of `aeuf {command}`"
    return suggest(flag, own)


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    """Every --flag of a parser (renamed old names left out)."""
    return [s for action in parser._actions if not isinstance(action, Renamed)
            for s in action.option_strings if s.startswith("--")]


def _usage(name: str, parser: argparse.ArgumentParser) -> str:
    """`aeuf NAME POSITIONALS --required X [options]` (argparse's would list every flag)."""
    words = ["aeuf", "[run]" if name == "run" else name]
    for a in parser._actions:
        if not a.option_strings:
            text = (a.metavar or a.dest).upper()
            words.append(f"[{text}]" if a.nargs == "?" else text)
        elif a.required:
            words.append(f"{a.option_strings[0]} {a.metavar or a.dest.upper()} ...")
    return " ".join([*words, "[options]"])


def build_parser(modules: dict) -> argparse.ArgumentParser:
    parser = Parser(prog="aeuf", usage=USAGE, description=__doc__.splitlines()[0],
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"aeuf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands = {}
    for name, module in modules.items():
        p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1],
                           prog=f"aeuf {name}")
        module.add_arguments(p)
        add_renamed(p)
        p.usage = _usage(name, p)
        commands[name] = p
    Parser.commands = commands
    return parser


def _error(message: str) -> None:
    red, reset = ("\033[31m", "\033[0m") if sys.stderr.isatty() else ("", "")
    print(f"{red}aeuf: error: {message}{reset}", file=sys.stderr)


COMPILE_CACHE_OFF = "AEUF_JAX_CACHE"  # =0: compile every program afresh (no cache on disk)
COMPILE_CACHE_BYTES = 1 << 30  # the least recently used programs go beyond this


def compile_cache() -> None:
    """JAX keeps the programs it compiles in $XDG_CACHE_HOME/aeuf/jax (or ~/.cache/aeuf/jax),
    so a rerun, a resume or the next round compiles nothing twice; set before JAX is imported
    (a command module may import it). JAX makes the folder on its first write, so `--help`
    leaves none behind. JAX_COMPILATION_CACHE_DIR set by the user wins; AEUF_JAX_CACHE=0 turns
    the cache off; so does a cache home that is not a writable folder (compile afresh, quietly)."""
    if os.environ.get(COMPILE_CACHE_OFF) == "0" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    folder = cache_home("jax")
    if not _can_make(folder):
        return
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(folder)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if importlib.util.find_spec("filelock"):  # JAX's size cap locks the folder with it
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILE_CACHE_BYTES))


GC_YOUNG = 100_000  # allocations between young collections (Python's default: 700)


def quiet_gc() -> None:
    """Python's cycle collector, made to look less often: a run holds millions of live
    objects (strings, answers, tasks) and its per-prompt loops allocate as many, so the
    default thresholds walk the whole heap again and again (10^5 x 8 main command: 28 full
    collections, 9.7 s of 11.5 s in the collector; with this, 2.0 s, the same dataset).
    Reference counting still frees everything that is not a cycle at once; cycles wait
    longer (a full collection every ~10^7 allocations). A threshold of 0 (the collector
    off) or above GC_YOUNG is kept."""
    young, middle, old = gc.get_threshold()
    if young:
        gc.set_threshold(max(young, GC_YOUNG), middle, old)


def _can_make(folder: Path) -> bool:
    """Whether `folder` is, or could be made as, a folder this user can write in."""
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    compile_cache()
    quiet_gc()
    argv = list(sys.argv[1:] if argv is None else argv)
    modules = _available()
    if argv and argv[0] not in modules and argv[0] not in TOP_LEVEL:
        argv = ["run", *argv]  # the bare AEPO form: aeuf [options] PROMPTS [options]
    parser = build_parser(modules)
    Parser.command = argv[0] if argv and argv[0] in modules else None
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
