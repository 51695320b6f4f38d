"""The pieces of the secure training step of Zhao et al. 2018 (Sec. 3.2), as free functions.

Each function is testable without ``fit``; :class:`SecureForensicModel` builds
its ``train_step`` from them, so the maths lives in one place:

* :func:`fgsm_fusion` - FGSM batch fusion (eqs. 2 and 7): the first k images of
  the batch are replaced by FGSM images made with the current weights.
* :func:`input_gradient_penalty` - the input-gradient penalty (eqs. 5 and 6):
  per image the cross-entropy J_i and ``||grad_x J_i||_2``, normalized by
  ``sqrt(H W) / 64`` so that lambda means the same at every patch size.
* :func:`fused_batch_loss` - the weighted batch loss of eq. 7, reduced over the
  *global* batch so that it is right under ``tf.distribute``.

Models are passed as ``logits_fn(images) -> logits`` callables, so the same code
serves a plain call, a ``training=True`` call and a ``stateless_call``.

Reference:
    Zhao, Yang, Ni, Zhao, Wu, "Security Consideration For Deep Learning-Based
    Image Forensics", IEICE Trans. 2018 (arXiv 1803.11157).
"""

import collections

import keras
import tensorflow as tf

from tfrecap.ops.losses import cross_entropy, direction_stable_cross_entropy
from tfrecap.ops.steps import broadcast_eps, signed_gradient_step

# Added under the square root of the penalty: sqrt'(0) is infinite, so a plain
# norm gives NaN gradients for an image whose input gradient is exactly zero.
# 1e-24 adds 1e-12 to the norm, far below any trained gradient norm.
NORM_EPSILON = 1e-24
# The patch side S at which the size-normalized penalty equals the plain norm of eq. 5: the
# demo's size, so lambda keeps the meaning it had there (see input_gradient_penalty).
PENALTY_REFERENCE_SIZE = 64

PenaltyTerms = collections.namedtuple(
    "PenaltyTerms", ["logits", "cross_entropy", "gradient_norm", "penalty"]
)
PenaltyTerms.__doc__ = """Per-image terms of eq. 5.

Attributes:
    logits: float32 `[N, C]`, the forward pass the penalty was taken on; reuse
        it for the loss and the metrics rather than running the model again.
    cross_entropy: float32 `[N]`, J_i (eq. 6, with the label).
    gradient_norm: float32 `[N]`, ``||grad_{x_i} sum_j J_j||_2``, as in eq. 5.
    penalty: float32 `[N]`, the term lambda multiplies: ``gradient_norm`` times
        ``sqrt(H * W) / 64``, so that one lambda means the same at every patch size
        (exactly ``gradient_norm`` at 64x64).
"""


def _identity(value):
    return value


def input_gradient_penalty(logits_fn, images, labels, *, scale_loss=None):
    """Cross-entropy and the size-normalized input-gradient norm per image (paper eq. 5).

    ``L_i = J_i + lambda * (sqrt(H W) / 64) * ||grad_x J_i||_2``: this returns J_i and the
    penalty term; the caller weighs them. Call it inside an outer ``tf.GradientTape`` to
    train on the penalty: the inner gradient is then differentiated a second time.

    Why the factor ``sqrt(H W) / 64`` (S / 64 for S x S patches): behind global average
    pooling every pixel's share of the gradient scales as 1 / (H W), so the L2 norm over
    the H W C pixels scales as 1 / sqrt(H W). Eq. 5's plain norm would make lambda = 100
    about 8x weaker at S = 512 than at S = 64. The factor makes one lambda mean the same at
    every patch size, and is exactly 1 at 64 x 64, the demo's size, where the penalty is the
    paper's plain norm (the reference size is ``PENALTY_REFERENCE_SIZE``).

    The input gradient is taken of the *sum* of the per-image losses, not the
    mean, so each image's gradient is its own and does not shrink with the
    batch size (otherwise lambda would silently change meaning with m).
    Images interact only through BatchNorm in training mode, which couples the
    batch: there ``grad_{x_i} sum_j J_j`` differs slightly from
    ``grad_{x_i} J_i``. Without BatchNorm, or in inference mode, they are equal.

    Args:
        logits_fn: callable ``images -> logits`` (e.g. the detector called
            with ``training=True``).
        images: float32 `[N, H, W, C]`, pixels in [0, 255].
        labels: int `[N]`.
        scale_loss: loss-scaling callable for mixed precision (the optimizer's
            ``scale_loss``); the input gradient is taken of the scaled sum,
            inside the tape, and unscaled in float32 afterwards. ``None``:
            no scaling.

    Returns:
        :class:`PenaltyTerms` ``(logits, cross_entropy, gradient_norm, penalty)``, all
        float32 (also under mixed precision).
    """
    scale_loss = scale_loss or _identity
    images = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(images)
        logits = logits_fn(images)
        per_image = cross_entropy(labels, logits)
        # scale_loss must run inside the tape, or the gradient is None.
        scaled = scale_loss(tf.reduce_sum(per_image))
    grad = tape.gradient(scaled, images) / scale_loss(tf.constant(1.0, tf.float32))
    grad = tf.cast(grad, tf.float32)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + NORM_EPSILON)
    # The local images' shape: under tf.distribute every replica sees the same patch size.
    pixels = tf.cast(tf.shape(images)[1] * tf.shape(images)[2], tf.float32)
    size_factor = tf.sqrt(pixels) / float(PENALTY_REFERENCE_SIZE)
    return PenaltyTerms(logits, per_image, norm, norm * size_factor)


