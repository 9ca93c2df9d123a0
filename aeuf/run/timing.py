"""Where a run's time and memory go: wall seconds per stage and the memory it owned.

    watch = Stopwatch()
    with watch("features"):
        ...
    watch.record  # {"features": {"seconds": 12.3, "calls": 1, "peak_rss_gb": 4.1,
                  #               "owned_gb": 1.2, "peak_owned_gb": 2.0, "added_owned_gb": 0.9}}

peak_rss_gb: the process's peak resident memory so far (mapped files' pages included);
owned_gb: the memory the process owns (anonymous: what must fit in RAM; the pages of a
memory-mapped feature file are not counted) when the stage last ended; peak_owned_gb: the
largest owned memory seen while the stage ran (sampled every SAMPLE_S seconds, and at its start
and end), over all its calls; added_owned_gb: what its calls added to the owned memory, summed
(negative when a stage frees more than it keeps). The owned figures need Linux's
/proc/self/status (absent elsewhere). The run writes the record to timings.json in its folder
(scripts/bench_scale.py reads it).
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLE_S = 0.2  # seconds between two readings of the owned memory while a stage runs


def peak_rss_gb() -> float:
    """This process's peak resident memory so far, in GB (ru_maxrss: KiB on Linux)."""
    unit = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 1e9


def owned_gb() -> float | None:
    """The memory this process owns now (RssAnon), in GB; None where /proc is absent."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024 / 1e9
    return None


class Sampler:
    """The largest owned_gb() seen from entering to leaving it, read every SAMPLE_S seconds in
    a daemon thread (and at both ends)."""

    def __init__(self) -> None:
        self.peak = owned_gb()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def read(self) -> None:
        now = owned_gb()
        if now is not None:
            self.peak = max(self.peak or 0.0, now)

    def poll(self) -> None:
        while not self.done.wait(SAMPLE_S):
            self.read()

    def __enter__(self) -> Sampler:
        if self.peak is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        self.read()


class Stopwatch:
    """Accumulates wall seconds and owned memory per stage name (a stage may run many times:
    every round)."""

    def __init__(self) -> None:
        self.record: dict[str, dict[str, float]] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start, before = time.perf_counter(), owned_gb()
        sampler = Sampler()
        try:
            with sampler:
                yield
        finally:
            row = self.record.setdefault(stage, {"seconds": 0.0, "calls": 0})
            row["seconds"] = round(row["seconds"] + time.perf_counter() - start, 3)
            row["calls"] += 1
            row["peak_rss_gb"] = round(peak_rss_gb(), 3)
            after = owned_gb()
            if after is not None and before is not None:
                row["owned_gb"] = round(after, 3)
                row["peak_owned_gb"] = round(max(row.get("peak_owned_gb", 0.0), sampler.peak), 3)
                row["added_owned_gb"] = round(row.get("added_owned_gb", 0.0) + after - before, 3)
