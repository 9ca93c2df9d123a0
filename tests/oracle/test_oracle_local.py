"""`--oracle local`: a llama.cpp server started by the oracle on the packaged SmolLM2 GGUF."""

import os
from pathlib import Path

import pytest
from paths import SUPPORT

from aeuf.backends.llama_server import packaged_gguf
from aeuf.config import OracleConfig
from aeuf.oracle import make_oracle
from aeuf.oracle.judge import make_spec
from aeuf.oracle.local import local_model_name
from aeuf.types import JudgeTask

pytest_plugins = ["servers"]


def llama_children() -> set[int]:
    """Pids of live llama.cpp servers started by this process."""
    out = set()
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == os.getpid() and stat[0] != "Z" and "llama_cpp.server" in cmd:
            out.add(int(proc.name))
    return out


@pytest.mark.server
def test_local_oracle_starts_judges_and_stops_its_server(llama_server):  # fixture: installed
    assert packaged_gguf().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    before = llama_children()
    cfg = OracleConfig(name="local", max_tokens=16, context_tokens=2048)
    oracle = make_oracle(cfg, has_gold=False)
    task = JudgeTask("l1", "Say hi.", ("l1:a", "l1:b"), ("Hi!", "Goodbye forever."))
    requests = oracle.plan(task)
    assert oracle.name == "local"
    assert make_spec(cfg, local_model_name(cfg)).model == "SmolLM2-135M-Instruct.Q4_1"
    assert llama_children() == before  # nothing started until there is something to send
    try:
        answers = {a.key: a for a in oracle.send(requests)}
        started = llama_children() - before
    finally:
        oracle.close()
    assert len(started) == 1 and not llama_children() & started  # stopped by close()
    assert sorted(answers) == sorted(r.key for r in requests)
    # llama-cpp-python's JSON mode: every reply starts with a rating
    assert all(a.tokens > 0 and a.error is None and 1.0 <= a.value <= 5.0
               for a in answers.values()), answers


@pytest.mark.server
def test_server_dies_with_a_killed_parent_and_jax_sees_no_fork(llama_server):  # fixture: installed
    import subprocess
    import sys
    import time

    script = ("import os\nimport jax, jax.numpy as jnp\njnp.ones(3).sum().block_until_ready()\n"
              "from aeuf.backends import llama_server\n"
              "s = llama_server.start(alias='orphan-test')\nprint(s.pid, flush=True)\n"
              "os.kill(os.getpid(), 9)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert "os.fork()" not in done.stderr  # no Python fork in a process running JAX threads
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()


def test_a_missing_server_dependency_fails_under_aeuf_require_servers(monkeypatch):
    """CI sets AEUF_REQUIRE_SERVERS=1: a missing llama.cpp, GGUF or Ray is a failure there,
    a skip elsewhere; nothing is installed by the tests."""
    from servers import require

    monkeypatch.setenv("AEUF_REQUIRE_SERVERS", "1")
    with pytest.raises(pytest.fail.Exception, match="AEUF_REQUIRE_SERVERS=1"):
        require("aeuf_no_such_module")
    monkeypatch.delenv("AEUF_REQUIRE_SERVERS")
    with pytest.raises(pytest.skip.Exception):
        require("aeuf_no_such_module")
    assert require("json").dumps([1]) == "[1]"
    source = (SUPPORT / "servers.py").read_text()
    assert "pip" not in source.replace("pipe", "")  # no installing during a test run
