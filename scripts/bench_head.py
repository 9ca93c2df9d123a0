"""Reward-head speed, as ratios measured in one process on the same synthetic data.

    python scripts/bench_head.py [--members 16] [--dim 384] [--hidden 256] [--labels 20000]
                                 [--epochs 5] [--torch-members 16] [--groups auto,1,4,16]
                                 [--repeats 2] [--skip-torch] [--skip-bll]

Threads: all cores by default. For a one-core run (steadier on a loaded machine) pin the
process: `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 1 python scripts/bench_head.py`
(XLA_FLAGS thread options alone do not stop JAX's CPU client from using both cores).

Reports, with thread counts and os.getloadavg() before and after (the machine is shared):
- the float32 matmul peak of this machine (numpy 4096 x 4096, best of 3; the fraction of peak
  is against numpy's, as the issue asks; torch's and JAX's 4096^2 are reported beside it);
- `import aeuf.head` (no JAX) and `import aeuf.head.ensemble` (pulls JAX) in a fresh process;
- ensemble fit (K members, D, hidden, M labels, exactly --epochs epochs, minibatch 512 and
  32; for each member group in --groups): first call (compile included) and the best of
  --repeats warm calls on a device array; GFLOP/s, the fraction of the numpy and JAX peaks,
  and the time over the compute floor = training FLOPs / JAX's matmul peak (also with the
  design pass that builds Belief.precision added to the FLOPs);
- the same training as a per-member PyTorch loop (research-code style: one member after the
  other, a Python step loop, torch.optim.Adam) at minibatch 512 and 32; the ratio torch / aeuf;
- ensemble belief (score P*R responses with K members);
- bll fit on M labels at D = 384 and at D = 4096 (random projection to max_dim = 1024).

FLOPs of the MLP, per response and member: forward 2 sum(in*out) over layers; training =
forward + weight gradients (same again) + input gradients of every layer but the first.
Padding slots skipped by the trainer are not counted. Pool: P = 10,000 prompts x 8 responses
(2,500 x 8 at D = 4096, to keep memory small; a fit only reads the M compared pairs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np

from aeuf.bench.measure import (
    block,
    floor_seconds,
    machine,
    matmul_peak,
    mlp_flops,
    seconds,
    wall_and_cpu,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def env_info() -> dict:
    """Cores, load, thread settings (aeuf.bench.measure.machine), BLAS and torch threads."""
    try:
        from threadpoolctl import threadpool_info  # comes with scikit-learn; optional here
    except ImportError:
        threadpool_info = list
    blas = [
        f"{i['internal_api']}:{i['num_threads']}:{i.get('architecture')}" for i in threadpool_info()
    ]
    import torch

    return {**machine(), "blas": blas, "torch_threads": torch.get_num_threads()}


def torch_peak() -> float:
    """torch's float32 4096^2 matmul GFLOP/s (aeuf.bench may not import torch)."""
    import torch

    t = torch.from_numpy(np.random.default_rng(0).random((4096, 4096), dtype=np.float32))
    return matmul_peak(matmul=lambda: t @ t)


def jax_peak_both() -> tuple[float, float]:
    """JAX float32 matmul peak as (GFLOP per wall second, GFLOP per CPU second): four 2048^2
    products per timing, best of 3."""
    import jax

    a = jax.device_put(np.random.default_rng(0).random((2048, 2048), dtype=np.float32))
    mm = jax.jit(lambda u: u @ u)
    mm(a).block_until_ready()
    ts = [wall_and_cpu(lambda: [mm(a) for _ in range(4)][-1]) for _ in range(3)]
    flop = 4 * 2 * 2048**3 / 1e9
    return flop / min(t[0] for t in ts), flop / min(t[1] for t in ts)


def compile_seconds(fn) -> float:
    """Seconds JAX spent tracing, lowering and compiling during fn() (jax.monitoring events)."""
    import jax.monitoring

    spent = []

    def listen(name, secs, **_):
        if name.startswith("/jax/core/compile/"):
            spent.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        block(fn())
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return sum(spent)


