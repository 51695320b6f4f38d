"""The adversarial-training defences beside the paper's, as free functions.

Each method's inner attack and loss is a function of ``logits_fn(images) -> logits``, testable
without ``fit``, like :func:`~tfrecap.models.adversarial_training.input_gradient_penalty`;
:class:`~tfrecap.models.SecureForensicModel` builds its ``train_step`` from them:

* ``pgd_at`` (Madry et al. 2018): :func:`pgd_examples`, k signed-gradient steps from a random
  point of the ε-ball, then plain cross-entropy on the adversarial images (optionally mixed
  with clean ones). Optionally early-stopped per example (friendly adversarial training,
  Zhang et al. 2020): each image stops τ steps after it is first misclassified.
* ``trades`` (Zhang et al. 2019): :func:`trades_examples` maximises
  ``KL(p(x) || p(x'))`` from ``x + 0.001 N(0, 1)`` (in [0, 1] units), then
  :func:`trades_loss` = ``CE(x, y) + beta KL(p(x) || p(x'))``.
* ``fast_fgsm`` (Wong et al. 2020): one FGSM step of 1.25ε from ``δ0 ~ U[-ε, ε]``, δ clipped to
  ±ε: :func:`pgd_examples` with one step; plus the optional GradAlign term
  (Andriushchenko & Flammarion 2020), :func:`grad_align_cosine`.

Random draws (random starts, TRADES' noise, GradAlign's η) are made by the caller, keyed by
(step, example), not by replica, so a mirrored step equals the single-device step
(:func:`example_noise`). Images are float32 pixels in [0, 255] and ε is in pixel levels, as
everywhere in tfrecap.

References:
    Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy", ICML 2019.
    Wong, Rice, Kolter, "Fast is better than free: Revisiting adversarial training", ICLR 2020.
    Andriushchenko, Flammarion, "Understanding and Improving Fast Adversarial Training",
    NeurIPS 2020.
    Zhang, Xu, Han, Niu, Cui, Sugiyama, Kankanhalli, "Attacks Which Do Not Kill Training Make
    Adversarial Learning Stronger", ICML 2020 (friendly adversarial training, FAT).
"""

import tensorflow as tf

from tfrecap.ops.losses import cross_entropy, direction_stable_cross_entropy
from tfrecap.ops.random import per_image_normal, per_image_uniform
from tfrecap.ops.steps import broadcast_eps, project, signed_gradient_step

# TRADES starts its inner attack at x + 0.001 N(0, 1) in [0, 1] units: 0.255 pixel levels here.
# Its KL is exactly 0, with a zero gradient, at x itself.
TRADES_START_STD = 0.001 * 255.0
# Added under the square roots of GradAlign's cosine (a zero input gradient gives 0 / 0).
_COSINE_EPSILON = 1e-24

# Streams of the per-example draws, told apart within one step (see example_noise).
START_STREAM = 0
GRAD_ALIGN_STREAM = 1
_STREAMS = 2


def _identity(value):
    return value


def default_step_size(method, eps, steps):
    """The method's step size in pixel levels: pgd_at 2.5ε/k (Madry), trades ε/4, fast_fgsm 1.25ε
    (Wong et al.)."""
    if method == "pgd_at":
        return 2.5 * eps / max(steps, 1)
    if method == "trades":
        return eps / 4.0
    if method == "fast_fgsm":
        return 1.25 * eps
    raise ValueError(f"no inner attack for method {method!r}")


def example_noise(seed, step, stream, index, shape, kind="uniform"):
    """Per-example noise keyed by (seed, training step, stream, the example's index in the
    global batch): the same draws on one device and under ``tf.distribute``.

    Args:
        seed: int, the model's seed.
        step: int64 scalar tensor, the optimizer's step counter.
        stream: which draw of the step (``START_STREAM``, ``GRAD_ALIGN_STREAM``).
        index: int `[N]`, each image's index in the global batch.
        shape: the shape of one image's draw, ``[H, W, C]``.
        kind: "uniform" (in [-1, 1)) or "normal" (standard normal).

    Returns:
        float32 `[N, *shape]`.
    """
    key_stream = tf.cast(step, tf.int64) * _STREAMS + stream
    if kind == "uniform":
        return per_image_uniform(seed, key_stream, index, shape, -1.0, 1.0)
    if kind == "normal":
        return per_image_normal(seed, key_stream, index, shape)
    raise ValueError(f"kind must be uniform or normal, got {kind!r}")


