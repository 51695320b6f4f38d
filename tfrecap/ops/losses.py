"""Per-image losses on logits, shared by the attacks and the secure train step.

One definition each: the plain softmax cross-entropy J of the paper's eq. 6 (the training loss,
and the saturating reference the tests compare against), the direction-stable cross-entropy
that every gradient-sign step uses, and the margin loss of PGD. `get_loss` looks a PGD loss up
by its name in ``tfrecap.names.ATTACK_LOSSES``.

Why a direction-stable form (DESIGN.md, "Direction-stable cross-entropy"): the gradient of
softmax cross-entropy with respect to the logits is ``softmax(z) - onehot(y)``. Once the logit
margin passes about 17, ``p_y - 1`` rounds to exactly 0 in float32 while ``p_other`` does not,
so the input gradient points along ``w_other`` alone: the wrong direction. Past a margin of
about 88 it is exactly 0 and FGSM silently does nothing. Written as
``softplus(logsumexp_{k != y} z_k - z_y)``, the same function keeps its gradient's direction up
to a margin of about 87: the sigmoid factor is one common scale instead of a difference of two
nearly equal numbers.
"""

import numpy as np
import tensorflow as tf

from tfrecap.names import ATTACK_LOSSES, check_registry


def _true_class_mask(labels, logits):
    return tf.one_hot(tf.cast(labels, tf.int32), tf.shape(logits)[-1], True, False, dtype=tf.bool)


def cross_entropy(labels, logits):
    """Per-image softmax cross-entropy ``-log softmax(z)_y``: J of paper eq. 6.

    The paper's eq. 6 omits the label (a typo); this is the ordinary cross-entropy, computed
    exactly as Keras' ``SparseCategoricalCrossentropy(from_logits=True)`` does, so that the
    lambda = 0, k = 0 train step is bit for bit Keras' own step. Its input gradient saturates
    at large margins (module docstring): attacks use `direction_stable_cross_entropy`.

    Args:
        labels: int `[N]`.
        logits: float `[N, C]`.

    Returns:
        float32 `[N]`.
    """
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
    )


def direction_stable_cross_entropy(labels, logits):
    """Per-image cross-entropy ``-log softmax(z)_y`` with a gradient that keeps its direction.

    Same value as `cross_entropy`; the loss of every signed-gradient step (paper eqs. 2-4, and
    FGSM batch fusion, eq. 7).

    Args:
        labels: int `[N]`, the class whose probability is pushed down.
        logits: float `[N, C]`.

    Returns:
        float32 `[N]`.
    """
    logits = tf.cast(logits, tf.float32)
    onehot = _true_class_mask(labels, logits)
    true_logit = tf.reduce_sum(tf.where(onehot, logits, 0.0), axis=-1)
    # logsumexp over the other classes: mask the true class with -inf.
    others = tf.where(onehot, tf.constant(-np.inf, logits.dtype), logits)
    return tf.nn.softplus(tf.reduce_logsumexp(others, axis=-1) - true_logit)


def margin_loss(labels, logits):
    """Logit margin ``max_{k != y} z_k - z_y`` per image; positive means misclassified.

    Its gradient never saturates.

    Reference:
        Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks",
        IEEE S&P 2017.
    """
    logits = tf.cast(logits, tf.float32)
    onehot = _true_class_mask(labels, logits)
    true_logit = tf.reduce_sum(tf.where(onehot, logits, 0.0), axis=-1)
    return tf.reduce_max(tf.where(onehot, -np.inf, logits), axis=-1) - true_logit


# The losses an iterative attack can maximise, under the names the CLI offers.
LOSSES = {"ce": direction_stable_cross_entropy, "margin": margin_loss}
check_registry("tfrecap.ops.losses", LOSSES, "ATTACK_LOSSES")


def get_loss(name):
    """The attack loss called `name` ("ce" or "margin"); anything else is a ValueError."""
    if name not in LOSSES:
        raise ValueError(f"`loss` has to be one of {ATTACK_LOSSES}, got {name!r}")
    return LOSSES[name]
