"""Acquisition speed: every rule choosing one pair per prompt, and BAL-PM prompt selection.

    python scripts/bench_acquire.py [--prompts 10000] [--responses 8] [--members 16]
                                    [--dim 384] [--select 1000] [--repeats 5]

Part 1 times each registered rule's select() (aeuf: numpy, vectorised over prompts) on a
K-member belief for P prompts x R responses (doptimal / doptimal_past on the D-dim response
features, as when a head gives no embedding; doptimal_past with its default greedy of
--doptimal_greedy prompts), and for the belief-based rules the same rule
written for one prompt in JAX and vmapped + jitted (compile excluded, reported apart; the
host->device copy and the copy back are included, as the loop pays them). Ratio = JAX time /
numpy time (> 1: numpy is faster). Part 2 times BAL-PM greedy selection of --select of P
prompts at D = --dim: aeuf (kNN graph once + greedy on neighbour lists) against the formula
applied directly (a distance row per pick). Medians of --repeats, all in one process.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import digamma

from aeuf.acquire import RULES, knn_graph, make_rule, select_prompts
from aeuf.bench.measure import machine_line, matmul_peak, median_time
from aeuf.config import AcquireConfig
from aeuf.types import Belief


def timed(fn, repeats: int, warm: bool = True) -> float:
    """Median wall time of fn() over `repeats` calls (after one warm-up call if `warm`)."""
    return median_time(fn, repeats, warm)


def belief_stats(samples: np.ndarray) -> Belief:
    """mean/std/pair_var [P,R,R] from joint samples [K,P,R] (what an ensemble head returns)."""
    d = samples[:, :, :, None] - samples[:, :, None, :]
    return Belief(samples.mean(0), samples.std(0), samples, d.var(0))


# ---- the same rules for ONE prompt in JAX, vmapped over prompts ---------------------------


def _offdiag_argmax(m):
    """(i, j) of the largest off-diagonal entry of m [R, R]."""
    R = m.shape[0]
    f = jnp.argmax(jnp.where(jnp.eye(R, dtype=bool), -jnp.inf, m))
    return jnp.stack([f // R, f % R])


def _with_score(ij, pair_var):
    """(idx [2], score) with score = sqrt(Var[r_i - r_j]), as aeuf's rules return."""
    return ij, jnp.sqrt(jnp.maximum(pair_var[ij[0], ij[1]], 0.0))


def jax_infomax_one(pair_var):
    return _with_score(_offdiag_argmax(pair_var), pair_var)


def jax_deltaucb_one(mean, std, pair_var):
    return _with_score(_offdiag_argmax((mean + std)[:, None] - (mean - std)[None, :]), pair_var)


def jax_bald_one(s):  # s [K, R]
    d = s[:, :, None] - s[:, None, :]
    h = lambda q: -(q * jnp.log(q) + (1 - q) * jnp.log1p(-q))  # noqa: E731
    p = jnp.clip(jax.nn.sigmoid(d), 1e-7, 1 - 1e-7)
    bald = h(p.mean(0)) - h(p).mean(0)
    ij = _offdiag_argmax(bald)
    return ij, bald[ij[0], ij[1]]


def jax_dts_one(s, pair_var, key, tries: int = 30):  # argmax of a draw, redraw on collision
    K, R = s.shape
    draws = jax.random.randint(key, (tries + 2,), 0, K)
    best = jnp.argmax(s[draws], axis=1)  # [tries + 2]
    first, rest = best[0], best[1:]
    ok = rest != first
    fallback = jnp.argmax(jnp.where(jnp.arange(R) == first, -jnp.inf, s[draws[-1]]))
    return _with_score(
        jnp.stack([first, jnp.where(ok.any(), rest[jnp.argmax(ok)], fallback)]), pair_var
    )


JAX_RULES = {
    "infomax": (jax.jit(jax.vmap(jax_infomax_one)), lambda b, keys: (b.pair_var,)),
    "deltaucb": (
        jax.jit(jax.vmap(jax_deltaucb_one)),
        lambda b, keys: (b.mean, b.std, b.pair_var),
    ),
    "infomax_bald": (jax.jit(jax.vmap(jax_bald_one, in_axes=1)), lambda b, keys: (b.samples,)),
    "dts": (
        jax.jit(jax.vmap(jax_dts_one, in_axes=(1, 0, 0))),
        lambda b, keys: (b.samples, b.pair_var, keys),
    ),
}


def run_jax(name: str, b: Belief, keys) -> tuple[np.ndarray, np.ndarray]:
    fn, args = JAX_RULES[name]
    idx, score = fn(*args(b, keys))
    return np.asarray(idx), np.asarray(score)


# ---- BAL-PM prompt selection: the formula applied directly --------------------------------


