"""`aeuf` makes Python's cycle collector look less often (cli.quiet_gc): young collections
every GC_YOUNG allocations instead of 700, the older generations' ratios kept; a larger
threshold already set is kept, and so is a collector turned off (threshold 0)."""

import gc

import pytest

from aeuf.cli import GC_YOUNG, main


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_every_command_sets_the_young_threshold_and_keeps_a_larger_one(thresholds, capsys):
    gc.set_threshold(700, 10, 10)
    assert main([]) == 1  # the help: the setting comes before any command runs
    assert gc.get_threshold() == (GC_YOUNG, 10, 10)
    gc.set_threshold(4 * GC_YOUNG, 20, 5)
    main([])
    assert gc.get_threshold() == (4 * GC_YOUNG, 20, 5)
    gc.set_threshold(0, 10, 10)  # the collector off: it stays off
    main([])
    assert gc.get_threshold() == (0, 10, 10)
