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
