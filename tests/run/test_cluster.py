"""`aeuf POOL --ray ADDRESS` on a REAL two-node Ray cluster on this machine (issue 22, item 2):
`ray start --head` and `ray start --address` as separate processes, one CPU and a small
object store each, started once for these tests (tests/support/raycluster.py). If the cluster does
not come up, the tests fail (they never skip).

A deterministic rule (deltaucb, fixed seed) exports the same dataset on the cluster as in
one process; a worker killed mid-round costs a retry, not the round or an answer; a driver
killed mid-round resumes and pays for no answer twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
import raycluster
from killing import kill_after_lines, log_lines

from aeuf.cli import main
from aeuf.run.jobs import sharded

PROMPTS, RESPONSES, FIRST = 48, 4, 12
FLAGS = ["--head", "ensemble", "--features", "stats", "--members", "4", "--hidden", "16,16",
         "--epochs", "3",
         "--rule", "deltaucb", "--budget", str(2 * FIRST), "--batch_size", str(FIRST), "--seed", "7",
         "--no_progress"]


@pytest.fixture(scope="module")
def cluster():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")  # a local test cluster: no token
        c = raycluster.start()  # RuntimeError: the test fails
        try:
            yield c
        finally:
            if ray.is_initialized():
                ray.shutdown()
            raycluster.stop(c)


@pytest.fixture(scope="module", autouse=True)
def driver_leaves():
    """This process leaves the cluster after these tests (and the cluster stops), so a later
    module may start its own local Ray."""
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    rng = np.random.default_rng(11)
    rows = []
    for p in range(PROMPTS):
        row = {"instruction": f"Question {p}?"}
        for r in range(RESPONSES):
            row[f"r{r}"] = f"answer {r} to {p} " + "w " * int(rng.integers(1, 30)) + "." * r
            row[f"r{r}_score"] = float(rng.normal())
        rows.append(row)
    path = tmp_path_factory.mktemp("pool") / "pool.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def one_process(pool, tmp_path_factory) -> list[dict]:
    """The export of the same run in one process."""
    out = tmp_path_factory.mktemp("local") / "run"
    assert main([str(pool), *FLAGS, "--output_dir", str(out)]) == 0
    return exported(out)


@pytest.fixture
def ray_calls(monkeypatch) -> list[int]:
    """How many rounds the workers chose (the driver's side of aeuf.run.jobs.sharded)."""
    calls, real = [], sharded.choose_on_shards
    monkeypatch.setattr(sharded, "choose_on_shards",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def exported(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]


def on_ray(pool: Path, out: Path, address: str) -> list[str]:
    return [str(pool), *FLAGS, "--output_dir", str(out), "--ray", address,
            "--shard_prompts", "20"]


@pytest.mark.slow
def test_a_deterministic_rule_exports_on_the_cluster_what_one_process_exports(
        cluster, pool, one_process, ray_calls, tmp_path):
    out = tmp_path / "run"
    assert main(on_ray(pool, out, cluster.address)) == 0
    assert exported(out) == one_process and len(one_process) > FIRST
    assert len(ray_calls) == 1  # round 1 on the workers (round 0 is model-free)
    shards = sorted((out / "shards").glob("*/*.npy"))
    assert [np.load(p, mmap_mode="r").shape[0] for p in shards] == [80, 80, 32]
    assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2


@pytest.mark.slow
def test_a_worker_killed_mid_round_costs_a_retry_not_the_round(cluster, pool, one_process,
                                                                ray_calls, tmp_path):
    out, killed, done = tmp_path / "run", [], threading.Event()

    def kill_first_scorer():  # a scoring actor's process on the second node, once
        while not done.is_set() and not killed:
            for p in raycluster.workers_of(cluster.worker, "MapWorker"):
                p.kill()
                killed.append(p.pid)
                break
            done.wait(0.05)

    killer = threading.Thread(target=kill_first_scorer, daemon=True)
    killer.start()
    try:
        code = main(on_ray(pool, out, cluster.address))
    finally:
        done.set()
        killer.join()
    assert killed, "no scoring worker ran on the second node"
    assert code == 0 and exported(out) == one_process
    assert len(ray_calls) == 1  # the round was not chosen again: the lost rows were retried
    keys = Counter(x["key"] for x in log_lines(out / "judgements.jsonl"))
    assert max(keys.values()) == 1


@pytest.mark.slow
def test_a_driver_killed_mid_round_resumes(cluster, pool, one_process, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "aeuf", *on_ray(pool, out, cluster.address)]
    # the replay oracle logs one line per shown response: round 0 is 2 * FIRST lines, after
    # which the driver fits and waits for the workers' choice of round 1
    kill_after_lines(cmd, out / "judgements.jsonl", lines=2 * FIRST, env=cluster.env, poll=0.05)
    before = {x["key"] for x in log_lines(out / "judgements.jsonl")}
    assert len(before) == 2 * FIRST  # killed in round 1, before it was judged
    done = subprocess.run(cmd, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    keys = Counter(x["key"] for x in log_lines(out / "judgements.jsonl"))
    assert set(keys) >= before and max(keys.values()) == 1  # nothing paid twice
    assert exported(out) == one_process
    assert len(os.listdir(out / "shards")) == 1  # the rerun reused the shards it found


@pytest.mark.parametrize("extra, says", [
    (["--ray", "127.0.0.1:{port}"], "--ray 127.0.0.1:{port}: nothing answers there"),
    (["--ray", "auto", "--head", "bll"], "--ray scores the ensemble head's members"),
])
def test_a_cluster_that_cannot_run_is_one_line_before_anything_is_written(pool, tmp_path, capsys,
                                                                          extra, says):
    port, out = raycluster.free_port(), tmp_path / "run"
    extra = [x.format(port=port) for x in extra]
    assert main([str(pool), *FLAGS, "--output_dir", str(out), *extra]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and says.format(port=port) in err
    assert not out.exists()
