"""`aeuf generate` with a run directory: plan, generate what is missing, store, export.

run_dir/
  generate_config.json  the GenerateConfig of the latest run (no secrets)
  generations.jsonl     append-only, one line per finished response, flushed + fsync'd
  generated.parquet     `prompt_id`, `prompt`, `completions` = [{model, response, sampling...}]
                        (the ActiveUltraFeedback layout the main command reads)

Every planned request has a content key (aeuf.generate): a rerun, after a crash or a kill at
any point, generates only keys missing from the log. A kill mid-line leaves a partial last
line, which is cut away before the next append. Back-ends yield each response as it finishes
and it is logged at once.

Nothing is written before every model of the pool has passed its back-end's `check`: a
misspelt or unavailable model is one ConfigError line and an untouched run directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from aeuf.config import GenerateConfig, to_dict
from aeuf.generate import ModelSpec, by_model, filter_pool, plan
from aeuf.io import GenLog, atomic_write_json, atomic_write_parquet
from aeuf.types import Generation, GenRequest

LOG_NAME, OUT_NAME, CONFIG_NAME = "generations.jsonl", "generated.parquet", "generate_config.json"
RECORD_KEYS = ("model", "response", "temperature", "top_p", "max_tokens", "seed", "finish_reason")


class GenSummary(NamedTuple):
    """What one run did: planned requests, reused from the log, generated now, failed now."""

    planned: int
    reused: int
    generated: int
    failed: int
    prompts_written: int
    completion_tokens: int
    seconds: float
    output: Path
    errors: tuple[str, ...] = ()


def record(r: GenRequest, g: Generation, backend: str) -> dict:
    """The log line of one finished request: request fields, text, token counts."""
    return {"key": r.key, "prompt_id": r.prompt_id, "slot": r.slot, "model": r.model,
            "path": r.path, **r.sampling(), "response": g.text, "finish_reason": g.finish_reason,
            "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
            "backend": backend}


def completions_table(requests: Sequence[GenRequest], done: dict[str, dict]) -> pd.DataFrame:
    """One row per prompt whose R responses are all done, slots in order:
    prompt_id, prompt, completions = list of {RECORD_KEYS}."""
    rows: dict[str, dict] = {}
    for r in requests:
        row = rows.setdefault(r.prompt_id, {"prompt_id": r.prompt_id, "prompt": r.prompt,
                                            "completions": [], "complete": True})
        rec = done.get(r.key)
        row["complete"] &= rec is not None
        if rec is not None:
            row["completions"].append({k: rec[k] for k in RECORD_KEYS})
    kept = [{k: v for k, v in row.items() if k != "complete"} for row in rows.values() if row["complete"]]
    return pd.DataFrame(kept, columns=["prompt_id", "prompt", "completions"])


def make_runner(cfg: GenerateConfig):
    """The back-end named by cfg.backend, run through Ray Data when cfg.ray."""
    if cfg.ray:
        from aeuf.backends.gen_ray import RayBackend

        return RayBackend(cfg)
    from aeuf.backends.generation import make_backend

    return make_backend(cfg)


def checked_runner(cfg: GenerateConfig, specs: Sequence[ModelSpec]):
    """The runner, after its check of every model in the pool (ConfigError on the first
    model that is not available; the runner is closed then)."""
    runner = make_runner(cfg)
    try:
        pool = filter_pool(specs, cfg.include_model, cfg.exclude_model)
        for path in dict.fromkeys(s.path for s in pool):
            runner.check(path)
    except BaseException:
        runner.close()
        raise
    return runner


def run_generation(prompt_ids: Sequence[str], prompts: Sequence[str], specs: Sequence[ModelSpec],
                   cfg: GenerateConfig, run_dir: str | os.PathLike, *,
                   progress: Callable[[int, int], None] | None = None) -> GenSummary:
    """Generate every planned response missing from run_dir, then write generated.parquet."""
    t0, run_dir = time.monotonic(), Path(run_dir)
    requests, log = plan(prompt_ids, prompts, specs, cfg), GenLog(run_dir / LOG_NAME)
    done = log.load()
    missing = [r for r in requests if r.key not in done]
    runner = checked_runner(cfg, specs) if missing else None
    counts, errors = _generate(missing, runner, cfg, run_dir, log, done, progress)
    table = completions_table(requests, done)
    atomic_write_parquet(run_dir / OUT_NAME, table)
    return GenSummary(len(requests), len(requests) - len(missing), counts[0], counts[1],
                      len(table), counts[2], time.monotonic() - t0, run_dir / OUT_NAME,
                      tuple(errors[:5]))


def _generate(missing: list[GenRequest], runner, cfg: GenerateConfig, run_dir: Path,
              log: GenLog, done: dict, progress) -> tuple[list[int], list[str]]:
    """Write the config, run the back-end over `missing`, one model at a time; log each
    result as it comes; close the runner.

    Returns ([generated, failed, completion tokens], error messages)."""
    counts, errors = [0, 0, 0], []
    by_key = {r.key: r for r in missing}
    try:
        atomic_write_json(run_dir / CONFIG_NAME, to_dict(cfg))
        if progress is not None and missing:
            progress(0, len(missing))
        for path, reqs in by_model(missing).items():
            for g in runner.generate(path, reqs):
                _take(g, by_key[g.key], cfg.backend, log, done, counts, errors)
                if progress is not None:
                    progress(counts[0] + counts[1], len(missing))
    finally:
        if runner is not None:
            runner.close()
    return counts, errors


def _take(g: Generation, r: GenRequest, backend: str, log: GenLog, done: dict,
          counts: list[int], errors: list[str]) -> None:
    """Log one finished response at once (fsync'd) and count it; count a failure."""
    if g.error is not None:
        counts[1] += 1
        errors.append(f"{r.prompt_id}: {g.error}")
        return
    done[g.key] = record(r, g, backend)
    log.append(done[g.key])
    counts[0] += 1
    counts[2] += g.completion_tokens
