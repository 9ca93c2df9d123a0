"""pick_pair: ratings of the shown responses -> (chosen, rejected) slots."""

import jax
import numpy as np
import pytest

from aeuf.acquire import pick_pair
from aeuf.errors import AeufError, ConfigError

NAN = float("nan")


def picks(ratings, pairing, n=200):
    return {pick_pair(ratings, pairing, key=jax.random.PRNGKey(s)) for s in range(n)}


def test_extremes_is_best_vs_worst_ignoring_missing():
    assert picks([3.0, NAN, 5.0, 1.0, 4.0], "extremes", 20) == {(2, 3)}


def test_extremes_breaks_ties_at_random_among_tied_slots_only():
    assert picks([5.0, 1.0, 5.0, 1.0, 3.0], "extremes") == {(0, 1), (0, 3), (2, 1), (2, 3)}


def test_all_equal_ratings_still_give_two_distinct_slots():
    got = picks([2.0, 2.0, 2.0], "extremes")
    assert all(c != r for c, r in got) and len(got) == 6


def test_best_vs_random_draws_the_rejected_among_the_strictly_worse():
    got = picks([4.0, 2.0, 5.0, 5.0, 1.0, NAN], "best_vs_random", 300)
    assert {c for c, _ in got} == {2, 3}
    assert {r for _, r in got} == {0, 1, 4}  # never the other 5, never the unrated slot


def test_best_vs_random_with_a_tie_for_worst_only_uses_others():
    assert {r for _, r in picks([3.0, 3.0], "best_vs_random")} == {0, 1}


def test_same_key_same_pair():
    r = np.array([1.0, 1.0, 1.0, 1.0])
    assert pick_pair(r, "extremes", key=jax.random.PRNGKey(7)) == pick_pair(
        r, "extremes", key=jax.random.PRNGKey(7)
    )


@pytest.mark.parametrize("ratings", [[NAN, NAN, NAN], [NAN, 2.0], [], [4.0]])
def test_fewer_than_two_rated_raises(ratings):
    with pytest.raises(AeufError, match="cannot form a pair"):
        pick_pair(ratings, "extremes", key=jax.random.PRNGKey(0))


def test_unknown_pairing_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown pairing 'middle'.*best_vs_random.*extremes"):
        pick_pair([1.0, 2.0], "middle", key=jax.random.PRNGKey(0))


def test_the_lazy_generator_draws_what_a_seeded_generator_draws():
    """pick_pair seeds a Generator only when a draw has several candidates, and answers two
    slots rated differently itself (best over worst); the pairs are those of every
    registered pairing with a Generator seeded up front, ties at the top, at the bottom
    and everywhere."""
    from aeuf.acquire.base import numpy_rng
    from aeuf.acquire.pairing import PAIRINGS

    class Eager:
        def __init__(self, key):
            self.rng = numpy_rng(key)

        def choice(self, a):
            return self.rng.choice(a)

    rng = np.random.default_rng(3)
    for seed in range(400):
        r = rng.integers(0, 3, size=rng.integers(2, 6)).astype(float)
        r[rng.random(r.size) < 0.2] = np.nan
        if np.count_nonzero(~np.isnan(r)) < 2:
            continue
        for pairing in PAIRINGS.names():
            want = PAIRINGS.get(pairing)(r, Eager(seed))
            assert pick_pair(r, pairing, key=seed) == want, (r, pairing, seed)
