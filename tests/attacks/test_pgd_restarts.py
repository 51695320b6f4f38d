"""PGD restarts: restart 0 starts at x, every other one at its own random point of the ε-ball.

The model records every batch it is called on, in call order, into a variable. With
``steps=1`` and known labels PGD calls it twice per restart: at the restart's start (the
gradient) and at its final, rounded image (the best-of-restarts choice). So the record shows
where each restart began, also inside one traced `tf.function`.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfrecap.attacks import make_attack_fn, pgd
from tfrecap.ops import direction_stable_cross_entropy

SHAPE = (3, 4, 4, 3)
EPS = 4.0


class RecordingLinearModel:
    """Logits ``x·W + b``; writes each input batch into ``self.calls[k]``, k counting calls."""

    def __init__(self, capacity=8, seed=0):
        rng = np.random.default_rng(seed)
        features = int(np.prod(SHAPE[1:]))
        self.weights = rng.normal(0, 0.05, (features, 2)).astype(np.float32)
        self.bias = np.array([1.0, -1.0], np.float32)
        self.calls = tf.Variable(tf.zeros((capacity, *SHAPE)))
        self.count = tf.Variable(0)

    def logits(self, x):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        return flat @ tf.constant(self.weights) + tf.constant(self.bias)

    def __call__(self, x):
        self.calls[self.count].assign(x)
        self.count.assign_add(1)
        return self.logits(x)

    def recorded(self):
        return self.calls.numpy()[: int(self.count.numpy())]


def _images():
    x = np.random.default_rng(1).integers(0, 256, SHAPE).astype(np.float32)
    x[0, 0, 0] = [0.0, 255.0, 3.0]  # starts must still respect [0, 255]
    return tf.constant(x), tf.constant([0, 1, 0], tf.int32)


@pytest.mark.parametrize("seed", [7, None])
def test_restarts_start_at_x_then_at_distinct_points_inside_one_traced_function(seed):
    x, y = _images()
    model = RecordingLinearModel()

    @tf.function
    def attack(x, y):
        return pgd(model, x, y, eps=EPS, steps=1, restarts=3, seed=seed)

    x_adv = attack(x, y).numpy()
    assert attack.experimental_get_tracing_count() == 1
    calls = model.recorded()
    assert len(calls) == 6  # (start, final) for each of the 3 restarts
    starts, x0 = calls[0::2], x.numpy()
    np.testing.assert_array_equal(starts[0], x0)
    for r in (1, 2):
        moved = np.abs(starts[r] - x0).reshape(SHAPE[0], -1)
        assert np.all(moved.max(axis=1) > 0), f"restart {r} started at x"
        assert np.all(moved <= EPS + 1e-5)
        assert starts[r].min() >= 0 and starts[r].max() <= 255
    differ = np.any((starts[1] != starts[2]).reshape(SHAPE[0], -1), axis=1)
    assert differ.all(), "restarts 1 and 2 started at the same point"
    # Independent per image too: image 1's offset is not image 2's (both away from the clip).
    offsets = starts[1] - x0
    assert not np.allclose(offsets[1], offsets[2])
    # The result is still a valid 8-bit image inside the ball.
    assert np.all(np.abs(x_adv - x0) <= EPS) and x_adv.min() >= 0 and x_adv.max() <= 255
    np.testing.assert_array_equal(x_adv, np.round(x_adv))


def test_restart_zero_is_the_single_restart_run_and_the_best_restart_is_kept():
    x, y = _images()
    model = RecordingLinearModel(capacity=12)
    pgd(model, x, y, eps=EPS, steps=1, restarts=3, seed=5)
    x_multi = pgd(model, x, y, eps=EPS, steps=1, restarts=3, seed=5).numpy()
    calls = model.recorded()
    single = pgd(model.logits, x, y, eps=EPS, steps=1, restarts=1).numpy()
    finals = calls[7::2]  # the second run's finals: calls 6..11
    np.testing.assert_array_equal(finals[0], single)
    # The same seed gives the same starts on every call.
    np.testing.assert_array_equal(calls[0:6], calls[6:12])
    # Per image: the restart that fools the model wins, then the one with the higher loss.
    labels = y.numpy()
    for i in range(SHAPE[0]):
        logits = np.stack([model.logits(f[i : i + 1]).numpy()[0] for f in finals])
        fooled = logits.argmax(axis=1) != labels[i]
        loss = direction_stable_cross_entropy(np.full(3, labels[i]), logits).numpy()
        best = 0
        for r in (1, 2):
            if (fooled[r] and not fooled[best]) or (fooled[r] == fooled[best]
                                                   and loss[r] > loss[best]):
                best = r
        np.testing.assert_array_equal(x_multi[i], finals[best][i])


def test_traced_attack_without_seed_draws_new_starts_on_every_call():
    x, y = _images()
    model = RecordingLinearModel(capacity=12)
    attack = make_attack_fn(model, "pgd", steps=1, restarts=2)
    model.count.assign(0)  # forget the calls of the trace-time check
    attack(x, y, EPS)
    attack(x, y, EPS)
    calls = model.recorded()
    assert len(calls) == 8 and attack.tracing_count() == 1
    np.testing.assert_array_equal(calls[0], x.numpy())
    np.testing.assert_array_equal(calls[4], x.numpy())
    assert np.any(calls[2] != calls[6]), "two calls drew the same random start"


def test_random_start_is_no_longer_a_parameter():
    x, y = _images()
    with pytest.raises(TypeError, match="random_start"):
        pgd(RecordingLinearModel().logits, x, y, eps=1.0, random_start=True)
    with pytest.raises(ValueError, match="Unknown parameters for 'pgd': \\['random_start'\\]"):
        make_attack_fn(RecordingLinearModel().logits, "pgd", random_start=False)
    with pytest.raises(ValueError, match="`seed` has to be None or an integer"):
        pgd(RecordingLinearModel().logits, x, y, eps=1.0, seed=1.5)
