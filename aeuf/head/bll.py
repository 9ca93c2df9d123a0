"""`bll` head: Bayesian logistic regression on difference vectors, Laplace posterior.

Model: P(a beats b) = sigmoid(theta . z), z = phi_a - phi_b, prior theta ~ N(0, I / lambda).
fit finds the MAP theta_hat by damped Newton steps on

    f(theta) = sum_i [softplus(theta . z_i) - p_i theta . z_i] + lambda / 2 ||theta||^2

(soft labels p_i allowed) and keeps the Laplace precision at the MAP,
H = lambda I + sum_i s_i (1 - s_i) z_i z_i^T with s_i = sigmoid(theta_hat . z_i). Each
Newton step tries step sizes 1, 1/2, 1/4, 1/8 together and keeps the best, so a bad full
step on nearly separable data cannot diverge; steps stop once theta and lambda move less
than a relative 1e-4 (or after `newton_steps`).

The prior precision (HeadConfig.prior):
- "evidence" (default): lambda maximises the Laplace approximation of the marginal
  likelihood, by MacKay's fixed point lambda <- gamma / ||theta||^2 with
  gamma = d - lambda tr(H^-1) (the number of well-determined directions), one update after
  every Newton step, starting from the state's lambda (HeadConfig.prior_precision at init).
  Why: with standardised features (D = 411 for minilm+stats+model), a fixed lambda = 1 is a
  prior on rewards with a standard deviation of ~sqrt(D) logits, so a few hundred hard labels
  are nearly separable, the MAP interpolates them and accuracy falls as M approaches D (the
  interpolation peak of ridge-like models). The evidence sets lambda from the data at every
  label count and pool, with no constant tuned to one pool.
- "fixed": lambda = HeadConfig.prior_precision.
Every fit recomputes H from all labels at the new MAP (the weights s(1 - s) move with theta);
warm start seeds theta and lambda.

Features with D > HeadConfig.max_dim are first mapped by a seeded Gaussian random projection
phi -> phi Q, Q [D, max_dim] with N(0, 1 / max_dim) entries (drawn from init's key and kept
in the state); PCA is not used, so the basis never depends on the data.

Belief, per response i (in projected space): mean = phi_i . theta_hat,
std = sqrt(phi_i^T H^-1 phi_i), pair_var[i, j] = z^T H^-1 z for z = phi_i - phi_j (exact),
samples r^(k) = phi . theta_k with joint draws theta_k ~ N(theta_hat, H^-1), embed = phi and
precision = the state's `design` (lambda I + sum z z^T, unweighted). BT identifies only
differences: the std of a single reward includes the prior's spread along directions no
comparison constrains; use pair_var (or differences of samples) to compare responses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve, solve_triangular

from aeuf.config import HeadConfig
from aeuf.errors import ConfigError
from aeuf.head import Head
from aeuf.head.padding import (
    check_comparisons,
    check_features,
    compact,
    flat_pairs,
    next_pow2,
    quarter_octave,
    row_blocks,
)
from aeuf.types import Belief, Comparisons

STEP_SIZES = (1.0, 0.5, 0.25, 0.125)
BELIEF_ROWS = 4096  # responses per lax.map chunk in belief
BELIEF_BLOCK = 16_384  # prompts per device call of belief (bounded memory for a large pool)
TOL = 1e-4  # relative change of theta and lambda at which Newton stops
LAM_RANGE = (1e-6, 1e6)  # the evidence's lambda is kept inside this range
PRIORS = ("evidence", "ard", "fixed")


class BLLState(NamedTuple):
    """theta: f32[d] MAP weights; hessian: f32[d, d] Laplace precision at the MAP;
    design: f32[d, d] lambda I + sum over the labels of z z^T (unweighted);
    prior: f32[d] the prior precisions lambda; proj: f32[D, d] random projection when D > max_dim, else None."""

    theta: jax.Array
    hessian: jax.Array
    design: jax.Array
    prior: jax.Array
    proj: jax.Array | None


def objective(theta, z, p, lam):
    """f(theta) for thetas [T, d], z [S, d], p [S], lam [d] -> [T] (padding rows: z = 0)."""
    logits = z @ theta.T  # [S, T]
    nll = jnp.sum(jax.nn.softplus(logits) - p[:, None] * logits, axis=0)
    return nll + 0.5 * jnp.sum(lam[None, :] * theta * theta, axis=1)


def grad_hess(theta, z, p, lam):
    """Gradient [d] and Hessian [d, d] of f at theta [d] (prior precisions lam [d])."""
    s = jax.nn.sigmoid(z @ theta)
    g = z.T @ (s - p) + lam * theta
    h = (z * (s * (1.0 - s))[:, None]).T @ z + jnp.diag(lam)
    return g, h


def mackay(theta, chol, lam, segments, *, groups: int):
    """MacKay's evidence update of the prior precisions lam [d] -> [d], one value per group.

    For group g (dims with segments == g): gamma_g / ||theta_g||^2 with
    gamma_g = d_g - sum_{j in g} lam_j (H^-1)_jj, the group's well-determined directions;
    diag(H^-1) = column sums of L^-1 squared."""
    eye = jnp.eye(chol.shape[0], dtype=chol.dtype)
    diag = jnp.sum(solve_triangular(chol, eye, lower=True) ** 2, axis=0)
    per = lambda v: jax.ops.segment_sum(v, segments, num_segments=groups)  # noqa: E731
    gamma = per(jnp.ones_like(lam)) - per(lam * diag)
    new = gamma / jnp.maximum(per(theta * theta), 1e-30)
    return jnp.clip(new[segments], *LAM_RANGE)


def newton(theta0, lam0, z, p, segments, *, steps: int, groups: int):
    """MAP (and lambda) by at most `steps` damped Newton steps: -> (theta [d], lam [d]).

    segments: i32[d] prior group of each dim; groups: their number (0 = lambda fixed)."""
    sizes = jnp.asarray(STEP_SIZES, jnp.float32)[:, None]

    def step(carry):
        i, theta, lam, _ = carry
        g, h = grad_hess(theta, z, p, lam)
        chol = jnp.linalg.cholesky(h)
        trials = theta[None, :] - sizes * cho_solve((chol, True), g)[None, :]  # [T, d]
        new = trials[jnp.argmin(objective(trials, z, p, lam))]
        lam_new = mackay(new, chol, lam, segments, groups=groups) if groups else lam
        moved = jnp.linalg.norm(new - theta) > TOL * (1.0 + jnp.linalg.norm(theta))
        moved |= jnp.max(jnp.abs(jnp.log(lam_new / lam))) > TOL
        return i + 1, new, lam_new, moved

    go = lambda c: (c[0] < steps) & c[3]  # noqa: E731
    _, theta, lam, _ = jax.lax.while_loop(go, step, (0, theta0, lam0, jnp.bool_(True)))
    return theta, lam


def fit_arrays(theta0, lam0, z, p, proj, segments, *, steps: int, groups: int):
    """z f32[S, D] padded differences (0 rows in padding), p f32[S], proj f32[D, d] or None.

    -> (theta [d], hessian [d, d], design [d, d], lam [d])."""
    if proj is not None:
        z = z @ proj
    theta, lam = newton(theta0, lam0, z, p, segments, steps=steps, groups=groups)
    hessian = grad_hess(theta, z, p, lam)[1]
    design = z.T @ z + jnp.diag(lam)
    return theta, hessian, design, lam


def differences(x, pairs):
    """z = phi_a - phi_b for every slot, zero in padding: x [N, D] (numpy or jax) -> [S, D]."""
    return (x[pairs.a] - x[pairs.b]) * pairs.mask[:, None]


def prompt_belief(theta, chol, draws, phi):
    """One prompt: phi f32[R, d] -> mean [R], std [R], samples [K, R], pair_var [R, R]."""
    a = solve_triangular(chol, phi.T, lower=True)  # [d, R]: a_i . a_j = phi_i^T H^-1 phi_j
    centred = a - jnp.mean(a, axis=1, keepdims=True)  # pair distances are shift-invariant
    gram = centred.T @ centred
    sq = jnp.diagonal(gram)
    pair_var = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    pair_var = pair_var * (1.0 - jnp.eye(phi.shape[0], dtype=phi.dtype))
    return phi @ theta, jnp.sqrt(jnp.sum(a * a, axis=0)), draws @ phi.T, pair_var


def belief_arrays(theta, hessian, proj, xs, key, *, num_samples: int):
    """xs f32[C, c, R, D] chunks of prompts -> mean [C, c, R], std, samples [C, K, c, R], pv,
    and phi [C, c, R, d] (the projected features when proj is given, else None)."""
    chol = jnp.linalg.cholesky(hessian)
    eps = jax.random.normal(key, (num_samples, theta.shape[0]), theta.dtype)
    draws = theta[None, :] + solve_triangular(chol.T, eps.T, lower=False).T  # [K, d]

    def chunk(xc):
        phi = (
            xc
            if proj is None
            else (xc.reshape(-1, xc.shape[-1]) @ proj).reshape(xc.shape[0], xc.shape[1], -1)
        )
        mean, std, samples, pv = jax.vmap(prompt_belief, in_axes=(None, None, None, 0))(
            theta, chol, draws, phi
        )
        return mean, std, jnp.transpose(samples, (1, 0, 2)), pv, None if proj is None else phi

    return jax.lax.map(chunk, xs)


def check_config(cfg: HeadConfig) -> None:
    """ConfigError for values the Laplace head cannot use."""
    if cfg.prior_precision <= 0 or cfg.newton_steps < 0 or cfg.max_dim < 1:
        raise ConfigError("head: prior_precision must be > 0, newton_steps >= 0, max_dim >= 1")
    if cfg.prior not in PRIORS:
        raise ConfigError(f"head: --bll_prior {cfg.prior}: choose one of {', '.join(PRIORS)}")


def prior_segments(cfg: HeadConfig, dim: int, d: int) -> tuple[np.ndarray, int]:
    """(group of each of the d weights i32[d], number of groups) of the prior precision.

    fixed: no groups (0); ard: one group per weight; evidence: the blocks of
    HeadConfig.prior_groups when they tile the (unprojected) features, else one group."""
    if cfg.prior == "fixed":
        return np.zeros(d, np.int32), 0
    if cfg.prior == "ard":
        return np.arange(d, dtype=np.int32), d
    sizes = tuple(int(g) for g in cfg.prior_groups)
    if not sizes or sum(sizes) != dim or d != dim:
        return np.zeros(d, np.int32), 1
    return np.repeat(np.arange(len(sizes), dtype=np.int32), sizes), len(sizes)


def _state_dim(state: BLLState) -> int:
    return int(state.theta.shape[0] if state.proj is None else state.proj.shape[0])


def _chunks(x: np.ndarray) -> tuple[np.ndarray, int]:
    """x [p, R, D] -> zero-padded float32 chunks [C, c, R, D] of c prompts each, and c."""
    num_p, num_r, dim = x.shape
    per = max(1, min(next_pow2(num_p), next_pow2(BELIEF_ROWS // num_r)))
    padded = np.zeros((-(-num_p // per) * per, num_r, dim), np.float32)
    padded[:num_p] = np.asarray(x)
    return padded.reshape(-1, per, num_r, dim), per


def make_bll(cfg: HeadConfig, *, slots_rule: Callable[[int], int] = quarter_octave) -> Head:
    """The `bll` head for `cfg`.

    slots_rule(M) -> padded label count (default: 4 buckets per octave, <= 25% padding).
    """
    check_config(cfg)
    lam0 = float(cfg.prior_precision)
    fit_fn = jax.jit(partial(fit_arrays, steps=int(cfg.newton_steps)), static_argnames="groups")
    belief_fn = jax.jit(belief_arrays, static_argnames="num_samples")

    def init(dim: int, *, key: jax.Array) -> BLLState:
        """Prior state: theta = 0, H = design = lambda I; a projection [dim, max_dim] if
        dim > max_dim."""
        d = min(int(dim), int(cfg.max_dim))
        eye = lam0 * jnp.eye(d, dtype=jnp.float32)
        proj = None
        if dim > cfg.max_dim:
            proj = jax.random.normal(key, (int(dim), d), jnp.float32) / d**0.5
        return BLLState(jnp.zeros((d,), jnp.float32), eye, eye, jnp.full((d,), lam0), proj)

    def fit(state: BLLState, features, comps: Comparisons, *, key: jax.Array | None = None):
        """Laplace fit on all M comparisons, features f32[P, R, D]; `key` is unused."""
        x = check_features(features, _state_dim(state))
        num_p, num_r, dim = x.shape
        check_comparisons(comps, num_p, num_r)
        pairs = flat_pairs(comps, num_r, slots_rule(comps.size))
        theta0, lam = state.theta, state.prior
        if not cfg.warm_start:
            theta0, lam = jnp.zeros_like(theta0), jnp.full_like(lam, lam0)
        z = differences(*compact(x.reshape(-1, dim), pairs))  # only the compared rows, in f32
        segments, groups = prior_segments(cfg, dim, int(state.theta.shape[0]))
        out = fit_fn(theta0, lam, z, pairs.p * pairs.mask, state.proj, segments, groups=groups)
        return BLLState(*out, state.proj)

    def belief(state: BLLState, features, *, key: jax.Array, num_samples: int = 16,
               embed: bool = True) -> Belief:
        """Exact Laplace belief; samples [num_samples, P, R] share one theta per draw. The
        pool goes to the device in blocks of BELIEF_BLOCK prompts (the draws are the same
        for every block). embed=False leaves Belief.embed None."""
        x = check_features(features, _state_dim(state))
        num_p, num_r = x.shape[:2]
        parts = [_belief_block(state, x[lo:hi], key, int(num_samples), embed)
                 for lo, hi in row_blocks(num_p, BELIEF_BLOCK)]
        mean, std, samples, pv, phi = (None if p[0] is None else np.concatenate(p, axis=a)
                                       for p, a in zip(zip(*parts), (0, 0, 1, 0, 0)))
        phi = phi if state.proj is not None or not embed else np.asarray(x, np.float32)
        return Belief(mean, std, samples, pv, phi, np.asarray(state.design, np.float32))

    def _belief_block(state: BLLState, x, key, num_samples: int, embed: bool):
        """One block of prompts x [p, R, D] -> mean, std, samples [K, p, R], pv, phi or None."""
        xs, per = _chunks(x)
        out = belief_fn(state.theta, state.hessian, state.proj, xs, key, num_samples=num_samples)
        mean, std, samples, pv = (np.asarray(o) for o in out[:4])
        num_p, num_r = x.shape[:2]
        flat = lambda a: a.reshape(-1, *a.shape[2:])[:num_p]  # noqa: E731
        samples = np.transpose(samples, (1, 0, 2, 3)).reshape(num_samples, -1, num_r)
        phi = flat(np.asarray(out[4])) if state.proj is not None and embed else None
        return flat(mean), flat(std), samples[:, :num_p], flat(pv), phi

    return Head(init, fit, belief)
