"""PGD-AT, TRADES and fast FGSM (tfrecap.models.defences): inner attacks and losses as free
functions against closed forms on a linear model, and the train step built from them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import batch, copy_of, linear_detector, tiny_detector
from tfrecap.models import SecureForensicModel
from tfrecap.models.defences import (
    TRADES_START_STD,
    default_step_size,
    example_noise,
    grad_align_cosine,
    kl_divergence,
    pgd_examples,
    trades_examples,
    trades_loss,
)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _linear_problem(m=6, seed=2):
    detector = linear_detector()
    kernel, bias = detector.get_weights()
    rng = np.random.default_rng(seed)
    x = rng.uniform(10, 245, (m, 2, 2, 3)).astype("float32")  # no pixel clipping at eps <= 5
    y = np.array([0, 1, 1, 0, 1, 0][:m], "int32")
    # The loss rises fastest along w_other - w_y, for every image and at every point.
    direction = np.stack([np.sign(kernel[:, 1 - c] - kernel[:, c]) for c in y])
    return detector, kernel, bias, x, y, direction.reshape(x.shape)


@pytest.mark.parametrize("steps,step_size", [(1, 0.5), (3, 1.0), (10, 1.0)])
def test_pgd_examples_closed_form_on_linear_model(steps, step_size):
    detector, _, _, x, y, direction = _linear_problem()
    eps = 3.0
    start = eps * np.random.default_rng(5).uniform(-1, 1, x.shape).astype("float32")
    got = pgd_examples(detector, x, y, eps, steps=steps, step_size=step_size, start=start)
    # The gradient's sign never changes on a linear model: each step adds step_size * d,
    # and the projection keeps the offset in [-eps, eps].
    offset = start
    for _ in range(steps):
        offset = np.clip(offset + step_size * direction, -eps, eps)
    np.testing.assert_allclose(got.numpy(), x + offset, rtol=0, atol=1e-4)


def test_pgd_examples_with_no_step_and_no_start_is_the_clean_batch():
    detector, _, _, x, y, _ = _linear_problem()
    got = pgd_examples(detector, x, y, 2.0, steps=0, step_size=1.0, start=None)
    np.testing.assert_array_equal(got.numpy(), x)


def _margin_problem(t, labels, gain=0.05):
    """Linear logits whose margin ``z_1 - z_0`` is ``12 · gain · t_i`` on image i: each image is
    ``128 + t_i · u`` for one sign pattern u, and a step of s levels up the loss moves its t by
    s toward the other class, so how many steps each image needs to flip is known."""
    u = np.sign(np.random.default_rng(4).normal(size=12)).astype("float32")
    detector = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten(),
                                 keras.layers.Dense(2)])
    kernel = np.stack([np.zeros(12), gain * u], axis=1).astype("float32")
    detector.set_weights([kernel, np.array([0.0, -gain * 128 * u.sum()], "float32")])
    x = (128 + np.asarray(t, "float32")[:, None] * u).reshape(-1, 2, 2, 3)
    return detector, x, np.asarray(labels, "int32"), u.reshape(2, 2, 3)


@pytest.mark.parametrize("tau, offsets", [
    # 4 steps of 1 level, eps 5. Image 0 (recaptured, t = 1.5) is wrong after 2 steps, image 1
    # (recaptured, t = -0.5) from the start, image 2 (original, t = -1.5) after 2 steps.
    (0, [-2.0, 0.0, 2.0]),
    (1, [-3.0, -1.0, 3.0]),
    (2, [-4.0, -2.0, 4.0]),
    (3, [-4.0, -3.0, 4.0]),
    (4, [-4.0, -4.0, 4.0]),  # tau >= steps: Madry's PGD
])
def test_early_stopped_pgd_stops_tau_steps_after_the_first_misclassification(tau, offsets):
    """Friendly adversarial training's PGD-K-tau (Zhang et al. 2020, Alg. 1) by hand."""
    detector, x, y, u = _margin_problem([1.5, -0.5, -1.5], [1, 1, 0])
    got = pgd_examples(detector, x, y, 5.0, steps=4, step_size=1.0, early_stop=tau)
    # A recapture moves along -u (toward "original"), an original along +u.
    want = x + np.array(offsets, "float32")[:, None, None, None] * u
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)
    plain = pgd_examples(detector, x, y, 5.0, steps=4, step_size=1.0)
    assert np.array_equal(got.numpy(), plain.numpy()) == (tau >= 4)
    with pytest.raises(ValueError, match="early_stop"):
        pgd_examples(detector, x, y, 5.0, steps=4, step_size=1.0, early_stop=-1)


