"""A real two-node Ray cluster on this machine: `ray start --head` and `ray start --address`
as separate processes (own raylet and object store each, one CPU each), for the cluster
tests. Teardown kills what it started (by process group), never `ray stop`, which would stop
every Ray instance on the machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import psutil
from paths import REPO

ROOT = REPO
RAY = str(Path(sys.executable).with_name("ray"))
STORE = str(80 * 1024 * 1024)  # bytes of object store per node (Ray's floor is ~75 MB)
COMMON = ["--block", "--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", STORE,
          "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]


class Cluster(NamedTuple):
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen
    temp: Path
    env: dict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_ports() -> list[str]:
    """A node's ports that default to fixed numbers: free ones, so that another Ray on this
    machine (another test session, a user's) does not collide."""
    return ["--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port",
            str(free_port())]


def node_env() -> dict:
    """The nodes' environment: this checkout first on the workers' path, no hub access."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return os.environ | {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled",
                         "JAX_PLATFORMS": "cpu"}


def start(timeout: float = 120.0) -> Cluster:
    """Start the head node, wait for its GCS port, start the second node, wait until the
    cluster lists two live nodes. RuntimeError (the test fails) if it does not come up."""
    temp = Path(tempfile.mkdtemp(prefix="aeuf-ray-", dir="/tmp"))  # socket paths stay short
    port, env = free_port(), node_env()
    address = f"127.0.0.1:{port}"
    log = lambda name: open(temp / f"{name}.log", "wb")  # noqa: E731
    head = subprocess.Popen([RAY, "start", "--head", "--port", str(port), "--temp-dir",
                             str(temp), "--include-dashboard", "false", "--dashboard-port",
                             str(free_port()), *own_ports(), *COMMON], env=env,
                            stdout=log("head"), stderr=subprocess.STDOUT, start_new_session=True)
    cluster = Cluster(address, head, None, temp, env)
    try:
        wait_for(lambda: port_open(port) or _dead(head, temp / "head.log"), timeout,
                 "the head node's GCS port")
        worker = subprocess.Popen([RAY, "start", "--address", address, *own_ports(), *COMMON],
                                  env=env,
                                  stdout=log("worker"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        cluster = cluster._replace(worker=worker)
        wait_for(lambda: len(raylets(cluster)) == 2 or _dead(worker, temp / "worker.log"),
                 timeout, "two raylets")
    except BaseException:
        stop(cluster)
        raise
    return cluster


def _dead(p: subprocess.Popen, log: Path) -> bool:
    if p.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
        raise RuntimeError(f"`ray start` ended with {p.returncode}:\n{tail}")
    return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(ready, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Ray cluster did not come up: no {what} in {timeout:.0f} s")
        time.sleep(0.2)


def tree(p: subprocess.Popen | None) -> list[psutil.Process]:
    """A node's processes: the `ray start` process and everything under it."""
    if p is None:
        return []
    try:
        root = psutil.Process(p.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def raylets(c: Cluster) -> list[psutil.Process]:
    return [x for p in (c.head, c.worker) for x in tree(p) if _name(x) == "raylet"]


def workers_of(p: subprocess.Popen, title: str) -> list[psutil.Process]:
    """The Ray worker processes of a node whose title holds `title` (e.g. the actor's class)."""
    return [x for x in tree(p) if title in " ".join(_cmdline(x))]


def _name(p: psutil.Process) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def stop(c: Cluster) -> None:
    """SIGTERM each node's process group (`ray start --block` then stops its own processes),
    SIGKILL what is left after 3 s (a test cluster keeps nothing); remove the temp folder."""
    for p in (c.worker, c.head):
        if p is not None and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in (c.worker, c.head):
        if p is None:
            continue
        rest = tree(p)
        _, alive = psutil.wait_procs(rest, timeout=3)
        for x in alive:
            x.kill()
        _kill_group(p.pid)
    shutil.rmtree(c.temp, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
