"""The whole job through the CLI with the LLM judge on the real llama.cpp server:
every exported row traces to logged judgements, and a SIGKILL + rerun pays for nothing twice
(requests counted at a proxy)."""

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from killing import kill_after_lines, log_lines
from paths import REPO

pytest_plugins = ["servers"]
pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = REPO
SECRET = "sk-e2e-test-2718281828-secret"
QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What is 2 + 2?",
             "Say hello in Spanish.", "What do bees make?", "Name a planet."]


def prompts_file(tmp_path: Path) -> Path:
    """dataset/prompts.csv when it is there, else a small file in the same layout."""
    shipped = ROOT / "dataset" / "prompts.csv"
    if shipped.is_file():
        return shipped
    path = tmp_path / "prompts.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instruction"] + [f"response_{i}" for i in range(1, 9)])
        for n, q in enumerate(QUESTIONS):
            w.writerow([q] + [f"Answer {j} to question {n}: {'yes ' * j}" for j in range(8)])
    return path


def command(prompts: Path, url: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "aeuf", str(prompts), "--num_responses", "8",
            "--num_annotations", "2", "--num_instructions", "4", "--oracle", "judge",
            "--judge_base_url", url, "--judge_model", "smollm2", "--judge_concurrency", "2",
            "--judge_max_tokens", "48", "--judge_timeout", "900",
            "--output_dir", str(out), "--no_progress"]


def env() -> dict:
    return os.environ | {"OPENAI_API_KEY": SECRET, "HF_HUB_OFFLINE": "1"}


def test_sigkill_and_rerun_pays_for_nothing_twice(llama_server, fault_proxy, tmp_path):
    proxy = fault_proxy(llama_server.base_url)
    out, prompts = tmp_path / "run", prompts_file(tmp_path)
    kill_after_lines(command(prompts, proxy.base_url, out), out / "judgements.jsonl", env=env())
    logged_before = {x["key"] for x in log_lines(out / "judgements.jsonl")}
    assert logged_before
    done = subprocess.run(command(prompts, proxy.base_url, out), env=env(), capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    log = log_lines(out / "judgements.jsonl")
    keys = Counter(x["key"] for x in log if not (x["error"] or "").startswith("transport:"))
    assert set(keys) >= {x["key"] for x in log}
    assert max(keys.values()) == 1  # no key has two final answers (a transport failure,
    # e.g. a timeout on this loaded machine, is asked again by the rerun: that is the design)
    repeats = sum(n - 1 for n in proxy.answers.values())
    assert repeats <= 2  # at most the requests in flight at the kill (concurrency 2)
    rows = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    assert rows, done.stderr[-2000:]
    by_response = {x["response_ids"][0]: x for x in log if x["value"] is not None}
    for row in rows:  # every row traces to two logged ratings that order it
        chosen, rejected = by_response[row["chosen_id"]], by_response[row["rejected_id"]]
        assert chosen["value"] > rejected["value"]
        assert row["chosen_score"] == pytest.approx(chosen["value"])
    for f in out.rglob("*"):
        assert not f.is_file() or SECRET.encode() not in f.read_bytes()
