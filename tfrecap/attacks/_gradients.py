"""What every attack shares: labels, the input gradient of an attack loss, gradient diagnostics.

Models map float32 RGB pixels in [0, 255] (NHWC) to logits; attacks never see
probabilities (DESIGN.md, "Attacks"). A model is any callable, so a Keras model
and a SavedModel `logits` signature wrapped to return a tensor both work. It is
called as ``model(x)``; a Keras model then runs in inference mode.

Label convention: ``labels=None`` means "use the model's prediction" (the
cleverhans convention), and so does a label of -1 inside a label tensor, which
lets one traced `tf.function` serve both cases.
"""

import numpy as np
import tensorflow as tf

from tfrecap.ops.losses import get_loss


def check_eps(eps):
    """Raises ValueError for a negative ε; a symbolic ε (inside a graph) cannot be checked."""
    try:
        value = np.asarray(eps, dtype=np.float64)
    except (NotImplementedError, TypeError, ValueError):
        return
    if value.ndim > 1:
        raise ValueError(f"`eps` has to be a scalar or one value per image, got {value.shape}")
    if np.any(value < 0) or np.any(np.isnan(value)):
        shown = value.item() if value.ndim == 0 else value.min()
        raise ValueError(f"`eps` has to be nonnegative, got {shown:g}")


def predicted_labels(logits):
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def least_likely_labels(logits):
    """``argmin`` of the logits over the classes other than the predicted one.

    Excluding the prediction matters only on ties (equal logits would make
    argmin and argmax agree); for 2 classes it is always ``1 - y_pred``.
    """
    logits = tf.cast(logits, tf.float32)
    is_pred = tf.one_hot(predicted_labels(logits), tf.shape(logits)[-1], True, False, dtype=tf.bool)
    return tf.argmin(tf.where(is_pred, np.inf, logits), axis=-1, output_type=tf.int32)


def resolve_labels(labels, logits):
    """Labels to attack: None or -1 → the prediction; a callable → ``labels(logits)``."""
    if labels is None:
        return predicted_labels(logits)
    if callable(labels):
        return labels(logits)
    labels = tf.cast(labels, tf.int32)
    return tf.where(labels < 0, predicted_labels(logits), labels)


def input_gradient(model, x, labels=None, loss="ce"):
    """Gradient of an attack loss with respect to the input images.

    The gradient is taken of the *sum* of per-image losses, so each image gets
    its own gradient, unscaled by the batch size (exactly so in inference mode).

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` to logits `[N, C]`.
        x: float32 images in [0, 255].
        labels: int `[N]`, None, or a callable on the logits (see module docstring).
        loss: "ce" (direction-stable cross-entropy, DESIGN.md) or "margin".

    Returns:
        `(gradient, logits, labels)`, the labels as resolved.
    """
    loss_fn = get_loss(loss)
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.cast(model(x), tf.float32)
        labels = resolve_labels(labels, tf.stop_gradient(logits))
        total = tf.reduce_sum(loss_fn(labels, logits))
    gradient = tape.gradient(total, x)
    # None means the logits do not depend on x at all: as blind as an exact zero.
    return (tf.zeros_like(x) if gradient is None else gradient), logits, labels


def is_zero_gradient(gradient):
    """Per image: True where every component of the gradient is exactly 0."""
    axes = tf.range(1, tf.rank(gradient))
    return tf.reduce_all(tf.equal(gradient, 0.0), axis=axes)


def zero_gradient_fraction(model, x, y=None, loss="ce"):
    """Fraction of images whose input gradient at ``x`` is exactly zero (a masking symptom).

    Returns:
        A Python float in [0, 1].
    """
    gradient, _, _ = input_gradient(model, x, y, loss)
    return float(tf.reduce_mean(tf.cast(is_zero_gradient(gradient), tf.float32)))
