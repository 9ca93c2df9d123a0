"""Uncertainty reward heads: cached features + comparisons -> a belief over rewards.

A head is a NamedTuple of three pure functions (state is returned, never stored):

    init(dim, *, key) -> state
        state: a pytree of arrays whose structure depends only on the config and `dim`
        (the loop saves it with `jax.tree_util.tree_flatten` + `np.savez` and restores it by
        unflattening against `init(dim, key=...)`'s treedef).
    fit(state, features: f32[P, R, D], comps: Comparisons, *, key) -> state
        warm-starts from `state` (HeadConfig.warm_start); same key + same data -> same state.
    belief(state, features: f32[P, R, D], *, key, num_samples=16) -> Belief
        numpy float32: mean [P, R], std [P, R], samples [K, P, R], pair_var [P, R, R].

Heads are looked up by name in `HEADS` ("ensemble", "bll"). The implementations import JAX,
so they are imported only when a head is built: `import aeuf.head` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from aeuf.config import HeadConfig
from aeuf.registry import Registry


class Head(NamedTuple):
    """init(dim, *, key) -> state; fit(state, features, comps, *, key) -> state;
    belief(state, features, *, key, num_samples=16) -> Belief."""

    init: Callable
    fit: Callable
    belief: Callable


HEADS: Registry[Callable[[HeadConfig], Head]] = Registry("head")


@HEADS.register("ensemble")
def _ensemble(cfg: HeadConfig) -> Head:
    """Deep ensemble of K anchored MLPs (aeuf.head.ensemble)."""
    from aeuf.head.ensemble import make_ensemble

    return make_ensemble(cfg)


@HEADS.register("bll")
def _bll(cfg: HeadConfig) -> Head:
    """Bayesian logistic regression on difference vectors, Laplace posterior (aeuf.head.bll)."""
    from aeuf.head.bll import make_bll

    return make_bll(cfg)


def make_head(cfg: HeadConfig) -> Head:
    """The head named `cfg.name`; an unknown name raises ConfigError listing the valid ones."""
    return HEADS.get(cfg.name)(cfg)
