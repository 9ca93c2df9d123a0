"""Test-wide settings: offline hub, strict JAX rank promotion, one JAX compilation cache for
the session (this process and every `aeuf` it starts), a GPU marker that skips."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the model caches stay where they are; XDG_CACHE_HOME (the shared feature cache) is per test
_CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
os.environ.setdefault("HF_HOME", os.path.join(_CACHE, "huggingface"))
os.environ.setdefault("TORCH_HOME", os.path.join(_CACHE, "torch"))

# the same programs compile once per session, not once per test and per subprocess: compiling
# is most of the suite's time (tests/run/test_loop.py: 146 s without, 86 s with)
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    _JIT = tempfile.mkdtemp(prefix="aeuf-test-jax-")
    atexit.register(shutil.rmtree, _JIT, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _JIT
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _own_feature_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own feature cache (aeuf's default is the user's cache folder,
    shared by every run): no test sees what another embedded, none writes to ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    """GPU tests skip without CUDA. The 2-node cluster tests run first: their in-process
    driver connects to that cluster, and a driver that already ran (and shut down) a local
    Ray earlier in this process has Ray Data's actors cancelled before they start (seen in
    the whole suite, never alone)."""
    first = [i for i in items if i.path.name == "test_cluster.py"]
    items[:] = first + [i for i in items if i.path.name != "test_cluster.py"]
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
