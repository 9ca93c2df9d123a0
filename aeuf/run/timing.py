"""Where a run's time goes: wall seconds per stage and the process's peak memory after each.

    watch = Stopwatch()
    with watch("features"):
        ...
    watch.record  # {"features": {"seconds": 12.3, "peak_rss_gb": 4.1}, ...}

The run writes the record to timings.json in its folder (scripts/bench_scale.py reads it).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GB (ru_maxrss: KiB on Linux)."""
    unit = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 1e9


class Stopwatch:
    """Accumulates wall seconds per stage name (a stage may run many times: every round)."""

    def __init__(self) -> None:
        self.record: dict[str, dict[str, float]] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            row = self.record.setdefault(stage, {"seconds": 0.0, "calls": 0})
            row["seconds"] = round(row["seconds"] + time.perf_counter() - start, 3)
            row["calls"] += 1
            row["peak_rss_gb"] = round(peak_rss_gb(), 3)
