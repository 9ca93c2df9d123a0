"""`bll` head: Bayesian logistic regression on difference vectors, Laplace posterior.

Model: P(a beats b) = sigmoid(theta . z), z = phi_a - phi_b, prior theta ~ N(0, I / lambda).
fit finds the MAP theta_hat by damped Newton steps on

    f(theta) = sum_i [softplus(theta . z_i) - p_i theta . z_i] + lambda / 2 ||theta||^2

(soft labels p_i allowed) and stores the Laplace precision at the MAP,
H = lambda I + sum_i s_i (1 - s_i) z_i z_i^T with s_i = sigmoid(theta_hat . z_i). Every fit
recomputes H from all labels at the new MAP (the weights s(1 - s) move with theta, so
rank-1 updates of an old H would keep stale weights); warm start only seeds Newton.
Each Newton step tries step sizes 1, 1/2, 1/4, 1/8 together and keeps the best, so a bad
full step on nearly separable data cannot diverge.

Features with D > HeadConfig.max_dim are first mapped by a seeded Gaussian random projection
phi -> phi Q, Q [D, max_dim] with N(0, 1 / max_dim) entries (drawn from init's key and kept
in the state); PCA is not used, so the basis never depends on the data and stays fixed
across rounds.

Belief, per response i (in projected space): mean = phi_i . theta_hat,
std = sqrt(phi_i^T H^-1 phi_i), pair_var[i, j] = z^T H^-1 z for z = phi_i - phi_j (exact),
and samples r^(k) = phi . theta_k with joint draws theta_k ~ N(theta_hat, H^-1).
BT identifies only differences: std of a single reward includes the prior's spread along
directions no comparison constrains (e.g. what all responses of a prompt share); use
pair_var (or differences of samples) to compare responses.

State: {"theta": f32[d], "precision": f32[d, d]} plus "proj": f32[D, d] when D > max_dim.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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
    flat_pairs,
    next_pow2,
    quarter_octave,
)
from aeuf.types import Belief, Comparisons

STEP_SIZES = (1.0, 0.5, 0.25, 0.125)
BELIEF_ROWS = 4096  # responses per lax.map chunk in belief


def objective(theta, z, p, lam):
    """f(theta) for thetas [T, d], z [S, d], p [S] -> [T] (padding rows have z = 0)."""
    logits = z @ theta.T  # [S, T]
    nll = jnp.sum(jax.nn.softplus(logits) - p[:, None] * logits, axis=0)
    return nll + 0.5 * lam * jnp.sum(theta * theta, axis=1)


def grad_hess(theta, z, p, lam):
    """Gradient [d] and Hessian [d, d] of f at theta [d]."""
    s = jax.nn.sigmoid(z @ theta)
    g = z.T @ (s - p) + lam * theta
    h = (z * (s * (1.0 - s))[:, None]).T @ z + lam * jnp.eye(z.shape[1], dtype=z.dtype)
    return g, h


def newton(theta0, z, p, *, lam: float, steps: int):
    """MAP by `steps` damped Newton steps from theta0; returns (theta_hat [d], H [d, d])."""
    sizes = jnp.asarray(STEP_SIZES, jnp.float32)[:, None]

    def step(theta, _):
        g, h = grad_hess(theta, z, p, lam)
        direction = cho_solve((jnp.linalg.cholesky(h), True), g)
        trials = theta[None, :] - sizes * direction[None, :]  # [T, d]
        return trials[jnp.argmin(objective(trials, z, p, lam))], None

    theta, _ = jax.lax.scan(step, theta0, None, length=steps)
    return theta, grad_hess(theta, z, p, lam)[1]


def fit_arrays(theta0, z, p, proj, *, lam: float, steps: int):
    """z f32[S, D] padded differences (0 rows in padding), p f32[S], proj f32[D, d] or None."""
    if proj is not None:
        z = z @ proj
    return newton(theta0, z, p, lam=lam, steps=steps)


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


def belief_arrays(theta, precision, proj, xs, key, *, num_samples: int):
    """xs f32[C, c, R, D] chunks of prompts -> mean [C, c, R], std, samples [C, K, c, R], pv."""
    chol = jnp.linalg.cholesky(precision)
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
        return mean, std, jnp.transpose(samples, (1, 0, 2)), pv

    return jax.lax.map(chunk, xs)


def check_config(cfg: HeadConfig) -> None:
    """ConfigError for values the Laplace head cannot use."""
    if cfg.prior_precision <= 0 or cfg.newton_steps < 0 or cfg.max_dim < 1:
        raise ConfigError("head: prior_precision must be > 0, newton_steps >= 0, max_dim >= 1")


def _state_dim(state: dict) -> int:
    return int(state["proj"].shape[0] if "proj" in state else state["theta"].shape[0])


def _chunks(x: np.ndarray) -> tuple[np.ndarray, int]:
    """x [P, R, D] -> zero-padded chunks [C, c, R, D] of c prompts each, and c."""
    num_p, num_r, dim = x.shape
    per = max(1, min(next_pow2(num_p), next_pow2(BELIEF_ROWS // num_r)))
    padded = np.zeros((-(-num_p // per) * per, num_r, dim), np.float32)
    padded[:num_p] = x
    return padded.reshape(-1, per, num_r, dim), per


def make_bll(cfg: HeadConfig, *, slots_rule: Callable[[int], int] = quarter_octave) -> Head:
    """The `bll` head for `cfg`.

    slots_rule(M) -> padded label count (default: 4 buckets per octave, <= 25% padding).
    """
    check_config(cfg)
    lam = float(cfg.prior_precision)
    fit_fn = jax.jit(partial(fit_arrays, lam=lam, steps=int(cfg.newton_steps)))
    belief_fn = jax.jit(belief_arrays, static_argnames="num_samples")

    def init(dim: int, *, key: jax.Array) -> dict:
        """Prior state: theta = 0, H = lambda I; a projection [dim, max_dim] if dim > max_dim."""
        d = min(int(dim), int(cfg.max_dim))
        state = {"theta": jnp.zeros((d,), jnp.float32), "precision": lam * jnp.eye(d)}
        if dim > cfg.max_dim:
            state["proj"] = jax.random.normal(key, (int(dim), d), jnp.float32) / d**0.5
        return state

    def fit(state: dict, features, comps: Comparisons, *, key: jax.Array | None = None):
        """Laplace fit on all M comparisons, features f32[P, R, D]; `key` is unused."""
        x = check_features(features, _state_dim(state))
        num_p, num_r, dim = x.shape
        check_comparisons(comps, num_p, num_r)
        pairs = flat_pairs(comps, num_r, slots_rule(comps.size))
        theta0 = state["theta"] if cfg.warm_start else jnp.zeros_like(state["theta"])
        z = differences(x.reshape(-1, dim), pairs)  # only the compared rows leave the host
        theta, precision = fit_fn(theta0, z, pairs.p * pairs.mask, state.get("proj"))
        return {**state, "theta": theta, "precision": precision}

    def belief(state: dict, features, *, key: jax.Array, num_samples: int = 16) -> Belief:
        """Exact Laplace belief; samples [num_samples, P, R] share one theta per draw."""
        x = check_features(features, _state_dim(state))
        xs, per = _chunks(x)
        out = belief_fn(
            state["theta"],
            state["precision"],
            state.get("proj"),
            xs,
            key,
            num_samples=int(num_samples),
        )
        mean, std, samples, pv = (np.asarray(o) for o in out)
        num_p, num_r = x.shape[:2]
        flat = lambda a: a.reshape(-1, *a.shape[2:])[:num_p]  # noqa: E731
        samples = np.transpose(samples, (1, 0, 2, 3)).reshape(int(num_samples), -1, num_r)
        return Belief(flat(mean), flat(std), samples[:, :num_p], flat(pv))

    return Head(init, fit, belief)
