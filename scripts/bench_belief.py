"""The ensemble's belief over a pool, with and without the members' mean hidden layer, and
by score chunk size, against the float32 matmul peak taken in the same process.

    python scripts/bench_belief.py [--prompts 32768] [--repeats 3] [--chunks 4096,1024]

A rule that does not read the embedding (every rule but the design rules) asks for
embed=False; this prints each variant's seconds, GFLOP/s and its multiple of the floor
(FLOPs over the peak), and checks that the rewards are the same.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from aeuf.bench.measure import alternate, floor_seconds, machine_line, matmul_peak, mlp_flops
from aeuf.config import HeadConfig
from aeuf.head import ensemble as ens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32768)
    ap.add_argument("--responses", type=int, default=8)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", default="4096,1024")
    args = ap.parse_args()
    cfg = HeadConfig()
    x = np.random.default_rng(0).standard_normal(
        (args.prompts, args.responses, args.dim)).astype(np.float32)
    fwd, _ = mlp_flops(args.dim, tuple(cfg.hidden))
    flops = fwd * x.shape[0] * x.shape[1] * cfg.members
    peak = matmul_peak("jax")
    print(machine_line())
    print(f"jax float32 matmul peak {peak:.1f} GFLOP/s; belief of {args.prompts} x "
          f"{args.responses} x {args.dim}, K = {cfg.members} of {cfg.hidden}")
    for chunk in (int(c) for c in args.chunks.split(",")):
        ens.SCORE_CHUNK = chunk
        head = ens.make_ensemble(cfg)
        state = head.init(args.dim, key=jax.random.key(0))
        with_e = head.belief(state, x, embed=True)  # compiles both, and the reference
        without = head.belief(state, x, embed=False)
        same = np.array_equal(with_e.samples, without.samples)
        te, tn = alternate(lambda: head.belief(state, x, embed=True),  # noqa: B023
                           lambda: head.belief(state, x, embed=False), args.repeats)  # noqa: B023
        for name, t in (("with embedding", min(te)), ("without", min(tn))):
            print(f"chunk {chunk:5d} {name:15s} {t:6.2f} s  {flops / t / 1e9:6.1f} GFLOP/s  "
                  f"{t / floor_seconds(flops, peak):.2f}x the floor")
        print(f"chunk {chunk:5d} without / with: {min(te) / min(tn):.2f}x faster; "
              f"same rewards: {same}")


if __name__ == "__main__":
    main()
