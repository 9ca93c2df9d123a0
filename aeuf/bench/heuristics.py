"""No-call baselines of the `once` regime: pairs exported without asking any oracle (pure).

Each baseline maps a pool to Labelled records, the same records a run exports, so the same
quality metrics and the same reward-model check apply to them.

    length: the longest response (characters) is chosen, the shortest rejected; a prompt whose
        responses all have the same length ties (exports nothing).
    delta: the response of the model believed strongest is chosen, the weakest's rejected
        (Delta Learning, COLM 2025: a preference pair from a stronger and a weaker model,
        no judge). "Believed stronger" uses no label: a user-given ranking (strongest first),
        or by default the parameter count parsed from the model name ("7b", "13B", "8x7B" ->
        56, "135M" -> 0.135; models without one are left out). Several responses of an
        equally ranked model: one is drawn with the seed. A prompt with fewer than two ranked
        models of different rank exports nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from aeuf.errors import ConfigError
from aeuf.registry import Registry
from aeuf.types import Labelled, ResponsePool

BASELINES: Registry[Callable[..., list[Labelled]]] = Registry("no-call baseline")

_MOE = re.compile(r"(?<![\w.])(\d+)x(\d+(?:\.\d+)?)([bm])(?![a-z])")
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([bm])(?![a-z])")


def model_size(name: str) -> float | None:
    """Billions of parameters named in a model name ("Qwen-14B-Chat" -> 14.0,
    "Mixtral-8x7B" -> 56.0, "SmolLM2-135M" -> 0.135), or None when it names none."""
    text = str(name).lower().replace("_", "-")
    moe = _MOE.search(text)
    if moe:
        return int(moe.group(1)) * float(moe.group(2)) / (1000.0 if moe.group(3) == "m" else 1.0)
    one = _SIZE.search(text)
    if one:
        return float(one.group(1)) / (1000.0 if one.group(2) == "m" else 1.0)
    return None


def strength(models, ranking: tuple[str, ...] = ()) -> dict[str, float]:
    """Model name -> believed strength (higher = stronger) for the models that get one: the
    position in `ranking` (strongest first), else the parsed size."""
    names = sorted({str(m) for m in np.asarray(models).ravel() if m is not None})
    if ranking:
        unknown = sorted(set(ranking) - set(names))
        if unknown:
            raise ConfigError(f"--model_ranking names models the pool does not have: "
                              f"{', '.join(unknown)} (pool models: {', '.join(names)})")
        return {m: float(len(ranking) - i) for i, m in enumerate(ranking)}
    sizes = {m: model_size(m) for m in names}
    return {m: s for m, s in sizes.items() if s is not None}


def _record(p: int, slots: tuple[int, int], scores, rule: str, tie: bool) -> Labelled:
    return Labelled(p, slots, np.asarray(scores, np.float64), 0, 1, rule, 0, float("nan"),
                    float("nan"), rule, tie)


@BASELINES.register("length")
def length_pairs(pool: ResponsePool, *, seed: int = 0, ranking: tuple[str, ...] = ()) -> list[Labelled]:
    """Longest vs shortest response of every prompt (first of equal lengths)."""
    lengths = np.vectorize(len, otypes=[np.int64])(pool.responses.astype(str))
    out = []
    for p, row in enumerate(lengths):
        hi, lo = int(np.argmax(row)), int(np.argmin(row))
        out.append(_record(p, (hi, lo), row[[hi, lo]], "length", bool(row[hi] == row[lo])))
    return out


@BASELINES.register("delta")
def delta_pairs(pool: ResponsePool, *, seed: int = 0, ranking: tuple[str, ...] = ()) -> list[Labelled]:
    """The strongest model's response vs the weakest's in every prompt (see the module)."""
    power = strength(pool.models, ranking)
    rng = np.random.default_rng(seed)
    out = []
    for p, models in enumerate(pool.models):
        s = np.array([power.get(str(m), np.nan) for m in models])
        if np.isfinite(s).sum() < 2 or np.nanmax(s) == np.nanmin(s):
            continue
        hi = int(rng.choice(np.flatnonzero(s == np.nanmax(s))))
        lo = int(rng.choice(np.flatnonzero(s == np.nanmin(s))))
        out.append(_record(p, (hi, lo), s[[hi, lo]], "delta", False))
    return out


def baseline_pairs(name: str, pool: ResponsePool, *, seed: int,
                   ranking: tuple[str, ...] = ()) -> list[Labelled]:
    """The Labelled records of the no-call baseline `name` (ConfigError if unknown)."""
    return BASELINES.get(name)(pool, seed=seed, ranking=ranking)
