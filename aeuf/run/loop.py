"""The active-learning loop: fit -> score -> choose prompts and pairs -> oracle -> repeat.

`run(cfg)` owns the run directory (see DESIGN.md). Round t's selection is written to
rounds/<t>.json before its judgements are requested, and every key is derived from the seed
with fold_in, so a killed run, rerun with the same command, replays finished rounds from disk
(refitting the head deterministically) and sends only the judgements that are missing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

from aeuf import io
from aeuf.run import featurize
from aeuf.config import RunConfig, to_dict
from aeuf.errors import ConfigError
from aeuf.oracle import make_oracle
from aeuf.types import ResponsePool


class RunSummary(NamedTuple):
    output_dir: Path
    prompts: int
    labelled: int
    rows: int
    comparisons: int
    requests_sent: int
    requests_logged: int
    failed: int
    cost: float
    files: dict
    annotation_file: Path | None
    stopped_by_budget: bool
    oracle: str
    progress: list  # per round: labelled, head/oracle agreement before labelling, uncertainty


def default_output_dir(path: str) -> Path:
    """runs/<input name without extension>."""
    name = Path(path.rstrip("/")).name.split(".")[0] or "run"
    return Path("runs") / name


def run_identity(cfg: RunConfig) -> dict:
    """The config that config.json holds (io.check_run_config says which keys may change)."""
    return to_dict(cfg)


def _check_k(pool: ResponsePool, k: int) -> None:
    R = pool.shape[1]
    if k < 2:
        raise ConfigError(f"--num_annotations {k}: at least 2 responses per prompt must be compared")
    if k > R:
        raise ConfigError(f"--num_annotations {k} is more than the {R} responses per prompt in "
                          f"{pool.source}: lower --num_annotations or raise --num_responses")


def run(cfg: RunConfig, *, progress: bool = True) -> RunSummary:
    """Run (or resume) the whole pipeline for one config; returns what it did."""
    from aeuf.run.rounds import active_loop

    out = Path(cfg.export.output_dir) if cfg.export.output_dir else default_output_dir(cfg.input.path)
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, output_dir=str(out)))
    pool = io.read_pool(cfg.input)
    _check_k(pool, cfg.acquire.num_annotations)
    out.mkdir(parents=True, exist_ok=True)
    io.check_run_config(out, run_identity(cfg))
    if not (out / "responses.parquet").exists():
        io.write_pool(out / "responses.parquet", pool)
    features, _ = featurize.build_features(pool, cfg.features, out, progress=progress)
    pfeat = featurize.prompt_features(pool, features, cfg.features, out, progress=progress)
    oracle = make_oracle(cfg.oracle, has_gold=pool.gold is not None, workdir=out)
    try:
        return active_loop(cfg, out, pool, features, pfeat, oracle, progress=progress)
    finally:
        oracle.close()


