"""SecureForensicModel.train_step: baseline equivalence, eq. 7 in closed form, BatchNorm,
mixed precision, metrics and saving."""

import keras
import numpy as np
import pytest

from tests.models.helpers import batch, copy_of, linear_detector, tiny_detector
from tfrecap.models import SecureForensicModel, sample_eps


def _weights(model):
    return [np.array(v) for v in model.variables if "seed_generator" not in v.path]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_baseline_step_equals_keras_fit_step(optimizer):
    make = {
        "sgd": lambda: keras.optimizers.SGD(0.05),
        "adam": lambda: keras.optimizers.Adam(1e-2),
    }[optimizer]
    detector = tiny_detector(16, batchnorm=True)
    reference = copy_of(detector)
    x, y = batch(8, 16)

    secure = SecureForensicModel(detector, penalty_weight=0.0, fusion_count=0)
    secure.compile(optimizer=make(), jit_compile=False)
    reference.compile(
        optimizer=make(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    before = _weights(detector)
    logs = secure.train_on_batch(x, y, return_dict=True)
    ref_logs = reference.train_on_batch(x, y, return_dict=True)

    assert logs["loss"] == pytest.approx(ref_logs["loss"], rel=1e-6)
    for got, want in zip(_weights(detector), _weights(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert any(not np.array_equal(a, b) for a, b in zip(_weights(detector), before, strict=True))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_secure_step_closed_form_on_linear_model():
    """Eq. 7 with eq. 5 and FGSM fusion, by hand on a Flatten -> Dense model."""
    m, k, alpha, lr, seed = 6, 2, 0.2, 0.5, 11
    size = np.sqrt(2 * 2) / 64  # the penalty's patch-size normalization, sqrt(H W) / 64
    lam = 0.3 / size  # an effective weight of 0.3 on the plain norm, as large as before
    detector = linear_detector()
    kernel, bias = detector.get_weights()
    rng = np.random.default_rng(2)
    x = rng.uniform(10, 245, (m, 2, 2, 3)).astype("float32")  # no clipping at eps <= 5
    y = np.array([0, 1, 1, 0, 1, 0], "int32")

    model = SecureForensicModel(
        detector,
        penalty_weight=lam,
        fusion_count=k,
        fusion_weight=alpha,
        eps_min=1.0,
        eps_max=5.0,
        seed=seed,
    )
    model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=False)
    logs = model.train_on_batch(x, y, return_dict=True)

    eps = np.asarray(sample_eps(k, 1.0, 5.0, keras.random.SeedGenerator(seed)))
    flat = x.reshape(m, -1).astype("float64")
    for i in range(k):
        flat[i] += eps[i] * np.sign(kernel[:, 1 - y[i]] - kernel[:, y[i]])
    onehot = np.eye(2)[y]
    p = _softmax(flat @ kernel + bias)
    ce = -np.log(p[np.arange(m), y])
    input_grads = (p - onehot) @ kernel.T  # grad_x J_i, per image
    norms = np.linalg.norm(input_grads, axis=1)
    w = np.where(np.arange(m) < k, alpha, 1.0)
    assert logs["loss"] == pytest.approx(np.sum(w * (ce + lam * size * norms)) / m, rel=1e-5)
    assert logs["penalty"] == pytest.approx(size * norms.mean(), rel=1e-5)
    assert logs["cross_entropy"] == pytest.approx(ce.mean(), rel=1e-5)

    # d/dW of J_i: x_i (p_i - e_i)^T. d/dW of ||W d_i||, d_i = p_i - e_i (d_i depends on W too).
    g_kernel = np.zeros_like(kernel, dtype="float64")
    g_bias = np.zeros(2)
    for i in range(m):
        d = p[i] - onehot[i]
        jac = np.diag(p[i]) - np.outer(p[i], p[i])  # dp/dz
        u = input_grads[i] / norms[i]  # d||g||/dg
        dz = d + lam * size * jac @ (kernel.T @ u)  # through z = W^T x + b
        g_kernel += w[i] * (np.outer(flat[i], dz) + lam * size * np.outer(u, d))
        g_bias += w[i] * dz
    new_kernel, new_bias = detector.get_weights()
    np.testing.assert_allclose(new_kernel, kernel - lr * g_kernel / m, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(new_bias, bias - lr * g_bias / m, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("attack_batchnorm", ["inference", "batch"])
def test_batchnorm_statistics_update_once_per_step(attack_batchnorm):
    # The moving statistics after one step are those of exactly one training
    # pass over the fused batch that the FGSM pass in the given mode makes.
    detector = tiny_detector(16, batchnorm=True, bn_momentum=0.5)
    expected_model = copy_of(detector)
    attacker = copy_of(detector)
    x, y = batch(8, 16, seed=3)
    k, eps = 4, 3.0

    model = SecureForensicModel(
        detector,
        fusion_count=k,
        eps_min=eps,
        eps_max=eps,
        seed=0,
        attack_batchnorm=attack_batchnorm,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=False)
    model.train_on_batch(x, y)

    from tfrecap.models import fgsm_fusion

    batch_mode = attack_batchnorm == "batch"
    fused = fgsm_fusion(lambda z: attacker(z, training=batch_mode), x, y, k, eps)
    other = fgsm_fusion(lambda z: attacker(z, training=not batch_mode), x, y, k, eps)
    # The two modes attack differently here, so the check below tells them apart.
    assert not np.allclose(fused, other)
    before = [np.array(v) for v in expected_model.non_trainable_variables]
    expected_model(fused, training=True)  # exactly one moving-average update
    after = [np.array(v) for v in expected_model.non_trainable_variables]
    got = [np.array(v) for v in detector.non_trainable_variables]
    for g, a, b in zip(got, after, before, strict=True):
        np.testing.assert_allclose(g, a, rtol=1e-5, atol=1e-6)
        assert not np.allclose(g, b)


def test_mixed_float16_step_matches_float32():
    detector32 = tiny_detector(16, batchnorm=False)
    detector16 = copy_of(detector32, dtype="mixed_float16")
    x, y = batch(8, 16, seed=4)
    changes, logs = [], []
    for detector in (detector32, detector16):
        model = SecureForensicModel(detector, penalty_weight=1.0, fusion_count=0)
        model.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=False)
        before = detector.get_weights()
        logs.append(model.train_on_batch(x, y, return_dict=True))
        changes.append([a - b for a, b in zip(detector.get_weights(), before, strict=True)])
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert np.isfinite(logs[1]["penalty"]) and logs[1]["penalty"] > 0
    assert logs[1]["penalty"] == pytest.approx(logs[0]["penalty"], rel=2e-2)
    assert logs[1]["loss"] == pytest.approx(logs[0]["loss"], rel=1e-2)
    # float16 sums (and the second-order penalty term) cost a few per cent per
    # variable; a missing loss scale would make the float16 step 2**15 times
    # smaller, a missing inner scale would make the penalty 2**15 times smaller.
    flat32 = np.concatenate([c.ravel() for c in changes[0]])
    flat16 = np.concatenate([c.ravel() for c in changes[1]])
    assert np.linalg.norm(flat16 - flat32) < 0.03 * np.linalg.norm(flat32)
    for c32, c16 in zip(*changes, strict=True):
        assert np.linalg.norm(c16 - c32) < 0.1 * np.linalg.norm(c32)


def test_mixed_float16_fusion_step_is_finite():
    detector = tiny_detector(16, batchnorm=True, dtype="mixed_float16")
    x, y = batch(8, 16)
    model = SecureForensicModel(detector, penalty_weight=0.1, fusion_count=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    # The tiny model overflows float16 at the initial loss scale (2**15): the
    # LossScaleOptimizer skips that step and halves the scale, as designed.
    for _ in range(2):
        logs = model.train_on_batch(x, y, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    assert all(np.all(np.isfinite(w)) for w in detector.get_weights())


def test_metrics_and_validation_logs():
    x, y = batch(8, 16)
    baseline = SecureForensicModel(tiny_detector(16))
    assert [m.name for m in baseline.metrics] == ["loss", "cross_entropy", "accuracy"]
    secure = SecureForensicModel(tiny_detector(16), penalty_weight=0.1, fusion_count=4, seed=1)
    secure.compile(optimizer="adam", jit_compile=False)
    names = ["loss", "cross_entropy", "penalty", "accuracy", "adv_accuracy"]
    assert [m.name for m in secure.metrics] == names
    history = secure.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y))
    assert set(history.history) == set(names) | {
        "val_loss",
        "val_cross_entropy",
        "val_penalty",
        "val_accuracy",
    }
    val = secure.evaluate(x, y, verbose=0, return_dict=True)
    assert val["loss"] == pytest.approx(val["cross_entropy"] + 0.1 * val["penalty"], rel=1e-5)


def test_unknown_attack_batchnorm_mode_is_rejected():
    with pytest.raises(ValueError, match="attack_batchnorm must be one of"):
        SecureForensicModel(tiny_detector(16), fusion_count=2, attack_batchnorm="train")


def test_save_and_load_secure_model(tmp_path):
    detector = tiny_detector(16)
    model = SecureForensicModel(
        detector, penalty_weight=0.2, fusion_count=3, eps_max=4.0, seed=5, attack_batchnorm="batch"
    )
    x, _ = batch(2, 16)
    path = tmp_path / "secure.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, SecureForensicModel)
    config = loaded.get_config()
    keys = ("penalty_weight", "fusion_count", "eps_max", "seed", "attack_batchnorm")
    assert {k: config[k] for k in keys} == {
        "penalty_weight": 0.2,
        "fusion_count": 3,
        "eps_max": 4.0,
        "seed": 5,
        "attack_batchnorm": "batch",
    }
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)