def direct_balpm(score, x, acquired, batch, cfg: AcquireConfig) -> np.ndarray:
    """Same greedy, computing each pick's distance row to update n(x) = #acquired within
    d_k(x); d_k from the same kNN pass (its cost is timed separately)."""
    g = knn_graph(x, cfg.knn_k, exact_max=None)
    sq = np.einsum("pd,pd->p", x, x)
    acquired = acquired.copy()
    n = acquired[g.neighbors].sum(1)
    log_r = np.log(2 * g.radius + 1e-4)
    picks = []
    for _ in range(batch):
        obj = np.where(acquired, -np.inf, score + cfg.prompt_beta * (log_r - digamma(n + 1)))
        y = int(np.argmax(obj))
        picks.append(y)
        acquired[y] = True
        d = np.sqrt(np.maximum(sq + sq[y] - 2.0 * (x @ x[y]), 0.0))
        within = d <= g.radius * (1 + 1e-6)  # rounding: y may sit exactly on the radius
        within[y] = False
        n += within
    return np.asarray(picks, np.int32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--responses", type=int, default=8)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--select", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    P, R, K = a.prompts, a.responses, a.members
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(K, P, R)).astype(np.float32)
    feats = rng.normal(size=(P, R, a.dim)).astype(np.float32)
    key = jax.random.PRNGKey(0)
    keys = jax.random.split(key, P)
    print(
        f"P={P} R={R} K={K} D={a.dim} {machine_line()} "
        f"jax={jax.__version__} backend={jax.default_backend()} numpy={np.__version__} "
        f"OMP/OPENBLAS threads={os.environ.get('OMP_NUM_THREADS', '-')}/"
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}"
    )
    t_stats = timed(lambda: belief_stats(samples), a.repeats)
    b = belief_stats(samples)
    print(f"\nbelief mean/std/pair_var from {K} joint samples (numpy): {t_stats * 1e3:.1f} ms")
    print("\n| rule | aeuf numpy (ms) | JAX vmap+jit (ms) | JAX / numpy | JAX compile (s) |")
    print("|---|---|---|---|---|")
    worst = {}
    for name in RULES.names():
        rule = make_rule(AcquireConfig(rule=name))
        t_np = timed(lambda r=rule: r.select(b, feats, key=key, k=2), a.repeats)
        worst[name] = round(t_np, 4)
        row = f"| {name} | {t_np * 1e3:.1f} |"
        if name in JAX_RULES:
            t0 = time.perf_counter()
            run_jax(name, b, keys)
            compile_s = time.perf_counter() - t0
            t_jx = timed(lambda n=name: run_jax(n, b, keys), a.repeats)
            row += f" {t_jx * 1e3:.1f} | {t_jx / t_np:.2f} | {compile_s:.2f} |"
        else:
            row += " - | - | - |"
        print(row)
    print(f"\nslowest rule: {max(worst.items(), key=lambda kv: kv[1])}")

    x = rng.normal(size=(P, a.dim)).astype(np.float32)
    score = rng.random(P).astype(np.float32) * 0.05
    acq = np.zeros(P, bool)
    cfg = AcquireConfig()
    slow = max(1, a.repeats // 2)
    t_graph = timed(lambda: knn_graph(x, cfg.knn_k), slow, warm=False)
    g = knn_graph(x, cfg.knn_k)
    t_greedy = timed(lambda: select_prompts(score, x, acq, a.select, cfg, graph=g), a.repeats)
    t_full = timed(lambda: select_prompts(score, x, acq, a.select, cfg), slow, warm=False)
    t_direct = timed(lambda: direct_balpm(score, x, acq, a.select, cfg), slow, warm=False)
    same = np.array_equal(
        select_prompts(score, x, acq, a.select, cfg), direct_balpm(score, x, acq, a.select, cfg)
    )
    peak = matmul_peak("numpy", n=2048)
    knn = 2 * P * P * a.dim / t_graph / 1e9
    print(f"\nBAL-PM greedy, {a.select} of {P} prompts, D={a.dim}, k={cfg.knn_k}:")
    print(
        f"  kNN graph (once per pool): {t_graph:.3f} s = {knn:.0f} GFLOP/s, "
        f"{100 * knn / peak:.0f}% of this run's float32 matmul peak ({peak:.0f} GFLOP/s)"
    )
    print(f"  greedy on the graph (per round): {t_greedy:.4f} s")
    print(f"  select_prompts from scratch: {t_full:.3f} s")
    print(f"  direct formula (distance row per pick): {t_direct:.3f} s")
    print(f"  direct / aeuf: {t_direct / t_full:.2f}x; same picks: {same}")


if __name__ == "__main__":
    main()
