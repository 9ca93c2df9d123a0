"""A run folder tells the truth (issue 24): a run with another judge is refused, an export is
the run's own or absent, a judged annotation file is reused without extra requests, nothing
is written before the input is validated, and a killed export leaves nothing behind."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from chatstub import ChatStub

from aeuf.cli import main

pytest_plugins = ["servers"]

WORDS = ["terrible", "poor", "fair", "good", "excellent"]
FAST = ["--features", "stats", "--members", "4", "--hidden", "16,16", "--epochs", "3",
        "--no_progress"]


def write_pool(path: Path, prompts: int = 12, responses: int = 4) -> Path:
    """A pool without gold whose responses start with a quality word (what the honest
    stand-in judge rates)."""
    rng = np.random.default_rng(1)
    rows = []
    for p in range(prompts):
        row = {"prompt_id": f"q{p}", "instruction": f"Question {p}: explain topic {p}."}
        for r in range(responses):
            word = WORDS[int(rng.integers(0, 5))]
            row[f"response_{r}"] = f"{word} answer {r} to {p} " + "w " * int(rng.integers(1, 9))
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def judge_flags(url: str) -> list[str]:
    return ["--judge_base_url", url, "--judge_model", "honest", "--judge_max_tokens", "64"]


def one_error_line(capsys) -> str:
    err = [x for x in capsys.readouterr().err.strip().splitlines() if x.startswith("aeuf: error")]
    assert len(err) == 1, err
    return err[0]


def test_a_second_run_with_another_judge_template_is_refused_naming_it(tmp_path, capsys,
                                                                        honest_judge):
    judge, pool, out = honest_judge(), write_pool(tmp_path / "pool.csv"), tmp_path / "run"
    assert main([str(pool), "--output_dir", str(out), *judge_flags(judge.base_url), *FAST]) == 0
    before = (out / "preferences.jsonl").read_bytes()
    capsys.readouterr()
    sent = dict(judge.requests)
    rc = main([str(pool), "--output_dir", str(out), *judge_flags(judge.base_url),
               "--judge_template", "pairwise", *FAST])
    line = one_error_line(capsys)
    assert rc == 1 and "oracle.template" in line and "'pairwise'" in line
    assert "another --output_dir" in line
    assert judge.requests == sent  # nothing asked
    assert (out / "preferences.jsonl").read_bytes() == before


def test_the_judge_may_move_to_another_port(tmp_path, honest_judge):
    pool, out = write_pool(tmp_path / "pool.csv"), tmp_path / "run"
    first, second = honest_judge(), honest_judge()
    assert main([str(pool), "--output_dir", str(out), *judge_flags(first.base_url), *FAST]) == 0
    assert main([str(pool), "--output_dir", str(out), *judge_flags(second.base_url), *FAST]) == 0
    assert second.requests == {}  # every answer came from the ledger


def test_a_run_that_exports_nothing_leaves_no_earlier_dataset(tmp_path, capsys):
    """A folder holding preferences of some earlier run: a run in it that labels nothing
    removes them, so the report's 0 rows never sit beside another run's dataset."""
    pool, out = write_pool(tmp_path / "pool.csv"), tmp_path / "run"
    out.mkdir()
    (out / "preferences.jsonl").write_text('{"prompt": "old", "chosen": "a", "rejected": "b"}\n')
    (out / "preferences.parquet").write_bytes(b"old")
    (out / "hf").mkdir()
    (out / "hf" / "README.md").write_text("old card")
    stub = ChatStub("I would rather not say.")
    try:
        rc = main([str(pool), "--output_dir", str(out), "--judge_base_url", stub.base_url,
                   "--judge_model", "stub", "--judge_logprobs", *FAST])
    finally:
        stub.close()
    assert rc == 1 and "no prompt got a usable label" in one_error_line(capsys)
    assert (out / "report.md").is_file()
    assert not any((out / n).exists() for n in ("preferences.jsonl", "preferences.parquet", "hf"))


def test_judging_the_annotation_file_then_running_with_the_judge_pays_nothing_more(
        tmp_path, capsys, honest_judge):
    judge = honest_judge()
    pool, out = write_pool(tmp_path / "pool.csv", prompts=20), tmp_path / "run"
    args = [str(pool), "--num_instructions", "8", "--output_dir", str(out), *FAST]
    assert main(args) == 0
    assert len((out / "annotations.jsonl").read_text().splitlines()) == 8
    assert main(["judge", str(out / "annotations.jsonl"), *judge_flags(judge.base_url),
                 "--no_progress"]) == 0
    paid = judge.requests.get(200, 0)
    capsys.readouterr()
    assert main([*args, *judge_flags(judge.base_url)]) == 0
    err = capsys.readouterr().err
    assert judge.requests.get(200, 0) == paid  # every answer came from `aeuf judge`
    rows = (out / "preferences.jsonl").read_text().splitlines()
    labelled = json.loads((out / "rounds" / "0.json").read_text())["prompts"]
    assert len(labelled) == 8 and len(rows) <= 8
    assert len({json.loads(r)["prompt_id"] for r in rows}) == len(rows)
    assert "of 8 prompts" in err and not list((out / "rounds").glob("1.json"))


def test_a_feature_file_lacking_ids_is_refused_before_anything_is_written(tmp_path, capsys):
    pool, out = write_pool(tmp_path / "pool.csv", prompts=6), tmp_path / "run"
    ids = [f"q{p}:response_{r}" for p in range(6) for r in range(4)]
    vectors = np.random.default_rng(0).normal(size=(len(ids), 5)).astype(np.float32)
    np.save(tmp_path / "f.npy", vectors[:-3])
    (tmp_path / "f.ids.txt").write_text("\n".join(ids[:-3]) + "\n")
    args = [str(pool), "--output_dir", str(out), "--features", "file", "--precomputed",
            str(tmp_path / "f.npy"), *FAST[2:]]
    assert main(args) == 1
    line = one_error_line(capsys)
    assert "f.npy" in line and "q5:response_1" in line and "3 of 24 missing" in line
    assert not out.exists() or not any(out.iterdir())
    np.save(tmp_path / "f.npy", vectors)
    (tmp_path / "f.ids.txt").write_text("\n".join(ids) + "\n")
    assert main(args) == 0  # the corrected rerun is not refused
    assert (out / "annotations.jsonl").is_file()


def test_a_killed_export_leaves_nothing_the_next_run_keeps(tmp_path):
    pool = tmp_path / "pool.csv"
    rows = [{"instruction": f"q{p}?", **{f"r{r}": f"answer {r} " * (r + 1) for r in range(3)},
             **{f"r{r}_score": float(r + p % 2) for r in range(3)}} for p in range(6)]
    pd.DataFrame(rows).to_csv(pool, index=False)
    out = tmp_path / "run"
    stale = out / ".export.tmp-dead1"
    (stale / "hf").mkdir(parents=True)
    (stale / "preferences.jsonl").write_text("half")
    (out / ".hf.tmp-old").mkdir()
    assert main([str(pool), "--output_dir", str(out), *FAST]) == 0
    assert sorted(p.name for p in out.glob(".*tmp-*")) == []
    assert (out / "preferences.jsonl").is_file()


def test_a_pool_whose_every_pair_ties_says_so_and_keep_ties_exports_them(tmp_path, capsys):
    """Every answer came back and each was a tie (constant gold): the one line says so and
    names --keep_ties, and with it the tied pairs are the export (exit 0)."""
    path = tmp_path / "ties.csv"
    rows = [{"instruction": f"Question {p}?", **{f"response_{r}": f"answer {r} to {p}"
                                                  for r in range(3)},
             **{f"response_{r}_score": 5.0 for r in range(3)}} for p in range(6)]
    pd.DataFrame(rows).to_csv(path, index=False)
    args = [str(path), "--num_responses", "3", "--num_annotations", "2", *FAST]
    assert main([*args, "--output_dir", str(tmp_path / "plain")]) == 1
    line = one_error_line(capsys)
    assert "every answer of the replay oracle was a tie (6 ties)" in line and "--keep_ties" in line
    out = tmp_path / "kept"
    assert main([*args, "--output_dir", str(out), "--keep_ties"]) == 0
    exported = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    assert len(exported) == 6 and all(x["tie"] for x in exported)
