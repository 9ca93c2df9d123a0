"""Self-labelling with a guarantee: the head labels the pairs it is provably sure of.

Every pair the oracle decides after the head's first fit is a calibration point: the head's
confidence before the label, c = max(P, 1 - P) with P = P(slot 0 beats slot 1) =
mean_k sigmoid(r_0^k - r_1^k) over its K joint samples (its Bradley-Terry posterior
predictive), and whether the oracle preferred the head's favourite. An oracle tie is left
out, as in the head's agreement (aeuf.run.round.absorbing.agreement): the guarantee is on the pairs
the oracle would have decided. On a pair the oracle would have called a tie the head still
exports its favourite (a row a tie-dropping judge would not have exported); how often that
happens is measured in scripts/bench_selflabel.py ("rows on gold ties"). Counting ties as
errors was tried first: among the head's confident pairs, the share the oracle ties grows
over a run (none in rounds 2-5 of the AlpacaEval runs, 2-10% later), so a threshold
calibrated on early rounds missed a 0.95 target on 1 seed of 5 (BENCHMARKS.md).

The confidence threshold is chosen from that set, never by hand, by fixed-sequence testing
over a fixed grid of thresholds (Learn-then-Test, Angelopoulos et al. 2021): going down the
grid from the most confident, each threshold lambda is accepted while the one-sided
Clopper-Pearson lower bound of the accuracy of the calibration pairs with c >= lambda is at
least the target; the first failure stops the walk. One walk that starts at the smallest
set able to certify the target (59 pairs, all right, for 0.95) is fragile: a single wrong
label among the head's most confident pairs ends it, and on the AlpacaEval pools the head
is about 0.96-0.97 right at every confidence, so in the main command's four rounds it
self-labelled nothing (BENCHMARKS.md, issue 19). So J = len(TOLERANCES) walks run, each at
level 1 - delta/J (Bonferroni), walk j skipping every set smaller than the fewest pairs at
which TOLERANCES[j] wrong labels can still certify the target; the threshold is the lowest
any walk accepts. Which sets each walk tests depends on the confidences only, never the
labels, so with probability at least 1 - delta every accepted threshold (of every walk) has
accuracy >= target on pairs distributed like the calibration pairs. Pairs of later rounds
at or above the threshold are labelled by the head and never sent, except a `check_fraction`
share of them (rounded up, drawn at random each round: check_slice) that is still sent:
those keep the calibration set fresh above the threshold (below it every pair is sent
anyway, so the set over-represents the less confident pairs: the bound errs on the safe
side).

The head does not train on its own labels: a self-label carries no information the head did
not already have, and fitting it would only shrink the head's uncertainty without evidence,
which raises its confidence, which self-labels more: errors would reinforce themselves.

Shape letters: b prompts in a round, K joint samples, C calibration pairs.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from jaxtyping import Bool, Float
from scipy.stats import beta

from aeuf.run.round.types import Calibration
from aeuf.types import SELF_LABEL, Belief, Judgement, JudgeTask

HEAD = SELF_LABEL  # Labelled.judge of a self-labelled pair
GRID = 1.0 / (1.0 + np.exp(-np.linspace(12.0, 0.0, 1201)))  # thresholds, most confident first


@functools.lru_cache(maxsize=65536)
def lower_bound(k: int, n: int, delta: float) -> float:
    """One-sided Clopper-Pearson lower bound of a success rate: k successes in n trials,
    level 1 - delta (the delta quantile of Beta(k, n - k + 1); 0 when k = 0)."""
    if n == 0 or k == 0:
        return 0.0
    if k == n:
        return delta ** (1.0 / n)
    return float(beta.ppf(delta, k, n - k + 1))


def min_pairs(target: float, delta: float) -> int:
    """The fewest calibration pairs that can certify `target` (all of them right):
    the smallest n with delta**(1/n) >= target."""
    return max(1, math.ceil(math.log(delta) / math.log(target) - 1e-12))


TOLERANCES = (0, 2, 5)  # wrong labels the first set tested by each walk may hold


@functools.lru_cache(maxsize=256)
def start_pairs(target: float, delta: float, errors: int) -> int:
    """The fewest calibration pairs n at which n - errors right ones certify `target`:
    the smallest n with lower_bound(n - errors, n, delta) >= target (bisection; it grows
    with n)."""
    lo = min_pairs(target, delta) + errors  # too few when errors > 0, exact when 0
    if errors == 0:
        return lo
    hi = lo
    while lower_bound(hi - errors, hi, delta) < target:
        lo, hi = hi, 2 * hi
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if lower_bound(mid - errors, mid, delta) < target else (lo, mid)
    return lo


def walk(calib: Calibration, target: float, delta: float, need: int) -> float | None:
    """One fixed-sequence walk down GRID at level 1 - delta over the sets of at least
    `need` pairs: the lowest threshold accepted before the first failure, or None."""
    conf, correct = calib.conf, calib.correct
    accepted = None
    for lam in GRID:
        above = conf >= lam
        n = int(above.sum())
        if n < need:
            continue
        if lower_bound(int(correct[above].sum()), n, delta) < target:
            break
        accepted = float(lam)
    return accepted


def threshold(calib: Calibration, target: float, delta: float) -> float | None:
    """The lowest grid threshold accepted by any of the J walks (see the module docstring),
    or None when none accepts one."""
    level = delta / len(TOLERANCES)
    cuts = [walk(calib, target, level, start_pairs(target, level, e)) for e in TOLERANCES]
    cuts = [c for c in cuts if c is not None]
    return min(cuts) if cuts else None


def pair_prob(belief: Belief | None, prompts, slots) -> Float[np.ndarray, " b"] | None:
    """P(slot 0 beats slot 1) per prompt: mean_k sigmoid(r_0^k - r_1^k) over the belief's
    joint samples [K, P, R]; None without a belief or unless exactly 2 responses are shown."""
    if belief is None or np.shape(slots)[1] != 2:
        return None
    s = np.asarray(belief.samples)[:, prompts].astype(np.float64)  # [K, b, R]: the rows first
    rows = np.arange(len(prompts))
    d = s[:, rows, slots[:, 0]] - s[:, rows, slots[:, 1]]  # [K, b]
    return np.exp(-np.logaddexp(0.0, -d)).mean(axis=0)


def confidence(p) -> np.ndarray:
    """max(P, 1 - P): the head's confidence in its favourite."""
    p = np.asarray(p, np.float64)
    return np.maximum(p, 1.0 - p)


