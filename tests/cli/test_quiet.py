"""--no_progress means no progress bars at all: the model libraries' "Loading weights" bars
included (issue 24, item 29)."""

import os
import subprocess
import sys

import pandas as pd


def test_no_progress_silences_the_model_loading_bars(tmp_path):
    rows = [{"instruction": f"Question {n}?", "response_0": f"Answer {n}.",
             "response_1": f"Another answer {n}."} for n in range(3)]
    pd.DataFrame(rows).to_csv(tmp_path / "pool.csv", index=False)
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    done = subprocess.run([sys.executable, "-m", "aeuf", "embed", str(tmp_path / "pool.csv"),
                           "--features", "minilm", "--output_dir", str(tmp_path / "out"),
                           "--no_progress"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr and "it/s]" not in done.stderr, done.stderr
    assert "responses x" in done.stderr  # the command's own one-line summary still prints
