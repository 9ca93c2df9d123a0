"""Faults and hostile input end in one line, never a traceback (issue 24, items 12, 15, 23,
30): a damaged head state is refit with the same result, a full disk or an unwritable
folder is one line, a lone surrogate is one line, an empty CSV cell is an empty response,
a response column without text is named, report.md escapes the input's name, the human
oracle shows invisible characters, and the benchmark keeps responses without gold out."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from paths import REPO

from aeuf.cli import main
from aeuf.config import InputConfig
from aeuf.io import read_pool
from aeuf.oracle.human import printable, show
from aeuf.types import JudgeTask

FAST = ["--features", "stats", "--members", "4", "--hidden", "16,16", "--epochs", "3",
        "--batch_size", "3", "--no_progress"]


def write_pool(path: Path, prompts: int = 8, gold: bool = True) -> Path:
    rng = np.random.default_rng(3)
    rows = []
    for p in range(prompts):
        row = {"instruction": f"Question {p}?"}
        for r in range(3):
            row[f"r{r}"] = f"answer {r} to {p} " + "w " * int(rng.integers(1, 12))
            if gold:
                row[f"r{r}_score"] = float(rng.normal())
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [x for x in err.strip().splitlines() if x.startswith("aeuf: error")]


# --- item 15: head state ------------------------------------------------------------------

def _truncate(p: Path):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _garbage(p: Path):
    p.write_bytes(os.urandom(300))


def _wrong_shapes(p: Path):
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["leaf_0"] = np.zeros((3, 3, 3), np.float32)
    with open(p, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _wrong_shapes])
def test_a_damaged_head_state_is_refit_with_the_same_result(tmp_path, capsys, damage):
    pool, out = write_pool(tmp_path / "pool.csv"), tmp_path / "run"
    assert main([str(pool), "--output_dir", str(out), *FAST]) == 0
    rows = (out / "preferences.jsonl").read_text()
    state = out / "head" / "state.npz"
    good = state.read_bytes()
    damage(state)
    capsys.readouterr()
    assert main([str(pool), "--output_dir", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "head/state.npz" in err and "refit" in err and "Traceback" not in err
    assert (out / "preferences.jsonl").read_text() == rows
    assert state.read_bytes() == good  # the refit head is the head the first run saved


# --- item 15: disk faults -----------------------------------------------------------------

def test_an_unwritable_output_folder_is_one_line(tmp_path, capsys):
    pool = write_pool(tmp_path / "pool.csv")
    (tmp_path / "file").write_text("not a folder")
    assert main([str(pool), "--output_dir", str(tmp_path / "file" / "run"), *FAST]) == 1
    [line] = errors(capsys)
    assert str(tmp_path / "file") in line and "another --output_dir" in line


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 kB tmpfs (needs root; skipped elsewhere)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_full_disk_is_one_line_and_the_rerun_resumes(tmp_path, capsys, tiny_disk):
    pool = write_pool(tmp_path / "pool.csv", prompts=40)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"x" * 200_000)
    out = tiny_disk / "run"
    assert main([str(pool), "--output_dir", str(out), *FAST]) == 1
    [line] = errors(capsys)
    assert "No space left on device" in line and "rerun the same command" in line
    filler.unlink()
    shutil.rmtree(out / "hf", ignore_errors=True)
    assert main([str(pool), "--output_dir", str(out), *FAST]) == 0


def test_a_read_only_folder_is_one_line(tmp_path, capsys, tiny_disk):
    pool = write_pool(tmp_path / "pool.csv")
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    assert main([str(pool), "--output_dir", str(tiny_disk / "run"), *FAST]) == 1
    [line] = errors(capsys)
    assert "read-only" in line and "another --output_dir" in line


# --- item 15: input ---------------------------------------------------------------------

def test_a_lone_surrogate_in_jsonl_is_one_line(tmp_path, capsys):
    path = tmp_path / "pool.jsonl"
    lines = [json.dumps({"prompt": f"q{p}?", "a": f"x{p}", "b": f"y{p}"}) for p in range(4)]
    lines[2] = '{"prompt": "q2?", "a": "bad \\ud800 text", "b": "y2"}'
    path.write_text("\n".join(lines) + "\n")
    assert main([str(path), "--output_dir", str(tmp_path / "run"), *FAST]) == 1
    [line] = errors(capsys)
    assert "line 3" in line and "column 'a'" in line and "surrogate" in line
    assert not (tmp_path / "run").exists()


def test_an_empty_csv_cell_is_an_empty_response_that_is_judged(tmp_path):
    path = tmp_path / "pool.csv"
    rows = [{"instruction": f"Question {p}?", "r0": f"a full answer {p}" if p else "",
             "r1": f"another answer {p}", "r0_score": 0.0 if p else -5.0, "r1_score": 1.0}
            for p in range(6)]
    pd.DataFrame(rows).to_csv(path, index=False)
    out = tmp_path / "run"
    assert main([str(path), "--output_dir", str(out), *FAST]) == 0
    rows = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    assert len(rows) == 6  # no prompt skipped
    first = next(r for r in rows if r["prompt"] == "Question 0?")
    assert first["rejected"] == ""  # judged, and it lost


# --- item 23: response columns without text --------------------------------------------

def test_a_response_column_of_numbers_is_named(tmp_path, capsys):
    pool = pd.read_csv(write_pool(tmp_path / "pool.csv"))
    pool["r3"], pool["r3_model"] = range(len(pool)), "m"
    pool.to_csv(tmp_path / "n.csv", index=False)
    assert main([str(tmp_path / "n.csv"), "--output_dir", str(tmp_path / "run"), *FAST]) == 1
    [line] = errors(capsys)
    assert "column 'r3'" in line and "int64" in line and "'r3_model'" in line


def test_an_empty_response_column_is_left_out_with_a_note(tmp_path, capsys):
    pool = pd.read_csv(write_pool(tmp_path / "pool.csv"))
    pool["r3"], pool["r3_score"] = np.nan, 1.0
    pool.to_csv(tmp_path / "n.csv", index=False)
    assert main([str(tmp_path / "n.csv"), "--output_dir", str(tmp_path / "run"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "column 'r3' is empty in every row" in err and "'r3_score'" in err


# --- item 30: hostile names ------------------------------------------------------------

def test_report_md_escapes_the_input_path_and_run_name(tmp_path):
    name = '<img src=x onerror=alert(1)>[x](javascript:alert(2))'
    pool = write_pool(tmp_path / f"{name}.csv")
    out = tmp_path / name
    assert main([str(pool), "--output_dir", str(out), *FAST]) == 0
    report = (out / "report.md").read_text()
    assert "<img" not in report and "[x](javascript" not in report  # no tag, no link
    assert "&lt;img src=x onerror=alert(1)&gt;" in report


def test_the_human_oracle_shows_invisible_characters():
    spoof = "good\u202eevil\u200b\u2066x\ufeff"
    assert printable(spoof) == "good<U+202E>evil<U+200B><U+2066>x<U+FEFF>"
    task = JudgeTask("p\u202e1", "Which?\u200d", ("r0", "r1"), ("a\u202e", "b"))
    text = show(task, (0, 1), 1, 1)
    assert not any(c in text for c in "\u202e\u200d") and text.count("<U+202E>") == 2


# --- item 12: the benchmark and responses without gold ---------------------------------

def test_bench_reads_the_bundled_example_leaving_responses_without_gold_out(tmp_path, capsys):
    pool = REPO / "dataset" / "prompts.csv"
    rc = main(["bench", str(pool), "--output_dir", str(tmp_path / "b"), "--features", "stats",
               "--heads", "bll", "--rules", "random", "--seeds", "1", "--budget", "8",
               "--batch_size", "4", "--ceiling_pairs", "50", "--baselines", "length"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "36 responses" in err and "no gold score" in err and "Traceback" not in err
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert s["config"]["responses_without_gold"] == 36
    whole = read_pool(InputConfig(path=str(pool)))
    has_gold = dict(zip(whole.response_ids.ravel(), np.isfinite(whole.gold).ravel()))
    shown = [rid for choice in (tmp_path / "b" / "choices").glob("*.json")
             for rnd in json.loads(choice.read_text()) for rids in rnd["response_ids"]
             for rid in rids]
    assert shown and all(has_gold[rid] for rid in shown)  # never one without gold