def global_example_index(local_batch):
    """Each local image's index in the global batch: replica r holds images r·n .. r·n + n - 1.

    ``tf.distribute`` splits a global batch into contiguous per-replica slices, so this is the
    position the image would have in the same batch on one device.
    """
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    local_batch = tf.cast(local_batch, tf.int64)
    return tf.cast(replica, tf.int64) * local_batch + tf.range(local_batch, dtype=tf.int64)


def _input_gradient(loss_fn, images, scale_loss, has_aux=False):
    """``grad_images sum(loss_fn(images))`` in float32, unscaled; a non-finite entry becomes 0
    (a float16 overflow: the optimizer skips that step anyway). With ``has_aux``, ``loss_fn``
    returns ``(loss, aux)`` and this returns ``(gradient, aux)``, as ``jax.grad`` does: aux
    (say the logits) comes from the same forward pass."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(images)
        loss, aux = loss_fn(images) if has_aux else (loss_fn(images), None)
        scaled = scale_loss(tf.reduce_sum(loss))
    grad = tf.cast(tape.gradient(scaled, images), tf.float32)
    grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
    return (grad, aux) if has_aux else grad


def _signed_ascent(loss_fn, x_adv, images, eps, steps, step_size, scale_loss):
    """``steps`` signed-gradient ascent steps on ``loss_fn`` from ``x_adv``, each projected
    onto the ε-ball around ``images`` and [0, 255]; gradient stopped."""
    for _ in range(steps):
        grad = _input_gradient(loss_fn, x_adv, scale_loss)
        x_adv = project(signed_gradient_step(x_adv, grad, step_size), images, eps)
    return tf.stop_gradient(x_adv)


def _early_stopped_ascent(logits_fn, x_adv, images, labels, eps, steps, step_size, tau,
                          scale_loss):
    """PGD-K-τ of Zhang et al. 2020 (Alg. 1): per image, before each of the ``steps`` steps,
    a misclassified image with no budget left stops where it is; a misclassified image with
    budget τ > 0 spends one and steps on. The verdicts come from the logits of the gradient's
    own forward pass, so early stopping costs no extra pass."""
    def loss_and_logits(candidate):
        logits = logits_fn(candidate)
        return direction_stable_cross_entropy(labels, logits), logits

    budget = tf.fill(tf.shape(labels), tf.constant(tau, tf.int32))
    active = tf.ones(tf.shape(labels), tf.bool)
    for _ in range(steps):
        grad, logits = _input_gradient(loss_and_logits, x_adv, scale_loss, has_aux=True)
        wrong = tf.argmax(logits, axis=-1, output_type=tf.int32) != labels
        active = active & ~(wrong & (budget <= 0))
        budget = tf.where(active & wrong, budget - 1, budget)
        stepped = project(signed_gradient_step(x_adv, grad, step_size), images, eps)
        x_adv = tf.where(active[:, None, None, None], stepped, x_adv)
    return tf.stop_gradient(x_adv)


def pgd_examples(logits_fn, images, labels, eps, *, steps, step_size, start=None,
                 scale_loss=None, early_stop=None):
    """Adversarial training images of PGD-AT (Madry et al. 2018) and fast FGSM (Wong et al. 2020).

    ``x_0 = proj(x + start)``; ``x_{t+1} = proj(x_t + step_size · sign(grad J(x_t, y)))``, where
    proj clips to the L∞ ε-ball around x and to [0, 255], and J is the direction-stable
    cross-entropy (the true label), as in the fusion. Fast FGSM is one step of ``1.25 ε`` from
    ``start = ε · U[-1, 1]``. With ``steps = 0`` and ``start = None`` this returns x: PGD-AT is
    then the plain step. With ``early_stop = τ`` each image stops τ steps after the model
    first misclassifies it (friendly adversarial training, Zhang et al. 2020): the training
    images are then the least adversarial ones that fool the model, not the deepest, which
    Zhang et al. found to keep clean accuracy at a similar robustness. τ >= steps never stops.

    Args:
        logits_fn: the model without side effects (BatchNorm in inference mode by default;
            see ``SecureForensicModel.attack_batchnorm``).
        images: float32 `[N, H, W, C]` in [0, 255].
        labels: int `[N]`.
        eps: the budget in pixel levels, a scalar or `[N]`.
        steps: Python int k >= 0.
        step_size: pixel levels per step.
        start: None (start at x) or float32 `[N, H, W, C]`, the random start's offset in
            pixel levels (the caller draws it, keyed by step and example).
        scale_loss: loss scaling for mixed precision (sign() is scale-invariant; scaling keeps
            float16 gradients from underflowing).
        early_stop: None (Madry's PGD) or Python int τ >= 0, the steps each image takes after
            it is first misclassified.

    Returns:
        float32 `[N, H, W, C]` inside the ε-ball and [0, 255], gradient stopped.
    """
    scale_loss = scale_loss or _identity
    images = tf.convert_to_tensor(images, tf.float32)
    eps = broadcast_eps(eps, images)
    x_adv = images if start is None else project(images + start, images, eps)
    if early_stop is not None:
        if early_stop < 0:
            raise ValueError(f"`early_stop` has to be None or >= 0, got {early_stop}")
        return _early_stopped_ascent(logits_fn, x_adv, images, tf.cast(labels, tf.int32), eps,
                                     steps, step_size, int(early_stop), scale_loss)

    def loss_fn(candidate):
        return direction_stable_cross_entropy(labels, logits_fn(candidate))

    return _signed_ascent(loss_fn, x_adv, images, eps, steps, step_size, scale_loss)


def kl_divergence(clean_logits, adversarial_logits):
    """Per-image ``KL(p_clean || p_adv)`` of two logit batches, float32 `[N]` (TRADES' term).

    Exactly 0 when the two logit rows are equal. Direction-stable, like the attacks'
    cross-entropy (DESIGN.md): both rows are taken relative to their logit of the clean
    top class c, which leaves the value unchanged. The gradient in the adversarial logits is
    ``q - p``; written plainly, its c entry is a difference of two numbers near 1 that rounds
    to 0 in float32 beyond a margin of about 17, and the gradient then points the wrong way.
    Relative to z_c, that entry is the sum of the other entries, each a difference of small,
    exactly representable probabilities, so the inner attack keeps its direction on confident
    images (up to a margin of about 87).
    """
    clean = tf.cast(clean_logits, tf.float32)
    adversarial = tf.cast(adversarial_logits, tf.float32)
    top = tf.argmax(clean, axis=-1, output_type=tf.int32)[:, None]
    log_p = tf.nn.log_softmax(clean - tf.gather(clean, top, axis=-1, batch_dims=1))
    log_q = tf.nn.log_softmax(adversarial - tf.gather(adversarial, top, axis=-1, batch_dims=1))
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def trades_examples(logits_fn, images, eps, *, steps, step_size, start, scale_loss=None):
    """TRADES' inner attack (Zhang et al. 2019): maximise ``KL(p(x) || p(x'))`` over the ε-ball.

    ``x'_0 = proj(x + start)`` with ``start = 0.001 N(0, 1)`` in [0, 1] units (the KL and its
    gradient are exactly 0 at x itself); then ``steps`` signed steps of ``step_size`` on the KL,
    each projected onto the ε-ball and [0, 255]. No label is used: the clean prediction
    ``p(x)`` (gradient stopped) is the target to move away from.

    Args:
        logits_fn: the model without side effects (inference mode by default).
        images: float32 `[N, H, W, C]` in [0, 255].
        eps: budget in pixel levels.
        steps: Python int >= 1.
        step_size: pixel levels per step (Zhang et al.: about ε / 4).
        start: float32 `[N, H, W, C]`, the start's offset in pixel levels (drawn by the caller).
        scale_loss: loss scaling for mixed precision.

    Returns:
        float32 adversarial images, gradient stopped.
    """
    scale_loss = scale_loss or _identity
    images = tf.convert_to_tensor(images, tf.float32)
    eps = broadcast_eps(eps, images)
    clean_logits = tf.stop_gradient(logits_fn(images))
    x_adv = project(images + start, images, eps)

    def loss_fn(candidate):
        return kl_divergence(clean_logits, logits_fn(candidate))

    return _signed_ascent(loss_fn, x_adv, images, eps, steps, step_size, scale_loss)


def trades_loss(clean_logits, adversarial_logits, labels, beta):
    """Per-image TRADES loss: ``CE(f(x), y) + beta · KL(p(x) || p(x'))`` (Zhang et al. eq. 5).

    Both logit batches carry gradients to the weights, as in the reference implementation.

    Returns:
        ``(per_image_loss, cross_entropy, kl)``, float32 `[N]` each.
    """
    ce = cross_entropy(labels, clean_logits)
    kl = kl_divergence(clean_logits, adversarial_logits)
    return ce + beta * kl, ce, kl


def _unit_scale(g):
    """Each row of ``g`` divided by its largest entry (gradient stopped through the scale).

    The cosine is scale-invariant, so this changes neither its value nor its gradient; it keeps
    both finite. A confident image's input gradient is tiny (about e^-margin per pixel; exactly
    0 beyond a margin of 87), its squared norm underflows in float32, and the cosine, or its
    gradient, which divides by it, becomes NaN. Fast FGSM with GradAlign trained to NaN weights
    within its first 100 steps on simulator-v2 data before this and the two-root norm below.
    """
    scale = tf.stop_gradient(tf.reduce_max(tf.abs(g), axis=1, keepdims=True))
    return g / tf.maximum(scale, 1e-37)


def grad_align_cosine(logits_fn, images, noisy, labels, *, scale_loss=None):
    """GradAlign's per-image ``1 - cos(grad J(x), grad J(x + η))`` (Andriushchenko & Flammarion
    2020), differentiable in the weights: call it inside the outer tape.

    Both input gradients come from one pass over ``concat([images, noisy])``, of the sum of
    the per-image cross-entropies (so each image's gradient is its own, as in the penalty),
    written direction-stably (``tfrecap.ops``): the same value, but on a confident image the
    plain form's gradient rounds onto the wrong direction, and the cosine with it.

    Args:
        logits_fn: the model; the outer tape differentiates through it. The train step
            passes it in inference mode (the deployed model, and BatchNorm's statistics
            updated once per step), where Andriushchenko & Flammarion use training mode; and
            both gradients carry second-order terms here, where their reference detaches
            the one at x (about half the cost).
        images: float32 `[N, H, W, C]`.
        noisy: float32 `[N, H, W, C]`, ``x + η`` with ``η ~ U[-ε, ε]``, clipped to [0, 255].
        labels: int `[N]`.
        scale_loss: loss scaling for mixed precision.

    Returns:
        float32 `[N]`, in [0, 2]; 0 where the two gradients point the same way.
    """
    scale_loss = scale_loss or _identity
    both = tf.concat([tf.convert_to_tensor(images, tf.float32), noisy], axis=0)
    labels2 = tf.concat([labels, labels], axis=0)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(both)
        loss = direction_stable_cross_entropy(labels2, logits_fn(both))
        scaled = scale_loss(tf.reduce_sum(loss))
    grad = tape.gradient(scaled, both) / scale_loss(tf.constant(1.0, tf.float32))
    grad = tf.cast(grad, tf.float32)
    count = tf.shape(images)[0]
    g1 = _unit_scale(tf.reshape(grad[:count], [count, -1]))
    g2 = _unit_scale(tf.reshape(grad[count:], [count, -1]))
    dot = tf.reduce_sum(g1 * g2, axis=1)
    # Two square roots, not the root of a product: (1e-24)^2 underflows to 0 in float32, and
    # an all-zero gradient (a margin beyond 87) would then give 0 / 0.
    norms = (tf.sqrt(tf.reduce_sum(g1 * g1, axis=1) + _COSINE_EPSILON)
             * tf.sqrt(tf.reduce_sum(g2 * g2, axis=1) + _COSINE_EPSILON))
    return 1.0 - dot / norms
