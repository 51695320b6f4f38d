"""JPEG for attacks: the real round trip, BPDA, the differentiable JPEG and EOT through_jpeg."""

import io

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image, JpegImagePlugin

from tfrecap.attacks.pgd import pgd
from tfrecap.ops.jpeg import (
    differentiable_jpeg,
    jpeg_bpda,
    jpeg_roundtrip,
    jpeg_transform,
    quantization_tables,
    through_jpeg,
)

# Mean |differentiable_jpeg − real round trip| in levels, measured on the photo crops below:
# 0.75 (Q = 60), 0.73 (Q = 75), 0.70 (Q = 95) with the cubic rounding.
DIFFERENTIABLE_MEAN_ERROR = 1.0


def _smooth_scenes(n=8, size=32, seed=0):
    """Smooth 8-bit scenes (bicubic-upsampled 4×4 noise): little high-frequency energy."""
    low = np.random.RandomState(seed).uniform(40, 215, (n, 4, 4, 3)).astype(np.float32)
    return tf.round(tf.clip_by_value(tf.image.resize(low, (size, size), "bicubic"), 0, 255))


def _photo_crops(size=64):
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(),
              skimage.data.rocket()]
    crops = [p[r:r + size, c:c + size] for p in photos for r, c in ((40, 40), (100, 200))]
    return tf.constant(np.stack(crops), tf.float32)


_LAPLACIAN = tf.constant([[0, 1, 0], [1, -4, 1], [0, 1, 0]], tf.float32)[:, :, None, None]


def _laplacian_energy(images):
    grey = tf.reduce_mean(images, -1, keepdims=True)
    response = tf.nn.conv2d(grey, _LAPLACIAN, 1, "VALID")
    return tf.sqrt(tf.reduce_mean(response ** 2, [1, 2, 3]) + 1e-6)


def _energy_detector(threshold=6.0):
    """A fixed "recapture detector": class 1 when the high-frequency energy is above threshold.

    JPEG removes much of the ±ε high-frequency pattern a plain attack adds, so its decision
    changes under re-encoding.
    """
    def logits(images):
        energy = _laplacian_energy(images)
        return tf.stack([tf.zeros_like(energy), energy - threshold], axis=1)

    return logits


def test_the_encoder_is_4_2_0_with_libjpeg_tables_scaled_by_quality():
    image = tf.cast(_smooth_scenes(1)[0], tf.uint8)
    for quality in (10, 50, 60, 75, 95):
        encoded = Image.open(io.BytesIO(tf.io.encode_jpeg(image, quality=quality).numpy()))
        assert JpegImagePlugin.get_sampling(encoded) == 2  # Pillow's code for 4:2:0
        luma, chroma = quantization_tables(quality)
        np.testing.assert_array_equal(np.reshape(encoded.quantization[0], (8, 8)), luma)
        np.testing.assert_array_equal(np.reshape(encoded.quantization[1], (8, 8)), chroma)


def test_roundtrip_decodes_as_pillow_does_and_rounds_off_grid_values():
    x = _smooth_scenes(3) + tf.constant(
        np.random.RandomState(1).randint(-20, 21, (3, 32, 32, 3)), tf.float32)
    x = tf.clip_by_value(x, 0, 255)
    out = jpeg_roundtrip(x, 75).numpy()
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.round(out))
    assert np.abs(out - x.numpy()).mean() > 0.5  # it did re-encode
    for n in range(3):  # Pillow decodes with the accurate IDCT, as the serving graph does
        encoded = tf.io.encode_jpeg(tf.cast(x[n], tf.uint8), quality=75).numpy()
        np.testing.assert_array_equal(out[n], np.asarray(Image.open(io.BytesIO(encoded))))
    np.testing.assert_array_equal(jpeg_roundtrip(x + 0.4, 75).numpy(), out)
    with pytest.raises(ValueError, match="quality"):
        jpeg_roundtrip(x, 0)