def check_slice(rng: np.random.Generator, b: int, head_p, cut: float | None,
                fraction: float) -> Bool[np.ndarray, " b"]:
    """The round's check rows [b]: a fixed share, ceil(fraction x n), drawn at random among
    the n rows the head would label (among all b rows when it labels none: the cascade's
    check), so that no round self-labels without its check."""
    sure = (np.zeros(b, bool) if cut is None or head_p is None
            else confidence(head_p) >= cut)
    rows = np.flatnonzero(sure) if sure.any() else np.arange(b)
    out = np.zeros(b, bool)
    out[rng.permutation(rows)[:math.ceil(fraction * len(rows) - 1e-9)]] = True
    return out


def decide(head_p, check, cut: float | None) -> Bool[np.ndarray, " b"]:
    """Which pairs the head labels: confidence >= cut and not drawn for the check slice."""
    if cut is None or head_p is None:
        return np.zeros(np.shape(check), bool)
    return (confidence(head_p) >= cut) & ~np.asarray(check, bool)


def head_judgement(task: JudgeTask, p: float) -> Judgement:
    """The head's verdict on a pair as a Judgement: P(slot 0 beats slot 1) = p."""
    return Judgement(task, np.full(len(task.responses), np.nan), [(0, 1, float(p))])


def calibration_points(head_p, labelled_rows) -> tuple[list[float], list[bool]]:
    """(confidence, correct) of oracle-decided rows: labelled_rows = [(row, Labelled)] with
    row the plan row; correct = the oracle preferred the head's favourite; ties left out."""
    conf, correct = [], []
    for row, lab in labelled_rows:
        p = float(head_p[row])
        if not math.isfinite(p) or lab.tie:
            continue
        favourite = 0 if p >= 0.5 else 1
        conf.append(max(p, 1.0 - p))
        correct.append(lab.chosen == favourite)
    return conf, correct
