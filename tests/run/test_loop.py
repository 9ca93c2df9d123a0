"""The main command end to end on a small pool with gold scores (replay oracle).

Uses the cheap `stats` features so each run takes seconds; test_embed covers MiniLM.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets import load_dataset
from gold_pool import FAST, P, R, write_gold_pool
from paths import DATA

from aeuf.cli import main


def _run(pool: Path, out: Path, *extra: str) -> int:
    return main([str(pool), "--num_responses", str(R), "--num_annotations", "2",
                 "--output_dir", str(out), *FAST, *extra])


def _gold(pool: Path) -> dict:
    df = pd.read_csv(pool)
    return {df.loc[p, f"response_{r}"]: df.loc[p, f"response_{r}_score"] for p in range(P) for r in range(R)}


def test_main_command_writes_a_trl_dataset_every_row_traced(tmp_path):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    out = tmp_path / "run"
    ds = load_dataset("json", data_files=str(out / "preferences.jsonl"), split="train")
    assert ds.num_rows == P and set(ds["prompt_id"]) == set(pd.read_parquet(out / "responses.parquet").prompt_id)
    gold = _gold(pool)
    for row in ds:  # deterministic replay: the gold-better response is always chosen
        assert gold[row["chosen"]] > gold[row["rejected"]]
        assert row["chosen_score"] == pytest.approx(gold[row["chosen"]])
    log = [json.loads(x) for x in (out / "judgements.jsonl").read_text().splitlines()]
    assert len(log) == len({x["key"] for x in log}) == 2 * P
    rounds = sorted((out / "rounds").glob("*.json"))
    assert len(rounds) == P // 6
    first, later = json.loads(rounds[0].read_text()), json.loads(rounds[1].read_text())
    assert first["rule"] == "aepo" and later["rule"] == "dts" and "std" in later
    assert pd.read_parquet(out / "preferences.parquet").shape[0] == P
    assert (out / "progress.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_sends_nothing_and_gives_the_same_dataset(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    _run(pool, tmp_path / "run")
    first = (tmp_path / "run" / "preferences.jsonl").read_text()
    capsys.readouterr()
    assert _run(pool, tmp_path / "run") == 0
    assert "(0 sent now)" in capsys.readouterr().err
    assert (tmp_path / "run" / "preferences.jsonl").read_text() == first


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    pool = write_gold_pool(tmp_path / "pool.csv")
    _run(pool, tmp_path / "clean")
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "aeuf", str(pool), "--num_responses", str(R), "--num_annotations", "2",
           "--output_dir", str(out), *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "rounds" / "1.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "preferences.jsonl").exists(), "the run finished before it was killed"
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    clean = (tmp_path / "clean" / "preferences.jsonl").read_text()
    assert (out / "preferences.jsonl").read_text() == clean
    keys = [json.loads(x)["key"] for x in (out / "judgements.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 2 * P
    for t in range(P // 6):
        assert (out / "rounds" / f"{t}.json").read_text() == (tmp_path / "clean" / "rounds" / f"{t}.json").read_text()


def test_without_an_oracle_the_selected_pairs_go_to_an_annotation_file(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv", gold=False)
    assert _run(pool, tmp_path / "run") == 0
    err = capsys.readouterr().err
    assert "aeuf judge" in err and "annotations.jsonl" in err
    lines = [json.loads(x) for x in (tmp_path / "run" / "annotations.jsonl").read_text().splitlines()]
    assert len(lines) == P and all(len(set(x["response_ids"])) == 2 for x in lines)
    assert not (tmp_path / "run" / "preferences.jsonl").exists()


def test_k_way_annotations_export_a_ranking(tmp_path):
    pool = write_gold_pool(tmp_path / "pool.csv")
    out = tmp_path / "run"
    assert main([str(pool), "--num_annotations", "3", "--output_dir", str(out), *FAST]) == 0
    df = pd.read_parquet(out / "preferences.parquet")
    gold = _gold(pool)
    ranked = df[["pref_1", "pref_2", "pref_3"]].map(gold.get).to_numpy()
    assert np.all(np.diff(ranked, axis=1) <= 0)
    assert (df.chosen == df.pref_1).all() and (df.rejected == df.pref_3).all()


@pytest.mark.parametrize("flags, needle", [
    (["--num_annotations", "1"], "--num_annotations 1"),
    (["--num_annotations", "5"], "lower --num_annotations"),
    (["--rule", "bogus"], "choose one of"),
    (["--head", "nope"], "choose one of"),
])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flags, needle):
    pool = write_gold_pool(tmp_path / "pool.csv")
    code = main([str(pool), "--output_dir", str(tmp_path / "run"), *FAST, *flags])
    err = capsys.readouterr().err.strip()
    assert code == 1 and needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_output_dir_of_a_different_run_is_refused(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    _run(pool, tmp_path / "run")
    capsys.readouterr()
    assert _run(pool, tmp_path / "run", "--rule", "random") == 1
    err = capsys.readouterr().err
    assert "config.json" in err and "rule" in err


def test_a_rerun_keeps_the_settings_the_run_started_with_unless_given(tmp_path, capsys):
    """A default that changes between releases must not refuse a run started under the old
    one: settings the user does not give are read from the run's config.json; a setting given
    that differs is still another run."""
    pool = write_gold_pool(tmp_path / "pool.csv")
    out = tmp_path / "run"
    assert _run(pool, out, "--head", "ensemble", "--rule", "deltaucb") == 0  # as if defaults
    first, asked = (out / "preferences.jsonl").read_text(), (out / "judgements.jsonl").read_text()
    capsys.readouterr()
    assert _run(pool, out) == 0
    err = capsys.readouterr().err
    assert "(0 sent now)" in err
    assert "head.name 'ensemble' (default now 'ensemble+linear')" in err
    assert "acquire.rule 'deltaucb'" in err
    assert (out / "preferences.jsonl").read_text() == first
    assert (out / "judgements.jsonl").read_text() == asked
    config = json.loads((out / "config.json").read_text())
    assert config["head"]["name"] == "ensemble" and config["acquire"]["rule"] == "deltaucb"
    assert _run(pool, out, "--head", "bll") == 1  # given: a different run, refused
    assert "head.name: 'ensemble' there, 'bll' now" in capsys.readouterr().err
    assert _run(pool, tmp_path / "fresh") == 0  # a new folder: no note
    assert "resuming" not in capsys.readouterr().err


def test_cli_error_on_missing_file_exits_1_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "aeuf", str(tmp_path / "nope.csv"), "--no_progress"],
                       capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1 and "nope.csv" in r.stderr and "Traceback" not in r.stderr


def test_a_run_whose_config_json_has_the_old_layout_resumes(tmp_path, capsys):
    """tests/support/data/config_before_spend.json is the config.json that main (ebe0c6f, before the
    spending caps left OracleConfig: oracle.max_cost, oracle.dry_run, ...) wrote for this very
    command and pool: a run in that layout still resumes, sends nothing, and is rewritten in
    today's layout."""
    pool = write_gold_pool(tmp_path / "pool.csv")
    out = tmp_path / "run"
    # the settings whose defaults changed since that release, as that run was started with them
    then = ("--max_steps", "4096", "--head", "ensemble")
    assert _run(pool, out, *then) == 0
    first = (out / "preferences.jsonl").read_text()
    old = json.loads((DATA / "config_before_spend.json").read_text())
    assert "max_cost" in old["oracle"] and "spend" not in old
    (out / "config.json").write_text(json.dumps(old))
    capsys.readouterr()
    assert _run(pool, out) == 0  # today's defaults: the run keeps the settings it started with
    err = capsys.readouterr().err
    assert "(0 sent now)" in err and "head.max_steps 4096 (default now 300)" in err
    assert _run(pool, out, "--max_steps", "300") == 1  # given and different: another run
    assert "head.max_steps: 4096 there, 300 now" in capsys.readouterr().err
    assert _run(pool, out, *then) == 0
    assert "(0 sent now)" in capsys.readouterr().err
    assert (out / "preferences.jsonl").read_text() == first
    now = json.loads((out / "config.json").read_text())
    assert "max_cost" not in now["oracle"] and now["spend"]["dry_run"] is False
