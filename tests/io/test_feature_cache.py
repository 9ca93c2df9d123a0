"""One feature cache shared by every run (issue 24, item 13): content-keyed, under the
user's cache folder (or --features_cache); a new --output_dir embeds nothing already
embedded, and concurrent writers never leave a wrong vector."""

import hashlib
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pandas as pd

from aeuf.cli import main
from aeuf.io import FeatureStore, feature_cache_dir

SMALL = ["--members", "2", "--hidden", "8", "--epochs", "1", "--no_progress"]


def write_pool(path: Path) -> Path:
    rows = [{"instruction": f"Question {p}?", **{f"r{r}": f"answer {r} to {p} " * (r + 1)
                                                 for r in range(3)},
             **{f"r{r}_score": float((r * 7 + p) % 5) for r in range(3)}} for p in range(6)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def cache_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_cache_is_the_users_unless_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert feature_cache_dir() == tmp_path / "xdg" / "aeuf" / "features"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert feature_cache_dir() == tmp_path / "home" / ".cache" / "aeuf" / "features"
    assert feature_cache_dir(str(tmp_path / "c")) == tmp_path / "c"


def test_a_new_output_dir_embeds_nothing_already_embedded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pool = write_pool(tmp_path / "pool.csv")
    root = tmp_path / "xdg" / "aeuf" / "features"
    assert main([str(pool), "--output_dir", str(tmp_path / "a"), "--features", "minilm+stats",
                 *SMALL]) == 0
    first = cache_files(root)
    assert any(name.split("/")[-1].startswith("chunk-") for name in first)
    assert main([str(pool), "--output_dir", str(tmp_path / "b"), "--features", "minilm+stats",
                 *SMALL]) == 0
    assert cache_files(root) == first  # the second run computed 0 embeddings
    assert not (tmp_path / "b" / "features").exists()
    # `aeuf embed` reads the same cache: 0 newly embedded
    capsys.readouterr()
    assert main(["embed", str(pool), "--output_dir", str(tmp_path / "e"), "--features",
                 "minilm", "--no_progress"]) == 0
    assert "newly embedded {'minilm': 0}" in capsys.readouterr().err
    # --features_cache moves it
    moved = tmp_path / "moved"
    assert main([str(pool), "--output_dir", str(tmp_path / "c"), "--features", "minilm+stats",
                 "--features_cache", str(moved), *SMALL]) == 0
    assert cache_files(moved) and cache_files(root) == first


def _vector(key: str) -> np.ndarray:
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).normal(size=4).astype(np.float32)


def _writer(root: str, worker: int, rounds: int) -> None:
    """Adds chunks (overlapping key sets) and compacts often, as several runs do."""
    import aeuf.io.store as store

    store.MIN_CHUNKS, store.MAX_CHUNKS = 2, 3
    rng = np.random.default_rng(worker)
    for _ in range(rounds):
        s = FeatureStore(Path(root), "enc")
        keys = [f"k{int(i)}" for i in rng.choice(400, size=7, replace=False)]
        s.add(keys, np.stack([_vector(k) for k in keys]))
        found, values = FeatureStore(Path(root), "enc").lookup(keys)
        for k, f, v in zip(keys, found, values):
            assert not f or np.array_equal(v, _vector(k)), k
    # Checked, so leave without interpreter teardown: Arrow's pools can abort a process at
    # exit (apache/arrow#34314, seen once in CI), which says nothing about the cache.
    os._exit(0)


def test_concurrent_runs_share_the_cache_without_a_wrong_vector(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0]
    s = FeatureStore(tmp_path, "enc")
    keys = [f"k{i}" for i in range(400)]
    found, values = s.lookup(keys)
    assert found.sum() > 100
    for k, f, v in zip(keys, found, values):
        assert not f or np.array_equal(v, _vector(k)), k
