"""--features auto: the pool decides (the generating model's one-hot joins when the pool
names two or more models), an explicit --features is kept, and a run started before `auto`
was the default resumes under the default flags with the parts it used."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gold_pool import FAST, R, write_gold_pool

from aeuf import embed, io
from aeuf.cli import main
from aeuf.config import InputConfig, RunConfig
from aeuf.run import loop

DEFAULT_FEATURES = [x for x in FAST if x not in ("--features", "stats")]


def _pool(path: Path, models: list[str] | None):
    write_gold_pool(path)
    if models is not None:
        df = pd.read_csv(path)
        for r in range(R):
            df[f"response_{r}_model"] = models[r % len(models)]
        df.to_csv(path, index=False)
    return io.read_pool(InputConfig(path=str(path)))


def test_auto_adds_the_model_part_only_when_the_pool_names_two_models(tmp_path):
    two = _pool(tmp_path / "two.csv", ["m-a", "m-b"])
    one = _pool(tmp_path / "one.csv", ["m-a"])
    none = _pool(tmp_path / "none.csv", None)
    assert embed.resolve_features("auto", two) == "minilm+stats+model"
    assert embed.resolve_features("auto", one) == "minilm+stats"
    assert embed.resolve_features("auto", none) == "minilm+stats"
    assert embed.resolve_features("minilm+stats", two) == "minilm+stats"  # explicit: kept
    assert embed.resolve_features("stats+model", none) == "stats+model"


def test_auto_leaves_out_model_names_that_never_recur(tmp_path):
    """A name unique to each response (a run id in the model column) tells no prompt anything
    about another: its one-hot would be a column of noise per response."""
    path = tmp_path / "unique.csv"
    write_gold_pool(path)
    df = pd.read_csv(path)
    for r in range(R):
        df[f"response_{r}_model"] = [f"run-{p}-{r}" for p in range(len(df))]
    df.to_csv(path, index=False)
    unique = io.read_pool(InputConfig(path=str(path)))
    assert embed.resolve_features("auto", unique) == "minilm+stats"
    df["response_0_model"] = "m-a"  # one model recurs: still nothing to compare it with
    df.to_csv(path, index=False)
    assert embed.resolve_features("auto", io.read_pool(InputConfig(path=str(path)))) == "minilm+stats"
    df["response_1_model"] = "m-b"  # two recur
    df.to_csv(path, index=False)
    assert embed.resolve_features("auto", io.read_pool(InputConfig(path=str(path)))) == \
        "minilm+stats+model"


def test_the_run_layer_resolves_auto_for_a_fresh_folder(tmp_path):
    pool = _pool(tmp_path / "two.csv", ["m-a", "m-b"])
    cfg = loop.resolve_features(RunConfig(), pool, tmp_path / "fresh")
    assert cfg.features.features == "minilm+stats+model"
    explicit = RunConfig(features=type(RunConfig().features)(features="stats"))
    assert loop.resolve_features(explicit, pool, tmp_path / "fresh").features.features == "stats"


def test_a_run_from_before_auto_resumes_under_the_default_flags(tmp_path):
    path = tmp_path / "pool.csv"
    _pool(path, ["m-a", "m-b"])  # auto would resolve to minilm+stats+model here
    out = tmp_path / "run"
    args = [str(path), "--num_responses", str(R), "--num_annotations", "2",
            "--output_dir", str(out)]
    assert main([*args, *FAST]) == 0  # config.json: features "stats", as an older run wrote
    first = (out / "preferences.jsonl").read_text()
    asked = (out / "judgements.jsonl").read_text()
    assert main([*args, *DEFAULT_FEATURES]) == 0  # no --features: auto
    assert json.loads((out / "config.json").read_text())["features"]["features"] == "stats"
    assert (out / "preferences.jsonl").read_text() == first
    assert (out / "judgements.jsonl").read_text() == asked  # nothing asked again


@pytest.mark.slow
def test_a_two_speed_head_without_cheap_columns_says_it_is_the_ensemble(tmp_path, capsys):
    """--features file (what `aeuf embed` writes: its stats and model columns are not
    known as such) leaves the default head's linear part nothing to read: one note says the
    head is the ensemble, and how to give it its cheap columns."""
    path = write_gold_pool(tmp_path / "pool.csv")
    pool = io.read_pool(InputConfig(path=str(path)))
    ids = [str(i) for i in pool.response_ids.reshape(-1)]
    vecs = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    npy = io.write_precomputed_features(tmp_path / "feats", vecs, ids)
    args = [str(path), "--num_responses", str(R), "--num_annotations", "2", *FAST[2:],
            "--budget", "6", "--precomputed", str(npy)]  # one round
    assert main([*args, "--output_dir", str(tmp_path / "file"), "--features", "file"]) == 0
    assert "the ensemble+linear head reads no stats or model column" in capsys.readouterr().err
    assert main([*args, "--output_dir", str(tmp_path / "stats"), "--features", "stats+file"]) == 0
    assert "reads no stats or model column" not in capsys.readouterr().err


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_feature_part_that_yields_non_finite_values_is_refused_for_every_head(
        tmp_path, monkeypatch, capsys, bad):
    """An encoder that returns NaN or an infinity for one response (a fault, injected here into
    the 'stats' part) would make any head's scores NaN: the run refuses it in one line naming
    the part, prompt and response, before anything is asked; once the part is mended, the same
    command runs."""
    path = write_gold_pool(tmp_path / "pool.csv")
    part = embed.PARTS.get("stats")

    def broken(pool, cfg):
        values = part.compute(pool, cfg)
        values[2 * R + 1, 3] = bad  # prompt 3, response 2
        return values

    monkeypatch.setitem(embed.PARTS._items, "stats", part._replace(compute=broken))
    out = tmp_path / "run"
    for head in ("ensemble", "bll"):
        code = main([str(path), "--num_responses", str(R), "--num_annotations", "2",
                     "--output_dir", str(out), "--head", head, *FAST])
        err = capsys.readouterr().err
        assert code == 1 and "'stats' features of prompt 3, response 2" in err
        assert "Traceback" not in err and not (out / "judgements.jsonl").exists()
        out = tmp_path / "run_bll"
    monkeypatch.setitem(embed.PARTS._items, "stats", part)
    assert main([str(path), "--num_responses", str(R), "--num_annotations", "2",
                 "--output_dir", str(out), "--head", "bll", *FAST]) == 0
