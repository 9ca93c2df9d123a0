"""Calibration metrics against brute-force definitions and known answers."""

import numpy as np
import pytest

from aeuf.bench.calibration import (
    brier,
    calibration,
    ece,
    gaussian_interval,
    interval_coverage,
    sample_interval,
)
from aeuf.errors import ConfigError


def ece_brute(p, y, bins):
    """Equal-mass ECE written out: sort, cut into `bins` runs of (nearly) equal length."""
    order = sorted(range(len(p)), key=lambda i: (p[i], i))
    n, total, start = len(p), 0.0, 0
    for k in range(bins):
        size = n // bins + (1 if k < n % bins else 0)
        idx = order[start:start + size]
        start += size
        if idx:
            total += abs(np.mean([y[i] for i in idx]) - np.mean([p[i] for i in idx])) * len(idx)
    return total / n


def test_ece_matches_the_brute_force_definition():
    rng = np.random.default_rng(0)
    p, y = rng.random(103), (rng.random(103) < 0.5).astype(float)
    for bins in (1, 7, 10):
        assert ece(p, y, bins) == pytest.approx(ece_brute(p, y, bins), abs=1e-12)


def test_ece_is_small_for_calibrated_and_large_for_overconfident_predictions():
    rng = np.random.default_rng(1)
    logit = rng.normal(scale=1.5, size=200_000)
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(p.size) < p).astype(float)
    assert ece(p, y) < 0.01
    over = 1.0 / (1.0 + np.exp(-3.0 * logit))  # same ranking, three times too sure
    assert ece(over, y) > 0.08
    assert brier(over, y) > brier(p, y)


def test_brier_on_hand_computed_values():
    assert brier([0.9, 0.2, 0.5], [1.0, 0.0, 1.0]) == pytest.approx((0.01 + 0.04 + 0.25) / 3)
    assert brier([0.7], [0.7]) == 0.0  # soft target


def test_gaussian_interval_covers_its_level_on_gaussian_truth():
    rng = np.random.default_rng(2)
    mean, sd = rng.normal(size=100_000), rng.uniform(0.5, 2.0, 100_000)
    truth = mean + sd * rng.normal(size=mean.size)
    lo, hi = gaussian_interval(mean, sd**2, 0.9)
    assert interval_coverage(lo, hi, truth) == pytest.approx(0.9, abs=0.005)
    np.testing.assert_allclose(hi - lo, 2 * 1.6448536 * sd, rtol=1e-6)
    lo, hi = gaussian_interval(mean, (0.5 * sd) ** 2, 0.9)  # a too-narrow interval
    assert interval_coverage(lo, hi, truth) < 0.65


def test_sample_interval_uses_the_central_quantiles():
    s = np.arange(101, dtype=float)[:, None] * np.ones((1, 3))  # 0..100 for each of 3 pairs
    lo, hi = sample_interval(s, 0.9)
    np.testing.assert_allclose(lo, 5.0)
    np.testing.assert_allclose(hi, 95.0)
    with pytest.raises(ConfigError):
        sample_interval(s, 1.5)


def test_calibration_of_a_belief_on_test_pairs():
    rng = np.random.default_rng(3)
    gold = rng.normal(size=(50, 4))
    samples = gold[None] + rng.normal(size=(2000, 50, 4))  # a belief centred on gold
    mean = samples.mean(0)
    pa, a, b = np.repeat(np.arange(50), 6), np.tile([0, 0, 0, 1, 1, 2], 50), np.tile([1, 2, 3, 2, 3, 3], 50)
    prob = np.full(a.size, 0.5)
    y = (gold[pa, a] > gold[pa, b]).astype(float)
    cal = calibration(mean, samples, None, prob, y, gold, pa, a, b)
    assert cal.coverage == pytest.approx(cal.coverage_samples, abs=0.03)
    assert 0.8 < cal.coverage <= 1.0 and cal.brier == pytest.approx(0.25)
    assert cal.width == pytest.approx(2 * 1.645 * np.sqrt(2), rel=0.05)
