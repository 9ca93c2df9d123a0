"""Deep ensemble reward head: K anchored MLPs trained together on Bradley-Terry comparisons.

Per member k, on a minibatch of n real comparisons (a, b, p) out of M labels:

    loss_k = mean_i[ softplus(d_i) - p_i d_i ]            d_i = r_k(x_a) - r_k(x_b)
             + anchor * (n / M) * ||w_k - w0_k||^2          anchored to the member's own init
             + center * mean(r over the batch's responses)^2

(softplus(d) - p d is the BT negative log-likelihood -p log s(d) - (1-p) log s(-d), so soft
labels work as they are.) The anchor weight n/M is the B/M of oat/SEA for a full batch; the
last, partial batch gets its share, so one epoch adds the anchor term with weight `anchor`.

Speed: the members are vmapped and share each minibatch (diversity comes from the inits and
the anchors); one jitted call runs a whole epoch as a `lax.scan`. Labels are padded to a
bucket (steps per epoch rounded up to a power of two, a 0/1 mask): the real comparisons are
ordered by a per-slot random key and fill the first batches, and steps holding only padding
are skipped with `lax.cond`, so padding changes neither the result nor the work done, and a
label set growing within its bucket reuses the compiled epoch.

State: {"params": stacked member params [K, ...], "anchor": the same at init (w0)}.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aeuf.config import HeadConfig
from aeuf.errors import ConfigError
from aeuf.head import Head
from aeuf.head.mlp import init_mlp, rewards, sq_dist
from aeuf.head.padding import (
    check_comparisons,
    check_features,
    flat_pairs,
    next_pow2,
    pow2_steps,
)
from aeuf.types import Belief, Comparisons

SCORE_CHUNK = 4096  # rows per lax.map chunk when scoring the pool


def member_loss(params, anchor, x2, p, mask, m_real, *, lam: float, center: float):
    """One member's loss on a minibatch.

    x2: f32[2B, D] (the B first responses a, then the B second responses b); p, mask: f32[B];
    m_real: f32[] number of labels M. Returns f32[].
    """
    r = rewards(params, x2)
    ra, rb = jnp.split(r, 2)
    d = ra - rb
    n = jnp.sum(mask)
    nll = jnp.sum(mask * (jax.nn.softplus(d) - p * d)) / n
    mean_r = jnp.sum(mask * (ra + rb)) / (2.0 * n)
    return nll + lam * (n / m_real) * sq_dist(params, anchor) + center * mean_r**2


def slot_order(key: jax.Array, mask: jax.Array) -> jax.Array:
    """A random order of the label slots, real ones first: [S] int32.

    Slot i's sort key depends only on (key, i), so padding more slots leaves the order of the
    real labels unchanged.
    """
    u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(
        jnp.arange(mask.shape[0])
    )
    return jnp.argsort(jnp.where(mask > 0, u, 2.0), stable=True)


def train_epoch(params, opt_state, anchor, x, pairs, m_real, key, epoch, *, batch, opt, loss):
    """One epoch over the padded labels in a single scan.

    x: f32[N, D] flat features; pairs: padding.Pairs of length S = steps * batch;
    m_real: f32[]; key: PRNG key of this fit; epoch: i32[]. Returns (params, opt_state).
    """
    order = slot_order(jax.random.fold_in(key, epoch), pairs.mask).reshape(-1, batch)

    def grad_step(carry, rows):
        params, opt_state = carry
        x2 = x[jnp.concatenate([pairs.a[rows], pairs.b[rows]])]
        members = jax.vmap(loss, in_axes=(0, 0, None, None, None, None))
        total = lambda w: jnp.sum(members(w, anchor, x2, pairs.p[rows], pairs.mask[rows], m_real))  # noqa: E731
        updates, opt_state = opt.update(jax.grad(total)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def step(carry, rows):
        has_real = jnp.sum(pairs.mask[rows]) > 0
        return jax.lax.cond(has_real, grad_step, lambda c, _: c, carry, rows), None

    (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), order)
    return params, opt_state


def score(params, xs: jax.Array) -> jax.Array:
    """Rewards of every row under every member: xs f32[C, chunk, D] -> f32[K, C * chunk]."""
    per_chunk = jax.vmap(rewards, in_axes=(0, None))
    r = jax.lax.map(lambda xc: per_chunk(params, xc), xs)  # [C, K, chunk]
    return jnp.transpose(r, (1, 0, 2)).reshape(r.shape[1], -1)


def belief_from_samples(samples: np.ndarray) -> Belief:
    """Belief from joint reward samples [K, P, R]; moments over the K samples (ddof = 0).

    pair_var[p, i, j] = Var_k[r_i - r_j] = var_i + var_j - 2 cov_ij (float64, then float32).
    """
    s = np.asarray(samples, np.float64)
    mean = s.mean(0)
    c = s - mean
    cov = np.matmul(c.transpose(1, 2, 0), c.transpose(1, 0, 2)) / s.shape[0]  # [P, R, R]
    var = np.einsum("pii->pi", cov)
    pair_var = np.maximum(var[:, :, None] + var[:, None, :] - 2.0 * cov, 0.0)
    pair_var[:, np.arange(s.shape[2]), np.arange(s.shape[2])] = 0.0
    f32 = partial(np.asarray, dtype=np.float32)
    return Belief(f32(mean), f32(np.sqrt(var)), f32(samples), f32(pair_var))


def check_config(cfg: HeadConfig) -> None:
    """ConfigError for values the ensemble cannot train with."""
    if cfg.members < 1 or cfg.batch_size < 1 or cfg.epochs < 0:
        raise ConfigError("head: members and batch_size must be >= 1, epochs >= 0")
    if not cfg.hidden or min(cfg.hidden) < 1:
        raise ConfigError(f"head: hidden must be a non-empty list of sizes >= 1, got {cfg.hidden}")
    if cfg.learning_rate <= 0 or cfg.anchor < 0 or cfg.center < 0:
        raise ConfigError("head: learning_rate must be > 0, anchor and center >= 0")


def make_ensemble(cfg: HeadConfig, *, steps_rule: Callable = pow2_steps) -> Head:
    """The `ensemble` head for `cfg`.

    steps_rule(M, batch_size) -> (minibatch, steps per epoch) sets the label padding
    (default: steps rounded up to a power of two; padding.exact_steps pads nothing extra).
    """
    check_config(cfg)
    opt = optax.adam(cfg.learning_rate)
    loss = partial(member_loss, lam=float(cfg.anchor), center=float(cfg.center))
    epoch_fn = jax.jit(partial(train_epoch, opt=opt, loss=loss), static_argnames="batch")
    opt_init = jax.jit(opt.init)
    score_fn = jax.jit(score)

    @partial(jax.jit, static_argnums=0)
    def _init(dim: int, key: jax.Array) -> dict:
        keys = jax.random.split(key, cfg.members)
        params = jax.vmap(lambda k: init_mlp(k, dim, tuple(cfg.hidden)))(keys)
        return {"params": params, "anchor": params}

    def init(dim: int, *, key: jax.Array) -> dict:
        """State of K freshly initialised members for D = dim features."""
        return _init(int(dim), key)

    def fit(state: dict, features, comps: Comparisons, *, key: jax.Array) -> dict:
        """Train on all M comparisons: features f32[P, R, D]; returns the new state."""
        x = check_features(features, int(state["params"][0]["w"].shape[1]))
        num_p, num_r, dim = x.shape
        check_comparisons(comps, num_p, num_r)
        m = comps.size
        params = state["params"] if cfg.warm_start else state["anchor"]
        if m == 0 or cfg.epochs == 0:
            return {"params": params, "anchor": state["anchor"]}
        batch, steps = steps_rule(m, cfg.batch_size)
        pairs = flat_pairs(comps, num_r, batch * steps)
        flat, m_real = jnp.asarray(x.reshape(-1, dim)), jnp.float32(m)
        opt_state = opt_init(params)
        for e in range(cfg.epochs):
            params, opt_state = epoch_fn(
                params,
                opt_state,
                state["anchor"],
                flat,
                pairs,
                m_real,
                key,
                jnp.int32(e),
                batch=batch,
            )
        return {"params": params, "anchor": state["anchor"]}

    def belief(state: dict, features, *, key: jax.Array | None = None, num_samples: int = 16):
        """Belief whose samples are the K members' rewards [K, P, R].

        `key` and `num_samples` are unused: the samples are the members themselves.
        """
        x = check_features(features, int(state["params"][0]["w"].shape[1]))
        num_p, num_r, dim = x.shape
        n = num_p * num_r
        chunk = min(SCORE_CHUNK, next_pow2(n))
        padded = np.zeros((-(-n // chunk) * chunk, dim), np.float32)
        padded[:n] = x.reshape(n, dim)
        r = np.asarray(score_fn(state["params"], padded.reshape(-1, chunk, dim)))
        return belief_from_samples(r[:, :n].reshape(-1, num_p, num_r))

    return Head(init, fit, belief)
