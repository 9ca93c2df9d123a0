"""Large features live in a mapped scratch file, not in memory the process owns: the same
numbers and the same dataset as in RAM, nothing left on disk, a full disk one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gold_pool import FAST, R, write_gold_pool

from aeuf.cli import main
from aeuf.config import FeatureConfig, InputConfig
from aeuf.errors import InputError
from aeuf.io import read_pool, scratch_array
from aeuf.run import featurize
from aeuf.run.timing import owned_gb


def test_a_scratch_array_is_writable_zeroed_not_owned_and_leaves_no_file(tmp_path):
    before = set(tmp_path.iterdir())
    a = scratch_array(tmp_path, (8192, 4096), np.float32)  # 128 MiB
    assert a.shape == (8192, 4096) and a.dtype == np.float32 and not a[::512].any()
    assert set(tmp_path.iterdir()) == before  # unlinked at once: nothing to leave behind
    owned = owned_gb()
    a[:] = 1.5  # every page written
    assert float(a[::97, ::31].mean()) == 1.5
    assert owned_gb() - owned < 0.05  # 0.134 GB written, page cache: not owned memory
    del a


def test_a_scratch_array_the_disk_cannot_hold_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"no room for a .* GB working array.*--output_dir"):
        scratch_array(tmp_path, (2**40, 2**10), np.float32)  # 4 PiB
    assert list(tmp_path.iterdir()) == []


def _pool(tmp_path):
    return read_pool(InputConfig(path=str(write_gold_pool(tmp_path / "pool.csv"))))


def test_spilled_features_equal_the_features_in_ram(tmp_path, monkeypatch):
    pool, cfg = _pool(tmp_path), FeatureConfig(features="stats")
    ram, _ = featurize.build_features(pool, cfg, progress=False, spill=tmp_path)  # small: RAM
    p_ram = featurize.prompt_features(pool, ram, cfg, progress=False, spill=tmp_path)
    assert not isinstance(ram, np.memmap) and not isinstance(p_ram, np.memmap)
    monkeypatch.setattr(featurize, "SPILL_FROM", 0)
    disk, _ = featurize.build_features(pool, cfg, progress=False, spill=tmp_path)
    p_disk = featurize.prompt_features(pool, disk, cfg, progress=False, spill=tmp_path)
    assert isinstance(disk.base, np.memmap) or isinstance(disk, np.memmap)
    assert isinstance(p_disk, np.memmap)
    np.testing.assert_array_equal(disk, ram)
    np.testing.assert_array_equal(p_disk, p_ram)


def _run(pool: Path, out: Path) -> str:
    assert main([str(pool), "--num_responses", str(R), "--num_annotations", "2",
                 "--output_dir", str(out), *FAST]) == 0
    return (out / "preferences.jsonl").read_text()


def test_the_main_command_on_spilled_features_exports_the_same_dataset(tmp_path, monkeypatch):
    pool = write_gold_pool(tmp_path / "pool.csv")
    want = _run(pool, tmp_path / "ram")
    monkeypatch.setattr(featurize, "SPILL_FROM", 0)
    assert _run(pool, tmp_path / "disk") == want
    assert not list((tmp_path / "disk").glob(".scratch-*"))
