"""How aeuf's cost grows with the pool: the main command and one round at P prompts x R.

    python scripts/bench_scale.py --prompts 10000,100000,1000000 --out bench_out/scale \
        [--responses 8] [--dim 384] [--main-flags "--epochs 2"] [--skip-main] [--skip-round]

Per P it makes (once, cached in OUT/data_P) a synthetic pool: a parquet with short response
texts and gold scores (a random linear reward of the features plus noise) and precomputed
features.npy (float32, P*R x D, written as a memory map) with features.ids.txt. Then:

- main: `aeuf pool.parquet --features file --precomputed features.npy --oracle replay
  --num_responses R --num_annotations 2` in a subprocess: wall seconds, the child's peak
  resident memory (wait4), and the stages the run records in its timings.json.
- round: in a fresh subprocess, library calls of one active round with the shipped defaults:
  compose the features (memory map -> float32, or float16 under --feature_dtype auto from
  2^30 values), BAL-PM's kNN graph (exact up to knn_exact_max, faiss IVF above), an
  ensemble fit on M = min(P, --max-labels) labels, its belief over the pool, dts, and the
  BAL-PM choice of P/4 prompts. Each stage's time is also given as a multiple of its compute
  floor: its FLOPs over the float32 matmul peak of the library that runs it (JAX for the
  head, numpy for the exact graph), measured in the same process.

Writes OUT/scale.json and OUT/scale.png (time and memory against P, log axes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from aeuf.bench.measure import block, floor_seconds, machine, matmul_peak, mlp_flops
from aeuf.bench.output import plot_lines

ROWS = 1 << 18  # rows generated / written per step


def make_data(folder: Path, num_p: int, num_r: int, dim: int, seed: int = 0) -> Path:
    """pool.parquet + features.npy + features.ids.txt under folder (kept between runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from numpy.lib.format import open_memmap

    done = folder / "done"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim).astype(np.float32) / np.float32(dim**0.5)
    centres = rng.standard_normal((64, dim)).astype(np.float32)  # prompts in 64 clusters
    feats = open_memmap(folder / "features.npy", mode="w+", dtype=np.float32,
                        shape=(num_p * num_r, dim))
    writer = None
    for lo in range(0, num_p, ROWS // num_r):
        hi = min(num_p, lo + ROWS // num_r)
        n = hi - lo
        topic = centres[rng.integers(0, 64, n)][:, None, :]
        x = topic + rng.standard_normal((n, num_r, dim), dtype=np.float32)
        feats[lo * num_r:hi * num_r] = x.reshape(-1, dim)
        gold = x @ w + 0.5 * rng.standard_normal((n, num_r)).astype(np.float32)
        cols = {"prompt_id": [f"p{i}" for i in range(lo, hi)],
                "instruction": [f"question {i}" for i in range(lo, hi)]}
        for j in range(num_r):
            cols[f"response_{j + 1}"] = [f"answer {i}.{j}" for i in range(lo, hi)]
            cols[f"response_{j + 1}_score"] = gold[:, j].astype(np.float64)
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(folder / "pool.parquet", table.schema)
        writer.write_table(table)
    writer.close()
    feats.flush()
    del feats
    ids = pool_ids(folder / "pool.parquet")
    (folder / "features.ids.txt").write_text("".join(f"{i}\n" for i in ids))
    done.write_text("ok\n")
    return folder


def pool_ids(path: Path) -> list[str]:
    """The response ids aeuf gives the pool's responses, in [P, R] row-major order."""
    from aeuf import io
    from aeuf.config import InputConfig

    pool = io.read_pool(InputConfig(path=str(path), num_responses=8))
    return [str(i) for i in np.asarray(pool.response_ids).reshape(-1)]


def run_main(folder: Path, num_r: int, flags: list[str]) -> dict:
    """The main command in a child process: wall seconds, peak RSS, the run's timings."""
    out = folder / "run"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    cmd = [sys.executable, "-m", "aeuf", str(folder / "pool.parquet"), "--features", "file",
           "--precomputed", str(folder / "features.npy"), "--oracle", "replay",
           "--num_responses", str(num_r), "--num_annotations", "2", "--output_dir", str(out),
           "--no_progress", *flags]
    start = time.perf_counter()
    log = out.with_suffix(".log")
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        peaks = watch_memory(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"main command failed:\n{err[-3000:]}")
    timings = json.loads((out / "timings.json").read_text())
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2),
            "peak_anon_gb": round(peaks["RssAnon"] / 1e6, 2),
            "peak_file_gb": round(peaks["RssFile"] / 1e6, 2), "stages": timings, "flags": flags}


