"""Benchmark metrics against hand-computed values."""

import math

import numpy as np
import pytest

from aeuf.bench import metrics as M
from aeuf.errors import ConfigError


def test_held_out_pairs_drop_gold_ties_and_label_by_gold():
    pairs = M.held_out_pairs(np.array([[1.0, 1.0, 2.0], [0.0, 3.0, -1.0]]))
    got = sorted(zip(pairs.prompt.tolist(), pairs.a.tolist(), pairs.b.tolist(), pairs.y.tolist()))
    assert got == [(0, 0, 2, 0.0), (0, 1, 2, 0.0), (1, 0, 1, 0.0), (1, 0, 2, 1.0), (1, 1, 2, 1.0)]
    q = dict(zip(zip(pairs.prompt.tolist(), pairs.a.tolist(), pairs.b.tolist()), pairs.q))
    assert q[(1, 1, 2)] == pytest.approx(1 / (1 + math.exp(-4.0)))


def test_held_out_pairs_sample_is_seeded_and_bounded():
    g = np.arange(40.0).reshape(4, 10)
    a, b = M.held_out_pairs(g, 25, seed=3), M.held_out_pairs(g, 25, seed=3)
    assert a.prompt.size == 25 and np.array_equal(a.a, b.a) and np.array_equal(a.b, b.b)


def test_pair_accuracy_counts_score_ties_as_half():
    pairs = M.held_out_pairs(np.array([[3.0, 1.0, 2.0]]))
    # (0,1): right; (0,2): tied scores -> 1/2; (1,2): 1 < 2 and 0.1 < 0.9 -> right
    assert M.pair_accuracy(np.array([[0.9, 0.1, 0.9]]), pairs) == pytest.approx(2.5 / 3)
    assert M.pair_accuracy(np.array([[0.0, 1.0, 0.5]]), pairs) == pytest.approx(0.0)


def test_log_likelihood_hard_and_soft_labels():
    assert M.log_likelihood([0.8, 0.3], [1.0, 0.0]) == pytest.approx((math.log(0.8) + math.log(0.7)) / 2)
    assert M.log_likelihood([0.5], [0.25]) == pytest.approx(math.log(0.5))
    assert M.log_likelihood([0.9], [0.25]) == pytest.approx(0.25 * math.log(0.9) + 0.75 * math.log(0.1))
    assert np.isfinite(M.log_likelihood([1.0], [0.0]))  # clipped, not -inf


def test_pair_probs_average_probabilities_over_joint_samples():
    pairs = M.held_out_pairs(np.array([[1.0, 0.0]]))
    samples = np.array([[[1.0, 0.0]], [[0.0, 0.0]]])  # [K=2, T=1, R=2]
    want = (1 / (1 + math.exp(-1.0)) + 0.5) / 2  # not sigmoid of the mean difference
    assert M.pair_probs(samples, pairs)[0] == pytest.approx(want)
    assert M.pair_probs(samples[0], pairs)[0] == pytest.approx(1 / (1 + math.exp(-1.0)))


def test_best_of_n_regret_with_a_tie_for_first():
    gold = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    scores = np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0]])
    # prompt 0 picks response 1: 3 - 1 = 2; prompt 1 ties 0 and 1: 5 - (0 + 5) / 2 = 2.5
    assert M.best_of_n_regret(scores, gold) == pytest.approx(2.25)
    assert M.best_of_n_regret(gold, gold) == 0.0


def test_area_under_curve_is_the_mean_height():
    assert M.area_under_curve([0, 10, 20], [0.5, 0.7, 0.7]) == pytest.approx(0.65)
    assert M.area_under_curve([0, 10, 30], [0.5, 0.7, 0.7]) == pytest.approx((6 + 14) / 30)
    assert M.area_under_curve([5], [0.6]) == 0.6
    with pytest.raises(ConfigError):
        M.area_under_curve([0, 0], [0.5, 0.6])


def test_labels_to_reach_interpolates_linearly():
    x, y = [100, 200, 300], [0.6, 0.7, 0.8]
    assert M.labels_to_reach(x, y, 0.75) == pytest.approx(250)
    assert M.labels_to_reach(x, y, 0.55) == 100
    assert M.labels_to_reach(x, y, 0.7) == 200
    assert M.labels_to_reach(x, y, 0.9) is None
    assert M.labels_to_reach(x, [0.6, 0.8, 0.7], 0.75) == pytest.approx(175)  # first crossing


def test_labels_saved_against_randoms_final_accuracy():
    x = [100, 200, 300, 400]
    random, rule = [0.6, 0.65, 0.7, 0.72], [0.62, 0.7, 0.74, 0.75]
    # target 0.72: random needs 400; the rule crosses between 200 (0.70) and 300 (0.74) at 250
    assert M.labels_saved(x, rule, random) == pytest.approx(1 - 250 / 400)
    assert M.labels_saved(x, random, random) == 0.0
    assert M.labels_saved(x, [0.5, 0.6, 0.7, 0.71], random) is None


def test_paired_difference_standard_error():
    m, se = M.paired_difference([0.80, 0.82, 0.85], [0.78, 0.80, 0.80])
    # d = [.02, .02, .05]: mean .03, sample std sqrt(.0006 / 2) = .01732, se = .01732 / sqrt(3)
    assert m == pytest.approx(0.03) and se == pytest.approx(0.01)
    assert M.paired_difference([0.7], [0.6]) == pytest.approx((0.1, 0.0))
    with pytest.raises(ConfigError):
        M.paired_difference([0.7, 0.8], [0.6])


def test_mean_se_over_seeds_of_curves():
    m, se = M.mean_se([[1.0, 2.0], [3.0, 2.0]])
    assert m.tolist() == [2.0, 2.0] and se == pytest.approx([1.0, 0.0])


def test_sigmoid_is_stable():
    assert M.sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist() == [0.0, 0.5, 1.0]


def test_labels_saved_band_is_a_paired_bootstrap_over_seeds():
    x = [100, 200, 300, 400]
    rand = np.array([[0.60, 0.65, 0.70, 0.72], [0.62, 0.66, 0.71, 0.74]])
    # in every resample (the same seeds drawn for both curves) the rule's mean curve crosses
    # random's final value between 200 and 300 labels: 1 - 250/400 or 1 - 275/400 or between
    rule = rand + np.array([0.02, 0.05, 0.04, 0.02])
    lo, hi, reached = M.labels_saved_band(x, rule, rand, resamples=200, seed=1)
    assert reached == 1.0 and lo <= M.labels_saved(x, rule.mean(0), rand.mean(0)) <= hi
    assert 0.3 < lo <= hi < 0.45
    lo, hi, reached = M.labels_saved_band(x, rand - 0.05, rand, resamples=50)
    assert (lo, hi, reached) == (None, None, 0.0)  # never reaches random's final accuracy
    one = M.labels_saved_band(x, rule[:1], rand[:1])
    assert one[0] == one[1] == pytest.approx(M.labels_saved(x, rule[0], rand[0]))
