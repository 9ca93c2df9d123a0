"""How the benchmark scripts (scripts/bench_*.py) measure: one way to time a call, to read
this machine's float32 matmul peak, to put a stage against its compute floor, and to say
what the machine was doing meanwhile.

Every speed claim in BENCHMARKS.md is a ratio taken in one process (the CI machines are
shared): the scripts time aeuf and its baseline, or aeuf and the matmul peak, with these
functions, side by side. Nothing here imports a heavy library at module level; JAX is
imported only when its peak is asked for (torch's peak: pass `matmul` built by the script,
since aeuf.bench may not import torch).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np


def block(out):
    """Wait for a JAX result (any pytree of arrays: JAX dispatches asynchronously, so a fit
    would otherwise be billed to the next stage); anything else is returned as is."""
    jax = sys.modules.get("jax")
    if jax is not None and out is not None:
        for leaf in jax.tree_util.tree_leaves(out):
            if hasattr(leaf, "block_until_ready"):
                leaf.block_until_ready()
    return out


def seconds(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of fn() (a JAX result is waited for)."""
    t = time.perf_counter()
    block(fn())
    return time.perf_counter() - t


def wall_and_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call of fn(). CPU time counts the
    work done and not the wait for a core, so its ratios hold up on a shared machine."""
    w, c = time.perf_counter(), time.process_time()
    block(fn())
    return time.perf_counter() - w, time.process_time() - c


def median_time(fn: Callable[[], object], repeats: int = 3, warm: bool = True) -> float:
    """Median wall seconds of fn() over `repeats` calls, after one untimed call if `warm`."""
    if warm:
        block(fn())
    return statistics.median(seconds(fn) for _ in range(max(1, repeats)))


def best_time(fn: Callable[[], object], repeats: int = 3, warm: bool = True) -> float:
    """Fastest wall seconds of fn() over `repeats` calls (after one untimed call if `warm`)."""
    if warm:
        block(fn())
    return min(seconds(fn) for _ in range(max(1, repeats)))


def alternate(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[list, list]:
    """Wall seconds of a() and b() called in turn `repeats` times each (a, b, a, b, ...), so
    a change in the machine's load falls on both sides alike."""
    ta, tb = [], []
    for _ in range(max(1, repeats)):
        ta.append(seconds(a))
        tb.append(seconds(b))
    return ta, tb


def _matmul(lib: str, n: int) -> Callable[[], object]:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    if lib == "jax":
        import jax

        j = jax.device_put(a)
        mm = jax.jit(lambda u: u @ u)
        return lambda: mm(j)
    if lib != "numpy":
        raise ValueError(f"matmul_peak: lib is 'numpy' or 'jax' (got {lib!r}); pass matmul= "
                         "for another library")
    return lambda: a @ a


def matmul_peak(lib: str = "numpy", n: int = 4096, repeats: int = 3,
                matmul: Callable[[], object] | None = None) -> float:
    """GFLOP/s of a float32 n x n matmul, best of `repeats`: numpy's or JAX's, or of
    `matmul` (a call that multiplies two n x n float32 matrices, e.g. torch's)."""
    fn = matmul or _matmul(lib, n)
    return 2 * n**3 / best_time(fn, repeats) / 1e9


def floor_seconds(flops: float, peak_gflops: float) -> float:
    """The compute floor of a stage: its FLOPs at the matmul peak (GFLOP/s) of the library
    that runs it."""
    return flops / (peak_gflops * 1e9)


def over_floor(secs: float, flops: float, peak_gflops: float) -> float:
    """How many times its compute floor a stage took (1.0 = at the matmul peak)."""
    return secs / floor_seconds(flops, peak_gflops)


def machine() -> dict:
    """Cores this process may use, load averages (1, 5, 15 min) and the thread settings."""
    return {"cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "load": [round(x, 2) for x in os.getloadavg()],
            **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "XLA_FLAGS") if k in os.environ}}


def machine_line() -> str:
    """One line for a script's output: cores and the 1-minute load average."""
    m = machine()
    return f"{m['cpus']} cores, load average {m['load'][0]:.2f}"


def mlp_flops(dim: int, hidden: tuple[int, ...]) -> tuple[int, int]:
    """(forward, training) FLOPs of one response through one reward-head member
    (D -> hidden... -> 1): forward 2 sum(in*out) over the layers; training adds the weight
    gradients (the same again) and the input gradients of every layer but the first. The
    floor of a fit on M pairs, K members, E epochs: training * 2M * K * E; of a belief over
    N responses: forward * N * K."""
    sizes = (dim, *hidden, 1)
    layers = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return 2 * sum(layers), 2 * (2 * sum(layers) + sum(layers[1:]))
