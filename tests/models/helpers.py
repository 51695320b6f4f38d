"""Tiny models and batches shared by the model tests."""

import keras
import numpy as np

from tfrecap.models import build_detector

TINY_WIDTHS = (4, 4, 8, 8, 8)


def tiny_detector(size=16, batchnorm=True, dtype="float32", seed=0, **kwargs):
    """A built LaplacianCNN with tiny widths and reproducible weights."""
    keras.utils.set_random_seed(seed)
    return build_detector(size, TINY_WIDTHS, batchnorm=batchnorm, dtype=dtype, **kwargs)


def copy_of(detector, **kwargs):
    """Same architecture and weights, optionally another dtype policy."""
    config = {**detector.get_config(), **kwargs}
    clone = type(detector).from_config(config)
    clone.build((None, None, None, 3))
    clone.set_weights(detector.get_weights())
    return clone


def linear_detector(shape=(2, 2, 3), seed=0):
    """Flatten -> Dense(2): FGSM images and gradients have closed forms."""
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(2)])
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.02, (int(np.prod(shape)), 2)).astype("float32")
    bias = np.array([0.1, -0.1], "float32")
    model.set_weights([kernel, bias])
    return model


def batch(n=8, size=16, seed=0, low=0.0, high=255.0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, (n, size, size, 3)).astype("float32")
    y = (np.arange(n) % 2).astype("int32")
    return x, y
