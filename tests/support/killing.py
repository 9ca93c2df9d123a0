"""Kill a run mid-way, as a crash would: start it, wait until its judgement log holds a few
complete answers, SIGKILL it (or send another signal: SIGINT is a Ctrl-C)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path


def log_lines(path: Path) -> list[dict]:
    """The complete records of a judgements.jsonl (a partial last line is left out)."""
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip().endswith("}")]


def kill_after_lines(cmd: list[str], log: Path, *, lines: int = 3, env: dict | None = None,
                     timeout: float = 900, poll: float = 0.2, sig: int = signal.SIGKILL,
                     expect: int | None = None) -> None:
    """Run cmd and send it `sig` (SIGKILL) once `log` holds `lines` complete records (fails
    the test if it ends first or takes longer than `timeout` seconds); `expect`: the exit
    code it must then end with."""
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while len(log_lines(log)) < lines:
        assert child.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(poll)
    child.send_signal(sig)
    code = child.wait(timeout=timeout)
    assert expect is None or code == expect, code
