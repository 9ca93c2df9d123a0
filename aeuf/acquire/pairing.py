"""Turn the oracle's ratings of the k' shown responses into one exported (chosen, rejected) pair.

pick_pair(ratings f64[k'], pairing, *, key) -> (chosen_slot, rejected_slot). NaN ratings
(the oracle gave none) are ignored; ties are broken at random by `key`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aeuf.acquire.base import numpy_rng
from aeuf.errors import AeufError
from aeuf.registry import Registry


class Draws:
    """Uniform draws among candidates, from a numpy Generator made from `key` on the first
    draw with more than one candidate. Generator.choice of one candidate consumes nothing, so
    this draws exactly what numpy_rng(key).choice would, without the ~30 us of seeding a
    Generator per prompt when nothing is random (BENCHMARKS.md, "Scale")."""

    __slots__ = ("key", "rng")

    def __init__(self, key: Any) -> None:
        self.key, self.rng = key, None

    def choice(self, a: np.ndarray):
        if len(a) == 1:
            return a[0]
        if self.rng is None:
            self.rng = numpy_rng(self.key)
        return self.rng.choice(a)


PAIRINGS: Registry[Callable[[np.ndarray, Draws], tuple[int, int]]] = Registry("pairing")
# Every pairing exports the better of two slots rated differently as chosen, the other as
# rejected: pick_pair answers that case (most prompts of a run that shows two) without one.


def _best(r: np.ndarray, rated: np.ndarray, rng: Draws) -> int:
    """A uniformly random slot among the highest-rated ones."""
    top = rated[r[rated] == r[rated].max()]
    return int(rng.choice(top))


@PAIRINGS.register("extremes")
def extremes(r: np.ndarray, rng: Draws) -> tuple[int, int]:
    """Best vs worst rated slot; if every rating is equal, two random distinct slots."""
    rated = np.flatnonzero(~np.isnan(r))
    chosen = _best(r, rated, rng)
    others = rated[rated != chosen]
    worst = others[r[others] == r[others].min()]
    return chosen, int(rng.choice(worst))


@PAIRINGS.register("best_vs_random")
def best_vs_random(r: np.ndarray, rng: Draws) -> tuple[int, int]:
    """UltraFeedback: best vs a random other rated slot. The other is drawn among the strictly
    worse ones when there are any, so a tie is not exported as a preference."""
    rated = np.flatnonzero(~np.isnan(r))
    chosen = _best(r, rated, rng)
    others = rated[rated != chosen]
    worse = others[r[others] < r[chosen]]
    return chosen, int(rng.choice(worse if worse.size else others))


def pick_pair(ratings: Any, pairing: str, *, key: Any) -> tuple[int, int]:
    """(chosen_slot, rejected_slot) from ratings f64[k'] (NaN = missing) under `pairing`.

    Raises AeufError if fewer than two slots are rated, ConfigError for an unknown pairing.
    """
    how = PAIRINGS.get(pairing)
    r = np.asarray(ratings, np.float64).ravel()
    if r.size == 2 and (r[0] > r[1] or r[0] < r[1]):  # both rated, not equal (PAIRINGS)
        return (0, 1) if r[0] > r[1] else (1, 0)
    if np.count_nonzero(~np.isnan(r)) < 2:
        raise AeufError(
            f"cannot form a pair: only {np.count_nonzero(~np.isnan(r))} of {r.size} shown "
            "responses have a rating"
        )
    return how(r, Draws(key))
