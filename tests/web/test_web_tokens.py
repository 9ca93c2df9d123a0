"""The web oracle's annotator tokens in the run folder (issue 20): the same links after a
rerun, mode 0600, new names get new tokens, a damaged file is one clear line."""

import stat

import pytest

from aeuf.errors import InputError
from aeuf.io import TOKENS_FILE, annotator_tokens


def test_tokens_are_kept_private_and_stable(tmp_path):
    first = annotator_tokens(tmp_path, ["annotator1", "annotator2"])
    path = tmp_path / TOKENS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(set(first.values())) == 2 and all(len(t) >= 20 for t in first.values())
    assert annotator_tokens(tmp_path, ["annotator1", "annotator2"]) == first
    more = annotator_tokens(tmp_path, ["annotator1", "annotator2", "annotator3"])
    assert {k: more[k] for k in first} == first and more["annotator3"] not in first.values()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_tokens_file_is_one_line(tmp_path):
    (tmp_path / TOKENS_FILE).write_text("{not json")
    with pytest.raises(InputError, match=f"{TOKENS_FILE}: cannot read.*delete it"):
        annotator_tokens(tmp_path, ["annotator1"])
