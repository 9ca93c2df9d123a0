"""Where things are, for every test: the repository root (REPO) and the tests' own data
(DATA). Tests import these instead of counting `Path(__file__).parents`, so a test file can
move between folders of tests/ without its lookups breaking."""

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent  # tests/support: the shared helper modules
TESTS = SUPPORT.parent
REPO = TESTS.parent
DATA = SUPPORT / "data"  # small files the tests read (never written by a test)
