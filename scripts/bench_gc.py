"""Time in Python's cycle collector during the main command, with aeuf's threshold
(cli.quiet_gc: young collections every 100,000 allocations) and with Python's default (700).

    python scripts/bench_gc.py POOL FEATURES [--responses 8] [--pairs 1]

POOL and FEATURES are a pool and its precomputed features.npy (scripts/bench_scale.py makes
them in OUT/data_P). Each setting runs `aeuf POOL --features file --precomputed FEATURES
--oracle replay --num_responses R --num_annotations 2` in a fresh process, the two
alternating, and reports its wall time, the collections per generation and the seconds
spent in them (gc.callbacks), and the dataset's md5 (the same for both).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import gc, json, sys, time
import aeuf.cli as cli
if sys.argv[1] == "default":
    cli.quiet_gc = lambda: None
spent, count, start = [0.0, 0.0, 0.0], [0, 0, 0], [0.0]
def watch(phase, info):
    if phase == "start":
        start[0] = time.perf_counter()
    else:
        spent[info["generation"]] += time.perf_counter() - start[0]
        count[info["generation"]] += 1
gc.callbacks.append(watch)
t = time.perf_counter()
code = cli.main(sys.argv[2:])
print(json.dumps({"code": code, "wall": time.perf_counter() - t, "spent": spent,
                  "count": count, "threshold": gc.get_threshold()}))
"""


def run(setting: str, pool: str, features: str, responses: int, out: Path) -> dict:
    args = [pool, "--features", "file", "--precomputed", features, "--oracle", "replay",
            "--num_responses", str(responses), "--num_annotations", "2", "--output_dir",
            str(out), "--no_progress"]
    done = subprocess.run([sys.executable, "-c", CHILD, setting, *args], capture_output=True,
                          text=True, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    got["md5"] = hashlib.md5((out / "preferences.jsonl").read_bytes()).hexdigest()
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool")
    ap.add_argument("features")
    ap.add_argument("--responses", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for setting in ("default", "aeuf"):
                got = run(setting, args.pool, args.features, args.responses,
                          Path(tmp) / f"{setting}{i}")
                print(f"{setting:8s} threshold {got['threshold']}: wall {got['wall']:.1f} s, "
                      f"collections {got['count']}, in them {sum(got['spent']):.2f} s "
                      f"({', '.join(f'{s:.2f}' for s in got['spent'])} by generation), "
                      f"dataset {got['md5'][:8]}", flush=True)


if __name__ == "__main__":
    main()
