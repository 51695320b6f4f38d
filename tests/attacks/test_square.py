"""The Square attack: budget and validity, no gradient, closed-form reach, the accept rule,
per-image draws, early stop, probabilities, the rescaled schedule and trace-once batching.

The linear model ``z_0 - z_1 = w · (x - 127)`` with ``w`` of one sign per channel has a known
answer: an image ``x = 127 + a · sign(w)`` has margin ``a · Σ|w|``, and the lowest margin in its
ε-ball is ``(a - ε) · Σ|w|`` (no pixel clips). So it can be fooled iff ``a < ε``.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrecap.attacks import ATTACKS, make_attack_fn, pgd
from tfrecap.attacks.square import (
    PAPER_HALVINGS,
    halving_iterations,
    scores,
    square,
    square_fraction,
    square_side,
    square_with_queries,
)
from tfrecap.names import ATTACK_NAMES

SIZE = 16
SIGNS = np.array([1.0, -1.0, 1.0])


def _weights(seed=0):
    magnitude = np.random.default_rng(seed).uniform(0.5, 1.0, (SIZE, SIZE, 3))
    return (SIGNS * magnitude).astype(np.float32)


def linear_model(w=None):
    w = tf.constant(_weights() if w is None else w)

    def model(x):
        d = tf.reduce_sum((x - 127.0) * w, axis=[1, 2, 3])
        return tf.stack([d, tf.zeros_like(d)], axis=1)

    return model


def aligned_images(offsets):
    """Images ``127 + a · sign(w)``: margin ``a · Σ|w|`` under `linear_model`, class 0."""
    sign = np.sign(_weights())
    return tf.constant(np.stack([127.0 + a * sign for a in offsets]), tf.float32)


def traced(model, x, y=None, **params):
    """`square_with_queries` in a `tf.function`: an eager loop of hundreds of queries is slow."""
    return tf.function(lambda x: square_with_queries(model, x, y, **params))(x)


def margins(model, x, y):
    z = model(x).numpy()
    y = np.asarray(y)
    return z[np.arange(len(y)), y] - z[np.arange(len(y)), 1 - y]


@pytest.fixture(scope="module")
def conv_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])


@pytest.fixture(scope="module")
def images():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3)), tf.float32)


def test_registered_after_pgd():
    assert ATTACKS["square"] is square and tuple(ATTACKS) == ATTACK_NAMES
    assert ATTACK_NAMES.index("square") > ATTACK_NAMES.index("pgd")


# ε = 0 is test_zero_eps_is_the_identity's; one scalar and the per-image case run by default.
@pytest.mark.parametrize("eps", [pytest.param(0.0, marks=pytest.mark.slow), 2.5,
                                 pytest.param(7.0, marks=pytest.mark.slow),
                                 [1.0, 2.0, 3.5, 255.0]])
def test_outputs_are_valid_images_inside_the_ball(conv_model, images, eps):
    run = tf.function(lambda x: square(conv_model, x, eps=eps, queries=30,
                                       return_diagnostics=True))
    x_adv, zero = run(images)
    x_adv, bound = x_adv.numpy(), np.reshape(eps, (-1, 1, 1, 1))
    assert np.all(np.abs(x_adv - images.numpy()) <= bound)
    assert x_adv.min() >= 0 and x_adv.max() <= 255
    np.testing.assert_array_equal(x_adv, np.round(x_adv))
    np.testing.assert_array_equal(zero.numpy(), [False] * 4)


def test_zero_eps_is_the_identity(conv_model, images):
    np.testing.assert_array_equal(square(conv_model, images, eps=0.0, queries=20).numpy(),
                                  images.numpy())


@pytest.mark.slow
def test_labels_resolve_as_in_the_other_attacks(conv_model, images):
    predicted = tf.argmax(conv_model(images), axis=-1, output_type=tf.int32)
    given = tf.where(tf.range(4) % 2 == 0, -1, predicted)
    reference = traced(conv_model, images, predicted, eps=3.0, queries=20)[0].numpy()
    for y in (None, given):
        np.testing.assert_array_equal(
            traced(conv_model, images, y, eps=3.0, queries=20)[0].numpy(), reference)


def no_gradient(model):
    """`model` whose gradient raises: any attack that asks for one fails loudly."""

    @tf.custom_gradient
    def forward(x):
        def gradient(upstream):
            raise AssertionError("the attack took a gradient")

        return model(x), gradient

    return forward


def test_never_takes_a_gradient():
    model, x = no_gradient(linear_model()), aligned_images([1, 2, 6])
    with pytest.raises(AssertionError, match="took a gradient"):
        pgd(model, x, eps=2.0, steps=1)  # the wrapper bites
    with pytest.raises(AssertionError, match="took a gradient"):
        make_attack_fn(model, "pgd", steps=1)
    eager = square(model, x, eps=2.0, queries=10)
    traced_fn = make_attack_fn(model, "square", queries=10)(x, None, 2.0)
    np.testing.assert_array_equal(traced_fn.numpy(), eager.numpy())


def test_breaks_what_is_in_reach_and_nothing_else():
    # a = 1, 2 can be fooled at ε = 4; a = 5 cannot: its lowest margin is Σ|w| > 0.
    model, x, y = linear_model(), aligned_images([1, 2, 5]), [0, 0, 0]
    x_adv, used = traced(model, x, y, eps=4.0, queries=300)
    before, after = margins(model, x, y), margins(model, x_adv, y)
    assert after[0] < 0 and after[1] < 0 and used[0] < 300 and used[1] < 300
    floor = float(np.abs(_weights()).sum())
    assert floor <= after[2] < before[2] and used[2] == 300


def test_initialisation_is_vertical_stripes_at_the_balls_corners():
    x = aligned_images([6, 6])
    x_adv, used = square_with_queries(linear_model(), x, eps=3.0, queries=1)
    delta = (x_adv - x).numpy()
    assert np.all(np.abs(delta) == 3.0) and np.all(used.numpy() == 1)
    np.testing.assert_array_equal(delta, np.broadcast_to(delta[:, :1], delta.shape))
    assert 0.25 < np.mean(delta > 0) < 0.75  # one random sign per column and channel
    assert not np.array_equal(delta[0], delta[1])  # and per image


def test_each_query_is_one_square_off_the_best_so_far():
    """Never accepts a worse candidate, and each square has the scheduled side."""
    base, calls = linear_model(), []

    def recorder(x):
        calls.append(x.numpy())
        return base(x)

    queries, x = 60, aligned_images([6])
    x_adv, used = square_with_queries(recorder, x, [0], eps=4.0, queries=queries)
    assert len(calls) == queries + 1 and used.numpy()[0] == queries  # clean pass + queries
    queried = [margins(base, c, [0])[0] for c in calls[1:]]
    best = 0  # the initialisation is always taken
    for t in range(1, queries):
        changed = np.argwhere(np.any(calls[1 + t][0] != calls[1 + best][0], axis=-1))
        side = square_side(square_fraction(t - 1, queries), SIZE, SIZE)
        if len(changed):
            assert np.all(changed.max(0) - changed.min(0) < side)
        if queried[t] < queried[best]:
            best = t
    np.testing.assert_array_equal(x_adv.numpy()[0], calls[1 + best][0])
    assert margins(base, x_adv, [0])[0] == min(queried)


@pytest.mark.parametrize(
    "draws", ["upfront", pytest.param("per_iteration", marks=pytest.mark.slow)])
def test_an_image_gets_the_same_run_in_a_full_batch_and_in_a_subset(draws):
    model, x = linear_model(), aligned_images([1, 6, 2, 7, 3, 8])
    full, full_used = traced(model, x, eps=4.0, queries=80, draws=draws)
    keep = [1, 3, 4]
    part, part_used = traced(model, tf.gather(x, keep), eps=4.0, queries=80, index=keep,
                             draws=draws)
    np.testing.assert_array_equal(part.numpy(), full.numpy()[keep])
    np.testing.assert_array_equal(part_used.numpy(), full_used.numpy()[keep])
    other_seed, _ = traced(model, tf.gather(x, keep), eps=4.0, queries=80, index=keep, seed=1,
                           draws=draws)
    assert not np.array_equal(other_seed.numpy(), part.numpy())


def test_fooled_images_come_back_unchanged_and_leave_the_batch():
    base, sizes = linear_model(), []

    def recorder(x):
        sizes.append(int(x.shape[0]))
        return base(x)

    x, y = aligned_images([6, 6, 1]), tf.constant([0, 1, 0])  # image 1 is already wrong
    x_adv, used = square_with_queries(recorder, x, y, eps=4.0, queries=50)
    np.testing.assert_array_equal(x_adv.numpy()[1], x.numpy()[1])
    assert used.numpy()[1] == 0 and 0 < used.numpy()[2] < 50 and used.numpy()[0] == 50
    assert sizes[0] == 3 and max(sizes[1:]) == 2 and sizes[-1] == 1
    sizes.clear()
    x_adv, used = square_with_queries(recorder, x, [1, 1, 1], eps=4.0, queries=50)
    np.testing.assert_array_equal(x_adv.numpy(), x.numpy())
    assert sizes == [3] and not np.any(used.numpy())


def test_probabilities_give_the_same_attack_as_logits():
    model, x = linear_model(_weights() / 40), aligned_images([1, 3, 6])
    probabilities = lambda x: tf.nn.softmax(model(x))  # noqa: E731
    from_logits, _ = traced(model, x, eps=4.0, queries=100)
    from_probabilities, _ = traced(probabilities, x, eps=4.0, queries=100, output="probabilities")
    np.testing.assert_array_equal(from_probabilities.numpy(), from_logits.numpy())
    saturated = scores(lambda x: tf.constant([[1.0, 0.0]]), x[:1], "probabilities")
    assert np.all(np.isfinite(saturated.numpy()))


def _paper_p_selection(p_init, it, n_iters):
    """The schedule as the authors' code writes it (square_attack_linf's p_selection)."""
    it = int(it / n_iters * 10000)
    halvings = sum(it > t for t in PAPER_HALVINGS)
    return p_init / 2**halvings


def test_schedule_is_the_papers_rescaled_to_the_budget():
    assert halving_iterations(10_000) == PAPER_HALVINGS
    assert halving_iterations(5000) == (5, 25, 100, 250, 500, 1000, 2000, 3000, 4000)
    for queries in (5000, 10_000, 300, 777):
        for i in range(queries - 1):
            assert square_fraction(i, queries, 0.8) == _paper_p_selection(0.8, i, queries)
    assert square_side(0.8, 64, 64) == 57 and square_side(0.8, 16, 16) == 14
    assert square_side(0.8 / 512, 16, 16) == 1 and square_side(1.0, 8, 8) == 7


# tests/attacks/test_invariants.py checks that square traces once by default; this
# longer case also covers one ε per image.
@pytest.mark.slow
def test_traced_once_for_every_batch_size_and_eps(conv_model, images):
    attack_fn = make_attack_fn(conv_model, "square", queries=20)
    for batch, eps in [(4, 1.0), (3, 2.5), (1, 5.0), (4, 0.0)]:
        x_adv, zero = attack_fn.run(images[:batch], None, eps)
        assert x_adv.shape == (batch, SIZE, SIZE, 3) and not np.any(zero.numpy())
        assert np.all(np.abs(x_adv.numpy() - images[:batch].numpy()) <= eps)
    assert attack_fn.tracing_count() == 1
    per_image = make_attack_fn(conv_model, "square", per_image_eps=True, queries=20)
    eps, index = tf.constant([0.0, 1.0, 2.0, 3.0]), tf.constant([7, 3, 5, 1])
    np.testing.assert_array_equal(
        per_image.run(images, None, eps, index)[0].numpy(),
        square(conv_model, images, eps=eps, queries=20, index=index).numpy())


@pytest.mark.parametrize(
    "params, message",
    [
        ({"queries": 0}, "`queries` has to be a positive integer, got 0"),
        ({"p_init": 1.5}, r"`p_init` has to be in \(0, 1\], got 1.5"),
        ({"seed": -1}, r"`seed` has to be an integer in \[0, 2\*\*62\), got -1"),
        ({"output": "sigmoid"}, "`output` has to be one of"),
        ({"eps": -1.0}, "`eps` has to be nonnegative"),
    ],
)
def test_bad_parameters_raise_one_clear_value_error(params, message):
    params = {"eps": 2.0, **params}
    with pytest.raises(ValueError, match=message):
        square(linear_model(), aligned_images([1]), **params)