def test_early_stop_reaches_the_pgd_at_step():
    """``early_stop_tau`` of the model is the inner attack's τ: the step's loss is the
    cross-entropy on the early-stopped images (no random start, so they are known)."""
    detector, x, y, _ = _margin_problem([1.5, -0.5, -1.5, 2.5], [1, 1, 0, 0])
    stopped = pgd_examples(detector, x, y, 5.0, steps=4, step_size=1.0, early_stop=0)
    want = float(np.mean(keras.losses.sparse_categorical_crossentropy(
        y, detector(stopped), from_logits=True)))
    _, logs = _one_step(detector, x, y, lr=0.0, method="pgd_at", attack_eps=5.0,
                        attack_steps=4, attack_step_size=1.0, random_start=False,
                        early_stop_tau=0)
    assert logs["loss"] == pytest.approx(want, rel=1e-5)
    _, plain = _one_step(detector, x, y, lr=0.0, method="pgd_at", attack_eps=5.0,
                         attack_steps=4, attack_step_size=1.0, random_start=False)
    assert plain["loss"] > logs["loss"]  # deeper adversarial images: a larger loss


def test_fast_fgsm_is_one_clipped_step_of_1_25_eps_from_a_uniform_start():
    """Wong et al. 2020: delta_0 ~ U[-eps, eps], one step of 1.25 eps, delta clipped to +-eps."""
    detector, _, _, x, y, direction = _linear_problem()
    eps = 2.0
    assert default_step_size("fast_fgsm", eps, 5) == pytest.approx(1.25 * eps)
    start = eps * np.random.default_rng(1).uniform(-1, 1, x.shape).astype("float32")
    got = pgd_examples(detector, x, y, eps, steps=1, step_size=1.25 * eps, start=start)
    np.testing.assert_allclose(got.numpy(), x + np.clip(start + 2.5 * direction, -eps, eps),
                               atol=1e-4)
    assert np.max(np.abs(got.numpy() - x)) <= eps + 1e-4


def test_default_step_sizes():
    assert default_step_size("pgd_at", 2.0, 5) == pytest.approx(1.0)  # Madry: 2.5 eps / k
    assert default_step_size("trades", 2.0, 5) == pytest.approx(0.5)  # Zhang: about eps / 4
    with pytest.raises(ValueError, match="zhao2018"):
        default_step_size("zhao2018", 2.0, 5)


def test_kl_is_zero_for_equal_logits_and_matches_numpy():
    rng = np.random.default_rng(0)
    clean = rng.normal(0, 3, (5, 2)).astype("float32")
    np.testing.assert_allclose(kl_divergence(clean, clean).numpy(), 0.0, atol=1e-7)
    adversarial = clean + rng.normal(0, 1, (5, 2)).astype("float32")
    p, q = _softmax(clean.astype("float64")), _softmax(adversarial.astype("float64"))
    np.testing.assert_allclose(kl_divergence(clean, adversarial).numpy(),
                               np.sum(p * np.log(p / q), axis=1), rtol=1e-5, atol=1e-7)
    # Finite for confident logits, where p * log(p / q) with probabilities would be 0 * inf.
    confident = np.array([[200.0, -200.0]], "float32")
    assert np.isfinite(kl_divergence(confident, -confident).numpy()).all()


def test_kl_gradient_keeps_its_direction_on_confident_logits():
    """Beyond a margin of about 17, a plain KL's gradient in the top logit rounds to 0; the
    direction-stable one stays -(q_other - p_other), so the two entries cancel."""
    clean = tf.constant([[30.0, 0.0], [0.0, -40.0]])
    adversarial = tf.Variable([[29.0, 0.0], [0.0, -39.0]])
    with tf.GradientTape() as tape:
        kl = tf.reduce_sum(kl_divergence(clean, adversarial))
    grad = tape.gradient(kl, adversarial).numpy()
    assert (grad[:, 0] < 0).all() and (grad[:, 1] > 0).all()
    np.testing.assert_allclose(grad[:, 0], -grad[:, 1], rtol=1e-5)
    np.testing.assert_allclose(grad[0, 1], np.exp(-29.0) - np.exp(-30.0), rtol=1e-4)


