"""Closed-form checks on a linear model ``z = W x``, where every attack's answer is known.

For 2 classes, ``∇x -log p_y = p_other · (w_other - w_y)``, so FGSM must move every
pixel by ε along ``sign(w_other - w_y)``. The logits' *values* are pinned to a
chosen margin with a stop-gradient offset, which leaves the gradient exactly
that of the linear model: this is how saturated margins are reached.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfrecap.attacks import fgsm, input_gradient, llcm, pgd
from tfrecap.ops import cross_entropy as naive_cross_entropy

SHAPE = (3, 4, 4, 3)
FEATURES = 48


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    w_0 = rng.choice([-1.0, 1.0], FEATURES) * rng.uniform(0.5, 1.0, FEATURES)
    # |w_1 - w_0| >= 0.5 everywhere, and w_1 is not -w_0: the naive gradient (∝ w_1)
    # then disagrees in sign with w_1 - w_0 on some pixels.
    w_1 = w_0 + rng.choice([-1.0, 1.0], FEATURES) * rng.uniform(0.5, 1.0, FEATURES)
    return w_0, w_1


def linear_model(w_0, w_1, margin=None):
    """Logits ``x·W``; with `margin`, their values become ``[margin, 0]`` (class 0 ahead)."""
    weights = tf.constant(np.stack([w_0, w_1], axis=1), tf.float32)

    def model(x):
        z = tf.reshape(x, [tf.shape(x)[0], -1]) @ weights
        if margin is None:
            return z
        return z - tf.stop_gradient(z) + tf.constant([margin, 0.0])

    return model


def _images(seed=1):
    x = np.random.default_rng(seed).integers(0, 256, SHAPE).astype(np.float32)
    x[0, 0, 0] = [0.0, 255.0, 0.0]  # exercise the clip at both ends
    return tf.constant(x)


def _expected(x, direction, eps):
    return np.clip(x.numpy() + eps * direction.reshape(1, 4, 4, 3), 0, 255)


@pytest.mark.parametrize("margin", [-5.0, 1.0, 30.0, 80.0])
def test_fgsm_equals_closed_form(margin):
    w_0, w_1 = _weights()
    x, y = _images(), tf.zeros(SHAPE[0], tf.int32)
    x_adv = fgsm(linear_model(w_0, w_1, margin), x, y, eps=3.0)
    np.testing.assert_array_equal(x_adv.numpy(), _expected(x, np.sign(w_1 - w_0), 3.0))


@pytest.mark.parametrize("margin", [1.0, 30.0, 80.0])
def test_llcm_equals_closed_form_and_fgsm_with_predicted_label(margin):
    """The identity behind the paper's tables: 2-class LLCM = FGSM with the predicted label."""
    w_0, w_1 = _weights()
    model, x = linear_model(w_0, w_1, margin), _images()
    x_llcm = llcm(model, x, eps=4.0)
    np.testing.assert_array_equal(x_llcm.numpy(), _expected(x, np.sign(w_1 - w_0), 4.0))
    np.testing.assert_array_equal(x_llcm.numpy(), fgsm(model, x, None, eps=4.0).numpy())
    # With the wrong true label (1), FGSM goes the other way, and LLCM does not care.
    x_fgsm_1 = fgsm(model, x, tf.ones(SHAPE[0], tf.int32), eps=4.0)
    np.testing.assert_array_equal(x_fgsm_1.numpy(), _expected(x, np.sign(w_0 - w_1), 4.0))


@pytest.mark.parametrize("loss", ["margin", "ce"])
@pytest.mark.parametrize("restarts", [1, 3])
def test_pgd_ends_at_the_corner_of_the_ball(loss, restarts):
    w_0, w_1 = _weights()
    x, y = _images(), tf.zeros(SHAPE[0], tf.int32)
    x_adv = pgd(linear_model(w_0, w_1, 30.0), x, y, eps=5.0, steps=6,
                restarts=restarts, loss=loss, seed=3)
    np.testing.assert_array_equal(x_adv.numpy(), _expected(x, np.sign(w_1 - w_0), 5.0))


@pytest.mark.parametrize("margin", [20.0, 50.0, 80.0])
def test_naive_gradient_points_the_wrong_way_when_saturated(margin):
    w_0, w_1 = _weights()
    model, x, y = linear_model(w_0, w_1, margin), _images(), tf.zeros(SHAPE[0], tf.int32)
    right = np.sign(w_1 - w_0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        naive = tf.reduce_sum(naive_cross_entropy(y, model(x)))
    naive_sign = np.sign(tape.gradient(naive, x).numpy().reshape(SHAPE[0], -1))
    # p_y - 1 rounds to 0, so the naive gradient is p_other · w_other alone.
    np.testing.assert_array_equal(naive_sign, np.broadcast_to(np.sign(w_1), naive_sign.shape))
    assert (naive_sign != right).any()
    stable, _, _ = input_gradient(model, x, y)
    np.testing.assert_array_equal(np.sign(stable.numpy().reshape(SHAPE[0], -1)),
                                  np.broadcast_to(right, naive_sign.shape))


@pytest.mark.parametrize("margin", [90.0, 100.0])
def test_naive_gradient_is_exactly_zero_beyond_90(margin):
    w_0, w_1 = _weights()
    model, x, y = linear_model(w_0, w_1, margin), _images(), tf.zeros(SHAPE[0], tf.int32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        naive = tf.reduce_sum(naive_cross_entropy(y, model(x)))
    assert not np.any(tape.gradient(naive, x).numpy())
    # Then FGSM leaves the images alone and says so; the margin loss still has a signal.
    x_adv, zero = fgsm(model, x, y, eps=5.0, return_diagnostics=True)
    assert zero.numpy().all() and np.array_equal(x_adv.numpy(), x.numpy())
    x_pgd, blind = pgd(model, x, y, eps=5.0, steps=3, loss="margin", return_diagnostics=True)
    assert not blind.numpy().any()
    np.testing.assert_array_equal(x_pgd.numpy(), _expected(x, np.sign(w_1 - w_0), 5.0))
