"""pool_from_long: a long table (one row per response) -> a ResponsePool with gold."""

import json
import math

import numpy as np
import pandas as pd
import pytest

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


DEV_POOL = "/work/shared/data/alpacaeval_dev.parquet"  # real AlpacaEval pool (read, never copied)


@pytest.fixture(scope="module")
def ragged_dev_pool(tmp_path_factory):
    """The first 24 prompts of the real dev pool (16 responses each), one of them with 15."""
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
