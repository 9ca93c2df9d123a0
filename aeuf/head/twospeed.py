"""`ensemble+linear` head: learn the cheap signal first, then the rest from the embedding.

Two parts, one reward r(x) = w . x_c + f(x):
- the linear part: Bayesian logistic regression (aeuf.head.bll, Laplace posterior) on the
  few cheap columns x_c (the `stats` part -- log-length among them -- and `model` when
  present; HeadConfig.linear_columns, filled by the run from the feature layout), its prior
  precisions chosen by the evidence (HeadConfig.linear_prior: "ard", one per column, by
  default). Closed form and cheap: with a dozen columns a hundred labels pin it down, so
  after the first round the head ranks at least about as well as the best cheap signal the
  labels reveal (length, the generating model).
- the residual part: the deep ensemble (aeuf.head.ensemble) on all the features, each member
  fit with the linear part's mean reward as a fixed offset, so it learns only what the cheap
  columns miss.
fit runs the two in turn (the linear part first, on all labels; then the ensemble on the
residual): a single backfitting pass, each part warm-started from the previous round.

Belief: the two parts are independent, so mean, pair_var and samples add (sample k = the
k-th Laplace draw of w plus the k-th member; std from the summed variances); embed and
precision are the ensemble's (the design rules read the embedding's design). With no
linear columns the head is the ensemble.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import jax
import numpy as np

from aeuf.config import HeadConfig
from aeuf.head import Head
from aeuf.head.bll import BLLState, make_bll
from aeuf.head.ensemble import EnsembleState, make_ensemble
from aeuf.head.padding import check_features, refuse_non_finite
from aeuf.types import Belief, Comparisons


class TwoSpeedState(NamedTuple):
    """linear: the bll state on the cheap columns; resid: the ensemble's state."""

    linear: BLLState
    resid: EnsembleState


def make_twospeed(cfg: HeadConfig) -> Head:
    """The `ensemble+linear` head for `cfg` (cfg.linear_columns: the cheap columns)."""
    cols = np.asarray(sorted(set(int(c) for c in cfg.linear_columns)), np.int64)
    lin = make_bll(replace(cfg, prior=cfg.linear_prior, prior_groups=()))
    ens = make_ensemble(cfg)

    def cheap(x) -> np.ndarray:
        """The cheap columns of features [P, R, D] -> f32[P, R, C]."""
        return np.asarray(x[..., cols], np.float32)

    def init(dim: int, *, key: jax.Array) -> TwoSpeedState:
        """The linear part's prior on the cheap columns, K fresh members on all D."""
        if cols.size and int(cols.max()) >= dim:
            raise ValueError(f"linear columns reach {int(cols.max())} but the features have {dim}")
        return TwoSpeedState(lin.init(max(int(cols.size), 1), key=jax.random.fold_in(key, 1)),
                             ens.init(dim, key=key))  # the ensemble's own init

    def linear_mean(state: TwoSpeedState, x) -> np.ndarray:
        """The linear part's mean reward [P, R] (zeros without linear columns)."""
        if not cols.size:
            return np.zeros(x.shape[:2], np.float32)
        return cheap(x) @ np.asarray(state.linear.theta, np.float32)

    def fit(state: TwoSpeedState, features, comps: Comparisons, *, key: jax.Array):
        """The linear part on all labels, then the ensemble with its mean as an offset."""
        x = check_features(features)
        _check_finite(x)
        linear = state.linear
        if cols.size and comps.size:
            linear = lin.fit(linear, cheap(x), comps, key=key)
        offset = linear_mean(state._replace(linear=linear), x) if cols.size else None
        return TwoSpeedState(linear, ens.fit(state.resid, x, comps, key=key, offset=offset))

    def belief(state: TwoSpeedState, features, *, key: jax.Array, num_samples: int = 16,
               embed: bool = True) -> Belief:
        """The sum of the two parts' beliefs (K = the ensemble's members)."""
        x = check_features(features)
        b = ens.belief(state.resid, x, key=key, num_samples=num_samples, embed=embed)
        if cols.size:
            lb = lin.belief(state.linear, cheap(x), key=key, num_samples=b.samples.shape[0],
                            embed=False)
            b = Belief(b.mean + lb.mean, np.sqrt(b.std**2 + lb.std**2), b.samples + lb.samples,
                       b.pair_var + lb.pair_var, b.embed, b.precision)
        refuse_non_finite(np.stack([b.mean, b.std], axis=-1), "the head's rewards for the features")
        return b

    def _check_finite(x) -> None:
        """The cheap columns of every response are finite (InputError naming the first that
        is not); the ensemble's fit checks all columns of the compared responses."""
        if cols.size:
            refuse_non_finite(cheap(x))

    return Head(init, fit, belief)
