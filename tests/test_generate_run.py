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
from aeuf.run.gen_run import LOG_NAME, OUT_NAME, completions_table, run_generation

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
    csv = tmp_path / "prompts.csv"
    pd.DataFrame({"instruction": PROMPTS}).to_csv(csv, index=False)
    out = tmp_path / "run"
    argv = ["generate", str(csv), "--models", smol_dir, "--num_responses", "2",
            "--max_tokens", "24", "--temperature", "0.9", "--batch_size", "1", "--output_dir", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "aeuf", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log, deadline = out / LOG_NAME, time.monotonic() + 240
    while not (log.is_file() and len(log.read_bytes().splitlines()) >= 2):
        assert proc.poll() is None and time.monotonic() < deadline, "generation did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = GenLog(log).load()
    assert 2 <= len(before) < 2 * len(PROMPTS)

    assert main(argv) == 0
    after = _lines(log)
    keys = [r["key"] for r in after]
    assert len(keys) == len(set(keys)) == 2 * len(PROMPTS)  # nothing generated twice
    assert {k: before[k]["response"] for k in before} == {r["key"]: r["response"] for r in after if r["key"] in before}
    pool = read_pool(InputConfig(path=str(out / OUT_NAME)))
    assert pool.shape == (len(PROMPTS), 2)
