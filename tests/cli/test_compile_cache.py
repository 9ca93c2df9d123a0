"""`aeuf` keeps the programs JAX compiles in the user's cache folder: a second run compiles
nothing new; JAX_COMPILATION_CACHE_DIR moves it, AEUF_JAX_CACHE=0 turns it off."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gold_pool import FAST, R, write_gold_pool

from aeuf.cli import compile_cache, main


def _run(pool: Path, out: Path, xdg: Path) -> None:
    environ = os.environ | {"XDG_CACHE_HOME": str(xdg), "HF_HUB_OFFLINE": "1"}
    environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # the test session's own cache
    environ.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
    done = subprocess.run([sys.executable, "-m", "aeuf", str(pool), "--num_responses", str(R),
                           "--num_annotations", "2", "--output_dir", str(out), *FAST],
                          capture_output=True, text=True, env=environ, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def _programs(xdg: Path) -> set[str]:
    folder = xdg / "aeuf" / "jax"
    return {f.name for f in folder.iterdir() if f.name.endswith("-cache")} if folder.is_dir() else set()


def test_a_second_run_compiles_nothing_new(tmp_path):
    pool, xdg = write_gold_pool(tmp_path / "pool.csv"), tmp_path / "xdg"
    _run(pool, tmp_path / "first", xdg)
    first = _programs(xdg)
    assert len(first) >= 5  # the fit, the beliefs, the acquisition, ...
    _run(pool, tmp_path / "second", xdg)
    assert _programs(xdg) == first


def test_the_users_own_folder_wins_zero_turns_it_off_and_no_folder_is_no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("AEUF_JAX_CACHE", "0")
    compile_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    monkeypatch.delenv("AEUF_JAX_CACHE")
    compile_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    compile_cache()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "aeuf" / "jax")
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a_file"))  # no folder to be had
    compile_cache()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ


def test_help_and_a_bad_flag_leave_no_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    for argv in (["--help"], ["run", "--help"], ["run", "--no_such_flag"]):
        with pytest.raises(SystemExit):
            main(argv)
    assert not (tmp_path / "aeuf").exists()


def test_the_command_line_is_built_without_importing_jax():
    """The cache must be set before JAX is imported, and `aeuf --help` should not wait for it:
    building every command's flags imports no JAX (python -X importtime lists each import)."""
    for argv in (["--help"], ["bench", "--help"], ["run", "--no_such_flag"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "aeuf", *argv],
                              capture_output=True, text=True, timeout=120)
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "aeuf.cli" in imported and "jax" not in imported, argv
