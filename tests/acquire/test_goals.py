"""--goal dpo|rm: the rule each goal selects, and rm_mix (random pairs mixed with the head's
most uncertain ones)."""

import numpy as np
import pytest

from aeuf.acquire import make_rule
from aeuf.acquire.uncertainty import bald_matrix
from aeuf.config import GOAL_RULES, AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Belief


def belief(samples):
    s = np.asarray(samples, np.float32)
    d = s[:, :, :, None] - s[:, :, None, :]
    return Belief(s.mean(0), s.std(0), s, d.var(0))


def test_goal_sets_the_rule_unless_one_is_given():
    assert AcquireConfig().rule == GOAL_RULES[AcquireConfig().goal]
    assert AcquireConfig(goal="rm").rule == "rm_mix"
    assert AcquireConfig(goal="dpo").rule == GOAL_RULES["dpo"]
    assert AcquireConfig(goal="rm", rule="random").rule == "random"
    for rule in GOAL_RULES.values():
        make_rule(AcquireConfig(rule=rule))  # every goal's rule exists


def test_rm_mix_takes_random_pairs_on_its_share_and_the_bald_pair_elsewhere():
    rng = np.random.default_rng(0)
    b = belief(rng.normal(size=(32, 400, 6)) * rng.uniform(0.1, 3, size=(1, 400, 6)))
    B = bald_matrix(b.samples)
    top = np.array([np.unravel_index(np.argmax(np.triu(m, 1)), m.shape) for m in B])
    share = lambda c: (np.sort(c.idx, 1) == np.sort(top, 1)).all(1).mean()  # noqa: E731
    pick = lambda x: make_rule(AcquireConfig(rule="rm_mix", mix_random=x)).select(  # noqa: E731
        b, None, key=1, k=2)
    assert share(pick(0.0)) == 1.0  # all BALD pairs
    # all random: the BALD pair only by chance (1 in 15 pairs)
    assert share(pick(1.0)) < 0.15
    half = share(pick(0.5))
    assert 0.4 < half < 0.65  # half BALD, plus the random rows that hit it by chance
    with pytest.raises(ConfigError, match="--mix_random"):
        make_rule(AcquireConfig(rule="rm_mix", mix_random=1.5))


def test_rm_mix_random_pairs_honour_the_pair_mask():
    rng = np.random.default_rng(1)
    b = belief(rng.normal(size=(8, 200, 5)))
    valid = np.zeros((200, 5, 5), bool)
    valid[:, 1, 3] = valid[:, 3, 1] = valid[:, 2, 4] = valid[:, 4, 2] = True
    c = make_rule(AcquireConfig(rule="rm_mix", mix_random=1.0)).select(b, None, key=2, k=2,
                                                                       valid=valid)
    got = {tuple(sorted(x)) for x in c.idx.tolist()}
    assert got == {(1, 3), (2, 4)}


def test_dpo_value_counts_the_chance_of_the_best_and_the_share_of_the_range():
    from aeuf.acquire.goals import dpo_value

    # two draws: response 2 best in one, 3 in the other; 0 always the worst
    s = np.array([[[0.0, 1.0, 4.0, 3.0]], [[0.0, 1.0, 3.0, 4.0]]], np.float32)
    V = dpo_value(s)[0]
    assert V[2, 3] == pytest.approx(1.0 + 0.25)  # holds the best in both draws, spans 1/4
    assert V[0, 2] == pytest.approx(0.5 + (1.0 + 0.75) / 2)
    assert V[0, 1] == pytest.approx(0.25) and V[1, 0] == V[0, 1] and V[0, 0] == 0.0
    flat = dpo_value(np.zeros((3, 1, 4), np.float32))[0]  # no opinion: every pair a tie
    assert np.allclose(flat[~np.eye(4, dtype=bool)], 0.5)


def test_dpo_value_sends_the_likeliest_best_against_the_surely_worse():
    pick = lambda s: make_rule(AcquireConfig(rule="dpo_value")).select(  # noqa: E731
        belief(s), None, key=0, k=2).idx[0].tolist()
    sure = np.tile(np.array([0.0, 1.0, 2.0, 3.0, 4.0], np.float32), (8, 1, 1))
    assert sorted(pick(sure)) == [0, 4]  # the best is known: best against the worst
    # response 2 has the highest mean (one draw puts it far ahead) but 3 is the best in 7 of
    # 8 draws: the pair holds 3, against 0, the worst in every draw
    s = np.tile(np.array([0.0, 1.0, 1.9, 2.0], np.float32), (8, 1, 1))
    s[0, 0, 2] = 10.0
    assert s.mean(0)[0].argmax() == 2 and sorted(pick(s)) == [0, 3]


def test_dpo_value_reads_a_diverged_draw_as_no_evidence():
    from aeuf.acquire.goals import dpo_value

    s = np.array([[[0.0, 1.0, 4.0, 3.0]], [[0.0, 1.0, 3.0, 4.0]]], np.float32)
    bad = np.concatenate([s, [[[np.nan, 2.0, np.inf, 0.5]]]])  # a third draw, diverged
    with np.errstate(all="raise"):
        V = dpo_value(bad)[0]
    assert np.isfinite(V).all()
    # the third draw's only finite values (2.0 > 0.5) make response 1 its best
    assert V[2, 3] == pytest.approx((2 * 1.0 + 0.0) / 3 + (0.25 + 0.25 + 0.0) / 3)
    assert np.argmax(V[0]) == 2 or np.argmax(V[0]) == 3