def test_trades_loss_is_cross_entropy_plus_beta_kl():
    rng = np.random.default_rng(1)
    clean = rng.normal(0, 2, (4, 2)).astype("float32")
    y = np.array([0, 1, 1, 0], "int32")
    per_image, ce, kl = trades_loss(clean, clean, y, beta=6.0)
    p = _softmax(clean.astype("float64"))
    np.testing.assert_allclose(ce.numpy(), -np.log(p[np.arange(4), y]), rtol=1e-5)
    np.testing.assert_allclose(kl.numpy(), 0.0, atol=1e-7)
    np.testing.assert_allclose(per_image.numpy(), ce.numpy(), rtol=1e-6)
    adversarial = clean[::-1].copy()
    per_image, ce, kl = trades_loss(clean, adversarial, y, beta=6.0)
    np.testing.assert_allclose(per_image.numpy(), ce.numpy() + 6.0 * kl.numpy(), rtol=1e-6)
    assert (kl.numpy() >= 0).all() and kl.numpy().max() > 0


def test_trades_inner_attack_raises_the_kl_inside_the_ball():
    """On a linear model KL(p(x) || p(x')) grows with |(w1 - w0) . (x' - x)|: the attack moves
    to a corner of the ball, and ends with a KL above its noisy start's."""
    detector, kernel, bias, x, _, _ = _linear_problem()
    x = x / 10 + 5  # logits near 0 (a KL far above float32 rounding), pixels >= eps
    eps = 2.0
    start = TRADES_START_STD * np.random.default_rng(3).normal(size=x.shape).astype("float32")
    got = trades_examples(detector, x, eps, steps=5, step_size=eps / 4, start=start).numpy()
    assert np.max(np.abs(got - x)) <= eps + 1e-4
    clean = detector(x)
    start_kl = kl_divergence(clean, detector(np.clip(x + start, 0, 255))).numpy()
    end_kl = kl_divergence(clean, detector(got)).numpy()
    assert (end_kl > start_kl).all()
    # Away from p(x) along +-(w_1 - w_0), the same way at every step: 5 steps of eps / 4 from
    # the start, clipped to the ball. Which way depends on the start, per image.
    axis = np.sign(kernel[:, 1] - kernel[:, 0]).reshape(x.shape[1:])
    for i in range(len(x)):
        ways = [np.clip(start[i] + 5 * (eps / 4) * sign * axis, -eps, eps) for sign in (1, -1)]
        assert min(np.abs(got[i] - x[i] - way).max() for way in ways) < 1e-3


def test_grad_align_is_zero_on_a_linear_model_and_matches_per_image_tapes():
    # Linear: grad_x J = (p_1 - y_1)(w_1 - w_0), the same direction at every x: cos = 1.
    detector, _, _, x, y, _ = _linear_problem()
    noisy = np.clip(x + np.random.default_rng(0).uniform(-3, 3, x.shape), 0, 255).astype("float32")
    np.testing.assert_allclose(grad_align_cosine(detector, x, noisy, y).numpy(), 0.0, atol=1e-5)

    model = tiny_detector(16, batchnorm=False)
    x, y = batch(4, 16, seed=3)
    noisy = np.clip(x + np.random.default_rng(1).uniform(-8, 8, x.shape), 0, 255).astype("float32")
    got = grad_align_cosine(model, x, noisy, y).numpy()

    def grad(image, label):
        image = tf.constant(image[None])
        with tf.GradientTape() as tape:
            tape.watch(image)
            loss = keras.losses.sparse_categorical_crossentropy(
                tf.constant([label]), model(image), from_logits=True)
        return tape.gradient(loss, image).numpy().ravel()

    for i in range(4):
        g1, g2 = grad(x[i], y[i]), grad(noisy[i], y[i])
        want = 1 - g1 @ g2 / (np.linalg.norm(g1) * np.linalg.norm(g2))
        assert got[i] == pytest.approx(want, abs=1e-4)
    assert (got > 1e-4).any()  # not vacuous: a nonlinear model's gradients turn


def test_example_noise_depends_on_step_stream_and_index_not_on_the_batch():
    a = example_noise(7, tf.constant(3, tf.int64), 0, tf.constant([0, 1, 2, 3]), [2, 2, 3])
    b = example_noise(7, tf.constant(3, tf.int64), 0, tf.constant([2, 3]), [2, 2, 3])
    np.testing.assert_array_equal(a.numpy()[2:], b.numpy())
    other_step = example_noise(7, tf.constant(4, tf.int64), 0, tf.constant([0, 1, 2, 3]),
                               [2, 2, 3])
    other_stream = example_noise(7, tf.constant(3, tf.int64), 1, tf.constant([0, 1, 2, 3]),
                                 [2, 2, 3])
    assert not np.allclose(a, other_step) and not np.allclose(a, other_stream)
    assert -1 <= a.numpy().min() and a.numpy().max() < 1
    normal = example_noise(7, tf.constant(3, tf.int64), 0, tf.constant(range(64)), [8, 8, 3],
                           "normal").numpy()
    assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05


