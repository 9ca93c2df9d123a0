"""Model-free rules usable before any label: `random`, `ultrafeedback`, `west_of_n`.

Each select(belief | None, features f32[P,R,D] | None, *, key, k, valid=None) -> Choice; the
score is zero (these rules carry no information about which prompt is more informative) and
`valid` is ignored (only belief rules honour a pair mask).
"""

from __future__ import annotations

import numpy as np

from aeuf.acquire.base import RULES, Rule, check_k, make_choice, numpy_rng, shown_k
from aeuf.config import AcquireConfig
from aeuf.errors import ConfigError
from aeuf.types import Belief, Choice


def pool_shape(belief: Belief | None, features) -> tuple[int, int]:
    """(P, R) from the belief's mean [P, R] or, without a belief, the features [P, R, D]."""
    if belief is not None:
        return tuple(np.shape(belief.mean))
    if features is not None:
        return tuple(np.shape(features)[:2])
    raise ConfigError("acquisition needs a belief or features to know the pool's shape")


def random_subsets(rng: np.random.Generator, P: int, R: int, k: int) -> np.ndarray:
    """k distinct responses per prompt, uniformly at random and in random order: int64 [P, k]."""
    return np.argsort(rng.random((P, R)), axis=1)[:, :k]


def _random_select(belief, features, *, key, k, valid=None) -> Choice:
    P, R = pool_shape(belief, features)
    check_k(k, R)
    return make_choice(random_subsets(numpy_rng(key), P, R, k), np.zeros(P))


def _ultrafeedback_shown(k: int, R: int) -> int:
    """UltraFeedback always rates 4 responses (all of them if the pool has fewer)."""
    return min(4, R)


def _ultrafeedback_select(belief, features, *, key, k, valid=None) -> Choice:
    P, R = pool_shape(belief, features)
    check_k(2, R)
    idx = random_subsets(numpy_rng(key), P, R, _ultrafeedback_shown(k, R))
    return make_choice(idx, np.zeros(P))


def _west_of_n_select(belief, features, *, key, k, valid=None) -> Choice:
    P, R = pool_shape(belief, features)
    check_k(2, R)
    return make_choice(np.broadcast_to(np.arange(R), (P, R)), np.zeros(P))


@RULES.register("random")
def make_random(cfg: AcquireConfig) -> Rule:
    """k distinct responses uniformly at random; the exported pair is best vs worst of them."""
    return Rule(_random_select, False, "extremes", shown_k)


@RULES.register("ultrafeedback")
def make_ultrafeedback(cfg: AcquireConfig) -> Rule:
    """UltraFeedback: rate 4 random responses; best of them vs a random other."""
    return Rule(_ultrafeedback_select, False, "best_vs_random", _ultrafeedback_shown)


@RULES.register("west_of_n")
def make_west_of_n(cfg: AcquireConfig) -> Rule:
    """West-of-N: the oracle rates all R responses; best vs worst."""
    return Rule(_west_of_n_select, False, "extremes", lambda k, R: R)
