"""The Laplace `bll` head against an independent float64 numpy Newton + Hessian."""

import jax
import numpy as np
import pytest

from aeuf.config import HeadConfig
from aeuf.head import make_head
from aeuf.head.bll import BLLState, make_bll
from aeuf.types import Comparisons

D, LAM = 6, 0.5
CFG = HeadConfig(name="bll", prior="fixed", prior_precision=LAM, newton_steps=20)


def problem(seed, num_p=30, num_r=4, dim=D, m=80, scale=1.0):
    """Features [P, R, dim] and M soft labels from a random linear reward."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_p, num_r, dim)).astype(np.float32)
    r = scale * x @ rng.normal(size=dim)
    pr, a = rng.integers(0, num_p, m), rng.integers(0, num_r, m)
    b = (a + rng.integers(1, num_r, m)) % num_r
    p = 1.0 / (1.0 + np.exp(-(r[pr, a] - r[pr, b])))
    return (
        x,
        r,
        Comparisons(
            pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32), p.astype(np.float32)
        ),
    )


def laplace_numpy(z, p, lam, iters=60):
    """MAP and Hessian of sum softplus(z.t) - p z.t + lam/2 |t|^2 by plain Newton in float64."""
    theta = np.zeros(z.shape[1])
    for _ in range(iters):
        s = 1.0 / (1.0 + np.exp(-z @ theta))
        hess = z.T @ (z * (s * (1 - s))[:, None]) + lam * np.eye(z.shape[1])
        theta = theta - np.linalg.solve(hess, z.T @ (s - p) + lam * theta)
    s = 1.0 / (1.0 + np.exp(-z @ theta))
    return theta, z.T @ (z * (s * (1 - s))[:, None]) + lam * np.eye(z.shape[1])


def diffs(x, comps):
    x = x.astype(np.float64)
    return x[comps.prompt, comps.a] - x[comps.prompt, comps.b]


@pytest.fixture(scope="module")
def head():
    return make_head(CFG)


@pytest.fixture(scope="module")
def fitted(head):
    x, r, comps = problem(0)
    s0 = head.init(D, key=jax.random.key(0))
    return x, comps, s0, head.fit(s0, x, comps, key=None)


def test_map_and_precision_match_a_numpy_laplace(fitted):
    x, comps, _, state = fitted
    theta, hess = laplace_numpy(diffs(x, comps), comps.p.astype(np.float64), LAM)
    np.testing.assert_allclose(state.theta, theta, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state.hessian, hess, rtol=1e-4, atol=1e-4)
    assert np.abs(theta).max() > 0.3  # not a trivial (prior) solution


def test_belief_is_the_closed_form_laplace_belief(head, fitted):
    x, comps, _, state = fitted
    theta, hess = laplace_numpy(diffs(x, comps), comps.p.astype(np.float64), LAM)
    cov = np.linalg.inv(hess)
    bel = head.belief(state, x, key=jax.random.key(1), num_samples=8)
    assert bel.samples.shape == (8, 30, 4) and all(a.dtype == np.float32 for a in bel)
    phi = x.astype(np.float64)
    np.testing.assert_allclose(bel.mean, phi @ theta, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        bel.std, np.sqrt(np.einsum("prd,de,pre->pr", phi, cov, phi)), rtol=1e-4
    )
    z = phi[:, :, None, :] - phi[:, None, :, :]  # [P, R, R, D]: each pair's own difference
    np.testing.assert_allclose(
        bel.pair_var, np.einsum("pijd,de,pije->pij", z, cov, z), rtol=1e-3, atol=1e-6
    )
    # the pair variance is not the sum of the two marginal variances
    assert np.abs(bel.pair_var - bel.std[:, :, None] ** 2 - bel.std[:, None, :] ** 2).max() > 0.05


def test_samples_are_joint_draws_from_the_laplace_posterior(head):
    rng = np.random.default_rng(2)
    shared = rng.normal(size=(20, 1, 3))  # a component every response of a prompt shares
    x = (3.0 * shared + 0.3 * rng.normal(size=(20, 4, 3))).astype(np.float32)
    hess = np.diag([1.0, 2.0, 4.0]).astype(np.float32)
    state = BLLState(np.array([0.5, -1.0, 0.2], np.float32), hess, hess, np.ones(3, np.float32), None)
    bel = head.belief(state, x, key=jax.random.key(3), num_samples=20000)
    diff = bel.samples[:, :, 0] - bel.samples[:, :, 1]
    np.testing.assert_allclose(diff.var(0), bel.pair_var[:, 0, 1], rtol=0.05)
    assert np.all(np.abs(bel.samples.mean(0) - bel.mean) < 4 * bel.std / np.sqrt(20000))
    np.testing.assert_allclose(bel.samples.std(0), bel.std, rtol=0.05)
    # independent per-response draws would give var_0 + var_1, far above the joint value
    assert np.sum(bel.std[:, 0] ** 2 + bel.std[:, 1] ** 2) > 3 * np.sum(bel.pair_var[:, 0, 1])


def test_features_above_max_dim_are_randomly_projected_first():
    cfg = HeadConfig(name="bll", prior="fixed", prior_precision=LAM, newton_steps=20, max_dim=8)
    head = make_head(cfg)
    x, _, comps = problem(4, dim=40, m=120, scale=0.3)
    s0 = head.init(40, key=jax.random.key(5))
    assert s0.proj.shape == (40, 8) and s0.theta.shape == (8,)
    assert np.array_equal(head.init(40, key=jax.random.key(5)).proj, s0.proj)
    assert not np.array_equal(head.init(40, key=jax.random.key(6)).proj, s0.proj)
    assert head.init(8, key=jax.random.key(5)).proj is None
    state = head.fit(s0, x, comps, key=None)
    proj = np.asarray(s0.proj, np.float64)
    theta, hess = laplace_numpy(diffs(x, comps) @ proj, comps.p.astype(np.float64), LAM)
    np.testing.assert_allclose(state.theta, theta, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(state.hessian, hess, rtol=1e-3, atol=1e-3)
    bel = head.belief(state, x, key=jax.random.key(1), num_samples=2)
    np.testing.assert_allclose(bel.mean, x.astype(np.float64) @ proj @ theta, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bel.embed, x.astype(np.float64) @ proj, rtol=1e-4, atol=1e-4)
    z = diffs(x, comps) @ proj
    np.testing.assert_allclose(bel.precision, LAM * np.eye(8) + z.T @ z, rtol=1e-4, atol=1e-3)


def test_warm_start_seeds_newton_with_the_previous_map(fitted):
    x, comps, s0, _ = fitted
    fixed = dict(name="bll", prior="fixed", prior_precision=LAM)
    one = make_head(HeadConfig(**fixed, newton_steps=1))
    two = make_head(HeadConfig(**fixed, newton_steps=2))
    cold = make_head(HeadConfig(**fixed, newton_steps=1, warm_start=False))
    after_one = one.fit(s0, x, comps, key=None)
    resumed = one.fit(after_one, x, comps, key=None)
    np.testing.assert_allclose(
        resumed.theta, two.fit(s0, x, comps, key=None).theta, rtol=1e-5, atol=1e-6
    )
    assert np.abs(np.asarray(resumed.theta) - after_one.theta).max() > 1e-3
    again = cold.fit(after_one, x, comps, key=None)
    np.testing.assert_allclose(again.theta, after_one.theta, rtol=1e-6, atol=1e-7)


def test_padding_to_a_bucket_gives_the_result_of_no_padding(head, fitted):
    x, comps, s0, state = fitted
    exact = make_bll(CFG, slots_rule=lambda m: m).fit(s0, x, comps, key=None)
    for name in ("theta", "hessian", "design", "prior"):
        np.testing.assert_allclose(getattr(state, name), getattr(exact, name), rtol=1e-5, atol=1e-5)


def test_fit_recovers_the_order_of_a_linear_reward(head):
    x, r, comps = problem(7, num_p=300, m=600, scale=2.0)
    state = head.fit(head.init(D, key=jax.random.key(0)), x, comps, key=None)
    mean = head.belief(state, x, key=jax.random.key(0), num_samples=1).mean
    i, j = np.triu_indices(4, 1)
    assert (np.sign(mean[:, i] - mean[:, j]) == np.sign(r[:, i] - r[:, j])).mean() > 0.9


def test_same_key_and_data_give_identical_results(head, fitted):
    x, comps, s0, state = fitted
    again = head.fit(head.init(D, key=jax.random.key(0)), x, comps, key=None)
    leaves = jax.tree_util.tree_leaves
    assert all(np.array_equal(u, v) for u, v in zip(leaves(state), leaves(again), strict=True))
    b1, b2, b3 = (head.belief(state, x, key=jax.random.key(k), num_samples=4) for k in (1, 1, 2))
    assert np.array_equal(b1.samples, b2.samples) and not np.array_equal(b1.samples, b3.samples)


def test_belief_embed_is_the_input_and_precision_the_unweighted_design(head, fitted):
    x, comps, _, state = fitted
    bel = head.belief(state, x, key=jax.random.key(1), num_samples=2)
    assert bel.embed.dtype == np.float32 and np.array_equal(bel.embed, x)
    z = diffs(x, comps)
    np.testing.assert_allclose(bel.precision, LAM * np.eye(D) + z.T @ z, rtol=1e-4, atol=1e-4)
    assert np.abs(bel.precision - state.hessian).max() > 1.0  # w = 1, not the Fisher weights


def softplus(t):
    return np.logaddexp(0.0, t)


def log_evidence(z, p, lam):
    """Laplace approximation of log p(labels | lam) in float64 (isotropic prior lam I)."""
    theta, hess = laplace_numpy(z, p, lam)
    f = np.sum(softplus(z @ theta) - p * (z @ theta)) + 0.5 * lam * theta @ theta
    return -f + 0.5 * z.shape[1] * np.log(lam) - 0.5 * np.linalg.slogdet(hess)[1]


def test_evidence_prior_is_the_laplace_marginal_likelihood_maximum():
    x, _, comps = problem(3, num_p=60, m=150, scale=0.5)
    head = make_head(HeadConfig(name="bll", prior="evidence", prior_precision=1.0))
    state = head.fit(head.init(D, key=jax.random.key(0)), x, comps, key=None)
    lam = float(state.prior[0])
    assert np.allclose(state.prior, lam) and abs(np.log(lam)) > 0.5  # moved away from the start
    z, p = diffs(x, comps), comps.p.astype(np.float64)
    best = log_evidence(z, p, lam)
    assert best > log_evidence(z, p, 1.3 * lam) and best > log_evidence(z, p, lam / 1.3)
    theta, hess = laplace_numpy(z, p, lam)  # and the MAP / Hessian at that lambda
    np.testing.assert_allclose(state.theta, theta, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(state.hessian, hess, rtol=1e-3, atol=1e-3)
    again = head.fit(state, x, comps, key=None)  # warm start: already at the fixed point
    np.testing.assert_allclose(again.prior, state.prior, rtol=1e-3)
