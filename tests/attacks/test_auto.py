"""The `auto` ensemble with stand-in members: who breaks what, who sees what, never above a member.

The real members (apgd, square) are patched in as stand-ins with their planned signatures, in
the registry only for the test (monkeypatch), so these tests hold before and after they land.
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.attacks.test_trained_model import trained  # noqa: F401  (a fixture)
from tfrecap import attacks
from tfrecap.attacks.auto import ALREADY_WRONG, ROBUST, AutoAttackFn, make_auto_fn
from tfrecap.ops.random import per_image_uniform
from tfrecap.ops.steps import broadcast_eps, project, to_valid_image

SEEN = []  # (member tag, dataset indices) of every call of a `_breaks` stand-in


def brightness_model(x):
    """Class 1 when the mean pixel is above 128: an image at 127 or 129 flips with ε = 2."""
    m = tf.reduce_mean(x, axis=[1, 2, 3])
    return tf.stack([128.0 - m, m - 128.0], axis=-1)


def _breaks(model, x, y=None, *, eps, targets=(), tag="", index=None,
            return_diagnostics=False):
    """Moves the images whose dataset index is in `targets` by ε toward the other class."""
    def record(ids):
        SEEN.append((tag, ids.tolist()))
        return ids

    index = tf.numpy_function(record, [index], tf.int64)
    hit = tf.reduce_any(index[:, None] == tf.constant(list(targets) or [-1], tf.int64), axis=1)
    away = tf.where(tf.cast(y, tf.float32) > 0.5, -1.0, 1.0)[:, None, None, None]
    x_adv = tf.where(hit[:, None, None, None], x + broadcast_eps(eps, x) * away, x)
    zero = tf.zeros(tf.shape(x)[:1], tf.bool)
    return (x_adv, zero) if return_diagnostics else x_adv


def _noise(model, x, y=None, *, eps, stream=0, seed=0, index=None, return_diagnostics=False):
    """A random sign pattern of ±ε drawn per image with `per_image_uniform`."""
    draw = per_image_uniform(seed, stream, index, tf.shape(x)[1:], -1.0, 1.0)
    x_adv = to_valid_image(project(x + eps * tf.sign(draw), x, eps), x, eps)
    zero = tf.zeros(tf.shape(x)[:1], tf.bool)
    return (x_adv, zero) if return_diagnostics else x_adv


def _fake_apgd(model, x, y=None, *, eps, steps=100, loss="ce", restarts=1, random_start=False,
               seed=0, index=None, quantize=True, return_diagnostics=False):
    """apgd's planned signature; the step count decides the stream, so it must reach here."""
    return _noise(model, x, y, eps=eps, stream=steps, seed=seed, index=index,
                  return_diagnostics=return_diagnostics)


def _fake_square(model, x, y=None, *, eps, queries=5000, p_init=0.8, seed=0, index=None,
                 output="logits", quantize=True, return_diagnostics=False):
    return _noise(model, x, y, eps=eps, stream=10_000 + queries, seed=seed, index=index,
                  return_diagnostics=return_diagnostics)


@pytest.fixture
def registry(monkeypatch):
    for name, fn in (("breaks", _breaks), ("noise", _noise), ("apgd", _fake_apgd),
                     ("square", _fake_square)):
        monkeypatch.setitem(attacks.ATTACKS, name, fn)
    SEEN.clear()


@pytest.fixture(scope="module")
def linear_model():
    """A fixed random linear score of (x - 128): images near 128 sit near its boundary."""
    w = tf.constant(np.random.default_rng(0).normal(size=(1, 8, 8, 3)), tf.float32)

    def model(x):
        s = tf.reduce_sum(w * (x - 128.0) / 128.0, axis=[1, 2, 3])
        return tf.stack([-s, s], axis=-1)

    return model


def _near_boundary(n, seed):
    rng = np.random.default_rng(seed)
    return tf.constant(np.round(128 + rng.uniform(-10, 10, (n, 8, 8, 3))), tf.float32)


def _brightness_batch():
    """Six images at mean 127 or 129; labels make image 5 (index 15) wrong at x."""
    means = np.array([127, 129, 127, 129, 127, 127], np.float32)
    x = np.broadcast_to(means[:, None, None, None], (6, 4, 4, 3)).copy()
    y = np.array([0, 1, 0, 1, 0, 1], np.int32)
    return tf.constant(x), tf.constant(y), tf.range(10, 16, dtype=tf.int64)


