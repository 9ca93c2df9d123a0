"""Judge hygiene: swap consistency, length bias, ties, failures and cost per judge, computed
from answers (built here by hand, and from the honest stand-in judge over HTTP)."""

import math

import pytest
from configs import oracle_config

from aeuf.oracle import make_oracle
from aeuf.oracle.hygiene import hygiene_json, hygiene_lines, judge_hygiene, spearman, texts_of
from aeuf.types import JudgeAnswer, JudgeTask

pytest_plugins = ["servers"]

TEXTS = {"a": "short", "b": "a much longer answer", "c": "mid length", "d": "x" * 50}


def pw(first, second, value, judge="m/pairwise@1", cost=0.0, error=None):
    return JudgeAnswer(f"k{first}{second}", "p", (first, second), value, "", judge, cost, 10,
                       error)


def rt(rid, value, prompt="p", judge="m/overall@1", error=None, cost=0.0):
    return JudgeAnswer(f"k{prompt}{rid}", prompt, (rid,), value, "", judge, cost, 5, error)


def test_swap_consistency_counts_pairs_whose_two_orders_agree():
    answers = [pw("a", "b", 1.0), pw("b", "a", 0.0),  # a wins both ways: consistent
               pw("a", "c", 1.0), pw("c", "a", 1.0),  # first shown always wins: a flip
               pw("b", "c", 0.5), pw("c", "b", 0.5),  # tie both ways: consistent
               pw("a", "d", 0.0), pw("d", "a", 1.0),  # d wins both ways: consistent
               pw("b", "d", 0.9)]  # one order only: not counted
    (h,) = judge_hygiene(answers, TEXTS).values()
    assert h.kind == "pairwise" and h.swap_pairs == 4
    assert h.swap_consistency == pytest.approx(3 / 4)
    assert h.ties == 2 and h.tie_rate == pytest.approx(2 / 9)
    # decided (winner, loser): (a,b) (a,b) (a,c) (c,a) (d,a) (d,a) (b,d): the longer won
    # in (c,a), (d,a), (d,a) -> 3 of 7
    assert h.longer_wins == pytest.approx(3 / 7)
    assert math.isnan(h.length_spearman)


def test_ratings_report_length_correlation_ties_and_failures():
    answers = [rt("a", 1.0), rt("c", 3.0), rt("b", 4.0), rt("d", 5.0),
               rt("a", 2.0, prompt="q"), rt("b", 2.0, prompt="q"),
               rt("c", None, prompt="q", error="unparsable: no answer"),
               rt("d", None, prompt="r", error="transport: timeout"),
               rt("d", 4.0, prompt="r", cost=0.5),  # the rerun answered it: the last counts
               rt("a", None, prompt="s", error="refused: no")]
    (h,) = judge_hygiene(answers, TEXTS).values()
    assert h.kind == "rating"
    assert (h.requests, h.answered, h.unparsable, h.transport, h.refused) == (9, 7, 1, 0, 1)
    assert h.length_spearman == pytest.approx(spearman([5, 10, 20, 50, 5, 20, 50],
                                                       [1, 3, 4, 5, 2, 2, 4]))
    assert h.length_spearman > 0.8
    assert h.ties == 1 and h.tie_rate == pytest.approx(1 / 7)  # q: a and b both 2
    assert h.longer_wins == pytest.approx(1.0)  # every decided pair of p went to the longer
    assert h.cost == pytest.approx(0.5) and h.tokens == 5 * len(answers)


def test_one_report_per_judge_and_json_and_lines():
    answers = [rt("a", 1.0, judge="m/honesty@1"), rt("b", 5.0, judge="m/helpfulness@2"),
               pw("a", "b", 1.0)]
    report = judge_hygiene(answers, TEXTS)
    assert sorted(report) == ["m/helpfulness@2", "m/honesty@1", "m/pairwise@1"]
    as_json = hygiene_json(report)
    assert as_json["m/pairwise@1"]["swap_consistency"] is None  # NaN -> None
    lines = hygiene_lines(report)
    assert len(lines) == 3 and "swap-consistent n/a of 0 pairs" in lines[2]
    assert spearman([1, 2], [3, 4]) != spearman([1, 2], [3, 4])  # NaN under 3 points


def test_texts_of_tasks():
    task = JudgeTask("p", "Q", ("p:0", "p:1"), ("x", "yy"))
    assert texts_of([task]) == {"p:0": "x", "p:1": "yy"}


def test_hygiene_of_a_live_honest_judge(honest_judge):
    """The honest stand-in never flips with the order: swap consistency 1.0."""
    judge = honest_judge(context=2048)
    oracle = make_oracle(oracle_config(name="judge", judge_base_url=judge.base_url,
                                       judge_model="honest", template="pairwise",
                                       context_tokens=2048, logprobs=False), has_gold=False)
    tasks = [JudgeTask(f"t{i}", "Q", (f"t{i}:0", f"t{i}:1", f"t{i}:2"),
                       ("good and long answer here", "poor", "good too")) for i in range(3)]
    answers = list(oracle.send([r for t in tasks for r in oracle.plan(t)]))
    (h,) = judge_hygiene(answers, texts_of(tasks)).values()
    assert h.requests == 18 and h.swap_pairs == 9 and h.swap_consistency == 1.0
    assert h.ties == 6  # the two "good" responses tie in both orders
    assert h.longer_wins == pytest.approx(1.0)
