"""Scoring sharded feature files on Ray Data (`ray_runner.score_shards`) vs in one process.

  python scripts/bench_ray_score.py [--shards 4] [--rows 50000] [--dim 384] [--members 16]
                                    [--workers 2] [--chunk-rows 25000] [--repeats 2]
                                    [--local-cluster | --address HOST:PORT] [--choose]

The scoring function is the ensemble head's per-member rewards (aeuf.head.mlp, hidden 128,128,
K members): f32[n, D] -> f32[n, K]. In-process: the same function over memory-mapped chunks of
the same shards. Ray: a local instance with `--workers` CPUs and as many scoring replicas;
each call starts its actors (which import JAX), so the fixed cost per call is reported apart
from the rows/s. Prints a Markdown table for docs/cluster.md.

--local-cluster runs on a real two-node Ray cluster on this machine (`ray start --head` and
`ray start --address` as separate processes, one CPU each: tests/support/raycluster.py), --address
on a running one. --choose adds the per-shard rates of what `aeuf POOL --ray` runs: writing
the feature shards (aeuf.run.jobs.cluster.write_shards) and the round's choice on the
workers (aeuf.run.jobs.sharded.choose_on_shards: members' rewards, belief, deltaucb over
whole prompts of R = 8 responses), against the same choice in one process (choose_block).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from aeuf.backends import ray_runner  # noqa: E402
from aeuf.bench.measure import machine_line, seconds  # noqa: E402
from aeuf.bench.output import markdown_table  # noqa: E402
from aeuf.config import AcquireConfig  # noqa: E402
from aeuf.head import mlp  # noqa: E402
from aeuf.run.jobs import cluster, sharded  # noqa: E402

R = 8  # responses per prompt in the --choose rows


def member_rewards(params, x):
    """x f32[n, D] -> f32[n, K]: every member's reward of every row (eager vmap: the workers
    receive this function by value, and large chunks make dispatch cost negligible)."""
    return np.asarray(jax.vmap(mlp.rewards, in_axes=(0, None))(params, jnp.asarray(x))).T


def in_process(paths, params, chunk_rows: int) -> np.ndarray:
    parts = []
    for p in paths:
        x = np.load(p, mmap_mode="r")
        parts += [member_rewards(params, np.asarray(x[a:a + chunk_rows])) for a in range(0, len(x), chunk_rows)]
    return np.concatenate(parts)


def timed(fn, *args, **kw):
    """(wall seconds, result) of fn(*args, **kw)."""
    out = []
    return seconds(lambda: out.append(fn(*args, **kw))), out[0]


def choose_local(paths, params, acfg, chunk_prompts: int):
    """The same choice as choose_on_shards, in this process, over memory-mapped chunks."""
    for p in paths:
        x = np.load(p, mmap_mode="r")
        for a in range(0, len(x), chunk_prompts * R):
            sharded.choose_block(acfg, R, 2, 0, params, np.asarray(x[a:a + chunk_prompts * R]), a)


def choose_rows(args, paths, params, n: int, address) -> list[tuple]:
    """Rows of the --choose table: shard writing, the round's choice on Ray and in process."""
    acfg, prompts, chunk = AcquireConfig(rule="deltaucb"), n // R, max(1, args.chunk_rows // R)
    x = np.concatenate([np.load(p, mmap_mode="r") for p in paths]).reshape(prompts, R, -1)
    with tempfile.TemporaryDirectory() as d:
        t_write, shards = timed(cluster.write_shards, Path(d), x, args.rows // R)
    choose_local(paths, params, acfg, chunk)  # warm-up (compilation)
    t_local = statistics.median(timed(choose_local, paths, params, acfg, chunk)[0]
                                for _ in range(args.repeats))
    t_ray = statistics.median(timed(sharded.choose_on_shards, paths, params, acfg,
                                    num_responses=R, workers=args.workers, chunk_prompts=chunk,
                                    address=address)[0] for _ in range(args.repeats))
    mb = x.nbytes / 2**20
    return [(f"write feature shards (digest + .npy, {mb:.0f} MB)", t_write, n / t_write),
            (f"choose in one process (deltaucb, R {R}, chunks of {chunk} prompts)", t_local,
             n / t_local),
            (f"choose on Ray, {args.workers} workers, whole call (only choices return)", t_ray,
             n / t_ray),
            ("ratio choose on Ray / one process", t_ray / t_local, None)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rows", type=int, default=50000, help="rows per shard")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-rows", type=int, default=25000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--address", default=None, help="a running Ray cluster (default: local)")
    ap.add_argument("--local-cluster", action="store_true",
                    help="start a two-node Ray cluster on this machine (tests/support/raycluster.py)")
    ap.add_argument("--choose", action="store_true", help="add the --ray round's rates")
    args = ap.parse_args()
    if args.local_cluster:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
        import os

        import raycluster
        os.environ["RAY_AUTH_MODE"] = "disabled"
        nodes = raycluster.start()
        try:
            return run(args, nodes.address, "2-node local cluster (1 CPU each)")
        finally:
            raycluster.stop(nodes)
    return run(args, args.address, "cluster at " + args.address if args.address else
               f"local Ray ({args.workers} CPUs)")


def run(args, address: str | None, where: str) -> int:
    keys = jax.random.split(jax.random.PRNGKey(0), args.members)
    params = jax.tree_util.tree_map(np.asarray, jax.vmap(lambda k: mlp.init_mlp(k, args.dim, (128, 128)))(keys))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for s in range(args.shards):
            paths.append(Path(d) / f"features-{s:03d}.npy")
            np.save(paths[-1], rng.standard_normal((args.rows, args.dim), dtype=np.float32))
        n = args.shards * args.rows
        in_process(paths, params, args.chunk_rows)  # warm-up (compilation)
        local = [timed(in_process, paths, params, args.chunk_rows) for _ in range(args.repeats)]
        t_init, _ = timed(ray_runner.connect, address, None if address else args.workers)
        runs = [timed(ray_runner.score_shards, paths, member_rewards, params, workers=args.workers,
                      chunk_rows=args.chunk_rows, address=address) for _ in range(args.repeats)]
        np.testing.assert_allclose(runs[-1][1], local[-1][1], rtol=1e-4, atol=1e-4)
        tiny = Path(d) / "tiny.npy"
        np.save(tiny, np.zeros((1, args.dim), np.float32))
        fixed = statistics.median(timed(ray_runner.score_shards, [tiny], member_rewards, params,
                                        workers=args.workers, address=address)[0]
                                  for _ in range(args.repeats))
        extra = choose_rows(args, paths, params, n, address) if args.choose else []
    t_local = statistics.median(t for t, _ in local)
    t_ray = statistics.median(t for t, _ in runs)
    print(markdown_table(
        (f"{args.shards} shards x {args.rows} rows x D {args.dim}, K {args.members}, "
         f"{machine_line()}", "seconds", "rows/s"),
        [(f"in one process (memory-mapped chunks of {args.chunk_rows})", t_local, n / t_local),
         (f"Ray Data, {args.workers} workers, whole call", t_ray, n / t_ray),
         ("Ray Data, fixed cost per call (1 row: actors start, import JAX)", fixed, None),
         ("Ray start (`ray.init`, once per process)", t_init, None),
         ("ratio Ray / one process, whole call", t_ray / t_local, None), *extra]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