def test_robust_only_if_every_member_fails_and_members_see_only_the_still_correct(registry):
    x, y, index = _brightness_batch()
    members = (("a", "breaks", {"targets": (10, 11), "tag": "a"}),
               ("b", "breaks", {"targets": (11, 12, 13), "tag": "b"}))
    fn = attacks.make_attack_fn(brightness_model, "auto", members=members)
    assert isinstance(fn, AutoAttackFn)
    SEEN.clear()
    x_adv, zero, broken_by = fn.run_with_breakdown(x, y, 2.0, index)

    assert broken_by.numpy().tolist() == [0, 0, 1, 1, ROBUST, ALREADY_WRONG]
    assert SEEN == [("a", [10, 11, 12, 13, 14]), ("b", [12, 13, 14])]
    predicted = np.argmax(brightness_model(x_adv).numpy(), axis=1)
    assert (predicted != y.numpy()).tolist() == [True] * 4 + [False, True]
    np.testing.assert_array_equal(x_adv.numpy()[4:], x.numpy()[4:])  # robust; wrong at x
    assert not zero.numpy().any()
    assert np.abs(x_adv.numpy() - x.numpy()).max() <= 2.0
    # The `AttackFn` contract: run gives (x_adv, zero), calling gives x_adv.
    np.testing.assert_array_equal(fn.run(x, y, 2.0, index)[0].numpy(), x_adv.numpy())
    np.testing.assert_array_equal(fn(x, y, 2.0, index).numpy(), x_adv.numpy())


def test_labels_of_minus_one_use_the_prediction_and_none_is_already_wrong(registry):
    x, _, index = _brightness_batch()
    members = (("a", "breaks", {"targets": (10,), "tag": "a"}),)
    _, _, broken_by = attacks.make_attack_fn(brightness_model, "auto", members=members) \
        .run_with_breakdown(x, None, 2.0, index)
    assert broken_by.numpy().tolist() == [0] + [ROBUST] * 5


def test_auto_is_never_above_a_member_alone_per_image(registry, linear_model):
    conv_model = linear_model
    x = _near_boundary(32, 1)
    y = tf.constant(np.argmax(conv_model(x).numpy(), axis=1).astype(np.int32))
    index = tf.range(100, 132, dtype=tf.int64)
    # The weak PGD (one step of 1 level) leaves some images robust.
    members = (("noise-a", "noise", {"stream": 1}), ("noise-b", "noise", {"stream": 2}),
               ("pgd-margin", "pgd", {"steps": 1, "step_size": 1.0, "loss": "margin"}))
    eps = 16.0
    fn = attacks.make_attack_fn(conv_model, "auto", members=members, seed=5)
    x_adv, _, broken_by = fn.run_with_breakdown(x, y, eps, index)
    robust = np.argmax(conv_model(x_adv).numpy(), axis=1) == y.numpy()
    np.testing.assert_array_equal(robust, broken_by.numpy() == ROBUST)
    for k, (name, attack, params) in enumerate(members):
        seeded = {**params, "seed": 5} if attack == "noise" else params
        alone, _ = attacks.make_attack_fn(conv_model, attack, **seeded).run(x, y, eps, index)
        robust_alone = np.argmax(conv_model(alone).numpy(), axis=1) == y.numpy()
        assert not (robust & ~robust_alone).any(), name  # robust under auto => under each
        mine = broken_by.numpy() == k
        # The same per-image draws in the subset as in the full batch.
        np.testing.assert_array_equal(x_adv.numpy()[mine], alone.numpy()[mine])
    for code in (0, 1, 2, ROBUST):  # not trivial: every member breaks some, some stay robust
        assert (broken_by.numpy() == code).any(), code


def test_default_members_get_the_budgets_and_the_seed(registry, linear_model):
    x = _near_boundary(4, 2)
    fn = attacks.make_attack_fn(linear_model, "auto", apgd_steps=7, square_queries=11, seed=3)
    assert [m[0] for m in fn.members] == ["apgd-ce", "apgd-margin", "square"]
    assert fn.members[0][2] == {"steps": 7, "seed": 3, "quantize": True, "loss": "ce"}
    assert fn.members[1][2] == {"steps": 7, "seed": 3, "quantize": True, "loss": "margin",
                                "random_start": True}
    assert fn.members[2][2]["queries"] == 11
    assert fn.gradient_free == ("square",)
    x_adv, zero = fn.run(x, None, 4.0)
    assert np.abs(x_adv.numpy() - x.numpy()).max() <= 4.0
    np.testing.assert_array_equal(x_adv.numpy(), np.round(x_adv.numpy()))
    assert zero.dtype == tf.bool


