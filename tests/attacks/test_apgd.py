"""APGD: the step-size schedule, the halving rule, the invariants, restarts and strength."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.test_trained_model import trained  # noqa: F401  (a fixture)
from tfrecap.attacks import apgd, make_attack_fn, pgd
from tfrecap.attacks.apgd import checkpoints, halve_step, restart_start
from tfrecap.ops import margin_loss

SHAPE = (4, 4, 4, 3)


def linear_model(seed=0, scale=0.005):
    """Logits ``x·W``: each image's logits depend on that image alone."""
    weights = np.random.default_rng(seed).normal(0, scale, (int(np.prod(SHAPE[1:])), 2))
    weights = tf.constant(weights, tf.float32)
    return lambda x: tf.reshape(x, [tf.shape(x)[0], -1]) @ weights, weights.numpy()


def images(seed=1, shape=SHAPE):
    x = np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)
    x[0, 0, 0] = [0.0, 255.0, 3.0]  # the ball meets [0, 255] here
    return tf.constant(x)


@pytest.fixture(scope="module")
def conv_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Rescaling(1 / 64.0, offset=-2.0),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])


def test_checkpoints_follow_the_paper_rule():
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1000) == [0, 220, 410, 570, 700, 800, 870, 930, 990]
    intervals = np.diff(checkpoints(100))
    assert intervals[0] == 22
    for before, after in zip(intervals[:-1], intervals[1:], strict=True):
        assert after == max(before - 3, 6)  # shrinking by 3 % of the iterations...
    assert intervals.min() == 6  # ...down to the floor of 6 %
    for steps in (1, 3, 10, 37, 250):
        marks = checkpoints(steps)
        assert marks[0] == 0 and marks[-1] <= steps
        assert np.all(np.diff(marks) > 0)


def test_halving_rule_on_constructed_cases():
    # 10 steps since the last checkpoint; 7 or 8 of them raised the loss (threshold 7.5).
    raised = tf.constant([7.0, 8.0, 8.0, 8.0, 10.0])
    reduced_last = tf.constant([False, False, True, False, True])
    best_loss = tf.constant([5.0, 5.0, 5.0, 6.0, 5.0])
    best_loss_last = tf.constant([4.0, 5.0, 5.0, 5.0, 5.0])
    halve = halve_step(raised, 10, reduced_last, best_loss, best_loss_last).numpy()
    # 0: oscillating; 1: stalled with η unchanged; 2: stalled but η was just halved;
    # 3: improving; 4: stalled, η just halved, every step up.
    np.testing.assert_array_equal(halve, [True, True, False, False, False])


@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("eps", [0.0, 2.5, 7.0, [1.0, 2.0, 3.5, 255.0]])
def test_outputs_are_valid_images_inside_the_ball(conv_model, eps, loss):
    x = images(shape=(4, 8, 8, 3))
    x_adv, blind = apgd(conv_model, x, eps=eps, steps=5, loss=loss, restarts=2,
                        return_diagnostics=True)
    x_adv = x_adv.numpy()
    assert np.all(np.abs(x_adv - x.numpy()) <= np.reshape(eps, (-1, 1, 1, 1)))
    assert x_adv.min() >= 0 and x_adv.max() <= 255
    np.testing.assert_array_equal(x_adv, np.round(x_adv))
    assert blind.shape == (4,) and not blind.numpy().any()
    if np.all(np.asarray(eps) == 0):
        np.testing.assert_array_equal(x_adv, x.numpy())


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_linear_model_ends_at_the_corner_of_the_ball(loss):
    model, weights = linear_model()
    x, y = images(), tf.constant([0, 1, 0, 1])
    x_adv = apgd(model, x, y, eps=5.0, steps=8, loss=loss, restarts=2).numpy()
    away = np.sign(weights[:, 1] - weights[:, 0]).reshape(1, 4, 4, 3)
    direction = np.where(y.numpy()[:, None, None, None] == 0, away, -away)
    np.testing.assert_array_equal(x_adv, np.clip(x.numpy() + 5.0 * direction, 0, 255))


def test_the_step_shrinks_onto_an_interior_maximum():
    """The margin peaks at mean(x) = 101.3: steps of 2ε = 16 overshoot it, halved ones do not."""
    def model(x):
        gap = tf.reduce_mean(x, axis=[1, 2, 3]) - 101.3
        return tf.stack([tf.zeros_like(gap), -(gap ** 2)], axis=1)

    x, y = tf.fill([1, 2, 2, 3], 100.0), tf.constant([0])
    x_adv = apgd(model, x, y, eps=8.0, steps=100, loss="margin", quantize=False)
    assert abs(float(tf.reduce_mean(x_adv)) - 101.3) < 0.2
    # PGD with APGD's first step bounces between the sides of the ball.
    x_pgd = pgd(model, x, y, eps=8.0, step_size=16.0, steps=100, loss="margin", quantize=False)
    assert abs(float(tf.reduce_mean(x_pgd)) - 101.3) > 5


def test_restart_starts_differ_per_image_and_restart_and_ignore_the_batch():
    x, eps = images(), 4.0
    index = tf.constant([10, 11, 12, 13], tf.int64)
    np.testing.assert_array_equal(restart_start(x, eps, 0, 7, index), x)
    one, two = (restart_start(x, eps, r, 7, index).numpy() for r in (1, 2))
    for start in (one, two):
        assert np.all(np.abs(start - x.numpy()) <= eps) and start.min() >= 0
        assert np.all(np.abs(start - x.numpy()).reshape(4, -1).max(axis=1) > 0)
    assert np.all(np.any((one != two).reshape(4, -1), axis=1)), "two restarts start alike"
    offsets = (one - x.numpy())[1:]
    assert not np.allclose(offsets[0], offsets[1]), "two images got the same draw"
    subset = restart_start(tf.gather(x, [3, 1]), eps, 1, 7, tf.gather(index, [3, 1])).numpy()
    np.testing.assert_array_equal(subset, one[[3, 1]])
    assert np.any(restart_start(x, eps, 1, 8, index).numpy() != one), "the seed is ignored"


