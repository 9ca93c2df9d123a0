"""`aeuf generate PROMPTS --models M [M ...] --num_responses 4 [--backend transformers]`.

Writes OUTPUT_DIR/generated.parquet (`prompt`, `completions` = [{model, response, ...}]),
which the main command reads as is. Rerunning the same command resumes: only responses
missing from OUTPUT_DIR/generations.jsonl are generated.

--models takes model names/paths (`smollm2` = the packaged SmolLM2-135M-Instruct GGUF) and/or
files: .json (a list of names or {name, path, temperature, top_p, max_tokens} records) or
.txt (one name per line, # comments).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from aeuf.commands.flags import add_flags, build, flags_of
from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError, InputError
from aeuf.generate import ModelSpec, parse_models

GEN_FLAGS = list(flags_of(GenerateConfig))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("prompts", help="CSV/JSONL/parquet/save_to_disk folder/hub id with prompts")
    p.add_argument("--models", nargs="+", required=True, metavar="MODEL",
                   help="model names/paths and/or .json/.txt files listing them")
    p.add_argument("--include_model", nargs="+", default=[], metavar="GLOB",
                   help="keep only pool models matching one of these")
    p.add_argument("--exclude_model", nargs="+", default=[], metavar="GLOB",
                   help="drop pool models matching one of these")
    add_flags(p, GEN_FLAGS, GenerateConfig())
    p.add_argument("--prompt_column", default=None, help="default: prompt or instruction")
    p.add_argument("--num_instructions", type=int, default=None, help="first N prompts only")
    p.add_argument("--output_dir", default=None, help="run directory (default: runs/<name>-gen)")


def read_model_entries(tokens: list[str]) -> list:
    """--models tokens -> entries for parse_models; files are expanded in place."""
    out: list = []
    for token in (t for raw in tokens for t in raw.split(",") if t):
        path = Path(token)
        out += _read_model_file(path) if path.suffix in (".json", ".txt") and path.is_file() else [token]
    return out


def _read_model_file(path: Path) -> list:
    if path.suffix == ".txt":
        lines = (ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines())
        return [ln for ln in lines if ln]
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of model names or records")
    return data


def config_of(args: argparse.Namespace) -> GenerateConfig:
    """GenerateConfig from the parsed flags (unset flags keep the config defaults)."""
    return build(GenerateConfig, args, GEN_FLAGS, fixed={
        "models": tuple(args.models), "include_model": tuple(args.include_model),
        "exclude_model": tuple(args.exclude_model)})


def output_dir(args: argparse.Namespace) -> Path:
    return Path(args.output_dir or Path("runs") / f"{Path(args.prompts.rstrip('/')).stem}-gen")


def run(args: argparse.Namespace) -> int:
    from aeuf.io import read_prompts
    from aeuf.run.jobs.gen_run import run_generation

    cfg = config_of(args)
    specs: list[ModelSpec] = parse_models(read_model_entries(args.models))
    if not specs:
        raise ConfigError("--models: no model given")
    ids, prompts = read_prompts(args.prompts, args.prompt_column, args.num_instructions)
    out = output_dir(args)
    with Progress(cfg.progress_every) as progress:
        summary = run_generation(ids, prompts, specs, cfg, out, progress=progress)
    print(f"\r{summary.generated} generated, {summary.reused} reused, {summary.failed} failed "
          f"({summary.completion_tokens} new tokens, {summary.seconds:.0f} s)", file=sys.stderr)
    for message in summary.errors:
        print(f"  failed: {message}", file=sys.stderr)
    print(f"wrote {summary.output}: {summary.prompts_written} prompts x {cfg.num_responses} responses; "
          f"next: aeuf {summary.output} --num_responses {cfg.num_responses}")
    return 0 if summary.failed == 0 else 1


class Progress:
    """Finished responses on stderr: one updating line on a terminal; otherwise (logs, CI,
    nohup) a line every `every` seconds from a timer thread, so a long batch is never silent."""

    def __init__(self, every: float, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.every, self.done, self.total = every, 0, 0
        self.tty, self.t0 = self.stream.isatty(), time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> Progress:
        if not self.tty and self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.tty:
            print(f"\r{self.line()}", end="", file=self.stream, flush=True)

    def line(self) -> str:
        return f"generating: {self.done}/{self.total} responses finished, {self._elapsed()}"

    def _elapsed(self) -> str:
        m, s = divmod(int(time.monotonic() - self.t0), 60)
        return f"{m}m{s:02d}s elapsed"

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            print(self.line(), file=self.stream, flush=True)
