"""Small synthetic pools with gold scores, built in memory."""

from __future__ import annotations

import numpy as np

from aeuf.types import ResponsePool


def synthetic_pool(gold: np.ndarray) -> ResponsePool:
    """A ResponsePool of P prompts x R responses ('answer i to p', models m0..m{R-1}) with
    the given gold scores [P, R]."""
    P, R = gold.shape
    grid = lambda f: np.array([[f(p, i) for i in range(R)] for p in range(P)], dtype=object)  # noqa: E731
    return ResponsePool(np.array([f"q{p}" for p in range(P)], dtype=object),
                        np.array([f"question {p}" for p in range(P)], dtype=object),
                        grid(lambda p, i: f"answer {i} to {p}"), grid(lambda p, i: f"m{i}"),
                        grid(lambda p, i: f"q{p}:{i}"), gold, "score", "synthetic")
