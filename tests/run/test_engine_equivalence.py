"""`aeuf bench` and `aeuf` run the same round engine: same seed, pool and settings -> the same
prompts and the same responses in every round (both regimes)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeuf.bench.simulate import split_prompts
from aeuf.cli import main

P, R = 24, 4
HEAD = ["--features", "stats", "--members", "4", "--hidden", "16,16", "--epochs", "3"]


@pytest.fixture(scope="module")
def pool_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(7)
    rows = []
    for p in range(P):
        row = {"prompt_id": f"q{p}", "instruction": f"Question {p}: explain topic {p}."}
        for r in range(R):
            n = int(rng.integers(1, 40))
            row[f"response_{r}"] = " ".join(f"w{p}x{r}y{i}" for i in range(n)) + "."
            row[f"response_{r}_model"] = f"model-{r}"
            row[f"response_{r}_score"] = float(0.1 * n + rng.normal(0, 3))  # a weak signal: choices stay sensitive
        rows.append(row)
    path = tmp_path_factory.mktemp("pool") / "pool.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def run_rounds(out: Path) -> list[tuple[list, list]]:
    files = sorted((out / "rounds").glob("*.json"), key=lambda f: int(f.stem))
    recs = [json.loads(f.read_text()) for f in files]
    return [(r["prompt_ids"], r["response_ids"]) for r in recs]


def bench_rounds(out: Path, rule: str, seed: int, head: str = "ensemble") -> list[tuple[list, list]]:
    recs = json.loads((out / "choices" / f"deterministic_{head}_{rule}_{seed}.json").read_text())
    return [(r["prompt_ids"], r["response_ids"]) for r in recs]


@pytest.mark.parametrize("rule", ["dts"])
@pytest.mark.slow  # `aeuf bench` plus a main-command run per seed
def test_every_prompt_once_same_choices(pool_csv, tmp_path, rule):
    settings = [*HEAD, "--batch_size", "6", "--initial_rule", "aepo", "--no_progress"]
    assert main(["bench", str(pool_csv), "--regime", "once", "--rules", rule, "--heads",
                 "ensemble", "--seeds", "2", "--label_mode", "deterministic",
                 "--test_fraction", "0", "--baselines", "",
                 "--output_dir", str(tmp_path / "bench"), *settings]) == 0
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        assert main([str(pool_csv), "--rule", rule, "--head", "ensemble", "--seed", str(seed),
                     "--oracle", "replay", "--output_dir", str(out), *settings]) == 0
        mine, bench = run_rounds(out), bench_rounds(tmp_path / "bench", rule, seed)
        assert len(mine) == 4 and mine == bench
    assert run_rounds(tmp_path / "run0") != run_rounds(tmp_path / "run1")  # the seed matters


@pytest.mark.parametrize("budget, rounds", [(16, 4), (40, 11)])  # 40 > 18 prompts: 3 passes
@pytest.mark.slow  # `aeuf bench` plus a main-command run per seed
def test_budget_regime_same_choices_as_a_run_on_the_pool_prompts(pool_csv, tmp_path, budget, rounds):
    settings = [*HEAD, "--batch_size", "4", "--budget", str(budget), "--initial_rule", "random",
                "--no_progress"]
    assert main(["bench", str(pool_csv), "--rules", "dts", "--heads", "bll", "--seeds", "1",
                 "--label_mode", "deterministic", "--ceiling_pairs", "50",
                 "--output_dir", str(tmp_path / "bench"), *settings]) == 0
    keep, _ = split_prompts(P, 0.25, 0)
    sub = tmp_path / "pool_prompts.csv"
    pd.read_csv(pool_csv).iloc[keep].to_csv(sub, index=False)
    out = tmp_path / "run"
    assert main([str(sub), "--rule", "dts", "--head", "bll", "--seed", "0", "--output_dir",
                 str(out), *settings]) == 0
    mine = run_rounds(out)
    assert len(mine) == rounds and mine == bench_rounds(tmp_path / "bench", "dts", 0, head="bll")
    shown = [(p, tuple(sorted(r))) for ids, resp in mine for p, r in zip(ids, resp)]
    assert len(shown) == budget and len(set(shown)) == budget  # never the same pair twice