def fgsm_fusion(logits_fn, images, labels, count, eps, *, scale_loss=None):
    """FGSM batch fusion (paper eqs. 2 and 7): adversarial first ``count`` images.

    ``x_adv = clip(x + eps_i * sign(grad_x J(x, y)), 0, 255)`` for the first
    ``count`` images, with the true label and the direction-stable
    cross-entropy (``tfrecap.ops``), whose gradient keeps its direction on
    confidently classified images. The standard sign is used (the paper's
    printed sign has its cases swapped). The other images are returned
    untouched. The gradient is stopped through the result.

    Only the images to be attacked go through ``logits_fn``; if it runs
    BatchNorm in training mode, the attack sees the batch statistics of those
    ``count`` images (the secure model calls it in inference mode by default).

    Args:
        logits_fn: callable ``images -> logits``, the current model, with no
            side effects: the secure model passes a ``training=False`` call, or
            a ``stateless_call`` so BatchNorm's moving statistics are not
            updated by this pass.
        images: float32 `[N, H, W, C]` in [0, 255].
        labels: int `[N]`, true labels.
        count: number k of leading images to replace (int or int tensor,
            ``0 <= count <= N``).
        eps: FGSM strength in pixel levels, a scalar or one per replaced image
            (`[count]`).
        scale_loss: optional loss-scaling callable (mixed precision): sign() is
            scale-invariant, and scaling keeps float16 gradients from
            underflowing to zero.

    Returns:
        float32 `[N, H, W, C]`: the fused batch, gradient stopped.
    """
    scale_loss = scale_loss or _identity
    images = tf.convert_to_tensor(images, tf.float32)
    head, tail = images[:count], images[count:]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(head)
        loss = tf.reduce_sum(direction_stable_cross_entropy(labels[:count], logits_fn(head)))
        scaled = scale_loss(loss)
    grad = tf.cast(tape.gradient(scaled, head), tf.float32)
    # A float16 overflow must not turn images into NaN: such an image is left
    # clean this step (the optimizer skips that step anyway).
    grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
    eps = broadcast_eps(eps, head)
    adversarial = signed_gradient_step(head, grad, eps)
    return tf.stop_gradient(tf.concat([adversarial, tail], axis=0))


def sample_eps(count, eps_min, eps_max, seed):
    """Per-image FGSM strengths ``eps_i ~ U[eps_min, eps_max]`` (Sec. 3.2).

    Args:
        count: number of images (int or int tensor).
        eps_min: lower bound, pixel levels.
        eps_max: upper bound, pixel levels; equal bounds give a fixed eps.
        seed: a ``keras.random.SeedGenerator`` (or an int for a fixed draw).

    Returns:
        float32 `[count]`.
    """
    return keras.random.uniform((count,), eps_min, eps_max, dtype="float32", seed=seed)


def replica_fusion_count(fusion_count, local_batch_size):
    """This replica's share of the k adversarial images of a global batch.

    Under ``tf.distribute`` each replica fuses its own first images: k is split
    as evenly as possible (``k // N``, plus one on the first ``k % N``
    replicas), so that the global batch holds k adversarial images, i.e.
    ``k * local / global`` per replica when N divides k. Outside a strategy this
    is ``min(k, batch)``.

    Args:
        fusion_count: k, for the global batch.
        local_batch_size: images in this replica's batch (int tensor).

    Returns:
        int32 scalar tensor.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    share = tf.constant(fusion_count // replicas, tf.int32)
    if replicas > 1 and fusion_count % replicas:
        replica_id = tf.cast(context.replica_id_in_sync_group, tf.int32)
        share += tf.cast(replica_id < fusion_count % replicas, tf.int32)
    return tf.minimum(share, tf.cast(local_batch_size, tf.int32))


def fusion_weights(batch_size, count, fusion_weight):
    """Per-image weights of eq. 7: ``alpha`` for the first ``count``, 1 after."""
    index = tf.range(batch_size)
    return tf.where(index < count, tf.cast(fusion_weight, tf.float32), 1.0)


def fused_batch_loss(per_image_loss, count, fusion_weight):
    """Batch loss of eq. 7, divided by the global batch size m.

    ``(sum_clean L_i + alpha * sum_adv L_i) / m``, where the adversarial images
    are the first ``count`` of this replica's batch. Reduced with
    ``tf.nn.compute_average_loss``: under a strategy each replica returns its
    share of the global mean, and the optimizer's cross-replica gradient sum
    makes the whole. (This is what Keras' own ``compute_loss`` does, so never
    apply both to one term: that would divide by the replica count twice.)

    Args:
        per_image_loss: float32 `[n_local]`, L_i of eq. 5.
        count: number of leading adversarial images in this replica's batch.
        fusion_weight: alpha.

    Returns:
        float32 scalar.
    """
    if isinstance(count, int) and count == 0:
        return tf.nn.compute_average_loss(per_image_loss)
    weights = fusion_weights(tf.shape(per_image_loss)[0], count, fusion_weight)
    return tf.nn.compute_average_loss(weights * per_image_loss)