def import_time(module: str) -> float:
    """Seconds to import `module` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def synthetic(num_p: int, num_r: int, dim: int, m: int, seed: int = 0):
    """Features [P, R, D] and M soft BT labels from a random linear reward."""
    from aeuf.types import Comparisons

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_p, num_r, dim), dtype=np.float32)
    r = x @ (rng.standard_normal(dim, dtype=np.float32) / np.float32(dim**0.5))
    pr, a = rng.integers(0, num_p, m), rng.integers(0, num_r, m)
    b = (a + rng.integers(1, num_r, m)) % num_r
    p = 1.0 / (1.0 + np.exp(-(r[pr, a] - r[pr, b])))
    return x, Comparisons(
        pr.astype(np.int32), a.astype(np.int32), b.astype(np.int32), p.astype(np.float32)
    )


def bench_ensemble(args, x, comps, batch: int, peak: float) -> dict:
    """First (compile) and warm fit time of the aeuf ensemble at this minibatch, for each
    member group in --groups (auto = the head's own choice), as multiples of the floor.

    The fit runs exactly --epochs epochs (min_steps = 0, like the torch loop); floor =
    training FLOPs / `peak` (JAX's matmul peak in this process); `design` is the extra pass
    over the labelled pairs that builds Belief.precision (a fit with 0 epochs)."""
    import jax

    from aeuf.config import HeadConfig
    from aeuf.head.ensemble import make_ensemble
    from aeuf.head.train import member_group

    cfg = HeadConfig(members=args.members, hidden=args.hidden, epochs=args.epochs,
                     min_steps=0, max_steps=None, batch_size=batch)
    xd = jax.device_put(x)  # the loop passes the same device array every round
    fit_flop = mlp_flops(args.dim, args.hidden)[1] * 2 * args.labels * args.members * args.epochs
    design_flop = (mlp_flops(args.dim, args.hidden)[0] - 2 * args.hidden[-1]) * 2 * args.labels * args.members
    out = {"auto_group": member_group(cfg, args.dim, batch), "floor_s": floor_seconds(fit_flop, peak),
           "floor_with_design_s": floor_seconds(fit_flop + design_flop, peak)}
    for g in args.groups:
        group = None if g == "auto" else int(g)
        head = make_ensemble(cfg, group=group)
        state = head.init(x.shape[2], key=jax.random.key(0))
        first = seconds(lambda: head.fit(state, xd, comps, key=jax.random.key(1)))  # noqa: B023
        runs = []
        for _ in range(args.repeats):  # each run beside its own peak (the load changes)
            wall_peak, cpu_peak = jax_peak_both()
            wall, cpu = wall_and_cpu(lambda: head.fit(state, xd, comps, key=jax.random.key(1)))  # noqa: B023
            runs.append((wall, wall * wall_peak * 1e9 / fit_flop, cpu * cpu_peak * 1e9 / fit_flop,
                         cpu))
        best = min(runs)
        out[f"group_{g}"] = {"fit_first_s": first, "fit_warm_s": best[0],
                             "fit_warm_cpu_s": min(r[3] for r in runs),
                             "over_floor": best[0] / out["floor_s"],
                             "over_adjacent_floor_wall": min(r[1] for r in runs),
                             "over_adjacent_floor_cpu": min(r[2] for r in runs),
                             "gflops": fit_flop / best[0] / 1e9}
        print(f"  batch {batch} group {g}: {out[f'group_{g}']}", file=sys.stderr, flush=True)
    no_steps = dataclasses.replace(cfg)
    object.__setattr__(no_steps, "epochs", 0)  # the design pass alone (the flags refuse 0)
    zero = make_ensemble(no_steps, group=None)
    state = zero.init(x.shape[2], key=jax.random.key(0))
    zero.fit(state, xd, comps, key=jax.random.key(1))
    out["design_s"] = seconds(lambda: zero.fit(state, xd, comps, key=jax.random.key(1)))
    auto = out["group_auto"] if "group_auto" in out else out[f"group_{args.groups[0]}"]
    out["fit_warm_s"] = auto["fit_warm_s"]
    out["fit_warm_cpu_s"] = auto["fit_warm_cpu_s"]
    out["fit_over_floor"] = auto["fit_warm_s"] / out["floor_s"]
    out["fit_over_adjacent_floor_cpu"] = auto["over_adjacent_floor_cpu"]
    out["fit_over_floor_with_design"] = auto["fit_warm_s"] / out["floor_with_design_s"]
    out["fit_compile_s"] = compile_seconds(
        lambda: make_ensemble(cfg).fit(state, xd, comps, key=jax.random.key(1)))
    if batch == args.batch:
        head = make_ensemble(cfg)
        fitted = head.fit(state, xd, comps, key=jax.random.key(1))
        head.belief(fitted, x[:16], key=None)
        out["belief_warm_s"] = seconds(lambda: head.belief(fitted, xd, key=None) and None)
    return out


def bench_torch(args, x, comps, batch: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the per-member PyTorch loop, scaled from --torch-members to K."""
    import torch

    flat = torch.from_numpy(x.reshape(-1, x.shape[2]))
    rows_a = torch.from_numpy((comps.prompt * x.shape[1] + comps.a).astype(np.int64))
    rows_b = torch.from_numpy((comps.prompt * x.shape[1] + comps.b).astype(np.int64))
    p, m = torch.from_numpy(comps.p), comps.size
    t, c = time.perf_counter(), time.process_time()
    for k in range(args.torch_members):
        torch.manual_seed(k)
        sizes = (x.shape[2], *args.hidden)
        layers = [
            m_
            for i, o in zip(sizes[:-1], sizes[1:], strict=True)
            for m_ in (torch.nn.Linear(i, o), torch.nn.ReLU())
        ]
        net = torch.nn.Sequential(*layers, torch.nn.Linear(sizes[-1], 1))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(args.epochs):
            perm = torch.randperm(m)
            for s in range(0, m, batch):
                idx = perm[s : s + batch]
                r = net(flat[torch.cat([rows_a[idx], rows_b[idx]])]).squeeze(-1)
                d = r[: len(idx)] - r[len(idx) :]
                loss = (torch.nn.functional.softplus(d) - p[idx] * d).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
    scale = args.members / args.torch_members
    return (time.perf_counter() - t) * scale, (time.process_time() - c) * scale


def bench_bll(dim: int, num_p: int, m: int) -> dict:
    """First and warm bll fit (and warm belief) at feature dimension `dim`."""
    import jax

    from aeuf.config import HeadConfig
    from aeuf.head import make_head

    x, comps = synthetic(num_p, 8, dim, m, seed=1)
    head = make_head(HeadConfig(name="bll"))
    state = head.init(dim, key=jax.random.key(0))
    first = seconds(lambda: head.fit(state, x, comps, key=None))
    warm = seconds(lambda: head.fit(state, x, comps, key=None))
    compile_s = compile_seconds(
        lambda: make_head(HeadConfig(name="bll")).fit(state, x, comps, key=None)
    )
    fitted = head.fit(state, x, comps, key=None)
    head.belief(fitted, x, key=jax.random.key(0))
    bel = seconds(lambda: head.belief(fitted, x, key=jax.random.key(0)) and None)
    return {
        "dim": dim,
        "responses": num_p * 8,
        "fit_first_s": first,
        "fit_warm_s": warm,
        "fit_compile_s": compile_s,
        "belief_warm_s": bel,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--hidden", type=lambda s: tuple(int(h) for h in s.split(",")), default=(256,))
    ap.add_argument("--labels", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--small-batch", type=int, default=32)
    ap.add_argument(
        "--torch-members",
        type=int,
        default=16,
        help="members actually run in torch; time scaled to --members",
    )
    ap.add_argument("--groups", type=lambda s: s.split(","), default=["auto"],
                    help="member groups to time, e.g. auto,1,2,4,16")
    ap.add_argument("--repeats", type=int, default=2, help="warm fits timed (best is kept)")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-bll", action="store_true")
    args = ap.parse_args(argv)

    res = {"env_before": env_info(), "args": {k: v for k, v in vars(args).items()}}
    res["import_aeuf_head_s"] = import_time("aeuf.head")
    res["import_aeuf_head_ensemble_s"] = import_time("aeuf.head.ensemble")
    res["peak_gflops"] = matmul_peak()
    res["peak_gflops_torch"] = torch_peak()
    res["peak_gflops_jax"] = matmul_peak("jax")
    x, comps = synthetic(10000, 8, args.dim, args.labels)
    gflop = mlp_flops(args.dim, args.hidden)[1] * 2 * args.labels * args.members * args.epochs / 1e9
    res["train_gflop"] = gflop
    for batch in (args.batch, args.small_batch):
        e = bench_ensemble(args, x, comps, batch, res["peak_gflops_jax"])
        e["gflops"] = gflop / e["fit_warm_s"]
        e["fraction_of_peak"] = e["gflops"] / res["peak_gflops"]
        e["fraction_of_jax_peak"] = e["gflops"] / res["peak_gflops_jax"]
        if not args.skip_torch:
            e["torch_s"], e["torch_cpu_s"] = bench_torch(args, x, comps, batch)
            e["torch_over_aeuf"] = e["torch_s"] / e["fit_warm_s"]
            e["torch_over_aeuf_cpu"] = e["torch_cpu_s"] / e["fit_warm_cpu_s"]
        res[f"ensemble_batch_{batch}"] = e
        print(f"ensemble batch {batch}: {e}", file=sys.stderr, flush=True)
    if not args.skip_bll:
        res["bll_384"] = bench_bll(384, 10000, args.labels)
        res["bll_4096"] = bench_bll(4096, 2500, args.labels)
        print(f"bll: {res['bll_384']} {res['bll_4096']}", file=sys.stderr, flush=True)
    res["peak_gflops_after"] = matmul_peak()
    res["env_after"] = env_info()
    print(json.dumps(res, indent=1, default=str))
    return res


if __name__ == "__main__":
    main()
