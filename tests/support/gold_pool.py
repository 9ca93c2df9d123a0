"""The main command's small test pool: P prompts x R responses with gold scores (a CSV the
replay oracle labels), and the flags that keep a run on it to seconds (`stats` features, a
small ensemble). Shared by the run, resume and command tests."""

from pathlib import Path

import numpy as np
import pandas as pd

P, R = 24, 4
FAST = ["--features", "stats", "--members", "4", "--hidden", "16,16", "--epochs", "3",
        "--batch_size", "6", "--no_progress"]


def write_gold_pool(path: Path, gold: bool = True) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for p in range(P):
        row = {"instruction": f"Question {p}: explain topic {p} in a few sentences."}
        for r in range(R):
            n = int(rng.integers(1, 40))
            row[f"response_{r}"] = " ".join(f"w{p}x{r}y{i}" for i in range(n)) + "."
            if gold:
                row[f"response_{r}_score"] = float(n + rng.normal(0, 3))
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
