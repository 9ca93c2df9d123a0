"""timings.json splits the owned memory by stage: what each stage kept and its peak."""

import gc
import sys

import numpy as np
import pytest

from aeuf.run.timing import Stopwatch, owned_gb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")


@pytest.fixture(autouse=True)
def _no_collection_meanwhile():
    """In the whole suite's process, a garbage collection triggered inside a stage frees what
    earlier tests left behind and hides the stage's own memory: collect first, then hold it."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_a_stage_that_keeps_memory_is_charged_with_it_and_one_that_frees_it_is_not():
    watch, kept = Stopwatch(), []
    with watch("keeps"):
        kept.append(np.ones(50_000_000))  # 0.4 GB, written: resident
    with watch("frees"):
        kept.clear()
    keeps, frees = watch.record["keeps"], watch.record["frees"]
    assert 0.35 < keeps["added_owned_gb"] < 0.45
    assert keeps["peak_owned_gb"] >= keeps["owned_gb"] > frees["owned_gb"]
    assert -0.45 < frees["added_owned_gb"] < -0.35
    assert frees["peak_owned_gb"] >= keeps["owned_gb"] - 0.01  # it started holding the array
    assert abs(owned_gb() - frees["owned_gb"]) < 0.1


def test_calls_of_a_stage_add_up():
    watch, kept = Stopwatch(), []
    for _ in range(2):
        with watch("round"):
            kept.append(np.ones(25_000_000))  # 0.2 GB each
    row = watch.record["round"]
    assert row["calls"] == 2 and 0.35 < row["added_owned_gb"] < 0.45
