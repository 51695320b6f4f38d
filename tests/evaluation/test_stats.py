"""Wilson intervals, ROC AUC and the operating point, against known values and definitions."""

import itertools

import numpy as np
import pytest

from tfrecap import evaluation as ev


def test_wilson_interval_known_values():
    lo, hi = ev.wilson_interval(81, 263)  # worked example of Wilson (1927)-style intervals
    assert lo == pytest.approx(0.2553, abs=1e-3) and hi == pytest.approx(0.3662, abs=1e-3)
    assert ev.wilson_interval(0, 10)[0] == 0.0
    assert ev.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert ev.wilson_interval(0, 0) == (0.0, 1.0)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    labels = rng.integers(0, 2, 40)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = [(p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg)]
    assert ev.roc_auc(scores, labels) == pytest.approx(np.mean(pairs))


def test_roc_auc_of_a_single_class_is_missing():
    assert np.isnan(ev.roc_auc(np.array([0.2, 0.7]), np.array([1, 1])))


def test_threshold_at_fpr_respects_the_rate():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(1000), np.ones(1000)]
    scores = np.r_[rng.normal(0, 1, 1000), rng.normal(2, 1, 1000)]
    point = ev.threshold_at_fpr(scores, labels, fpr=0.05)
    assert point["fpr"] <= 0.05 and point["fpr"] > 0.03
    assert 0.5 < point["tpr"] < 0.9


def test_wilson_interval_holds_its_estimate_at_the_ends():
    """At 0 of 500 correct the float formula gave a lower bound of 4e-19 > 0, and the plot's
    error bar went negative (matplotlib refused it)."""
    for correct, n in ((0, 500), (500, 500), (0, 3), (7, 7), (123, 500)):
        low, high = ev.wilson_interval(correct, n)
        assert low <= correct / n <= high
    assert ev.wilson_interval(0, 500)[0] == 0.0 and ev.wilson_interval(500, 500)[1] == 1.0
