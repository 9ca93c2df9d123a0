"""`aeuf bench` end to end on a tiny long-format pool (real heads, real MiniLM)."""

import json

import numpy as np
import pandas as pd
import pytest

from aeuf.bench.simulate import split_prompts
from aeuf.cli import main

MODELS = ["good-13b", "fair-7b", "poor-3b", "bad"]  # sizes in the names: the delta baseline


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


@pytest.mark.slow  # a whole `aeuf bench` run (86-230 s at load 30)
def test_budget_regime_flat_rows_above_the_pool_tables_and_plots(pool_path, tmp_path):
    rc = _bench(pool_path, tmp_path, "--features", "stats+model", "--heads", "bll",
                "--rules", "infomax,random", "--label_mode", "deterministic,bernoulli",
                "--budget", "30")
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["regime"] == "budget"
    assert s["split"] == {"pool_prompts": 18, "test_prompts": 6, "test_pairs": 36}
    assert [(r["label_mode"], r["rule"]) for r in s["rows"]] == [
        ("deterministic", "random"), ("deterministic", "infomax"),
        ("bernoulli", "random"), ("bernoulli", "infomax")]  # random first
    for r in s["rows"]:
        assert set(r) == set(s["fields"])  # every number has a documented field, and only those
        assert r["seeds"] == 2 and r["labels"] == [6, 12, 18, 24, 30]  # 18 prompts, then a 2nd pass
        assert r["passes"] == 1 and r["calls"] == 60
        assert len(r["accuracy"]) == len(r["log_likelihood_se"]) == 5
        assert 0 <= r["final_accuracy"] <= 1 and r["final_log_likelihood"] < 0
        assert r["fit_s"] > 0 and isinstance(r["beats_length"], bool)
        lo, hi = r["labels_saved_lo"], r["labels_saved_hi"]
        assert lo is None or hi is None or lo <= hi
        if r["rule"] == "random":
            assert r["d_final_accuracy"] == 0.0 and r["d_final_accuracy_se"] == 0.0
    for mode in ("deterministic", "bernoulli"):
        png = tmp_path / f"learning_curves_{mode}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size < 200_000
    ref = {(e["kind"], e["name"], e["features"]): e for e in s["reference"]}
    assert {f for k, n, f in ref if k == "ceiling"} == {"stats", "model", "stats+model"}
    assert ref[("ceiling", "bll", "model")]["accuracy"] > 0.95  # the model decides the score
    assert ref[("baseline", "random", None)]["accuracy"] == 0.5
    assert all(set(e) == set(s["reference_fields"]) for e in s["reference"])
    report = (tmp_path / "report.md").read_text()
    assert "labels saved [95% band]" in report and "| infomax |" in report


@pytest.mark.slow  # a whole `aeuf bench` run (86-230 s at load 30)
def test_once_regime_every_field_present_and_sane(pool_path, tmp_path):
    rc = _bench(pool_path, tmp_path, "--regime", "once", "--features", "stats+model",
                "--heads", "bll", "--rules", "dts,aepo,ultrafeedback", "--label_mode",
                "deterministic")
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["regime"] == "once" and s["split"]["pool_prompts"] == 18
    rows = {r["rule"]: r for r in s["rows"]}
    assert list(rows) == ["random", "dts", "aepo", "ultrafeedback", "west_of_n", "length", "delta"]
    calls = {"random": 2, "dts": 2, "aepo": 2, "ultrafeedback": 4, "west_of_n": 4, "length": 0,
             "delta": 0}
    for name, r in rows.items():
        assert set(r) == set(s["fields"]), name
        assert r["kind"] == ("baseline" if name in ("length", "delta") else "rule")
        assert r["calls_per_prompt"] == calls[name] and r["seeds"] == 2
        for k in ("best_of_n", "worst_of_n", "correct", "wrong", "exported", "ties",
                  "unanswered", "wasted_calls", "rm_accuracy"):
            assert 0.0 <= r[k] <= 1.0, (name, k)
        assert r["correct"] + r["wrong"] <= 1.0
        assert r["exported"] + r["ties"] + r["unanswered"] == pytest.approx(1.0)
        assert r["gold_gap_per_prompt_share"] <= 1.0 + 1e-9  # nothing beats best vs worst
        assert r["rm_log_likelihood"] < 0 and r["rm_pairs"] == pytest.approx(18 * r["exported"])
        assert (r["tokens_per_prompt"] > 0) == (calls[name] > 0)
        for k in ("lc_best_of_n", "lc_worst_of_n", "lc_correct", "lc_wrong", "lcl_best_of_n",
                  "lcl_correct"):
            assert 0.0 <= r[k] <= 1.0, (name, k)
        assert r["lc_correct"] + r["lc_wrong"] <= 1.0 + 1e-9
    won = rows["west_of_n"]
    assert won["best_of_n"] == won["worst_of_n"] == won["gold_gap_share"] == 1.0
    assert rows["random"]["d_best_of_n"] == 0.0 and rows["dts"]["d_rm_accuracy"] is not None
    assert rows["delta"]["best_of_n"] > 0.9  # good-13b vs poor-3b: the biggest model is best here
    df = pd.read_parquet(pool_path)
    keep, _ = split_prompts(24, 0.25, 0)
    pool_ids = set(pd.unique(df["prompt_id"])[keep])
    sub = df[df["prompt_id"].isin(pool_ids)]
    chars = sub["instruction"].str.len().sum() + sub["response"].str.len().sum()
    assert won["tokens_per_prompt"] == pytest.approx(chars / 4 / 18)  # every response shown
    png = tmp_path / "dataset_quality_deterministic.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "report.md").read_text()
    assert "| delta (no call) |" in report and "% of West-of-N gap" in report
    assert "length-controlled gold" in report and report.count("| delta (no call) |") == 2


@pytest.mark.slow  # a whole `aeuf bench` run (86-230 s at load 30)
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


@pytest.mark.slow  # a whole `aeuf bench` run
def test_one_seed_prints_no_error_band(pool_path, tmp_path):
    assert _bench(pool_path, tmp_path, "--seeds", "1", "--features", "stats", "--heads", "bll",
                  "--rules", "infomax,random", "--label_mode", "deterministic") == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert all(r["seeds"] == 1 and r["final_accuracy"] is not None
               and r["final_accuracy_se"] is None and r["d_final_accuracy_se"] is None
               for r in s["rows"])
    report = (tmp_path / "report.md").read_text()
    rows = [x for x in report.splitlines()  # the rule rows (not the reference table's random)
            if x.startswith(("| random |", "| infomax |")) and x.count("|") > 8]
    assert len(rows) == 2 and not any("±" in x for x in rows)
    assert "n = 1" in report and "Mean ± standard error" not in report
