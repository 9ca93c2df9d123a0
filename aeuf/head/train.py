"""The deep ensemble's trainer: the anchored BT loss, the steps-based schedule, balanced
minibatches and member groups (see aeuf.head.ensemble for the model).

Each member k minimises, over the M labels (a, b, p),

    F_k(w) = sum_i [softplus(d_i) - p_i d_i] + anchor * sum_l s_l ||w_l - w0_l||^2
             (+ center * M * mean(r)^2)                        d_i = r_w(x_a) - r_w(x_b)

(softplus(d) - p d is the BT negative log-likelihood, so soft labels work as they are): a MAP
fit under a Gaussian prior centred on the member's own random init w0 (anchored ensembles),
of precision 2 * anchor * s_l per weight of layer l; s_l = fan_in / gain, the precision
init_mlp drew w0 from (HeadConfig.anchor_prior "init"; "uniform": s_l = 1), so anchor = 1 is
the init's own prior, and the prior on the first layer's outputs does not depend on D. Each
optimiser step uses F_k / M estimated on a minibatch: mean NLL over the batch +
(anchor / M) sum_l s_l ||w_l - w0_l||^2, so the prior's strength does not depend on the
batch size, and a full-batch step is the exact gradient.

Schedule (steps, not epochs): with M labels and minibatch B the trainer runs
s = ceil(M / B) steps per epoch, the real labels spread evenly over those s batches (no
nearly empty last batch), max(epochs * s, min_steps) steps in all, cut to
max(max_steps, min_steps). The cut may end inside an epoch: its batches come from that
epoch's random order, so the labels seen are a uniform sample. The default max_steps =
min_steps = 300 makes every fit 300 steps, so a fit's cost stops growing with the pool.
Warm-started from the last round's head, that kept the held-out accuracy of 20 epochs at
6.5k-26k labels with 4x fewer steps and of whole epochs at 22k-90k labels; at 245k-980k
labels it costs 0.3-0.6 points against one whole epoch (957-3,828 steps; BENCHMARKS.md,
"Scale"): --max_steps 4096 gives about one epoch there. A fit on few labels is a full-batch
fit of `min_steps` Adam steps, so no learning curve jumps where M crosses a multiple of B
(the old fixed 20 epochs gave 20 steps up to 256 labels, 40 above).

Speed: members are trained `group` at a time (a sequential lax.map over groups; inside a
group they are vmapped and share each minibatch, so the first layer is one
[2B, D] x [D, group*H] matmul); a group's working set (weights, gradients, Adam moments,
activations) is sized by member_group to stay in cache between steps. Every group sees the
same minibatches, so the grouping changes the speed, not the result. The epoch and step
counts are traced values, so a label set growing within its padding bucket reuses the
compiled trainer, and padding changes neither the result nor the work done.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import optax

from aeuf.config import HeadConfig
from aeuf.head.mlp import rewards, sq_dist

GROUP_BYTES = 24 << 20  # working set of the members trained together (member_group): most
# of a 32 MiB L3; measured on 2 AVX-512 cores, K = 16, D = 384, H = 256 (BENCHMARKS.md)


def member_loss(params, anchor, x2, p, mask, m_real, *, lam: float, center: float,
                scales: tuple[float, ...] | None = None, offset: bool = False):
    """One member's F / M on a minibatch.

    x2: f32[2B, D] (the B first responses a, then the B second responses b); p, mask: f32[B];
    m_real: f32[] number of labels M. Returns f32[]. offset: x2's last column is a fixed
    reward added to the member's (the two-speed head's linear part: the member fits the
    residual).
    """
    r = rewards(params, x2[:, :-1]) + x2[:, -1] if offset else rewards(params, x2)
    ra, rb = jnp.split(r, 2)
    d = ra - rb
    n = jnp.maximum(jnp.sum(mask), 1.0)
    nll = jnp.sum(mask * (jax.nn.softplus(d) - p * d)) / n
    mean_r = jnp.sum(mask * (ra + rb)) / (2.0 * n)
    return nll + (lam / m_real) * sq_dist(params, anchor, scales) + center * mean_r**2


def slot_order(key: jax.Array, mask: jax.Array) -> jax.Array:
    """A random order of the label slots, real ones first: [S] int32.

    Slot i's sort key depends only on (key, i), so padding more slots leaves the order of the
    real labels unchanged.
    """
    u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(
        jnp.arange(mask.shape[0])
    )
    return jnp.argsort(jnp.where(mask > 0, u, 2.0), stable=True)


def batch_rows(order: jax.Array, step: jax.Array, steps: jax.Array, batch: int) -> jax.Array:
    """Slots of minibatch `step` of `steps`: order positions step, step + steps, ... [batch].

    With the M real labels first in `order` (S >= batch * steps slots), every one of the
    `steps` batches gets floor or ceil of M / steps real labels."""
    return order[jnp.arange(batch) * steps + step]


def train(params, anchor, x, pairs, m_real, key, total, steps, *, batch, opt, loss, group):
    """`total` Adam steps in epochs of `steps` (the last one cut short), from fresh Adam
    moments, `group` members at a time (a sequential lax.map over K / group groups; every
    group sees the same minibatches, so the grouping changes the speed, not the result).

    x: f32[N, D] or f16[N, D] flat features (each minibatch is widened to f32);
    pairs: padding.Pairs of length S >= batch * steps;
    m_real: f32[]; key: PRNG key of this fit; total, steps: i32[] (traced: no recompile).
    Returns params.
    """
    k = jax.tree_util.tree_leaves(params)[0].shape[0]
    split = lambda t: t.reshape(k // group, group, *t.shape[1:])  # noqa: E731
    run = partial(train_group, x=x, pairs=pairs, m_real=m_real, key=key, total=total,
                  steps=steps, batch=batch, opt=opt, loss=loss)
    out = jax.lax.map(lambda pa: run(*pa), jax.tree_util.tree_map(split, (params, anchor)))
    return jax.tree_util.tree_map(lambda t: t.reshape(k, *t.shape[2:]), out)


def pair_rows(x, pairs, slots):
    """The features of label slots `slots` [B]: their B first responses a, then their B
    second responses b, widened to f32 (a float16 x is stored at half the memory) -> [2B, D]."""
    return x[jnp.concatenate([pairs.a[slots], pairs.b[slots]])].astype(jnp.float32)


def train_group(params, anchor, *, x, pairs, m_real, key, total, steps, batch, opt, loss):
    """train() for one group of members: params leaves [group, ...]."""
    members = jax.vmap(loss, in_axes=(0, 0, None, None, None, None))

    def grad_step(rows, carry):
        params, opt_state = carry
        x2 = pair_rows(x, pairs, rows)
        total = lambda w: jnp.sum(members(w, anchor, x2, pairs.p[rows], pairs.mask[rows], m_real))  # noqa: E731
        updates, opt_state = opt.update(jax.grad(total)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def epoch(e, carry):
        order = slot_order(jax.random.fold_in(key, e), pairs.mask)
        step = lambda s, c: grad_step(batch_rows(order, s, steps, batch), c)  # noqa: E731
        return jax.lax.fori_loop(0, jnp.minimum(steps, total - e * steps), step, carry)

    epochs = (total + steps - 1) // steps
    params, _ = jax.lax.fori_loop(0, epochs, epoch, (params, opt.init(params)))
    return params


def schedule(m: int, cfg: HeadConfig, steps_rule: Callable) -> tuple[int, int, int, int]:
    """(minibatch, padded steps per epoch, real steps per epoch, total steps) for M = m
    labels: cfg.epochs epochs, raised to cfg.min_steps steps, then cut to cfg.max_steps
    steps (never below min_steps; the cut may end inside an epoch)."""
    batch, padded = steps_rule(m, cfg.batch_size)
    steps = -(-m // batch)
    total = max(cfg.epochs * steps, cfg.min_steps)
    if cfg.max_steps is not None:
        total = min(total, max(cfg.max_steps, cfg.min_steps))
    return batch, padded, steps, total


def member_group(cfg: HeadConfig, dim: int, batch: int) -> int:
    """Members trained together: the largest divisor g of K whose working set per step
    (g members' weights, gradients and Adam moments, and their activations on 2*batch rows,
    float32) stays within GROUP_BYTES, so it stays in cache from step to step."""
    sizes = (dim, *cfg.hidden, 1)
    weights = sum((i + 1) * o for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    per_member = 4 * (4 * weights + 3 * 2 * batch * sum(cfg.hidden))
    fits = [g for g in range(1, cfg.members + 1) if cfg.members % g == 0]
    return max([g for g in fits if g * per_member <= GROUP_BYTES] or [1])