def _one_step(detector, x, y, lr=0.5, **kwargs):
    model = SecureForensicModel(detector, seed=3, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=False)
    return model, model.train_on_batch(x, y, return_dict=True)


def test_pgd_at_with_no_step_and_no_random_start_is_the_plain_step():
    """Also from a pipeline: [defence] random_start = false reaches the model (factory test)."""
    detector = tiny_detector(16, batchnorm=True)
    reference = copy_of(detector)
    x, y = batch(8, 16)
    _, logs = _one_step(detector, x, y, method="pgd_at", attack_steps=0, random_start=False)
    _, ref_logs = _one_step(reference, x, y, method="baseline")
    assert logs["loss"] == pytest.approx(ref_logs["loss"], rel=1e-6)
    for got, want in zip(detector.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["pgd_at", "fast_fgsm"])
def test_adversarial_training_step_closed_form_on_linear_model(method):
    """The step trains on the inner attack's images: mean CE, SGD update by hand."""
    detector, kernel, bias, x, y, direction = _linear_problem()
    m, lr, eps, seed = len(y), 0.5, 2.0, 3
    steps = 3 if method == "pgd_at" else 1
    step_size = default_step_size(method, eps, steps)
    model, logs = _one_step(detector, x, y, lr=lr, method=method, attack_eps=eps,
                            attack_steps=steps)
    start = eps * example_noise(seed, tf.constant(0, tf.int64), 0, tf.range(m), x.shape[1:])
    offset = start.numpy()
    for _ in range(steps):
        offset = np.clip(offset + step_size * direction, -eps, eps)
    flat = (x + offset).reshape(m, -1).astype("float64")
    p = _softmax(flat @ kernel + bias)
    onehot = np.eye(2)[y]
    assert logs["loss"] == pytest.approx(np.mean(-np.log(p[np.arange(m), y])), rel=1e-5)
    assert logs["adv_accuracy"] == pytest.approx(np.mean(p.argmax(1) == y))
    new_kernel, new_bias = detector.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - lr * flat.T @ (p - onehot) / m,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_bias, bias - lr * (p - onehot).mean(0), rtol=1e-4, atol=1e-7)


def test_trades_step_loss_is_ce_plus_beta_kl_of_its_inner_attack():
    detector, kernel, bias, x, y, _ = _linear_problem()
    m, eps, beta, seed = len(y), 2.0, 6.0, 3
    before = detector.get_weights()
    model, logs = _one_step(detector, x, y, method="trades", attack_eps=eps, attack_steps=4,
                            trades_beta=beta)
    detector.set_weights(before)  # the inner attack ran on the weights before the update
    start = TRADES_START_STD * example_noise(seed, tf.constant(0, tf.int64), 0, tf.range(m),
                                             x.shape[1:], "normal")
    x_adv = trades_examples(detector, x, eps, steps=4, step_size=eps / 4, start=start)
    per_image, ce, kl = trades_loss(detector(x), detector(x_adv), y, beta)
    assert logs["loss"] == pytest.approx(float(np.mean(per_image)), rel=1e-5)
    assert logs["kl"] == pytest.approx(float(np.mean(kl)), rel=1e-5)
    assert logs["cross_entropy"] == pytest.approx(float(np.mean(ce)), rel=1e-5)
    assert logs["kl"] > 0


def test_clean_fraction_keeps_the_last_images_clean():
    detector, kernel, bias, x, y, _ = _linear_problem()
    model, logs = _one_step(detector, x, y, lr=0.0, method="pgd_at", attack_eps=2.0,
                            clean_fraction=0.5)
    clean = _softmax(x[3:].reshape(3, -1) @ kernel + bias)
    assert logs["accuracy"] == pytest.approx(np.mean(clean.argmax(1) == y[3:]))
    assert {"accuracy", "adv_accuracy"} <= set(logs)


def test_grad_align_adds_its_weighted_cosine_to_the_loss():
    detector = tiny_detector(16, batchnorm=False)
    reference = copy_of(detector)
    x, y = batch(8, 16, seed=2)
    _, logs = _one_step(detector, x, y, lr=0.0, method="fast_fgsm", attack_eps=4.0,
                        grad_align_weight=0.5)
    _, plain = _one_step(reference, x, y, lr=0.0, method="fast_fgsm", attack_eps=4.0)
    assert logs["grad_align"] > 0 and "grad_align" not in plain
    assert logs["loss"] == pytest.approx(plain["loss"] + 0.5 * logs["grad_align"], rel=1e-5)


