"""Free functions of the secure step: penalty (eq. 5), fusion (eqs. 2, 7), batch loss (eq. 7)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import batch, copy_of, linear_detector, tiny_detector
from tfrecap.models import (
    cross_entropy,
    fgsm_fusion,
    fused_batch_loss,
    input_gradient_penalty,
    replica_fusion_count,
    sample_eps,
)


def _per_image_norms(model, x, y):
    norms = []
    for i in range(len(x)):
        xi = tf.constant(x[i : i + 1])
        with tf.GradientTape() as tape:
            tape.watch(xi)
            ce = cross_entropy(y[i : i + 1], model(xi, training=True))
        norms.append(float(tf.norm(tape.gradient(ce, xi))))
    return np.array(norms)


def test_penalty_matches_per_image_tapes_and_finite_differences():
    model = tiny_detector(16, batchnorm=False)
    x, y = batch(4, 16)
    terms = input_gradient_penalty(lambda z: model(z, training=True), x, y)
    np.testing.assert_allclose(terms.gradient_norm, _per_image_norms(model, x, y), rtol=1e-5)
    np.testing.assert_allclose(
        terms.cross_entropy, cross_entropy(y, model(x)), rtol=1e-6, atol=1e-7
    )
    # ||g|| is the directional derivative along g / ||g||: check it by central
    # differences, in float64 so that rounding does not swamp the difference.
    model64 = copy_of(model, dtype="float64")
    x0 = tf.constant(x[:1], tf.float64)

    def loss64(images):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(y[:1], model64(images))[0]

    with tf.GradientTape() as tape:
        tape.watch(x0)
        value = loss64(x0)
    direction = tape.gradient(value, x0)
    direction /= tf.norm(direction)
    h = 1e-3
    fd = (loss64(x0 + h * direction) - loss64(x0 - h * direction)) / (2 * h)
    np.testing.assert_allclose(float(fd), float(terms.gradient_norm[0]), rtol=1e-3)


def test_penalty_is_not_divided_by_batch_size():
    model = tiny_detector(16, batchnorm=False)
    x, y = batch(4, 16)
    whole = input_gradient_penalty(model, x, y).gradient_norm
    half = input_gradient_penalty(model, x[:2], y[:2]).gradient_norm
    np.testing.assert_allclose(whole[:2], half, rtol=1e-5)


def test_penalty_has_finite_weight_gradient_at_zero_input_gradient():
    model = linear_detector()
    model.set_weights([np.zeros((12, 2), "float32"), np.zeros(2, "float32")])
    x = np.full((2, 2, 2, 3), 10.0, "float32")
    with tf.GradientTape() as tape:
        norm = input_gradient_penalty(model, x, np.array([0, 1])).gradient_norm
        total = tf.reduce_sum(norm)
    grads = tape.gradient(total, model.trainable_variables)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_fusion_closed_form_on_linear_model():
    model = linear_detector()
    kernel, _ = model.get_weights()
    rng = np.random.default_rng(1)
    x = rng.uniform(20, 235, (5, 2, 2, 3)).astype("float32")
    x[0, 0, 0, :] = 254.0  # some pixels clip at 255
    x[1, 0, 0, :] = 0.5  # and at 0
    y = np.array([0, 1, 1, 0, 1], "int32")
    eps = np.array([1.0, 2.5, 4.0], "float32")
    fused = np.asarray(fgsm_fusion(model, x, y, 3, eps))

    # J = softplus(z_other - z_y): grad_x J is a positive multiple of w_other - w_y.
    expected = x.copy()
    for i in range(3):
        direction = np.sign(kernel[:, 1 - y[i]] - kernel[:, y[i]]).reshape(x.shape[1:])
        expected[i] = np.clip(x[i] + eps[i] * direction, 0, 255)
    np.testing.assert_allclose(fused, expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(fused[3:], x[3:])  # the rest untouched, bit for bit
    for i in range(3):
        change = np.abs(fused[i] - x[i])
        unclipped = (expected[i] > 0) & (expected[i] < 255)
        np.testing.assert_allclose(change[unclipped], eps[i], rtol=1e-5)
        assert change.max() <= eps[i] + 1e-4


def test_fusion_stops_gradient_and_handles_zero_count():
    model = linear_detector()
    x = tf.constant(batch(3, 2)[0][:, :, :, :])
    y = np.array([0, 1, 0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        fused = fgsm_fusion(model, x, y, 2, 3.0)
    assert tape.gradient(fused, x) is None
    np.testing.assert_array_equal(fgsm_fusion(model, x, y, 0, 3.0), x)


def test_sample_eps_per_image_in_range():
    eps = np.asarray(sample_eps(256, 1.0, 5.0, keras.random.SeedGenerator(3)))
    assert eps.shape == (256,) and eps.min() >= 1.0 and eps.max() <= 5.0
    assert len(np.unique(eps)) == 256 and eps.std() > 0.9  # U[1, 5]: std 1.15
    np.testing.assert_array_equal(sample_eps(4, 2.0, 2.0, keras.random.SeedGenerator(0)), 2.0)


def test_fused_batch_loss_is_eq7_over_m():
    losses = tf.constant([1.0, 2.0, 3.0, 4.0])
    got = float(fused_batch_loss(losses, 2, 0.2))
    assert got == pytest.approx((0.2 * (1 + 2) + 3 + 4) / 4)
    assert float(fused_batch_loss(losses, 0, 0.2)) == pytest.approx(2.5)


def test_replica_fusion_count_single_device():
    assert int(replica_fusion_count(32, tf.constant(64))) == 32
    assert int(replica_fusion_count(32, tf.constant(20))) == 20


def _old_penalty(model, x, y):
    """Eq. 5's plain norm, as the step computed it before the size normalization."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(cross_entropy(y, model(x, training=True)))
    grad = tape.gradient(total, x)
    return tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-24).numpy()


