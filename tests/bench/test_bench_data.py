"""pool_from_long: a long table (one row per response) -> a ResponsePool with gold."""

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from paths import REPO

from aeuf.bench.data import pool_from_long, read_bench_pool, score_to_utility
from aeuf.errors import InputError


def _long():
    return pd.DataFrame({
        "prompt_id": ["p2", "p2", "p1", "p1", "p2", "p1"],
        "instruction": ["second?", "second?", "first?", "first?", "second?", "first?"],
        "model": ["zeta", "alpha", "mid", "alpha", "mid", "zeta"],
        "response": ["p2z", "p2a", "p1m", "p1a", "p2m", "p1z"],
        "score": [0.5, 0.0, 1.0, 0.25, 0.9, 0.5],
    })


def test_layout_ids_models_and_gold():
    pool = pool_from_long(_long(), "t.parquet")
    assert pool.shape == (2, 3)
    assert pool.prompt_ids.tolist() == ["p2", "p1"]  # first appearance
    assert pool.prompts.tolist() == ["second?", "first?"]
    assert pool.models.tolist() == [["alpha", "mid", "zeta"]] * 2  # sorted by model
    assert pool.responses.tolist() == [["p2a", "p2m", "p2z"], ["p1a", "p1m", "p1z"]]
    assert pool.response_ids[1, 0] == "p1:alpha"
    assert pool.gold_kind == "score" and pool.source == "t.parquet"
    logit = lambda s: math.log(s / (1 - s))  # noqa: E731
    want = [[logit(1e-4), logit(0.9), 0.0], [logit(0.25), logit(1 - 1e-4), 0.0]]
    np.testing.assert_allclose(pool.gold, want)


def test_score_to_utility_is_clipped_logit():
    u = score_to_utility([0.0, 0.5, 1.0])
    assert u[1] == 0.0 and u[0] == pytest.approx(-math.log(9999.0)) and u[2] == pytest.approx(-u[0])


def test_without_models_or_scores():
    df = _long().drop(columns=["model", "score"]).rename(columns={"instruction": "prompt"})
    pool = pool_from_long(df)
    assert pool.gold is None and pool.gold_kind is None
    assert pool.response_ids[0].tolist() == ["p2:0", "p2:1", "p2:2"]
    assert pool.responses[0].tolist() == ["p2z", "p2a", "p2m"]  # row order kept


def test_ragged_prompt_is_skipped():
    pool = pool_from_long(_long().iloc[:5], "x")  # p1 has 2 responses, p2 has 3
    assert pool.shape == (1, 3) and pool.prompt_ids.tolist() == ["p2"] and pool.skipped == ("p1",)
    pool = pool_from_long(_long().iloc[:5], "x", num_responses=2)
    assert pool.shape == (2, 2) and pool.models[1].tolist() == ["alpha", "mid"]


def test_errors_name_the_problem():
    bad = _long()
    bad.loc[3, "score"] = 1.5
    with pytest.raises(InputError, match="row 4, column 'score'"):
        pool_from_long(bad, "x")
    with pytest.raises(InputError, match="no prompt column"):
        pool_from_long(_long().drop(columns=["instruction"]), "x")
    dup = _long()
    dup.loc[5, "model"] = "alpha"
    with pytest.raises(InputError, match="row 6, column .model.: a second response from model .alpha. to the prompt of row 4"):
        pool_from_long(dup, "x")


def test_read_bench_pool_reads_a_long_parquet(tmp_path):
    path = tmp_path / "long.parquet"
    _long().to_parquet(path)
    pool = read_bench_pool(str(path))
    assert pool.shape == (2, 3) and pool.gold is not None
    _long().drop(columns=["score"]).to_parquet(path)
    with pytest.raises(InputError, match="gold"):
        read_bench_pool(str(path))


# The real AlpacaEval dev pool (read, never copied): $AEUF_DEV_POOL, else ../shared/data next to
# the repository; scripts/fetch_dev_pool.py rebuilds it from AlpacaEval's public results.
DEV_POOL = os.environ.get("AEUF_DEV_POOL") or str(
    REPO.parent / "shared" / "data" / "alpacaeval_dev.parquet")


