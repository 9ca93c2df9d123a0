"""The web oracle's pure parts (issue 20): vote slots handed out by the board, the majority
of a pair's votes, and annotator agreement (Fleiss' kappa, each vs the majority)."""

import io
from collections import Counter

import pytest

from aeuf.config import OracleConfig, WebConfig
from aeuf.errors import ConfigError
from aeuf.oracle.agreement import agreement, agreement_line, fleiss_kappa
from aeuf.oracle.base import is_final
from aeuf.oracle.web_board import Board, majority, pair_of
from aeuf.types import JudgeAnswer, JudgeRequest, JudgeTask

TASK = JudgeTask("p1", "Q?", ("p1:a", "p1:b", "p1:c"), ("A", "B", "C"))


def slots(votes: int) -> list[JudgeRequest]:
    pairs = [(0, 1), (0, 2), (1, 2)]
    return [JudgeRequest(f"web:{i}{j}:v{v}", TASK, (i, j)) for i, j in pairs for v in range(votes)]


def test_two_slots_of_one_pair_never_go_to_one_person():
    board = Board(("ann1", "ann2"))
    board.open(slots(2))
    got: dict[str, list[str]] = {"ann1": [], "ann2": []}
    while True:
        moved = False
        for who in ("ann1", "ann1", "ann2"):  # ann1 asks twice as often
            request = board.current(who)
            if request is not None:
                assert board.answer(who, request.key, "1") is not None
                got[who].append(request.key)
                moved = True
        if not moved:
            break
    assert board.complete and len(got["ann1"]) == len(got["ann2"]) == 3
    for who in got:
        assert len({pair_of(k) for k in got[who]}) == 3
    assert set(got["ann1"]).isdisjoint(got["ann2"])


def test_a_held_slot_survives_a_reload_and_a_stale_key_is_refused():
    board = Board(("ann1", "ann2"))
    board.open(slots(1))
    first = board.current("ann1")
    assert board.current("ann1") == first  # asked again (a reload): the same slot
    assert board.current("ann2") != first
    assert board.answer("ann1", board.current("ann2").key, "1") is None  # not theirs
    assert board.answer("ann1", first.key, "x") is None  # not a choice


def test_undo_retracts_and_gives_the_slot_back():
    board = Board(("ann1",))
    board.open(slots(1))
    first = board.current("ann1")
    said = board.answer("ann1", first.key, "2")
    assert said.judge == "web:ann1" and '"annotator": "ann1"' in said.raw and said.value in (0, 1)
    assert board.current("ann1") != first
    back = board.undo("ann1")
    assert back.key == first.key and not is_final(back) and board.current("ann1") == first
    assert board.left() == 3 and board.undo("ann1") is None


def test_a_rerun_never_gives_a_second_vote_on_a_pair_voted_before():
    """After a kill, the ledger's earlier votes reach the new board: who voted on a pair is
    not given its other slot; a retracted (undone) vote does not count; counts carry on."""
    def said(key, who, error=None):
        return JudgeAnswer(key, "p1", ("p1:a", "p1:b"), None if error else 1.0, "{}",
                           f"web:{who}", error=error)

    earlier = [said("web:01:v0", "ann1"), said("web:02:v0", "ann2", "retracted: undone"),
               said("web:12:v0", "ann2")]
    left = [r for r in slots(2) if r.key not in ("web:01:v0", "web:12:v0")]
    board = Board(("ann1", "ann2"))
    board.open(left, earlier)
    assert board.count == {"ann1": 1, "ann2": 1}
    got: dict[str, list[str]] = {"ann1": [], "ann2": []}
    while (r := board.current("ann1") or board.current("ann2")) is not None:
        who = "ann1" if board.held.get("ann1") == r.key else "ann2"
        board.answer(who, r.key, "1")
        got[who].append(pair_of(r.key))
    assert board.complete and "web:01" not in got["ann1"] and "web:12" not in got["ann2"]
    assert sorted(got["ann1"]) == ["web:02", "web:12"] and sorted(got["ann2"]) == ["web:01", "web:02"]


def test_resolve_names_the_annotators_whose_votes_made_the_label():
    from aeuf.oracle import make_oracle

    oracle = make_oracle(OracleConfig(name="web", web=WebConfig(annotators=3, votes_per_pair=2)),
                         has_gold=False, stdout=io.StringIO())
    try:
        task = JudgeTask("p1", "Q?", ("p1:a", "p1:b"), ("A", "B"))
        a, b = oracle.plan(task)
        answers = {a.key: JudgeAnswer(a.key, "p1", (), 1.0, "{}", "web:annotator3"),
                   b.key: JudgeAnswer(b.key, "p1", (), None, "{}", "web:annotator1",
                                      error="skipped by the annotator")}
        assert oracle.resolve(task, answers).annotators == ("annotator3",)  # a skip: no vote
        answers[b.key] = JudgeAnswer(b.key, "p1", (), 1.0, "{}", "web:annotator1")
        assert oracle.resolve(task, answers).annotators == ("annotator1", "annotator3")
    finally:
        oracle.close()


def test_the_majority_and_a_split():
    assert majority([1.0, 1.0, 0.0]) == 1.0
    assert majority([1.0, 0.0]) == 0.5  # a split is a tie
    assert majority([]) is None


def test_fleiss_kappa_of_the_textbook_example():
    rows = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # Fleiss (1971) via Wikipedia: kappa 0.210
    table = [Counter({c: n for c, n in enumerate(r) if n}) for r in rows]
    assert fleiss_kappa(table) == pytest.approx(0.2099, abs=1e-3)


def test_agreement_per_annotator_and_overall():
    def vote(pair, v, who, value):
        return JudgeAnswer(f"web:{pair}:v{v}", "p", ("a", "b"), value, "{}", f"web:{who}")

    answers = [vote("x", 0, "ann1", 1.0), vote("x", 1, "ann2", 1.0), vote("x", 2, "ann3", 0.0),
               vote("y", 0, "ann1", 0.0), vote("y", 1, "ann2", 0.0), vote("y", 2, "ann3", 0.0),
               vote("z", 0, "ann3", 0.5), vote("z", 1, "ann1", 1.0), vote("z", 2, "ann2", 1.0)]
    got = agreement(answers)
    assert got["pairs"] == 3 and got["votes_per_pair"] == 3
    assert got["annotators"]["ann1"]["agrees_with_majority"] == 1.0
    assert got["annotators"]["ann3"]["agrees_with_majority"] == pytest.approx(1 / 3)
    assert -1 < got["fleiss_kappa"] < 1 and "Fleiss' kappa" in agreement_line(got)


def test_more_votes_than_annotators_is_refused_in_one_line():
    from aeuf.oracle import make_oracle

    cfg = OracleConfig(name="web", web=WebConfig(annotators=1, votes_per_pair=2))
    with pytest.raises(ConfigError, match="votes_per_pair 2"):
        make_oracle(cfg, has_gold=False)


def test_a_port_in_use_is_one_clear_line():
    import socket

    from aeuf.oracle import make_oracle

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    cfg = OracleConfig(name="web", web=WebConfig(port=port))
    with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*--web_port"):
        make_oracle(cfg, has_gold=False)
    taken.close()
