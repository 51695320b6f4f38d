"""Invariants every attack keeps, parameter checks, the registry and trace-once batching."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrecap.attacks import (
    ATTACKS,
    fgsm,
    get_attack,
    least_likely_labels,
    llcm,
    make_attack_fn,
    pgd,
    to_valid_image,
    zero_gradient_fraction,
)

# auto runs three traced members per case (about 25 s each on 2 cores): its invariants are
# checked by default in tests/attacks/test_auto.py, and here with --runslow.
ATTACK_CASES = [pytest.param(name, marks=pytest.mark.slow) if name == "auto" else name
                for name in sorted(ATTACKS)]
PARAMS = {"fgsm": {}, "llcm": {}, "pgd": {"steps": 3, "restarts": 2},
          "apgd": {"steps": 3, "restarts": 2},
          "square": {"queries": 20},
          "auto": {"apgd_steps": 3, "square_queries": 20}}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])


@pytest.fixture(scope="module")
def images():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3)), tf.float32)


@pytest.mark.parametrize("name", ATTACK_CASES)
@pytest.mark.parametrize("eps", [0.0, 2.5, 7.0, [1.0, 2.0, 3.5, 255.0]])
def test_outputs_are_valid_images_inside_the_ball(model, images, name, eps):
    x_adv = ATTACKS[name](model, images, eps=eps, **PARAMS[name]).numpy()
    bound = np.reshape(eps, (-1, 1, 1, 1))
    assert np.all(np.abs(x_adv - images.numpy()) <= bound)
    assert x_adv.min() >= 0 and x_adv.max() <= 255
    np.testing.assert_array_equal(x_adv, np.round(x_adv))


def test_rounding_goes_toward_x_even_for_non_integer_x_and_eps():
    x = tf.constant([10.0, 10.0, 10.3, 10.3, 0.0, 255.0, 10.4])
    x_adv = tf.constant([12.7, 7.3, 11.9, 9.1, -2.0, 257.0, 10.6])
    eps = tf.constant([2.7, 2.7, 1.6, 1.2, 2.0, 2.0, 0.2])
    out = to_valid_image(x_adv, x, eps).numpy()
    np.testing.assert_allclose(out, [12.0, 8.0, 11.0, 10.0, 0.0, 255.0, 10.6])
    assert np.all(np.abs(out - x.numpy()) <= eps.numpy() + 1e-5)


def test_least_likely_target_is_argmin_or_the_other_class_on_ties():
    logits = tf.constant([[2.0, -1.0], [-3.0, 0.5], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(least_likely_labels(logits).numpy(), [1, 0, 1, 1])
    three = tf.constant([[0.0, 5.0, -2.0], [1.0, 1.0, 1.0], [4.0, 4.0, -1.0]])
    np.testing.assert_array_equal(least_likely_labels(three).numpy(), [2, 1, 2])


def test_llcm_on_tied_logits_still_moves_away_from_the_prediction():
    def tied(x):  # equal logits, gradient along +mean for class 1, -mean for class 0
        s = tf.reduce_mean(x, axis=[1, 2, 3])
        return tf.stack([-s, s], axis=1) - tf.stop_gradient(tf.stack([-s, s], axis=1))

    x = tf.fill([1, 2, 2, 3], 100.0)
    # prediction 0 (argmax of a tie), target 1: the step raises z_1.
    np.testing.assert_array_equal(llcm(tied, x, eps=2.0).numpy(), np.full((1, 2, 2, 3), 102.0))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x: fgsm(m, x, eps=-1), "`eps` has to be nonnegative, got -1"),
        (lambda m, x: llcm(m, x, eps=[1.0, -2.0]), "`eps` has to be nonnegative"),
        (lambda m, x: pgd(m, x, eps=1, steps=0), "`steps` has to be a positive integer"),
        (lambda m, x: pgd(m, x, eps=1, step_size=0), "`step_size` has to be positive"),
        (lambda m, x: pgd(m, x, eps=1, restarts=0), "`restarts` has to be a positive"),
        (lambda m, x: pgd(m, x, eps=1, loss="hinge"), "`loss` has to be one of"),
        (lambda m, x: get_attack("cw"), "known attacks: apgd, auto, fgsm, llcm, pgd, square"),
        (lambda m, x: make_attack_fn(m, "pgd", steps=-1), "`steps` has to be a positive"),
        (lambda m, x: make_attack_fn(m, "fgsm", steps=3), "Unknown parameters for 'fgsm'"),
        (lambda m, x: make_attack_fn(m, "fgsm")(x, None, -0.5), "has to be nonnegative"),
    ],
)
def test_bad_parameters_raise_one_clear_value_error(model, images, call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(model, images)


@pytest.mark.parametrize("name", ATTACK_CASES)
def test_traced_once_for_every_batch_size_and_eps(model, images, name):
    attack_fn = make_attack_fn(model, name, **PARAMS[name])
    for batch, eps in [(4, 1.0), (3, 2.5), (1, 5.0), (4, 0.0)]:
        x_adv, zero = attack_fn.run(images[:batch], tf.zeros(batch, tf.int32), eps)
        assert x_adv.shape == (batch, 8, 8, 3) and zero.shape == (batch,)
        assert np.all(np.abs(x_adv.numpy() - images[:batch].numpy()) <= eps)
    attack_fn(images, None, 3.0)
    assert attack_fn.tracing_count() == 1


def test_traced_function_matches_the_eager_attack(model, images):
    y = tf.constant([0, 1, 0, 1])
    for name in ("fgsm", "llcm"):
        traced = make_attack_fn(model, name, image_size=8)(images, y, 3.0)
        np.testing.assert_array_equal(traced.numpy(), ATTACKS[name](model, images, y, eps=3.0))
    per_image = make_attack_fn(model, "fgsm", per_image_eps=True)
    eps = tf.constant([0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(per_image(images, y, eps).numpy(),
                                  fgsm(model, images, y, eps=eps).numpy())


def test_zero_gradient_fraction(model, images):
    assert zero_gradient_fraction(model, images) == 0.0
    dead = lambda x: tf.zeros([tf.shape(x)[0], 2]) * tf.reduce_sum(x)  # noqa: E731
    assert zero_gradient_fraction(dead, images) == 1.0


@pytest.mark.slow
# Square and auto (which runs Square) are random searches whose stateless draws XLA computes
# differently, so their images differ by design; their bounds are checked above.
@pytest.mark.parametrize("name", sorted(set(ATTACKS) - {"square", "auto"}))
def test_xla_option_gives_the_same_images(model, images, name):
    # One restart: restart 0 starts at x, so nothing random is compared across compilers.
    params = ({**PARAMS[name], "restarts": 1} if name in ("pgd", "apgd")
              else PARAMS[name])
    y = tf.constant([0, 1, 0, 1])
    plain = make_attack_fn(model, name, **params)(images, y, 3.0).numpy()
    xla = make_attack_fn(model, name, jit_compile=True, **params)(images, y, 3.0).numpy()
    # XLA may reorder float sums, flipping the sign of a near-zero gradient component.
    assert np.mean(plain == xla) >= 0.99