@pytest.fixture(scope="module")
def ragged_dev_pool(tmp_path_factory):
    """The first 24 prompts of the real dev pool (16 responses each), one of them with 15."""
    if not Path(DEV_POOL).exists():
        pytest.skip(f"no dev pool at {DEV_POOL}: set AEUF_DEV_POOL or run scripts/fetch_dev_pool.py")
    df = pd.read_parquet(DEV_POOL)
    ids = pd.unique(df["prompt_id"])[:24]
    df = df[df["prompt_id"].isin(ids)].reset_index(drop=True)
    short = ids[5]
    df = df.drop(index=df.index[df["prompt_id"] == short][3]).reset_index(drop=True)
    path = tmp_path_factory.mktemp("dev") / "ragged.parquet"
    df.to_parquet(path)
    return str(path), str(short)


def test_read_bench_pool_skips_the_prompt_with_15_of_16(ragged_dev_pool):
    path, short = ragged_dev_pool
    pool = read_bench_pool(path)
    assert pool.shape == (23, 16) and pool.skipped == (short,)
    assert short not in pool.prompt_ids.tolist() and np.isfinite(pool.gold).all()
    assert read_bench_pool(path, num_responses=15).shape == (24, 15)


@pytest.mark.slow  # a whole `aeuf bench` run on 24 real prompts
def test_aeuf_bench_runs_on_a_ragged_real_pool(ragged_dev_pool, tmp_path):
    from aeuf.cli import main

    path, _ = ragged_dev_pool
    rc = main(["bench", path, "--output_dir", str(tmp_path), "--seeds", "1", "--budget", "12",
               "--batch", "6", "--ceiling_pairs", "200", "--no_progress", "--features",
               "stats+model", "--heads", "bll", "--rules", "random", "--label_mode",
               "deterministic"])
    assert rc == 0
    split = json.loads((tmp_path / "summary.json").read_text())["split"]
    assert split["pool_prompts"] + split["test_prompts"] == 23


def test_read_bench_pool_keeps_a_response_without_gold_and_counts_it(tmp_path):
    """As the main command under the replay oracle: the response stays (never chosen, never
    scored); a pool with no gold at all is refused."""
    from aeuf.bench.data import without_gold

    df = _long()
    df.loc[4, "score"] = None
    df.to_parquet(tmp_path / "g.parquet")
    pool = read_bench_pool(str(tmp_path / "g.parquet"))
    assert without_gold(pool) == 1 and "p2:mid" in pool.response_ids
    df["score"] = None
    df.to_parquet(tmp_path / "none.parquet")
    with pytest.raises(InputError, match="needs gold scores"):
        read_bench_pool(str(tmp_path / "none.parquet"))


# --- the dev pool rebuilt from AlpacaEval's public results (scripts/fetch_dev_pool.py) ---

INSTRUCTIONS = ["Name a colour.", "Add 2 and 2.", "Say hi.", "Write a haiku."]


