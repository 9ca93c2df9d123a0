"""timings.json splits the owned memory by stage: what each stage kept and its peak.

Each check runs in a fresh interpreter: in the whole suite's process, memory that earlier tests
freed may still be held by the allocator, and a new array reuses those pages without adding to
what the process owns (seen in CI: added_owned_gb 0.0 for a 0.4 GB array)."""

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")


def measured(body: str) -> dict:
    """The Stopwatch record and a last owned_gb() reading from `body`, run in a new process."""
    script = textwrap.dedent(
        """
        import json
        import numpy as np
        from aeuf.run.timing import Stopwatch, owned_gb
        watch, kept = Stopwatch(), []
        """
    ) + textwrap.dedent(body) + "\nprint(json.dumps({'record': watch.record, 'now': owned_gb()}))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_stage_that_keeps_memory_is_charged_with_it_and_one_that_frees_it_is_not():
    out = measured(
        """
        with watch("keeps"):
            kept.append(np.ones(50_000_000))  # 0.4 GB, written: resident
        with watch("frees"):
            kept.clear()
        """
    )
    keeps, frees = out["record"]["keeps"], out["record"]["frees"]
    assert 0.35 < keeps["added_owned_gb"] < 0.45
    assert keeps["peak_owned_gb"] >= keeps["owned_gb"] > frees["owned_gb"]
    assert -0.45 < frees["added_owned_gb"] < -0.35
    assert frees["peak_owned_gb"] >= keeps["owned_gb"] - 0.01  # it started holding the array
    assert abs(out["now"] - frees["owned_gb"]) < 0.1


def test_calls_of_a_stage_add_up():
    out = measured(
        """
        for _ in range(2):
            with watch("round"):
                kept.append(np.ones(25_000_000))  # 0.2 GB each
        """
    )
    row = out["record"]["round"]
    assert row["calls"] == 2 and 0.35 < row["added_owned_gb"] < 0.45
