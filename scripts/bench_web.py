"""Key press -> "saved" latency of the web oracle's page (issue 20), in Debian's headless
Chromium: a 64-prompt run (one round of 64 pairs, features `stats`), every pair answered by
keyboard; each latency runs from Playwright's key press to the page showing the next pair,
which it does only after the server replied that the answer is fsync'd in judgements.jsonl.
Includes Playwright's own round trips, so it is an upper bound of what a person feels.

    PYTHONPATH=$PWD python scripts/bench_web.py [--prompts 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests" / "support")]
from webpage import ARGS, CHROMIUM, Run, shown_key, write_pool  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=64)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        n = args.prompts
        pool = write_pool(Path(tmp) / "pool.csv",
                          [[f"answer {p} {r}\n\n```python\nprint({p})\n```" + " word" * (20 * r)
                            for r in range(2)] for p in range(n)])
        run = Run([str(pool), "--num_responses", "2", "--features", "stats", "--head", "bll",
                   "--batch_size", str(n), "--output_dir", str(Path(tmp) / "run")])
        took = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(run.links["annotator1"])
            page.wait_for_selector("#pair:not([hidden])")
            for _ in range(n):
                old = shown_key(page)
                t0 = time.perf_counter()
                page.keyboard.press("1")
                page.wait_for_function("""old => { const p = document.getElementById('pair');
                    return p.dataset.key !== old || p.hidden; }""", arg=old)
                took.append(time.perf_counter() - t0)
            browser.close()
        rc = run.wait()
    ms = np.array(took) * 1000
    print(f"web oracle, {len(ms)} key presses -> saved and next pair shown (rc {rc}): "
          f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
          f"max {ms.max():.1f} ms")


if __name__ == "__main__":
    main()
