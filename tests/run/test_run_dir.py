"""The run directory owns its files: a changed input is refused, one process writes at a time,
flags are checked before anything is written, and a resume restores the head instead of
refitting it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from gold_pool import FAST, R, write_gold_pool

from aeuf import io
from aeuf.cli import main
from aeuf.run.round import engine


def _run(pool, out, *extra) -> int:
    return main([str(pool), "--num_responses", str(R), "--num_annotations", "2",
                 "--output_dir", str(out), *FAST, *extra])


def test_a_changed_input_is_refused_naming_what_changed(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    before = (tmp_path / "run" / "preferences.jsonl").read_text()
    df = pd.read_csv(pool)
    df.loc[3, "response_1"], df.loc[3, "response_2"] = df.loc[3, "response_2"], df.loc[3, "response_1"]
    df.to_csv(pool, index=False)
    capsys.readouterr()
    assert _run(pool, tmp_path / "run") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input changed" in err[0] and "response 1" in err[0]
    assert "--output_dir" in err[0]
    assert (tmp_path / "run" / "preferences.jsonl").read_text() == before


def test_the_same_file_by_another_path_is_the_same_run(tmp_path, capsys, monkeypatch):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert _run(Path("pool.csv"), tmp_path / "run") == 0
    assert "(0 sent now)" in capsys.readouterr().err


def test_a_second_process_gets_one_clear_line(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    with io.RunDir(tmp_path / "run"):  # another writer holds the run
        assert _run(pool, tmp_path / "run") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another aeuf process" in err[0] and str(os.getpid()) in err[0]
    assert not (tmp_path / "run" / "judgements.jsonl").exists()
    assert _run(pool, tmp_path / "run") == 0  # the lock is released with its holder


def test_flags_are_checked_before_anything_is_written(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    out = tmp_path / "run"
    for bad in (["--rule", "dtss"], ["--head", "esemble"], ["--features", "stats+nope"],
                ["--initial_rule", "dts"], ["--judge_template", str(tmp_path / "none.txt"),
                                            "--oracle", "judge", "--judge_base_url",
                                            "http://127.0.0.1:9/v1", "--judge_model", "m"]):
        assert _run(pool, out, *bad) == 1
        assert not out.exists() or not any(out.iterdir()), bad
    capsys.readouterr()
    assert _run(pool, out, "--rule", "dts") == 0  # the corrected command is not "another run"


def test_a_resume_restores_the_saved_head_instead_of_refitting(tmp_path, monkeypatch):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    first = (tmp_path / "run" / "preferences.jsonl").read_text()
    leaves, meta = io.RunDir(tmp_path / "run").load_head()
    assert meta["round"] == 3 and leaves

    def no_refit(*a, **k):
        raise AssertionError("a finished run was refit on resume")

    monkeypatch.setattr(engine, "refit", no_refit)
    assert _run(pool, tmp_path / "run") == 0
    assert (tmp_path / "run" / "preferences.jsonl").read_text() == first


def test_a_run_whose_input_is_gone_resumes_from_its_stored_pool(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    first = (tmp_path / "run" / "preferences.jsonl").read_text()
    pool.unlink()
    capsys.readouterr()
    assert _run(pool, tmp_path / "run") == 0
    assert "resuming from" in capsys.readouterr().err
    assert (tmp_path / "run" / "preferences.jsonl").read_text() == first


def test_rounds_are_strict_json(tmp_path):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    for f in (tmp_path / "run" / "rounds").glob("*.json"):
        text = f.read_text()
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text, parse_constant=lambda c, name=f.name: pytest.fail(f"{name}: {c}"))


def test_embedding_leaves_the_hub_reachable_for_push_to_hub():
    code = ("import os; from aeuf.backends import sentence; sentence.encode(['x'], "
            "'all-MiniLM-L6-v2'); print(os.environ.get('HF_HUB_OFFLINE'))")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "None"


def test_a_messy_pool_runs_empty_responses_kept_short_prompts_skipped_and_counted(tmp_path, capsys):
    rows = []
    for p in range(12):
        row = {"prompt": f"Question {p}?"}
        for r in range(R):
            row[f"response_{r}"] = "" if (p, r) == (2, 1) else f"answer {r} " * (r + p % 3 + 1)
            row[f"response_{r}_score"] = float(r)
        rows.append(row)
    rows[5]["response_3"] = None  # prompt 5 has one response fewer: skipped
    path = tmp_path / "messy.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    out = tmp_path / "run"
    assert main([str(path), "--output_dir", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "11 of 11 prompts labelled" in err and "1 skipped while reading" in err
    stored = io.RunDir(out).stored_pool()
    assert stored.shape == (11, R) and stored.skipped == (stored.skipped[0],)
    assert "" in set(stored.responses.reshape(-1))  # the empty response is a candidate


def test_the_main_command_writes_a_report_and_a_dataset_card(tmp_path, capsys):
    pool = write_gold_pool(tmp_path / "pool.csv")
    assert _run(pool, tmp_path / "run") == 0
    err = capsys.readouterr().err
    out = tmp_path / "run"
    assert f"report: {out / 'report.md'}" in err and f"dataset: {out / 'preferences.jsonl'}" in err
    report = (out / "report.md").read_text()
    assert "## Rounds" in report and "![progress](progress.png)" in report
    assert "![ratings](ratings.png)" in report and (out / "ratings.png").read_bytes()[:4] == b"\x89PNG"
    rows = len((out / "preferences.jsonl").read_text().splitlines())
    assert f"{rows} preference rows" in report
    card = (out / "hf" / "README.md").read_text()
    assert card.startswith("---\n") and "replay" in card and str(rows) in card


def test_default_run_folders_name_their_origin():
    from aeuf.run.loop import default_output_dir

    assert default_output_dir("data/prompts.csv") == Path("runs/prompts")
    assert default_output_dir("runs/alpaca-gen/generated.parquet") == Path("runs/alpaca-gen-labels")
    assert default_output_dir("runs/other-gen/generated.parquet") == Path("runs/other-gen-labels")
    assert default_output_dir("HuggingFaceH4/ultrafeedback:train_prefs") == Path("runs/ultrafeedback")


@pytest.mark.parametrize("rule", ["dts", "random"])
def test_responses_without_gold_are_never_shown_to_the_replay_oracle(tmp_path, capsys, rule):
    pool = write_gold_pool(tmp_path / "pool.csv")
    df = pd.read_csv(pool)
    df.loc[::2, "response_1_score"] = None  # every other prompt lacks one gold score
    df.loc[5, ["response_0_score", "response_2_score", "response_3_score"]] = None  # 1 left
    df.to_csv(pool, index=False)
    out = tmp_path / "run"
    assert _run(pool, out, "--rule", rule, "--initial_rule", "random") == 0
    assert f"{len(df) - 1} of {len(df)} prompts labelled" in capsys.readouterr().err
    log = [json.loads(x) for x in (out / "judgements.jsonl").read_text().splitlines()]
    assert log and all(x["value"] is not None for x in log)


def test_the_pool_digest_hashes_every_value_in_order_whatever_the_chunks(monkeypatch):
    """pool_digest feeds sha256 in chunks: the digest of value by value (what a run stored
    before) whatever the chunk, and any swap of two responses changes it."""
    import dataclasses
    import hashlib

    import numpy as np

    from aeuf.io import rundir
    from aeuf.types import ResponsePool

    P, k = 7, 3
    ids = np.array([f"p{i}" for i in range(P)], object)
    texts = np.array([[f"r\u00e9ponse {i}.{j} \U0001F600" for j in range(k)] for i in range(P)],
                     object)
    models = np.array([[None if j == 1 else f"m{j}" for j in range(k)] for _ in range(P)], object)
    rids = np.array([[f"p{i}:{j}" for j in range(k)] for i in range(P)], object)
    pool = ResponsePool(ids, ids.copy(), texts, models, rids)
    h = hashlib.sha256()
    for name in ("prompt_ids", "prompts", "responses", "models", "response_ids"):
        for value in np.asarray(getattr(pool, name), dtype=object).reshape(-1):
            h.update(f"{value!s}\x1f".encode())
        h.update(b"\x1e")
    for chunk in (1, 4, 1000):
        monkeypatch.setattr(rundir, "DIGEST_CHUNK", chunk)
        assert rundir.pool_digest(pool) == h.hexdigest()
    swapped = texts.copy()
    swapped[2, [0, 1]] = swapped[2, [1, 0]]
    assert rundir.pool_digest(dataclasses.replace(pool, responses=swapped)) != h.hexdigest()
