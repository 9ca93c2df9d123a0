"""The prompts' kNN graph is built ahead, in a thread, when a round will read it: on nine
schedules of fresh runs, choosing.graph_ahead says so exactly when pick_prompts builds it; a
graph built ahead gives the same run, and an error building it surfaces in the round that
reads it."""

import json

import numpy as np
import pytest
from gold_pool import FAST, write_gold_pool
from test_round_beliefs import HEAD, P, linear_pool

from aeuf.bench.simulate import BenchConfig, replay_judge, run_config
from aeuf.cli import main
from aeuf.config import AcquireConfig, LoopConfig
from aeuf.errors import InputError
from aeuf.run import ahead, loop
from aeuf.run.round import choosing, engine

CASES = [  # (rule, prompt_selection, budget, batch_size, initial_batch)
    ("dts", "auto", None, 20, None),  # every prompt labelled: uniform rounds, never read
    ("dts", "balpm", None, 20, None),  # BAL-PM asked for: rounds 0-1 pick 20 of 60, 40
    ("dts", "auto", None, 30, None),  # round 1 takes the last 30: never read
    ("dts", "random", None, 20, None),
    ("random", "auto", None, 20, None),  # model-free: uniform
    ("random", "balpm", None, 20, None),
    ("dts", "balpm", 30, 30, None),  # one round, 30 of 60: round 0 reads it
    ("dts", "auto", 30, 30, None),  # one round, the initial rule: uniform
    ("dts", "auto", 150, 60, 60),  # whole passes: never fewer than its pass has left
    ("dts", "auto", 150, 50, 60),  # rounds 60, 50, 10, 30: the third pass labels 30 of 60
]


@pytest.mark.parametrize("rule,mode,budget,batch,initial", CASES)
def test_graph_ahead_says_whether_a_round_reads_the_graph(monkeypatch, rule, mode, budget,
                                                          batch, initial):
    loop_cfg = LoopConfig(budget=budget, batch_size=batch, initial_batch=initial)
    bench = BenchConfig(regime="budget" if budget else "once", head=HEAD, loop=loop_cfg,
                        acquire=AcquireConfig(prompt_selection=mode))
    cfg = run_config(bench, rule, "ensemble", 0, "deterministic")
    pool, x = linear_pool()
    ctx = engine.make_context(cfg, x, x.mean(1))
    built, build = [], choosing.build_graph
    monkeypatch.setattr(choosing, "build_graph", lambda c: built.append(1) or build(c))
    sizes, judge, state = engine.sizes_of(ctx), replay_judge(cfg.oracle), engine.initial_state(P)
    expected = choosing.graph_ahead(ctx, sizes)
    for t, size in enumerate(sizes):
        state, _, _ = engine.play(ctx, pool, state, t, size, judge, "replay")
        state = engine.refit(ctx, state, t)
    assert expected == bool(built), (sizes, built)
    assert len(built) <= 1


def test_a_graph_built_ahead_is_waited_for_and_its_error_raised_where_it_is_read():
    pool, x = linear_pool()
    bench = BenchConfig(regime="once", head=HEAD, loop=LoopConfig(batch_size=20))
    ctx = engine.make_context(run_config(bench, "dts", "ensemble", 0, "deterministic"), x,
                              x.mean(1))
    ctx.graph.append(ahead.soon(choosing.build_graph, ctx))
    got, want = choosing.graph_of(ctx), choosing.build_graph(ctx)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    bad = ctx._replace(prompt_features=np.full_like(ctx.prompt_features, np.nan), graph=[])
    bad.graph.append(ahead.soon(choosing.build_graph, bad))  # fails in its thread ...
    with pytest.raises(InputError, match="NaN"):  # ... and is raised by the reader
        choosing.graph_of(bad)


def test_the_main_command_builds_it_ahead_and_writes_the_same_dataset(tmp_path, monkeypatch):
    pool = write_gold_pool(tmp_path / "pool.csv")
    started, soon = [], ahead.soon
    monkeypatch.setattr(loop, "soon", lambda fn, *a: started.append(fn) or soon(fn, *a))
    args = [str(pool), "--num_responses", "4", "--num_annotations", "2", *FAST,
            "--budget", "18"]  # below the pool's 24 prompts: BAL-PM picks rounds 1-2
    assert main([*args, "--output_dir", str(tmp_path / "ahead")]) == 0
    assert started == [choosing.build_graph]
    monkeypatch.setattr(choosing, "graph_ahead", lambda ctx, sizes: False)
    assert main([*args, "--output_dir", str(tmp_path / "lazy")]) == 0
    assert len(started) == 1
    rows = [(tmp_path / d / "preferences.jsonl").read_text().splitlines() for d in ("ahead", "lazy")]
    assert rows[0] == rows[1] and len(rows[0]) > 0
    rounds = [json.loads((tmp_path / d / "rounds" / "1.json").read_text())["prompt_ids"]
              for d in ("ahead", "lazy")]
    assert rounds[0] == rounds[1]
