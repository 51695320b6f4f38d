"""Losses shared by the attacks and the secure train step.

Direction-stable cross-entropy (DESIGN.md, "Direction-stable cross-entropy").
The gradient of softmax cross-entropy with respect to the logits is
``softmax(z) - onehot(y)``. Once the logit margin passes about 17, ``p_y - 1``
rounds to exactly 0 in float32 while ``p_other`` does not, so the input gradient
points along ``w_other`` alone: the wrong direction. Past a margin of about 88 it
is exactly 0 and FGSM silently does nothing.

Writing the same function as ``softplus(logsumexp_{k != y} z_k - z_y)`` keeps the
gradient's direction right up to a margin of about 87, because the sigmoid
factor is computed once, as a common scale, instead of as a difference of two
nearly equal numbers.
"""

import tensorflow as tf


def direction_stable_cross_entropy(labels, logits):
    """Per-example cross-entropy ``-log softmax(z)_y`` with a stable gradient.

    Same value as ``tf.nn.sparse_softmax_cross_entropy_with_logits``; used by
    every attack (paper eqs. 2-4) and by FGSM batch fusion.

    Args:
        labels: int tensor `[N]`, the class whose probability is pushed down.
        logits: float tensor `[N, C]`.

    Returns:
        float32 tensor `[N]`.
    """
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    num_classes = tf.shape(logits)[-1]
    onehot = tf.one_hot(labels, num_classes, on_value=True, off_value=False, dtype=tf.bool)
    true_logit = tf.reduce_sum(tf.where(onehot, logits, 0.0), axis=-1)
    # logsumexp over the other classes: mask the true class with -inf.
    others = tf.where(onehot, tf.constant(-float("inf"), logits.dtype), logits)
    return tf.nn.softplus(tf.reduce_logsumexp(others, axis=-1) - true_logit)


def naive_cross_entropy(labels, logits):
    """Ordinary softmax cross-entropy, kept to test the saturation it suffers."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
    )
