"""Deep ensemble reward head: K anchored MLPs trained together on Bradley-Terry comparisons.

The members' loss, the steps-based schedule and the member groups live in aeuf.head.train;
this module holds the state, the design precision and the belief.

State: EnsembleState(params, anchor, precision), see its docstring. Belief: the members'
rewards are the samples [K, P, R]; embed [P, R, H] is the members' mean last hidden layer;
precision [H, H] = the last layer's anchor prior 2 * anchor * s_L * I + sum over the
labelled pairs of z z^T, z = embed_a - embed_b at the fitted params (computed once per fit,
over the labels in blocks of DESIGN_ROWS).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aeuf.config import HeadConfig
from aeuf.errors import ConfigError
from aeuf.head import Head
from aeuf.head.mlp import hidden, init_mlp, init_precisions
from aeuf.head.padding import (
    check_comparisons,
    check_features,
    compact,
    flat_pairs,
    next_pow2,
    pow2_steps,
    refuse_non_finite_pairs,
    row_blocks,
)
from aeuf.head.train import member_group, member_loss, pair_rows, schedule, train
from aeuf.types import Belief, Comparisons

SCORE_CHUNK = 1024  # rows per lax.map chunk when scoring the pool (a float16 pool: 1.07-1.15x
# faster than 4096 on 2 AVX-512 cores, K = 16 of 128-128; float32: the same within noise)
SCORE_BLOCK = 65_536  # rows sent to the device per scoring call (bounded memory)
MOMENT_PROMPTS = 65_536  # prompts per block of the belief's moments (float64 work arrays)
DESIGN_ROWS = 1024  # labels per step of the design pass


class EnsembleState(NamedTuple):
    """params: the K members' MLP layers stacked on a leading axis ([K, in, out] / [K, out]);
    anchor: the same at init (w0, never trained);
    precision: f32[H, H] = the last layer's anchor prior 2*anchor*s_L*I + sum over the
    labelled pairs of z z^T, z the difference of the members' mean last hidden layer between
    a and b (at the fitted params)."""

    params: list[dict]
    anchor: list[dict]
    precision: jax.Array


def design(params, x, pairs, blocks, prior, *, block):
    """prior + sum_i mask_i z_i z_i^T over the labels, z = mean_k h_k(x_a) - h_k(x_b).

    Reads the first `blocks` (i32[], traced) runs of `block` slots, where flat_pairs put the
    real labels (memory [2*block, K, H]). Returns f32[H, H]."""
    mean_h = lambda xs: jnp.mean(jax.vmap(hidden, in_axes=(0, None))(params, xs), axis=0)  # noqa: E731

    def add(i, acc):
        rows = i * block + jnp.arange(block)
        h = mean_h(pair_rows(x, pairs, rows))
        za, zb = jnp.split(h, 2)
        z = (za - zb) * pairs.mask[rows][:, None]
        return acc + z.T @ z

    return jax.lax.fori_loop(0, blocks, add, prior)


def design_block(batch: int, slots: int) -> int:
    """Rows per step of the design pass: batch doubled while it divides the slots, up to
    DESIGN_ROWS (a small training batch would make it a long loop of tiny matmuls)."""
    block = batch
    while block * 2 <= DESIGN_ROWS and slots % (block * 2) == 0:
        block *= 2
    return block


def prior_precision(width: int, lam: float) -> jax.Array:
    """2*lam*I [width, width]: the anchor's prior precision of one member's last layer."""
    return 2.0 * lam * jnp.eye(width, dtype=jnp.float32)


def score(params, xs: jax.Array, embed: bool = True):
    """Rewards of every row under every member and (embed) the members' mean last hidden
    layer.

    xs f32[C, chunk, D] or f16 (widened here, chunk by chunk) -> (f32[K, C * chunk],
    f32[C * chunk, H] or None). Without `embed` the members' hidden layers are never
    materialised for the mean, which halves the time (BENCHMARKS.md, "Scale")."""

    def chunk(xc):
        h = jax.vmap(hidden, in_axes=(0, None))(params, xc.astype(jnp.float32))  # [K, chunk, H]
        last = params[-1]
        r = jnp.einsum("kch,kh->kc", h, last["w"][:, :, 0]) + last["b"][:, :1]
        return (r, jnp.mean(h, axis=0)) if embed else (r, None)

    r, h = jax.lax.map(chunk, xs)  # [C, K, chunk], [C, chunk, H]
    r = jnp.transpose(r, (1, 0, 2)).reshape(r.shape[1], -1)
    return r, None if h is None else h.reshape(-1, h.shape[-1])


def belief_from_samples(samples: np.ndarray, embed=None, precision=None) -> Belief:
    """Belief from joint reward samples [K, P, R]; moments over the K samples (ddof = 0),
    computed per block of MOMENT_PROMPTS prompts (float64 work arrays stay bounded).

    pair_var[p, i, j] = Var_k[r_i - r_j] = var_i + var_j - 2 cov_ij (float64, then float32).
    """
    samples = np.asarray(samples, np.float32)
    _, num_p, num_r = samples.shape
    mean, std = np.empty((num_p, num_r), np.float32), np.empty((num_p, num_r), np.float32)
    pair_var = np.empty((num_p, num_r, num_r), np.float32)
    for lo, hi in row_blocks(num_p, MOMENT_PROMPTS):
        mean[lo:hi], std[lo:hi], pair_var[lo:hi] = moments(samples[:, lo:hi])
    opt32 = lambda a: None if a is None else np.asarray(a, np.float32)  # noqa: E731
    return Belief(mean, std, samples, pair_var, opt32(embed), opt32(precision))


def moments(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """samples [K, p, R] -> mean [p, R], std [p, R], pair_var [p, R, R] (float64 inside)."""
    s = np.asarray(samples, np.float64)
    mean = s.mean(0)
    c = s - mean
    cov = np.matmul(c.transpose(1, 2, 0), c.transpose(1, 0, 2)) / s.shape[0]  # [p, R, R]
    var = np.einsum("pii->pi", cov)
    pair_var = np.maximum(var[:, :, None] + var[:, None, :] - 2.0 * cov, 0.0)
    pair_var[:, np.arange(s.shape[2]), np.arange(s.shape[2])] = 0.0
    return mean, np.sqrt(var), pair_var


def check_config(cfg: HeadConfig) -> None:
    """ConfigError for values the ensemble cannot train with."""
    if cfg.members < 1 or cfg.batch_size < 1 or cfg.epochs < 0 or cfg.min_steps < 0:
        raise ConfigError("head: members and batch_size must be >= 1, epochs and min_steps >= 0")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ConfigError("head: --max_steps must be >= 1 (or none)")
    if not cfg.hidden or min(cfg.hidden) < 1:
        raise ConfigError(f"head: hidden must be a non-empty list of sizes >= 1, got {cfg.hidden}")
    if cfg.learning_rate <= 0 or cfg.anchor < 0 or cfg.center < 0:
        raise ConfigError("head: learning_rate must be > 0, anchor and center >= 0")


def make_ensemble(cfg: HeadConfig, *, steps_rule: Callable = pow2_steps,
                  group: int | None = None) -> Head:
    """The `ensemble` head for `cfg`.

    steps_rule(M, batch_size) -> (minibatch, steps per epoch) sets the label padding
    (default: steps rounded up to a power of two; padding.exact_steps pads nothing extra).
    group: members trained together (a divisor of K; default member_group's choice).
    """
    if group is not None and (group < 1 or cfg.members % group):
        raise ConfigError(f"head: group {group} must divide members {cfg.members}")
    check_config(cfg)
    opt = optax.adam(cfg.learning_rate)
    train_fn = jax.jit(partial(train, opt=opt), static_argnames=("batch", "group", "loss"))
    design_fn = jax.jit(design, static_argnames="block")
    score_fn = jax.jit(score, static_argnames="embed")

    def scales(dim: int) -> tuple[float, ...]:
        """The anchor's weight per layer (HeadConfig.anchor_prior)."""
        if cfg.anchor_prior == "uniform":
            return (1.0,) * (len(cfg.hidden) + 1)
        return init_precisions(dim, tuple(cfg.hidden))

    @functools.cache
    def loss_for(dim: int, offset: bool = False) -> Callable:
        """member_loss for D = dim (one object per dim: the jitted trainer's static arg)."""
        return partial(member_loss, lam=float(cfg.anchor), center=float(cfg.center),
                       scales=scales(dim), offset=offset)

    def last_prior(dim: int) -> jax.Array:
        """The last layer's prior precision 2 * anchor * scale * I [H, H]."""
        return prior_precision(int(cfg.hidden[-1]), float(cfg.anchor) * scales(dim)[-1])

    @partial(jax.jit, static_argnums=0)
    def _init(dim: int, key: jax.Array) -> EnsembleState:
        keys = jax.random.split(key, cfg.members)
        params = jax.vmap(lambda k: init_mlp(k, dim, tuple(cfg.hidden)))(keys)
        return EnsembleState(params, params, last_prior(dim))

    def init(dim: int, *, key: jax.Array) -> EnsembleState:
        """State of K freshly initialised members for D = dim features."""
        return _init(int(dim), key)

    def fit(state: EnsembleState, features, comps: Comparisons, *, key: jax.Array,
            offset=None):
        """Train on all M comparisons: features f32[P, R, D] or f16 (a memory map too);
        returns the new state. offset f32[P, R] (optional): a fixed reward the members' own
        is added to, so they fit the residual (aeuf.head.twospeed)."""
        x = check_features(features, int(state.params[0]["w"].shape[1]))
        num_p, num_r, dim = x.shape
        check_comparisons(comps, num_p, num_r)
        m = comps.size
        params = state.params if cfg.warm_start else state.anchor
        if m == 0:
            return EnsembleState(params, state.anchor, last_prior(dim))
        batch, padded, steps, total = schedule(m, cfg, steps_rule)
        # only the compared rows, in the pool's dtype (float16 stays float16: the trainer
        # widens each minibatch), padded to a power of two (at most the pool): a compile per
        # doubling at most
        pairs0 = flat_pairs(comps, num_r, batch * padded)
        flat, pairs = compact(x.reshape(-1, dim), pairs0,
                              size=lambda u: min(next_pow2(u), num_p * num_r), dtype=None)
        if offset is not None:  # the offset of the same rows, as a last column
            off, _ = compact(np.asarray(offset, np.float32).reshape(-1, 1), pairs0,
                             size=lambda u: min(next_pow2(u), num_p * num_r))
            flat = np.concatenate([np.asarray(flat, np.float32), off], axis=1)
        flat = jax.device_put(flat)  # drop the host array now: it is not held twice in the fit
        refuse_non_finite_pairs(flat, pairs, pairs0, m, num_r)  # a NaN would spread everywhere
        params = train_fn(params, state.anchor, flat, pairs, jnp.float32(m), key,
                          jnp.int32(total), jnp.int32(steps), batch=batch,
                          loss=loss_for(dim, offset is not None),
                          group=group or member_group(cfg, dim, batch))
        if not cfg.precision:  # no rule reads it: the prior stands in (HeadConfig.precision)
            return EnsembleState(params, state.anchor, last_prior(dim))
        block = design_block(batch, batch * padded)
        return EnsembleState(params, state.anchor, design_fn(
            params, flat[:, :dim], pairs, jnp.int32(-(-m // block)), last_prior(dim), block=block))

    def belief(state: EnsembleState, features, *, key: jax.Array | None = None,
               num_samples: int = 16, embed: bool = True) -> Belief:
        """Belief whose samples are the K members' rewards [K, P, R]; embed [P, R, H] is the
        members' mean last hidden layer (None when `embed` is False: it is the belief's
        largest array) and precision [H, H] the state's. The pool is scored in blocks of
        SCORE_BLOCK rows, in the pool's dtype (a float16 pool goes to the device in float16).

        `key` and `num_samples` are unused: the samples are the members themselves.
        """
        x = check_features(features, int(state.params[0]["w"].shape[1]))
        num_p, num_r, dim = x.shape
        n, flat = num_p * num_r, x.reshape(num_p * num_r, dim)
        chunk = min(SCORE_CHUNK, SCORE_BLOCK, next_pow2(n))
        block = chunk * min(SCORE_BLOCK // chunk, -(-n // chunk))  # whole chunks
        r = np.empty((cfg.members, n), np.float32)
        h = np.empty((n, int(cfg.hidden[-1])), np.float32) if embed else None
        for lo, hi in row_blocks(n, block):
            xb = np.zeros((block, dim), np.float16 if flat.dtype == np.float16 else np.float32)
            xb[:hi - lo] = np.asarray(flat[lo:hi])
            rb, hb = score_fn(state.params, xb.reshape(-1, chunk, dim), embed=embed)
            r[:, lo:hi] = np.asarray(rb)[:, :hi - lo]
            if h is not None:
                h[lo:hi] = np.asarray(hb)[:hi - lo]
        e = None if h is None else h.reshape(num_p, num_r, -1)
        return belief_from_samples(r.reshape(-1, num_p, num_r), e, state.precision)

    return Head(init, fit, belief)
