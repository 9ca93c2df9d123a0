"""`aeuf generate`: run directory, resume after SIGKILL, output the main command reads."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from aeuf.cli import main
from aeuf.config import GenerateConfig, InputConfig
from aeuf.generate import ModelSpec, plan
from aeuf.io import GenLog, read_pool
from aeuf.run.jobs.gen_run import LOG_NAME, OUT_NAME, completions_table, run_generation

pytest_plugins = ["genmodels"]

PROMPTS = ["What is 2 + 2?", "Name a fruit.", "Say hi.", "What colour is the sky?", "Count to three."]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_log_cuts_a_partial_last_line_and_keeps_a_complete_one(tmp_path):
    log = GenLog(tmp_path / LOG_NAME)
    log.append({"key": "a", "response": "x"})
    log.append({"key": "b", "response": "y"})
    with open(log.path, "ab") as f:
        f.write(b'{"key": "c", "resp')  # killed mid-write
    assert set(GenLog(log.path).load()) == {"a", "b"}
    again = GenLog(log.path)
    again.append({"key": "d", "response": "z"})
    assert [r["key"] for r in _lines(log.path)] == ["a", "b", "d"]
    with open(log.path, "ab") as f:
        f.write(b'{"key": "e", "response": "w"}')  # complete, only the newline lost
    assert set(GenLog(log.path).load()) == {"a", "b", "d", "e"}
    GenLog(log.path).append({"key": "f", "response": "v"})
    assert [r["key"] for r in _lines(log.path)] == ["a", "b", "d", "e", "f"]


def test_completions_table_keeps_complete_prompts_in_slot_order():
    specs = [ModelSpec("a", "m"), ModelSpec("b", "m")]
    reqs = plan(["x", "y"], ["px", "py"], specs, GenerateConfig(num_responses=2))
    done = {r.key: {"model": r.model, "response": f"{r.prompt_id}{r.slot}", **r.sampling(),
                    "finish_reason": "stop"} for r in reqs if r.prompt_id == "x"}
    done[reqs[2].key] = {**done[reqs[0].key], "response": "partial"}
    table = completions_table(reqs, done)
    assert table["prompt_id"].tolist() == ["x"]
    assert [c["response"] for c in table["completions"][0]] == ["x0", "x1"]


def test_run_writes_a_pool_the_main_command_reads_and_a_rerun_generates_nothing(smol_dir, tmp_path):
    specs = [ModelSpec("smol-cold", smol_dir, temperature=0.0), ModelSpec("smol-hot", smol_dir, temperature=1.2)]
    cfg = GenerateConfig(num_responses=2, max_tokens=8, batch_size=4)
    ids = [f"q{i}" for i in range(3)]
    first = run_generation(ids, PROMPTS[:3], specs, cfg, tmp_path)
    assert (first.planned, first.generated, first.reused, first.failed) == (6, 6, 0, 0)
    pool = read_pool(InputConfig(path=str(tmp_path / OUT_NAME)))
    assert pool.shape == (3, 2) and list(pool.prompts) == PROMPTS[:3]
    assert {m for row in pool.models for m in row} == {"smol-cold", "smol-hot"}
    rec = pd.read_parquet(tmp_path / OUT_NAME)["completions"][0][0]
    assert {"model", "response", "temperature", "top_p", "max_tokens", "seed"} <= set(rec)
    second = run_generation(ids, PROMPTS[:3], specs, cfg, tmp_path)
    assert (second.generated, second.reused) == (0, 6)
    assert len(_lines(tmp_path / LOG_NAME)) == 6


def test_generate_command_resumes_after_sigkill_without_regenerating(smol_dir, tmp_path):
    """Killed mid-batch: every response finished before the kill is kept (each is logged as its
    row finishes), progress reached a non-terminal stderr, the rerun generates only what is
    missing, and every response equals an uninterrupted run's at another batch size (the seed
    of a response reproduces it whatever batch it lands in)."""
    csv = tmp_path / "prompts.csv"
    pd.DataFrame({"instruction": PROMPTS}).to_csv(csv, index=False)
    out = tmp_path / "run"
    base = ["generate", str(csv), "--models", smol_dir, "--num_responses", "2",
            "--max_tokens", "24", "--temperature", "0.9"]
    argv = [*base, "--batch_size", "5", "--output_dir", str(out), "--progress_every", "0.2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "aeuf", *argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        log, deadline = out / LOG_NAME, time.monotonic() + 240
        while not (log.is_file() and len(log.read_bytes().splitlines()) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "generation did not start"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = GenLog(log).load()
    assert 2 <= len(before) < 2 * len(PROMPTS)
    assert "responses finished" in (tmp_path / "stderr.txt").read_text()

    assert main(argv) == 0
    after = _lines(log)
    keys = [r["key"] for r in after]
    assert len(keys) == len(set(keys)) == 2 * len(PROMPTS)  # nothing generated twice
    assert {k: before[k]["response"] for k in before} == {r["key"]: r["response"] for r in after if r["key"] in before}
    pool = read_pool(InputConfig(path=str(out / OUT_NAME)))
    assert pool.shape == (len(PROMPTS), 2)
    whole = tmp_path / "whole"
    assert main([*base, "--batch_size", "3", "--output_dir", str(whole)]) == 0
    assert {r["key"]: r["response"] for r in _lines(whole / LOG_NAME)} == {r["key"]: r["response"] for r in after}


def test_an_unavailable_model_is_one_line_and_nothing_is_written(smol_dir, tmp_path):
    """The README's hub example while offline, and a misspelt packaged name: exit 1, one
    line naming the model, no run directory (every model is checked before anything is written)."""
    csv = tmp_path / "prompts.csv"
    pd.DataFrame({"instruction": PROMPTS[:2]}).to_csv(csv, index=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for model, why in [("Qwen/Qwen2.5-0.5B-Instruct", "HF_HUB_OFFLINE"), ("smolm2", "did you mean smollm2")]:
        out = tmp_path / model.replace("/", "_")
        argv = ["generate", str(csv), "--models", smol_dir, model, "--num_responses", "1",
                "--max_tokens", "4", "--output_dir", str(out)]
        done = subprocess.run([sys.executable, "-m", "aeuf", *argv], env=env, capture_output=True, text=True)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
        assert model in lines[0] and why in lines[0]
        assert not out.exists()
