"""`aeuf bench` end to end on a tiny long-format pool (real heads, real MiniLM)."""

import json

import numpy as np
import pandas as pd
import pytest

from aeuf.cli import main

MODELS = ["good", "fair", "poor", "bad"]


@pytest.fixture(scope="module")
def pool_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = []
    for p in range(24):
        for m, model in enumerate(MODELS):
            words = " ".join(["word"] * int(rng.integers(3, 30)))
            score = float(np.clip(0.8 - 0.25 * m + rng.normal(0, 0.05), 0, 1))
            rows.append({"prompt_id": f"q{p}", "instruction": f"question {p}?", "model": model,
                         "response": f"{model} says {words}.", "score": score})
    path = tmp_path_factory.mktemp("pool") / "long.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def _bench(path, out, *extra):
    return main(["bench", path, "--output_dir", str(out), "--seeds", "2", "--budget", "12",
                 "--batch_size", "6", "--ceiling_pairs", "200", "--no_progress", *extra])


def test_summary_tables_and_plots(pool_path, tmp_path):
    rc = _bench(pool_path, tmp_path, "--features", "stats+model", "--heads", "bll",
                "--rules", "infomax,random", "--label_mode", "deterministic,bernoulli")
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["split"] == {"pool_prompts": 18, "test_prompts": 6, "test_pairs": 36}
    for mode in ("deterministic", "bernoulli"):
        rules = s["results"][mode]["bll"]
        assert list(rules) == ["random", "infomax"]  # random first
        r = rules["infomax"]
        assert r["seeds"] == 2 and r["labels"] == [6, 12]
        assert len(r["accuracy"]["mean"]) == 2 and len(r["log_likelihood"]["se"]) == 2
        assert set(r["vs_random"]) == {"final_accuracy", "auc_accuracy", "final_log_likelihood",
                                       "final_regret"}
        assert "labels_saved" in r and "auc_accuracy" in r and r["wall_s"]["fit"] > 0
        assert rules["random"]["vs_random"]["final_accuracy"] == {"mean": 0.0, "se": 0.0}
        png = tmp_path / f"learning_curves_{mode}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 200_000
    assert set(s["ceilings"]["bll"]) == {"stats", "model", "stats+model"}
    assert s["ceilings"]["bll"]["model"]["accuracy"] > 0.95  # the model decides the score
    assert s["baselines"]["random"]["accuracy"] == 0.5
    report = (tmp_path / "report.md").read_text()
    assert "labels saved" in report and "| infomax |" in report


def test_second_run_embeds_nothing(pool_path, tmp_path):
    args = ("--features", "minilm+model", "--heads", "bll", "--rules", "random",
            "--label_mode", "deterministic", "--ceiling_features", "minilm+model",
            "--features_cache", str(tmp_path / "cache"))
    assert _bench(pool_path, tmp_path / "a", *args) == 0
    first = json.loads((tmp_path / "a" / "summary.json").read_text())["config"]
    assert first["newly_embedded"] == {"minilm": 96}
    assert _bench(pool_path, tmp_path / "b", *args) == 0
    second = json.loads((tmp_path / "b" / "summary.json").read_text())["config"]
    assert second["newly_embedded"] == {"minilm": 0}


def test_unknown_rule_is_one_line_error(pool_path, tmp_path, capsys):
    assert _bench(pool_path, tmp_path, "--rules", "nope") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown acquisition rule 'nope'" in err[0] and "infomax" in err[0]
