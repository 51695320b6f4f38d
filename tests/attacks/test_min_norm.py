"""The minimum-ε search: the closed form on a linear model, the curve and the median.

On a linear model ``z = x·W + b`` an L∞ step of k whole levels (no clipping) moves the margin
of the predicted class by exactly ``k·‖w_0 − w_1‖₁``. Attacks round to 8-bit images, so the
smallest budget that flips an image with margin m is ``k* = floor(m / ‖w_0 − w_1‖₁) + 1``.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfrecap.attacks.min_norm import median_eps, minimum_eps, robustness_curve

SHAPE = (8, 4, 4, 3)
EPS_MAX, SEARCH_STEPS = 4.0, 5


def linear_case():
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 0.01, (int(np.prod(SHAPE[1:])), 2)).astype(np.float32)
    # Mid-range pixels: a budget of EPS_MAX never reaches 0 or 255.
    x = rng.integers(64, 192, SHAPE).astype(np.float32)
    flat = x.reshape(SHAPE[0], -1)
    bias = np.array([0.0, -np.median(flat @ (weights[:, 1] - weights[:, 0]))], np.float32)

    def model(images):
        return tf.reshape(images, [tf.shape(images)[0], -1]) @ weights + bias

    logits = flat @ weights + bias
    in_levels = np.abs(logits[:, 0] - logits[:, 1]) / np.abs(weights[:, 0] - weights[:, 1]).sum()
    return model, tf.constant(x), np.floor(in_levels) + 1, in_levels


def test_matches_the_closed_form_on_a_linear_model():
    model, x, needed, in_levels = linear_case()
    # The case covers every branch, away from ties: reachable, out of reach, misclassified.
    assert np.all(np.abs(in_levels - np.round(in_levels)) > 0.02)
    assert (needed <= EPS_MAX).sum() >= 3 and (needed > EPS_MAX).sum() >= 1
    predicted = np.argmax(model(x).numpy(), axis=-1)
    y = predicted.copy()
    y[0] = 1 - y[0]  # image 0 is misclassified from the start
    found = minimum_eps(model, x, y, eps_max=EPS_MAX, search_steps=SEARCH_STEPS, steps=5)
    assert found.dtype == np.float32 and found.shape == (SHAPE[0],)
    assert found[0] == 0
    interval = EPS_MAX / 2**SEARCH_STEPS
    for i in range(1, SHAPE[0]):
        if needed[i] > EPS_MAX:
            assert found[i] == np.inf, (i, needed[i], found[i])
        else:  # the true minimum lies in (low, high] and the search returns high
            assert needed[i] <= found[i] < needed[i] + interval, (i, needed[i], found[i])


def test_integral_images_get_whole_levels_when_the_grid_is_not():
    # ε_max = 5 and 6 rounds put the bisection's points off the whole levels (3.05 ...): a
    # flip found at 3.05 used 3 levels once rounded, and must be reported as 3.
    model, x, needed, _ = linear_case()
    found = minimum_eps(model, x, eps_max=5.0, search_steps=6, steps=5)
    for i in range(SHAPE[0]):
        expected = np.inf if needed[i] > 5.0 else needed[i]
        assert found[i] == expected, (i, needed[i], found[i])


def test_labels_default_to_the_prediction_and_bad_settings_raise():
    model, x, needed, _ = linear_case()
    found = minimum_eps(model, x[:3], eps_max=EPS_MAX, search_steps=2, steps=3)
    assert np.all(found > 0)
    for i in range(3):
        assert found[i] == np.inf if needed[i] > EPS_MAX else needed[i] <= found[i]
    with pytest.raises(ValueError, match="`eps_max` has to be a positive"):
        minimum_eps(model, x, eps_max=0.0)
    with pytest.raises(ValueError, match="`search_steps` has to be an integer >= 0"):
        minimum_eps(model, x, search_steps=-1)
    with pytest.raises(ValueError, match="`steps` has to be a positive integer"):
        minimum_eps(model, x, steps=0)


def test_robustness_curve_is_monotone_and_counts_strictly_above():
    min_eps = np.array([0.0, 1.0, 2.5, 2.5, 7.0, np.inf, np.inf, 4.0])
    grid = [0.0, 1.0, 2.0, 2.5, 3.0, 8.0, 100.0]
    curve = robustness_curve(min_eps, grid)
    np.testing.assert_allclose(curve, [7 / 8, 6 / 8, 6 / 8, 4 / 8, 4 / 8, 2 / 8, 2 / 8])
    dense = robustness_curve(np.random.default_rng(0).exponential(3.0, 50), np.linspace(0, 20))
    assert np.all(np.diff(dense) <= 0) and dense[0] == 1.0
    with pytest.raises(ValueError, match="empty"):
        robustness_curve([], grid)


def test_median_handles_inf():
    assert median_eps([3.0, 1.0, np.inf]) == 3.0
    assert median_eps([1.0, 3.0]) == 2.0
    assert median_eps([1.0, np.inf]) == np.inf
    assert median_eps([np.inf, np.inf, 0.0]) == np.inf
    with pytest.raises(ValueError, match="no median"):
        median_eps([])
