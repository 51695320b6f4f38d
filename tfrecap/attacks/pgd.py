"""Projected Gradient Descent (PGD) under an L∞ budget, with random restarts.

Reference:
    Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018. Not in Zhao et al. 2018: it is
    the strong attack that checks the single-step ones (Carlini et al. 2019,
    "On Evaluating Adversarial Robustness").
"""

import tensorflow as tf

from tfrecap.attacks._gradients import (
    broadcast_eps,
    check_eps,
    check_loss,
    input_gradient,
    is_zero_gradient,
    predicted_labels,
    project,
    resolve_labels,
    to_valid_image,
)


def check_pgd_params(step_size=None, steps=10, restarts=1, loss="ce"):
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` has to be a positive integer, got {steps!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"`restarts` has to be a positive integer, got {restarts!r}")
    if step_size is not None and not float(step_size) > 0:
        raise ValueError(f"`step_size` has to be positive, got {step_size!r}")
    check_loss(loss)


def pgd(model, x, y=None, *, eps, step_size=None, steps=10, random_start=True, restarts=1,
        loss="ce", quantize=True, seed=None, return_diagnostics=False):
    """L∞ PGD: `steps` signed-gradient ascent steps, each projected onto the ε-ball and [0, 255].

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the prediction at x.
        eps: nonnegative scalar or `[N]` tensor, in pixel levels.
        step_size: pixel levels per step; None gives Madry's ``2.5·ε / steps``.
        steps: number of steps per restart.
        random_start: start each restart at a uniform point of the ε-ball.
        restarts: independent runs; per image, the one that fools the model is
            kept, and among equals the one with the higher loss (judged on the
            final, rounded image).
        loss: "ce" (direction-stable cross-entropy) or "margin" (the logit
            difference ``max_{k != y} z_k - z_y``, maximised).
        quantize: round the result toward x to valid 8-bit values.
        seed: op-level seed of the random start.
        return_diagnostics: also return a bool `[N]`, True where the gradient
            was exactly zero at every step of every restart (the attack was blind).

    Returns:
        `x_adv`, or `(x_adv, zero_gradient)`.
    """
    check_eps(eps)
    check_pgd_params(step_size, steps, restarts, loss)
    loss_fn = check_loss(loss)
    x = tf.convert_to_tensor(x, tf.float32)
    eps = broadcast_eps(eps, x)
    alpha = 2.5 * eps / steps if step_size is None else tf.constant(float(step_size))
    if y is None:
        labels = predicted_labels(model(x))
    else:  # the extra forward pass runs only when some label is unknown (-1)
        y = tf.cast(y, tf.int32)
        labels = tf.cond(tf.reduce_any(y < 0), lambda: resolve_labels(y, model(x)), lambda: y)

    def step(i, x_k, blind):
        gradient, _, _ = input_gradient(model, x_k, labels, loss)
        x_k = project(x_k + alpha * tf.sign(gradient), x, eps)
        return i + 1, x_k, tf.logical_and(blind, is_zero_gradient(gradient))

    best = best_fooled = best_loss = None
    blind = tf.ones(tf.shape(x)[:1], tf.bool)
    for _ in range(restarts):
        x_k = x
        if random_start:
            x_k = project(x + eps * tf.random.uniform(tf.shape(x), -1.0, 1.0, seed=seed), x, eps)
        _, x_k, blind = tf.while_loop(
            lambda i, *_: i < steps, step, (tf.constant(0), x_k, blind)
        )
        if quantize:
            x_k = to_valid_image(x_k, x, eps)
        if restarts == 1:
            best = x_k
            break
        logits = tf.cast(model(x_k), tf.float32)
        fooled = tf.not_equal(predicted_labels(logits), labels)
        value = loss_fn(labels, logits)
        if best is None:
            best, best_fooled, best_loss = x_k, fooled, value
            continue
        better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (value > best_loss))
        best = tf.where(better[:, None, None, None], x_k, best)
        best_fooled, best_loss = best_fooled | fooled, tf.where(better, value, best_loss)
    return (best, blind) if return_diagnostics else best