def test_zero_gradient_mask_comes_from_the_white_box_members(registry):
    def flat(x):  # logits independent of x: every gradient is zero
        return tf.zeros([tf.shape(x)[0], 2]) + tf.constant([1.0, 0.0])

    x = tf.fill([3, 4, 4, 3], 100.0)
    y = tf.constant([0, 0, 1])  # image 2 is wrong at x: never attacked
    members = (("pgd", "pgd", {"steps": 2}), ("square", "noise", {}))
    fn = make_auto_fn(flat, members=members)
    assert fn.gradient_free == ()  # "noise" is not gradient-free: both count
    members = (("pgd", "pgd", {"steps": 2}), ("square", "square", {}))
    _, zero, broken_by = make_auto_fn(flat, members=members).run_with_breakdown(
        x, y, 2.0)
    assert zero.numpy().tolist() == [True, True, False]
    assert broken_by.numpy().tolist() == [ROBUST, ROBUST, ALREADY_WRONG]


def test_per_image_eps_is_gathered_with_the_images(registry):
    x, y, index = _brightness_batch()
    members = (("a", "breaks", {"targets": (10, 11, 12), "tag": "a"}),)
    fn = attacks.make_attack_fn(brightness_model, "auto", per_image_eps=True, members=members)
    eps = tf.constant([2.0, 0.0, 2.0, 2.0, 2.0, 2.0])
    _, _, broken_by = fn.run_with_breakdown(x, y, eps, index)
    assert broken_by.numpy().tolist() == [0, ROBUST, 0, ROBUST, ROBUST, ALREADY_WRONG]


def test_the_plain_function_returns_what_is_asked(registry):
    x, y, index = _brightness_batch()
    members = (("a", "breaks", {"targets": (10,), "tag": "a"}),)
    x_adv = attacks.auto(brightness_model, x, y, eps=2.0, members=members, index=index)
    _, zero, broken_by = attacks.auto(brightness_model, x, y, eps=2.0, members=members,
                                      index=index, return_diagnostics=True,
                                      return_broken_by=True)
    assert x_adv.shape == x.shape and zero.shape == (6,)
    assert broken_by.numpy()[0] == 0


@pytest.mark.parametrize("params, message", [
    ({"members": ()}, "at least one"),
    ({"members": (("a", "fgsm", {}), ("a", "llcm", {}))}, "twice"),
    ({"members": (("a", "auto", {}),)}, "itself"),
    ({"members": (("a", "fgsm"),)}, "(name, attack, params)"),
    ({"members": (("a", "nope", {}),)}, "Unknown attack 'nope'"),
    ({"apgd_steps": 0}, "apgd_steps"),
    ({"seed": -1}, "seed"),
    ({"steps": 3}, "Unknown parameters for 'auto'"),
])
def test_bad_parameters_raise_one_clear_value_error(params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        attacks.make_attack_fn(brightness_model, "auto", **params)


def test_each_member_is_traced_once_for_every_batch_size_and_eps(registry, linear_model):
    x = _near_boundary(4, 3)
    members = (("pgd", "pgd", {"steps": 2}), ("noise", "noise", {}))
    fn = attacks.make_attack_fn(linear_model, "auto", members=members)
    for batch, eps in [(4, 1.0), (3, 2.5), (1, 5.0), (4, 0.0)]:
        x_adv, zero = fn.run(x[:batch], None, eps)
        assert x_adv.shape == (batch, 8, 8, 3) and zero.shape == (batch,)
        assert np.all(np.abs(x_adv.numpy() - x[:batch].numpy()) <= eps)
    assert fn.tracing_count() == 1


@pytest.mark.slow
def test_auto_with_the_real_members_is_no_weaker_than_any_per_image(trained):  # noqa: F811
    # The "Show" item on a small trained model, with the real APGD and Square (the
    # tests above use stand-ins to pin down the gather/scatter logic).
    model, x, y = trained
    x, y = x[:48], y[:48]
    index = tf.range(48, dtype=tf.int64)
    params = {"apgd_steps": 10, "square_queries": 200, "seed": 4}
    for eps in (1.0, 2.0):
        auto_fn = attacks.make_attack_fn(model, "auto", **params)
        x_adv, _, broken_by = auto_fn.run_with_breakdown(x, y, eps, index)
        robust = np.argmax(model(x_adv).numpy(), axis=1) == y.numpy()
        for name, attack, member_params in auto_fn.members:
            alone = attacks.make_attack_fn(model, attack, **member_params)(x, y, eps, index)
            robust_alone = np.argmax(model(alone).numpy(), axis=1) == y.numpy()
            assert not (robust & ~robust_alone).any(), (eps, name)
        assert (broken_by.numpy() >= 0).any(), eps  # the comparison means something