def test_bpda_forward_is_the_real_round_trip_and_its_gradient_the_identity():
    x = _smooth_scenes(2) + 0.3
    weights = tf.random.stateless_uniform(x.shape, seed=[1, 2])

    def value_and_gradient(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            out = jpeg_bpda(images, 60)
            loss = tf.reduce_sum(weights * out)
        return out, tape.gradient(loss, images)

    for run in (value_and_gradient, tf.function(value_and_gradient)):
        out, gradient = run(x)
        np.testing.assert_array_equal(out.numpy(), jpeg_roundtrip(x, 60).numpy())
        np.testing.assert_array_equal(gradient.numpy(), weights.numpy())


def test_pgd_through_jpeg_survives_a_real_jpeg_where_the_plain_attack_does_not():
    detector = _energy_detector()
    x = _smooth_scenes(8)
    y = tf.zeros([8], tf.int32)  # originals; the attack tries to make them look recaptured
    quality, eps = 75, 4.0

    def accuracy_after_jpeg(images):
        verdict = np.argmax(detector(jpeg_roundtrip(images, quality)).numpy(), axis=1)
        return float(np.mean(verdict == 0))

    assert accuracy_after_jpeg(x) == 1.0  # JPEG alone does not flip a clean image
    plain = pgd(detector, x, y, eps=eps, steps=10, loss="margin")
    adaptive = pgd(through_jpeg(detector, quality=quality), x, y, eps=eps, steps=10,
                   loss="margin")
    assert np.abs(adaptive.numpy() - x.numpy()).max() <= eps
    np.testing.assert_array_equal(adaptive.numpy(), np.round(adaptive.numpy()))
    # Measured: 6/8 still correct after the plain attack and JPEG, 0/8 after the adaptive one.
    assert accuracy_after_jpeg(plain) >= 0.5
    assert accuracy_after_jpeg(adaptive) <= accuracy_after_jpeg(plain) - 0.5


@pytest.mark.slow
def test_pgd_through_the_differentiable_jpeg_also_survives_it():
    detector = _energy_detector()
    x = _smooth_scenes(8)
    adaptive = pgd(through_jpeg(detector, quality=75, method="differentiable"), x,
                   tf.zeros([8], tf.int32), eps=4.0, steps=10, loss="margin")
    verdict = np.argmax(detector(jpeg_roundtrip(adaptive, 75)).numpy(), axis=1)
    assert verdict.mean() >= 0.75  # measured 8/8 fooled (the plain attack: 2/8)


def test_eot_is_deterministic_for_a_seed_changes_with_it_and_keys_draws_by_index():
    detector = _energy_detector()
    x = _smooth_scenes(4, seed=2)
    params = dict(qualities=[30, 60, 95], resize=(0.5, 1.0), samples=2)
    first = through_jpeg(detector, seed=0, **params)(x).numpy()
    np.testing.assert_array_equal(through_jpeg(detector, seed=0, **params)(x).numpy(), first)
    assert not np.array_equal(through_jpeg(detector, seed=1, **params)(x).numpy(), first)
    index = tf.constant([1, 3], tf.int64)
    subset = through_jpeg(detector, seed=0, **params)(tf.gather(x, index), index=index)
    np.testing.assert_array_equal(subset.numpy(), first[[1, 3]])
    # The logits (not probabilities) of the draws are averaged.
    draws = [detector(jpeg_transform(x, seed=0, sample=s, **{
        k: v for k, v in params.items() if k != "samples"})) for s in (0, 1)]
    np.testing.assert_allclose(first, (draws[0] + draws[1]).numpy() / 2, rtol=1e-6)


def test_a_quality_drawn_from_a_list_is_a_real_encode_at_that_quality():
    x = _smooth_scenes(8, seed=3) + tf.constant(
        np.random.RandomState(3).randint(-8, 9, (8, 32, 32, 3)), tf.float32)
    out = jpeg_transform(tf.clip_by_value(x, 0, 255), qualities=[20, 90], seed=4).numpy()
    chosen = []
    for n in range(8):
        for quality in (20, 90):
            if np.array_equal(out[n], jpeg_roundtrip(tf.clip_by_value(x[n:n + 1], 0, 255),
                                                     quality).numpy()[0]):
                chosen.append(quality)
                break
    assert len(chosen) == 8 and set(chosen) == {20, 90}


@pytest.mark.slow
def test_eot_through_resize_has_gradients_in_a_traced_function():
    detector = _energy_detector()
    wrapped = through_jpeg(detector, qualities=[50, 90], resize=(0.5, 0.9), samples=2)
    x = _smooth_scenes(2) + 0.5

    @tf.function
    def gradient(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            margin = tf.reduce_sum(wrapped(images)[:, 1])
        return tape.gradient(margin, images)

    values = gradient(x).numpy()
    assert np.all(np.isfinite(values)) and np.abs(values).mean() > 0


def test_differentiable_jpeg_tracks_the_real_encoder_and_has_gradients():
    crops = _photo_crops()
    for quality in (60, 75, 95):
        error = np.abs(differentiable_jpeg(crops, quality).numpy()
                       - jpeg_roundtrip(crops, quality).numpy()).mean()
        assert error < DIFFERENTIABLE_MEAN_ERROR, (quality, error)
    weights = tf.random.stateless_uniform(crops.shape, seed=[3, 4], minval=-1.0)
    with tf.GradientTape() as tape:
        tape.watch(crops)
        loss = tf.reduce_sum(weights * differentiable_jpeg(crops, tf.fill([8], 75)))
    gradient = tape.gradient(loss, crops).numpy()
    assert np.all(np.isfinite(gradient)) and np.mean(gradient != 0) > 0.5


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "exactly one"),
    (dict(quality=75, qualities=[60]), "exactly one"),
    (dict(quality=101), "quality"),
    (dict(qualities=[]), "empty"),
    (dict(qualities=[60, 0]), "qualities"),
    (dict(quality=75, resize=(0.0, 1.0)), "resize"),
    (dict(quality=75, resize=0.5), "resize"),
    (dict(quality=75, samples=0), "samples"),
    (dict(quality=75, method="fast"), "method"),
])
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        through_jpeg(_energy_detector(), **kwargs)