@pytest.mark.parametrize("method", ["pgd_at", "trades", "fast_fgsm"])
def test_mixed_float16_adversarial_step_matches_float32(method):
    detector32 = tiny_detector(16, batchnorm=False)
    detector16 = copy_of(detector32, dtype="mixed_float16")
    x, y = batch(8, 16, seed=4)
    changes, logs = [], []
    for detector in (detector32, detector16):
        before = detector.get_weights()
        model, log = _one_step(detector, x, y, lr=1.0, method=method, attack_eps=2.0,
                               attack_steps=2, grad_align_weight=0.1 * (method == "fast_fgsm"))
        logs.append(log)
        changes.append(np.concatenate(
            [(a - b).ravel() for a, b in zip(detector.get_weights(), before, strict=True)]))
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert all(np.isfinite(v) for v in logs[1].values())
    assert logs[1]["loss"] == pytest.approx(logs[0]["loss"], rel=2e-2)
    # A missing loss scale would make the float16 step 2**15 times smaller.
    assert np.linalg.norm(changes[1] - changes[0]) < 0.1 * np.linalg.norm(changes[0])


def test_inner_attack_leaves_batchnorm_statistics_to_the_training_pass():
    """PGD-AT's inner attack (2 steps from a random start) runs in inference mode: the moving
    statistics after the step are a plain step's on the adversarial images, updated once."""
    detector = tiny_detector(16, batchnorm=True, bn_momentum=0.5)
    reference = copy_of(detector)
    x, y = batch(8, 16)
    eps, steps = 4.0, 2
    start = eps * example_noise(3, tf.constant(0, tf.int64), 0, tf.range(8), x.shape[1:])
    # The same inner attack, on the weights and statistics before the step.
    x_adv = pgd_examples(lambda images: reference(images, training=False), x, y, eps,
                         steps=steps, step_size=default_step_size("pgd_at", eps, steps),
                         start=start)
    before = [np.array(v) for v in detector.non_trainable_variables]
    _one_step(detector, x, y, lr=0.0, method="pgd_at", attack_eps=eps, attack_steps=steps)
    _one_step(reference, x_adv.numpy(), y, lr=0.0, method="baseline")
    for got, want, old in zip(detector.non_trainable_variables,
                              reference.non_trainable_variables, before, strict=True):
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-6)
        assert not np.allclose(np.array(got), old)
    # Not vacuous: statistics of the clean batch differ from those of the adversarial one.
    clean = copy_of(tiny_detector(16, batchnorm=True, bn_momentum=0.5))
    _one_step(clean, x, y, lr=0.0, method="baseline")
    assert any(not np.allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-6) for a, b in
               zip(clean.non_trainable_variables, reference.non_trainable_variables, strict=True))


def test_bad_method_settings_are_rejected():
    detector = tiny_detector(16)
    with pytest.raises(ValueError, match="method must be one of"):
        SecureForensicModel(detector, method="madry")
    with pytest.raises(ValueError, match="belong to method zhao2018"):
        SecureForensicModel(detector, method="pgd_at", penalty_weight=1.0)
    with pytest.raises(ValueError, match="attack_eps"):
        SecureForensicModel(detector, method="trades", attack_eps=0.0)
    with pytest.raises(ValueError, match="attack_steps >= 1"):
        SecureForensicModel(detector, method="trades", attack_steps=0)
    with pytest.raises(ValueError, match="clean_fraction"):
        SecureForensicModel(detector, method="pgd_at", clean_fraction=1.0)


def test_adversarial_training_model_round_trips_through_keras_file(tmp_path):
    model = SecureForensicModel(tiny_detector(16), method="trades", attack_eps=3.0,
                                attack_steps=2, trades_beta=2.0, seed=5)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert (loaded.method, loaded.attack_eps, loaded.attack_steps, loaded.trades_beta) == (
        "trades", 3.0, 2, 2.0)


def test_grad_align_stays_finite_on_confident_images_whose_gradients_underflow():
    """Regression: fast FGSM + GradAlign trained to NaN weights in 100 steps: a confident
    image's squared input-gradient norm underflows, and the cosine's gradient divided by it."""
    model = tiny_detector(16, batchnorm=False)
    x, y = batch(4, 16, seed=3)
    # Scale the logits layer so that every image is classified with a margin of hundreds.
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 1e4, bias])
    noisy = np.clip(x + np.random.default_rng(1).uniform(-2, 2, x.shape), 0, 255).astype("float32")
    labels = np.argmax(model(x).numpy(), axis=1).astype("int32")  # confidently right
    with tf.GradientTape() as tape:
        cosine = grad_align_cosine(model, x, noisy, labels)
        total = tf.reduce_sum(cosine)
    grads = tape.gradient(total, model.trainable_variables)
    assert np.isfinite(cosine.numpy()).all()
    assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)