def _alpaca_eval_copy(root: Path, models: dict) -> Path:
    """A local alpaca_eval results tree with the real files' JSON shapes: per model,
    results/<model>/model_outputs.json and .../weighted_alpaca_eval_gpt4_turbo/annotations.json.
    models = {name: [preference per instruction (None: no annotation)]}."""
    for model, prefs in models.items():
        folder = root / "results" / model
        (folder / "weighted_alpaca_eval_gpt4_turbo").mkdir(parents=True)
        outputs = [{"dataset": "koala" if i % 2 else "oasst", "instruction": ins,
                    "output": f"{model} answers {i}", "generator": model}
                   for i, ins in enumerate(INSTRUCTIONS)]
        notes = [{"instruction": ins, "output_1": "reference", "generator_1": "gpt4_1106_preview",
                  "dataset": "oasst", "output_2": f"{model} answers {i}", "generator_2": model,
                  "annotator": "weighted_alpaca_eval_gpt4_turbo", "preference": p,
                  "price_per_example": 0.008, "time_per_example": 0.2, "raw_completion": {}}
                 for i, (ins, p) in enumerate(zip(INSTRUCTIONS, prefs)) if p is not None]
        (folder / "model_outputs.json").write_text(json.dumps(outputs))
        (folder / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json").write_text(json.dumps(notes))
    return root


def _fetch_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("fetch_dev_pool", REPO / "scripts" / "fetch_dev_pool.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fetch_dev_pool_builds_the_long_table_from_a_local_copy(tmp_path):
    src = _alpaca_eval_copy(tmp_path / "ae", {
        "model-a": [1.75, 1.0, 2.0, "1.5"],  # a preference written as text is read
        "model-b": [1.25, 1.5, None, 1.5],   # no annotation for "Say hi.": left out
    })
    out = tmp_path / "pool.parquet"
    assert _fetch_script().main(["--source", str(src), "--out", str(out),
                                 "--models", "model-a,model-b"]) == 0
    df = pd.read_parquet(out)
    assert list(df.columns) == ["prompt_id", "instruction", "dataset", "model", "response", "score"]
    ids = [hashlib.sha1(i.encode()).hexdigest()[:12] for i in INSTRUCTIONS]  # the dev pool's ids
    assert df["prompt_id"].tolist() == ids + [ids[0], ids[1], ids[3]]  # by model, AlpacaEval order
    assert df["model"].tolist() == ["model-a"] * 4 + ["model-b"] * 3
    assert df["score"].tolist() == [0.75, 0.0, 1.0, 0.5, 0.25, 0.5, 0.5]  # preference - 1
    assert df["instruction"].tolist()[:4] == INSTRUCTIONS and df.loc[1, "dataset"] == "koala"
    assert df.loc[4, "response"] == "model-b answers 0"
    pool = read_bench_pool(str(out))  # the benchmark reads it; "Say hi." has 1 of 2: skipped
    assert pool.shape == (3, 2) and pool.skipped == (ids[2],)
    np.testing.assert_allclose(pool.gold[0], score_to_utility([0.75, 0.25]))


def test_fetch_dev_pool_names_the_missing_file_and_writes_nothing(tmp_path, capsys):
    src = _alpaca_eval_copy(tmp_path / "ae", {"model-a": [1.5] * 4})
    out = tmp_path / "pool.parquet"
    rc = _fetch_script().main(["--source", str(src), "--out", str(out),
                               "--models", "model-a,model-zz"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert "results/model-zz/model_outputs.json" in err and not out.exists()
    assert not list(tmp_path.glob("pool.parquet*"))


def test_build_rows_refuses_a_file_that_is_not_a_list():
    from aeuf.bench.devpool import build_rows

    with pytest.raises(InputError, match="m: annotations.json is not a JSON list"):
        build_rows({"m": ([{"instruction": "x", "output": "y"}], {"detail": "Not Found"})})


# --- the scripts' shared helpers (aeuf/bench/measure.py, output.py, devpool.load_pool) ---


def test_mlp_flops_counts_forward_and_training_by_hand():
    from aeuf.bench.measure import floor_seconds, mlp_flops, over_floor

    # D 4 -> 3 -> 2 -> 1: layers of 12, 6, 2 multiply-adds
    fwd, train = mlp_flops(4, (3, 2))
    assert fwd == 2 * (12 + 6 + 2)
    assert train == 2 * (2 * (12 + 6 + 2) + (6 + 2))  # + input gradients of layers 2 and 3
    assert floor_seconds(2e9, 4.0) == 0.5 and over_floor(1.5, 2e9, 4.0) == 3.0


def test_block_waits_for_every_jax_leaf_and_passes_other_values():
    import jax.numpy as jnp

    from aeuf.bench.measure import block

    tree = {"w": jnp.ones(3), "n": 2, "t": (jnp.zeros(2), "x")}
    assert block(tree) is tree and block(None) is None and block(5) == 5


def test_markdown_table_and_plot(tmp_path):
    from aeuf.bench.output import markdown_table, plot_lines, write_table

    text = markdown_table(("what", "s", "x"), [("fit", 1.23456, 12345.6), ("idle", None, 3)])
    assert text.splitlines() == ["| what | s | x |", "|---|---|---|", "| fit | 1.23 | 12,346 |",
                                 "| idle | — | 3 |"]
    assert write_table(tmp_path / "t.md", ("a",), [(1,)], title="T") == "T\n\n| a |\n|---|\n| 1 |\n"
    png = plot_lines(tmp_path / "sub" / "p.png",
                     {"seconds": {"main": ([1, 10], [2.0, 20.0])}}, "P", log=True)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_pool_says_how_to_make_a_missing_pool(tmp_path, monkeypatch):
    from aeuf.bench.devpool import ENV, dev_pool_path, load_pool

    monkeypatch.setenv(ENV, str(tmp_path / "nope.parquet"))
    assert dev_pool_path() == tmp_path / "nope.parquet"
    assert dev_pool_path("given.parquet") == Path("given.parquet")
    with pytest.raises(InputError, match=r"nope.parquet: no such pool; .*fetch_dev_pool.py"):
        load_pool()
    _long().to_parquet(tmp_path / "l.parquet")
    assert load_pool(tmp_path / "l.parquet", models=("alpha", "zeta")).shape == (2, 2)