def test_penalty_at_64_is_exactly_the_plain_norm_of_eq5():
    model = tiny_detector(64, batchnorm=False)
    x, y = batch(2, 64)
    terms = input_gradient_penalty(lambda z: model(z, training=True), x, y)
    np.testing.assert_array_equal(terms.penalty, terms.gradient_norm)
    np.testing.assert_array_equal(terms.penalty, _old_penalty(model, x, y))


def _pooled_linear_model():
    """Logits = global average of a per-pixel linear map: any patch size, a known gradient."""
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.RandomNormal(0, 0.05)),
        keras.layers.GlobalAveragePooling2D(),
    ])


def test_normalized_penalty_does_not_change_with_patch_size():
    """One lambda means the same at every S: the raw norm halves per doubling, the penalty not."""
    model = _pooled_linear_model()
    x64, y = batch(2, 64, seed=2)
    terms = {}
    for size in (64, 128, 256):
        reps = size // 64  # tiled: the same mean pixel, so the same logits and J
        x = np.tile(x64, (1, reps, reps, 1))
        terms[size] = input_gradient_penalty(model, x, y)
        np.testing.assert_allclose(terms[size].cross_entropy, terms[64].cross_entropy,
                                   rtol=1e-4, atol=1e-5)
    for size in (128, 256):
        np.testing.assert_allclose(terms[size].gradient_norm,
                                   terms[64].gradient_norm * 64 / size, rtol=1e-4)
        np.testing.assert_allclose(terms[size].penalty, terms[64].penalty, rtol=1e-4)


def test_normalized_penalty_is_float32_and_agrees_under_mixed_precision():
    detector32 = tiny_detector(32, batchnorm=False)
    detector16 = copy_of(detector32, dtype="mixed_float16")
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    optimizer.build(detector16.trainable_variables)
    x, y = batch(4, 32, seed=6)
    want = input_gradient_penalty(detector32, x, y)
    got = input_gradient_penalty(detector16, x, y, scale_loss=optimizer.scale_loss)
    assert got.penalty.dtype == tf.float32 and got.gradient_norm.dtype == tf.float32
    np.testing.assert_allclose(got.penalty, want.penalty, rtol=2e-2)
    np.testing.assert_allclose(want.penalty, want.gradient_norm * 32 / 64, rtol=1e-6)
