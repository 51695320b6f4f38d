"""A real success: the attacks break a small conv net trained on two synthetic textures.

Class 0 is smooth noise, class 1 the same kind of smooth noise plus a faint
fine periodic pattern: a toy version of a recapture's moiré. The bounds are
loose on purpose; they catch an attack that does nothing, not a weak one.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrecap.attacks import fgsm, llcm, make_attack_fn, pgd, zero_gradient_fraction

SIZE = 16


def textures(n, seed):
    """Half smooth, half smooth + a fine grating of random phase and orientation, in [0, 255]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(60, 196, (n, 4, 4, 3)).astype(np.float32)
    smooth = tf.image.resize(coarse, (SIZE, SIZE), method="bicubic").numpy()
    labels = np.arange(n) % 2
    rows, cols = np.mgrid[:SIZE, :SIZE]
    for i in np.flatnonzero(labels):
        period = rng.uniform(2.0, 3.0)
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        wave = np.cos(2 * np.pi * (rows * np.sin(angle) + cols * np.cos(angle)) / period + phase)
        smooth[i] += 12.0 * wave[..., None]
    return np.round(np.clip(smooth, 0, 255)), labels.astype(np.int32)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        # Centred, and scaled so that the 12-level grating is not lost in a [0, 1] input.
        keras.layers.Rescaling(1 / 32.0, offset=-4.0),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = textures(512, seed=0)
    model.fit(x, y, batch_size=64, epochs=6, verbose=0)
    x_test, y_test = textures(128, seed=1)
    return model, tf.constant(x_test), tf.constant(y_test)


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model(x), axis=-1) == y.numpy()))


def test_attacks_lower_accuracy_a_lot(trained):
    model, x, y = trained
    clean = accuracy(model, x, y)
    assert clean >= 0.85, f"the toy detector did not learn: clean accuracy {clean:.2f}"
    acc_fgsm = accuracy(model, fgsm(model, x, y, eps=5.0), y)
    acc_llcm = accuracy(model, llcm(model, x, eps=5.0), y)
    acc_pgd = accuracy(model, pgd(model, x, y, eps=5.0, steps=10, seed=0), y)
    assert acc_fgsm <= clean - 0.3, (clean, acc_fgsm)
    assert acc_pgd <= acc_fgsm + 0.02, (acc_fgsm, acc_pgd)
    # 2 classes: LLCM is FGSM with the predicted label (DESIGN.md, the sanity bound).
    assert abs(acc_llcm - acc_fgsm) <= (1 - clean) + 1e-9, (clean, acc_fgsm, acc_llcm)
    assert zero_gradient_fraction(model, x, y) == 0.0


def test_margin_pgd_and_traced_attack_agree_on_the_trained_model(trained):
    model, x, y = trained
    attack = make_attack_fn(model, "pgd", steps=10, loss="margin")
    x_adv, blind = attack.run(x, y, 5.0)
    assert not blind.numpy().any()
    assert accuracy(model, x_adv, y) <= accuracy(model, fgsm(model, x, y, eps=5.0), y) + 0.02