def test_an_image_gets_the_same_result_in_a_subset(conv_model):
    x = images(shape=(4, 8, 8, 3))
    y, index = tf.constant([0, 1, 1, 0]), tf.constant([5, 6, 7, 8], tf.int64)
    full = apgd(conv_model, x, y, eps=3.0, steps=4, restarts=3, seed=2, index=index).numpy()
    part = apgd(conv_model, tf.gather(x, [2, 0]), tf.gather(y, [2, 0]), eps=3.0, steps=4,
                restarts=3, seed=2, index=tf.gather(index, [2, 0])).numpy()
    np.testing.assert_array_equal(part, full[[2, 0]])


# tests/attacks/test_invariants.py checks that apgd traces once by default; this
# longer case also covers one ε per image.
@pytest.mark.slow
def test_traced_once_for_every_batch_size_and_eps(conv_model):
    x = images(shape=(4, 8, 8, 3))
    attack = make_attack_fn(conv_model, "apgd", steps=2, restarts=2, loss="margin")
    for batch, eps in [(4, 1.0), (3, 2.5), (1, 5.0), (4, 0.0)]:
        x_adv, blind = attack.run(x[:batch], None, eps, tf.range(batch, dtype=tf.int64) + 9)
        assert x_adv.shape == (batch, 8, 8, 3) and blind.shape == (batch,)
        assert np.all(np.abs(x_adv.numpy() - x[:batch].numpy()) <= eps)
    assert attack.tracing_count() == 1
    per_image = make_attack_fn(conv_model, "apgd", per_image_eps=True, steps=2)
    eps = tf.constant([0.0, 1.0, 2.0, 3.0])
    traced = per_image(x, None, eps)
    np.testing.assert_array_equal(traced.numpy(), apgd(conv_model, x, eps=eps, steps=2).numpy())
    per_image(x[:2], None, eps[2:])
    assert per_image.tracing_count() == 1


def fooled_counts(model, x, y, eps_list, loss="margin"):
    """Images fooled by APGD and by PGD, both with 10 steps, at each ε."""
    def fooled(x_adv):
        return int(np.sum(margin_loss(y, model(x_adv)).numpy() > 0))

    return [(fooled(apgd(model, x, y, eps=eps, steps=10, loss=loss)),
             fooled(pgd(model, x, y, eps=eps, steps=10, loss=loss))) for eps in eps_list]


def test_no_weaker_than_pgd_at_ten_steps(conv_model):
    x = images(seed=3, shape=(32, 8, 8, 3))
    # Shift the logits to put the boundary at the median image: some flip, some do not.
    logits = conv_model(x).numpy()
    shift = tf.constant([0.0, np.median(logits[:, 1] - logits[:, 0])], tf.float32)
    shifted = lambda x: conv_model(x) - shift  # noqa: E731
    y = tf.argmax(shifted(x), axis=-1, output_type=tf.int32)
    counts = fooled_counts(shifted, x, y, [1.0, 2.0, 3.0])
    assert any(0 < plain < 32 for _, plain in counts), counts  # the comparison means something
    assert all(strong >= plain for strong, plain in counts), counts


@pytest.mark.slow
def test_no_weaker_than_pgd_on_a_trained_model(trained):  # noqa: F811
    model, x, y = trained
    for loss in ("ce", "margin"):
        counts = fooled_counts(model, x, y, [0.5, 1.0, 2.0], loss)
        assert counts[-1][0] > 0, counts
        assert all(strong >= plain for strong, plain in counts), counts


@pytest.mark.parametrize(
    "params, message",
    [
        ({"steps": 0}, "`steps` has to be a positive integer"),
        ({"restarts": 0}, "`restarts` has to be a positive integer"),
        ({"loss": "hinge"}, "`loss` has to be one of"),
        ({"seed": None}, "`seed` has to be an integer in \\[0, 2\\*\\*62\\) for apgd"),
        ({"seed": 1.5}, "`seed` has to be an integer"),
        ({"seed": -1}, "`seed` has to be an integer in"),
        ({"eps": -1.0}, "`eps` has to be nonnegative"),
    ],
)
def test_bad_parameters_raise_one_clear_value_error(params, message):
    model, _ = linear_model()
    with pytest.raises(ValueError, match=message):
        apgd(model, images(), **{"eps": 1.0, **params})
    if "eps" not in params:
        with pytest.raises(ValueError, match=message):
            make_attack_fn(model, "apgd", **params)


def test_random_start_moves_restart_zero_off_x():
    # Logits that ignore x: no step moves the image, so the output is the start point.
    def flat(x):
        return tf.zeros([tf.shape(x)[0], 2]) + tf.constant([1.0, 0.0]) + 0.0 * x[:, :1, 0, 0]

    x = tf.fill([2, 8, 8, 3], 100.0)
    from_x = apgd(flat, x, eps=4.0, steps=2).numpy()
    np.testing.assert_array_equal(from_x, x.numpy())
    moved = apgd(flat, x, eps=4.0, steps=2, random_start=True, seed=1).numpy()
    assert np.abs(moved - x.numpy()).max() <= 4.0 and np.abs(moved - x.numpy()).max() >= 1.0
    assert not np.array_equal(moved[0], moved[1])  # each image its own start