def watch_memory(pid: int) -> dict:
    """Polls /proc/pid/status twice a second in a thread: the largest RssAnon (memory the
    process owns: what must fit in RAM) and RssFile (pages of mapped files, e.g. the
    memory-mapped features: clean, the kernel can drop them) seen, in kB, filled while the
    process runs (ru_maxrss counts both together)."""
    import threading

    peaks = {"RssAnon": 0, "RssFile": 0}

    def poll() -> None:
        while True:
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                return
            for line in lines:
                key, _, value = line.partition(":")
                if key in peaks and value.split()[0].isdigit():
                    peaks[key] = max(peaks[key], int(value.split()[0]))
            if "State:\tZ" in "\n".join(lines):
                return
            time.sleep(0.5)

    threading.Thread(target=poll, daemon=True).start()
    return peaks


def run_round(folder: Path, num_p: int, num_r: int, dim: int, max_labels: int) -> dict:
    """One round's library calls in a fresh process (its own peak memory)."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_scale as b; print(json.dumps(b.round_here("
            f"{str(folder)!r}, {num_p}, {num_r}, {dim}, {max_labels})))")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("round failed")
    res = json.loads(proc.stdout.read().strip().splitlines()[-1])
    return {**res, "wall_s": round(time.perf_counter() - start, 1),
            "peak_rss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2)}


def timed(record: dict, name: str, fn):
    """fn() with its wall seconds (JAX results waited for) stored under record[name]."""
    start = time.perf_counter()
    out = block(fn())
    record[name] = round(time.perf_counter() - start, 3)
    return out


def round_here(folder: str, num_p: int, num_r: int, dim: int, max_labels: int) -> dict:
    """One active round with the shipped defaults, timed stage by stage (see the docstring)."""
    import jax

    from aeuf import embed
    from aeuf.acquire import knn_graph, make_rule, select_prompts
    from aeuf.config import AcquireConfig, HeadConfig
    from aeuf.head import make_head
    from aeuf.head.padding import pow2_steps
    from aeuf.head.train import schedule
    from aeuf.io import read_precomputed_features
    from aeuf.run.featurize import feature_dtype
    from aeuf.types import Comparisons

    peak = {"numpy": matmul_peak("numpy"), "jax": matmul_peak("jax")}
    t: dict[str, float] = {}
    _, values = read_precomputed_features(str(Path(folder) / "features.npy"))
    dtype = feature_dtype("auto", values.size)
    x = timed(t, "compose", lambda: embed.compose([values], dtype=dtype)).reshape(num_p, num_r, dim)
    pfeat = timed(t, "prompt_features", lambda: x.mean(axis=1, dtype=np.float32))
    acfg, hcfg = AcquireConfig(), HeadConfig()
    graph = timed(t, "knn_graph", lambda: knn_graph(pfeat, acfg.knn_k,
                                                   exact_max=acfg.knn_exact_max,
                                                   index=acfg.knn_index))
    rng = np.random.default_rng(1)
    m = min(num_p, max_labels)
    a = rng.integers(0, num_r, m)
    comps = Comparisons(rng.choice(num_p, m, replace=False).astype(np.int32), a.astype(np.int32),
                        ((a + rng.integers(1, num_r, m)) % num_r).astype(np.int32),
                        rng.integers(0, 2, m).astype(np.float32))
    head = make_head(hcfg)
    state = head.init(dim, key=jax.random.key(0))
    fitted = timed(t, "fit", lambda: head.fit(state, x, comps, key=jax.random.key(1)))
    belief = timed(t, "belief", lambda: head.belief(fitted, x, key=None, embed=False))
    rule = make_rule(acfg)
    choice = timed(t, "dts", lambda: rule.select(belief, x, key=jax.random.key(2), k=2))
    timed(t, "bal_pm", lambda: select_prompts(np.asarray(choice.score), pfeat,
                                              np.zeros(num_p, bool), num_p // 4, acfg,
                                              graph=graph))
    fwd, train = mlp_flops(dim, tuple(hcfg.hidden))
    batch, _, _, steps = schedule(m, hcfg, pow2_steps)
    fit_flop = (train * steps * batch + fwd * m) * 2 * hcfg.members  # + the design pass
    floors = {"fit": floor_seconds(fit_flop, peak["jax"]),
              "belief": floor_seconds(fwd * num_p * num_r * hcfg.members, peak["jax"]),
              "knn_graph": floor_seconds(2.0 * num_p**2 * dim, peak["numpy"])}
    return {"P": num_p, "labels": m, "steps": steps, "batch": batch, "dtype": np.dtype(dtype).name,
            "exact_graph": num_p <= (acfg.knn_exact_max or num_p), "peak_gflops": peak,
            "seconds": t, "floor_s": {k: round(v, 3) for k, v in floors.items()},
            "x_floor": {k: round(t[k] / v, 2) for k, v in floors.items()},
            "machine": machine()}


def plot(results: list[dict], path: Path) -> None:
    """Time and memory of the main command and the round against P, log axes."""
    time_panel, memory = {}, {}
    for kind in ("main", "round"):
        rows = [r for r in results if kind in r]
        ps = [r["P"] for r in rows]
        time_panel[kind] = (ps, [r[kind]["wall_s"] for r in rows])
        memory[f"{kind}, peak RSS"] = (ps, [r[kind]["peak_rss_gb"] for r in rows])
        anon = [(r["P"], r[kind]["peak_anon_gb"]) for r in rows if "peak_anon_gb" in r[kind]]
        if anon:
            memory[f"{kind}, peak owned (anonymous) memory"] = tuple(zip(*anon))
    plot_lines(path, {"wall seconds": time_panel, "peak resident GB": memory},
               "prompts P (x 8 responses)", log=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", default="10000,100000,1000000")
    ap.add_argument("--responses", type=int, default=8)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--max-labels", type=int, default=100_000)
    ap.add_argument("--main-flags", default="", help="extra flags for the main command")
    ap.add_argument("--out", default="bench_out/scale")
    ap.add_argument("--skip-main", action="store_true")
    ap.add_argument("--skip-round", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = json.loads((out / "scale.json").read_text()) if (out / "scale.json").exists() else []
    for num_p in (int(p) for p in args.prompts.split(",")):
        folder = make_data(out / f"data_{num_p}", num_p, args.responses, args.dim)
        row = next((r for r in results if r["P"] == num_p), None) or {"P": num_p}
        results = [r for r in results if r["P"] != num_p] + [row]
        if not args.skip_round:
            row["round"] = run_round(folder, num_p, args.responses, args.dim, args.max_labels)
        if not args.skip_main:
            row["main"] = run_main(folder, args.responses, args.main_flags.split())
        results.sort(key=lambda r: r["P"])
        (out / "scale.json").write_text(json.dumps(results, indent=1))
        print(json.dumps(row), flush=True)
    if not any("main" in r or "round" in r for r in results):  # data made, nothing timed
        print(f"made the data under {out}; nothing timed")
        return
    plot(results, out / "scale.png")
    print(f"wrote {out / 'scale.json'} and {out / 'scale.png'}")


if __name__ == "__main__":
    main()
