"""Uncertainty reward heads: cached features + comparisons -> a belief over rewards.

A head is a NamedTuple of three pure functions (state is returned, never stored); their
signatures are the Protocols below:

    init(dim, *, key) -> state
        state: a NamedTuple of arrays (EnsembleState, BLLState) whose tree structure depends
        only on the config and `dim` (the run layer saves it with
        `jax.tree_util.tree_flatten` + `np.savez` and restores it by unflattening against
        `init(dim, key=...)`'s treedef).
    fit(state, features: f32[P, R, D], comps: Comparisons, *, key) -> state
        warm-starts from `state` (HeadConfig.warm_start); same key + same data -> same state.
    belief(state, features: f32[P, R, D], *, key, num_samples=16, embed=True) -> Belief
        numpy float32: mean [P, R], std [P, R], samples [K, P, R], pair_var [P, R, R],
        embed [P, R, H] (None with embed=False: only the design rules read it, and it is the
        largest array) and precision [H, H] (the head's last-layer design, see types.Belief).
Features may be float16 or a memory map: heads read them in blocks and compute in float32.

Heads are looked up by name in `HEADS` ("ensemble", "bll", "ensemble+linear"). The implementations import JAX,
so they are imported only when a head is built: `import aeuf.head` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np
from jaxtyping import Float

from aeuf.config import HeadConfig
from aeuf.registry import Registry
from aeuf.types import Belief, Comparisons

State = Any  # a head's NamedTuple of arrays (aeuf.head.ensemble.EnsembleState, bll.BLLState)
Features = Float[np.ndarray, "P R D"]  # the pool's features (a jax.Array is accepted too)


class InitFn(Protocol):
    """init(dim, *, key) -> state: the prior state for D = dim features."""

    def __call__(self, dim: int, *, key: Any) -> State: ...


class FitFn(Protocol):
    """fit(state, features f32[P, R, D], comps (M labels), *, key) -> the new state."""

    def __call__(self, state: State, features: Features, comps: Comparisons,
                 *, key: Any) -> State: ...


class BeliefFn(Protocol):
    """belief(state, features f32[P, R, D], *, key, num_samples, embed) -> Belief over
    [P, R]; embed=False leaves Belief.embed None."""

    def __call__(self, state: State, features: Features, *, key: Any,
                 num_samples: int = 16, embed: bool = True) -> Belief: ...


class Head(NamedTuple):
    """A reward head: three pure functions (see the module docstring for shapes)."""

    init: InitFn
    fit: FitFn
    belief: BeliefFn


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


@HEADS.register("ensemble+linear")
def _twospeed(cfg: HeadConfig) -> Head:
    """A Bayesian linear part on the cheap columns plus the ensemble on the residual
    (aeuf.head.twospeed)."""
    from aeuf.head.twospeed import make_twospeed

    return make_twospeed(cfg)


def make_head(cfg: HeadConfig) -> Head:
    """The head named `cfg.name`; an unknown name raises ConfigError listing the valid ones."""
    return HEADS.get(cfg.name)(cfg)
