"""`run(cfg)`: the whole job on one run directory (reads, validates, drives the engine, exports).

Everything that can be checked is checked before anything is written: the input, every
flag, the oracle. Then the run directory is locked, its identity (config + the input's
digest) checked, and the rounds played by the round engine (aeuf.run.round.engine). Round t's
plan is written to rounds/<t>.json before it is judged; judgements go through the ledger
(never paid twice); the head is saved after each fit. A rerun of the same command replays
the recorded plans, restores the saved head instead of refitting, and asks only for the
judgements that are missing.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from aeuf import embed, io
from aeuf.config import RunConfig, stored, to_dict
from aeuf.errors import AeufError, ConfigError, InputError
from aeuf.oracle import Oracle, auto_name, is_final, judge_over_gold, make_oracle
from aeuf.oracle.cheap import cheap_judge_oracle
from aeuf.run import annotators, cascade, checks, export, featurize, headstore, records, report
from aeuf.run.ahead import soon
from aeuf.run.export import RunSummary
from aeuf.run.jobs import cluster, costplan
from aeuf.run.ledger import Ledger, earlier_unanswered
from aeuf.run.preflight import preflight
from aeuf.run.round import choosing, engine, signals
from aeuf.run.timing import Stopwatch
from aeuf.types import ResponsePool


def default_output_dir(path: str) -> Path:
    """runs/<input name without extension>; a pool made by `aeuf generate`
    (<folder>/generated.parquet) is named after its folder: runs/<folder>-labels."""
    p = Path(path.rstrip("/"))
    name = p.name.split(".")[0].split(":")[0] or "run"
    if name == "generated" and p.parent.name:
        name = f"{p.parent.name}-labels"
    return Path("runs") / name


def output_dir(cfg: RunConfig) -> Path:
    """The run folder of cfg: --output_dir, else default_output_dir of the input."""
    return Path(cfg.export.output_dir) if cfg.export.output_dir else default_output_dir(cfg.input.path)


def started_with(cfg: RunConfig) -> dict:
    """The settings of the run already in cfg's output folder that a rerun may not change
    (io.fixed_settings, nested like config.json); {} for a new folder, and for a config.json
    that cannot be read (run() names that file itself)."""
    out = output_dir(cfg)
    try:
        data = io.RunDir(out).stored_config()
    except (AeufError, OSError):
        return {}
    if not isinstance(data, dict):
        return {}
    return io.fixed_settings(stored(data), stored({}))  # stored({}): today's defaults, as JSON


def run(cfg: RunConfig, *, progress: bool = True) -> RunSummary:
    """Run (or resume) the whole pipeline for one config; returns what it did."""
    preflight(cfg)  # what this machine lacks fails now, not after the embedding
    out = output_dir(cfg)
    cfg = dataclasses.replace(cfg, export=dataclasses.replace(cfg.export, output_dir=str(out)))
    if cfg.oracle.rm.model and not cfg.features.rm_encoder:  # --features rm reads --reward_model
        cfg = dataclasses.replace(cfg, features=dataclasses.replace(
            cfg.features, rm_encoder=cfg.oracle.rm.model))
    watch = Stopwatch()
    with watch("read input"):
        pool = read_input(cfg, out)
    cfg = resolve_features(cfg, pool, out)  # --features auto -> its parts (config.json, cache, card)
    engine.validate(cfg, pool.shape[1])
    cluster.check(cfg)
    _check_oracle(cfg, pool)
    checked = featurize.check_precomputed(pool, cfg.features)  # read once: passed on below
    if cfg.spend.dry_run:  # the cost plan (issue 12): nothing is sent, nothing is written
        print(costplan.render(costplan.plan(cfg, pool, unanswered=len(earlier_unanswered(out)))))
        return RunSummary(out, pool.shape[0], 0, 0, 0, 0, 0, 0, 0, len(pool.skipped), 0.0, {},
                          None, False, "dry run (nothing sent)", [])
    tally: dict = {}  # filled once the ledger is open: the human oracle's overall progress
    has_gold = pool.gold is not None
    oracle = make_oracle(cfg.oracle, has_gold=has_gold, store=io.BatchStore(out / "batches"),
                         tally=lambda: _tally(tally),
                         **annotators.link_options(cfg.oracle, out, tally, has_gold=has_gold))
    cheap = cheap_judge_oracle(cfg.oracle)  # the cascade's cheap judge, or None
    try:
        with io.RunDir(out) as rd:
            with watch("store pool"):
                pool = rd.check_input(pool, cfg.input.path)
                rd.check_config({**to_dict(cfg), "input_digest": io.pool_digest(pool),
                                 "oracle_used": oracle.name})
                rd.store_pool(pool)
            return _run_rounds(cfg, rd, pool, oracle, progress, cheap, watch, tally, checked)
    finally:
        oracle.close()
        if cheap is not None:
            cheap.close()


def _check_oracle(cfg: RunConfig, pool: ResponsePool) -> None:
    """ConfigError for a setting that cannot take effect; a note when a named judge is used
    although the input has gold scores."""
    has_gold = pool.gold is not None
    problem = checks.ineffective(cfg, auto_name(cfg.oracle, has_gold=has_gold))
    if problem:
        raise ConfigError(problem)
    if judge_over_gold(cfg.oracle, has_gold=has_gold):
        print(f"aeuf: {cfg.input.path} has gold scores, but a judge was named: judging with "
              f"it (pass --oracle replay to use the gold scores instead)", file=sys.stderr)


def resolve_features(cfg: RunConfig, pool: ResponsePool, out: Path) -> RunConfig:
    """--features auto resolved: to what the run in `out` used when it resumes one (a run
    started before `auto` was the default wrote its parts), else from the pool
    (embed.resolve_features). An explicit --features is kept."""
    if cfg.features.features.strip() != embed.AUTO:
        return cfg
    stored = (io.RunDir(out).stored_config() or {}).get("features", {})
    used = stored.get("features") if isinstance(stored, dict) else None
    if isinstance(used, str) and used.strip() and used.strip() != embed.AUTO:
        return dataclasses.replace(cfg, features=dataclasses.replace(cfg.features, features=used))
    return dataclasses.replace(cfg, features=embed.resolve_config(cfg.features, pool))


def read_input(cfg: RunConfig, out: Path) -> ResponsePool:
    """The input pool; a run whose input file is gone resumes from its stored pool."""
    try:
        return io.read_pool(cfg.input)
    except InputError:
        stored = io.RunDir(out).stored_pool() if not Path(cfg.input.path).exists() else None
        if stored is None:
            raise
        print(f"aeuf: {cfg.input.path} is gone; resuming from {out / 'responses.parquet'}",
              file=sys.stderr)
        return stored


def _run_rounds(cfg: RunConfig, rd: io.RunDir, pool: ResponsePool, oracle: Oracle,
                progress: bool, cheap: Oracle | None = None,
                watch: Stopwatch | None = None, tally: dict | None = None,
                file_block: np.ndarray | None = None) -> RunSummary:
    """The rounds and the export. file_block: the 'file' features as check_precomputed
    returned them for this pool (the stored pool has the same response ids: same digest)."""
    watch = watch or Stopwatch()
    with watch("features"):
        features, info = featurize.build_features(pool, cfg.features, progress=progress,
                                                  spill=rd.path, file_block=file_block)
        pfeat = featurize.prompt_features(pool, features, cfg.features, progress=progress,
                                          spill=rd.path)
    usable = np.isfinite(pool.gold) if oracle.caps.uses_gold and pool.gold is not None else None
    with watch("shards"):
        where = cluster.where_of(cfg, rd.path, features)  # --ray: the rounds choose there
    ctx = engine.make_context(cfg, features, pfeat, usable=usable,
                              signals=signals.of_pool(pool, features), where=where,
                              widths=info.dims)  # the head's linear part: stats, model
    _note_linear_part(ctx.cfg)
    ledger = Ledger.open(rd.judgements, max_requests=cfg.spend.max_requests,
                         max_cost=cfg.spend.max_cost, where=_where(cfg, oracle),
                         retry_unparsable=cfg.spend.retry_unparsable,
                         retry_unanswered=cfg.spend.retry_unanswered)
    if not oracle.caps.labels:
        return export.annotate(ctx, rd, pool, ledger, oracle)
    asked = report.AskedKeys(ledger)  # what each round asked for: its cost in the report
    judge = _judge_through(asked, oracle, cfg, progress, cheap)
    saved = headstore.usable(ctx, rd.load_head(), rd.path)
    state, labelled, rows, why = engine.initial_state(pool.shape[0]), [], [], ""
    sizes = engine.sizes_of(ctx)
    if choosing.graph_ahead(ctx, sizes):  # built while round 0 is judged and fit
        ctx.graph.append(soon(choosing.build_graph, ctx))
    left = sum(sizes)  # prompts the budget still allows: a recorded round may hold more
    k = cfg.acquire.num_annotations
    if tally is not None:
        votes = cfg.oracle.web.votes_per_pair if oracle.caps.votes else 1  # vote slots
        tally.update(ledger=ledger, name=oracle.name,
                     planned=sum(sizes) * k * (k - 1) // 2 * votes)
    with headstore.Saver(rd) as saver:  # the last fit runs on while the run exports
        bar = progress and not oracle.caps.interactive  # a person at the terminal owns it
        for t, size in enumerate(tqdm(sizes, desc="rounds", unit="round", disable=not bar)):
            rec = rd.round_record(t)
            size = min(size, left)
            if rec is None and (ledger.exhausted or size <= 0):
                break
            saver.wait()  # a failed save of the last head stops the run before it asks more
            with watch("choose"):
                plan = records.plan_from(rec) if rec is not None else \
                    engine.choose(ctx, state, t, size)
                if rec is None:
                    rd.save_round(t, records.plan_record(plan, pool))
            with watch("judge"):
                state, plan, outcome = engine.play(ctx, pool, state, t, size, judge, oracle.name,
                                                   plan=plan)
            labelled += outcome.labelled
            left -= len(plan.prompts)
            rows.append({**records.progress_row(plan, outcome), "keys": set(asked.keys),
                         "prompt_ids": {str(pool.prompt_ids[p]) for p in plan.prompts}})
            asked.keys.clear()
            with watch("fit"):
                state = headstore.fit(ctx, rd, state, t, ledger, saved, saver)
            io.atomic_write_json(rd.path / "timings.json", watch.record)  # a long run shows it
            if engine.should_stop(ctx, outcome):  # --stop_when_agreement
                why = _stop_reason(cfg, outcome, t, sizes)
                break
        with watch("export"):
            summary = export.export(cfg, rd, pool, ledger, oracle, state, labelled, rows, why)
        with watch("last fit, after export"):  # what is left of it once the export is written
            saver.wait()
    io.atomic_write_json(rd.path / "timings.json", watch.record)
    return summary._replace(files={**summary.files, "timings": rd.path / "timings.json"})


def _note_linear_part(cfg: RunConfig) -> None:
    """A note when the two-speed head found no cheap column to fit its linear part on (it is
    then the ensemble): e.g. --features file, whose stats and model columns are not known."""
    if cfg.head.name == "ensemble+linear" and not cfg.head.linear_columns:
        print(f"aeuf: the ensemble+linear head reads no stats or model column in --features "
              f"{cfg.features.features}, so it is the ensemble alone; add 'stats' (and "
              "'model') to --features for its linear part, or pass --head ensemble",
              file=sys.stderr)


def _tally(t: dict) -> tuple[int, int] | None:
    """(final answers of the oracle in the log, pairs the run plans at most), once known."""
    if not t:
        return None
    answers = list(t["ledger"].answers.values())  # one step: the web page reads it from a thread
    done = sum(1 for a in answers if a.judge.split(":")[0] == t["name"] and is_final(a))
    return done, t["planned"]


def _stop_reason(cfg: RunConfig, outcome, t: int, sizes: list[int]) -> str:
    """Why --stop_when_agreement ended the run early (the summary and report.md say it)."""
    left = sum(sizes[t + 1:])
    return (f"stopped after round {t} of rounds 0-{len(sizes) - 1}: the head agreed with the "
            f"oracle on {outcome.agreement:.2f} of the round's pairs before labelling "
            f"(--stop_when_agreement {cfg.loop.stop_when_agreement})"
            + (f"; {left} planned prompts were not asked" if left else ""))


def _where(cfg: RunConfig, oracle: Oracle) -> str:
    """How the 'cannot be reached' message names the oracle."""
    url = cfg.oracle.judge.base_url if oracle.caps.remote else None
    return f"the {oracle.name} oracle" + (f" at {url}" if url else "")


def _judge_through(ledger: report.AskedKeys, oracle: Oracle, cfg: RunConfig, progress: bool,
                   cheap: Oracle | None = None):
    chunk = oracle.chunk or max(4 * cfg.oracle.judge.concurrency, 16)
    show = progress and not oracle.caps.interactive
    strong = lambda plan, tasks: ledger.judge(oracle, tasks, chunk=chunk, progress=show)  # noqa: E731
    return cascade.through_ledger(strong, ledger, cheap, cfg, chunk=chunk, progress=show,
                                  strong_name=oracle.name)
