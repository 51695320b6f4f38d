"""Projected Gradient Descent (PGD) under an L∞ budget, with random restarts.

Reference:
    Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018. Not in Zhao et al. 2018: it is
    the strong attack that checks the single-step ones (Carlini et al. 2019,
    "On Evaluating Adversarial Robustness").
"""

import numbers

import tensorflow as tf

from tfrecap.attacks._gradients import (
    check_eps,
    input_gradient,
    is_zero_gradient,
    predicted_labels,
    resolve_labels,
)
from tfrecap.ops.losses import get_loss
from tfrecap.ops.steps import broadcast_eps, project, signed_gradient_step, to_valid_image

# Upper bound of the per-call seed drawn when `seed` is None (stateless seeds are int64 pairs).
_SEED_RANGE = 2**62


def check_pgd_params(step_size=None, steps=10, restarts=1, loss="ce", seed=None):
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` has to be a positive integer, got {steps!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"`restarts` has to be a positive integer, got {restarts!r}")
    if step_size is not None and not float(step_size) > 0:
        raise ValueError(f"`step_size` has to be positive, got {step_size!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or not 0 <= seed < _SEED_RANGE):
        raise ValueError(f"`seed` has to be None or an integer in [0, 2**62), got {seed!r}")
    get_loss(loss)


def restart_start(x, eps, restart, base_seed):
    """Where restart `restart` begins: x itself for restart 0, else a uniform point of the ε-ball.

    The draw is stateless, keyed by ``(base_seed, restart)``: every restart gets its own
    independent point, per image and per pixel, also inside one traced `tf.function`, where
    two stateful random ops with the same op-level seed would draw the same numbers.

    Args:
        x: float32 clean images `[N, H, W, C]`.
        eps: ε broadcast against x (`broadcast_eps`).
        restart: Python int, the restart's index.
        base_seed: int64 scalar tensor.

    Returns:
        float32 images inside the ε-ball and [0, 255].
    """
    if restart == 0:
        return x
    key = tf.stack([tf.cast(base_seed, tf.int64), tf.constant(restart, tf.int64)])
    noise = tf.random.stateless_uniform(tf.shape(x), seed=key, minval=-1.0, maxval=1.0)
    return project(x + eps * noise, x, eps)


def pgd(model, x, y=None, *, eps, step_size=None, steps=10, restarts=1, loss="ce",
        quantize=True, seed=None, return_diagnostics=False):
    """L∞ PGD: `steps` signed-gradient ascent steps, each projected onto the ε-ball and [0, 255].

    Restart 0 starts at x, so the default ``restarts=1`` is deterministic; each further
    restart starts at its own uniform random point of the ε-ball (Madry et al.'s random
    start). The CLI's ``--pgd-restarts`` has the same default and meaning. Since restart 0
    is the attack without a random start and the best restart is kept per image, adding
    restarts never fools fewer images: this matters here, where uniform noise is itself a
    recapture cue and a random start alone can weaken PGD (docs/runs_and_serving.md).

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the prediction at x.
        eps: nonnegative scalar or `[N]` tensor, in pixel levels.
        step_size: pixel levels per step; None gives Madry's ``2.5·ε / steps``.
        steps: number of steps per restart.
        restarts: runs per image: restart 0 from x, the others from independent random
            points of the ε-ball. Per image, the one that fools the model is kept, and
            among equals the one with the higher loss (judged on the final, rounded image).
        loss: "ce" (direction-stable cross-entropy) or "margin" (the logit
            difference ``max_{k != y} z_k - z_y``, maximised).
        quantize: round the result toward x to valid 8-bit values.
        seed: integer in [0, 2**62) for reproducible random starts (the same seed and
            images give the same result on every call); None draws new starts on every
            call (from TensorFlow's global seed, e.g. ``keras.utils.set_random_seed``).
        return_diagnostics: also return a bool `[N]`, True where the gradient
            was exactly zero at every step of every restart (the attack was blind).

    Returns:
        `x_adv`, or `(x_adv, zero_gradient)`.
    """
    check_eps(eps)
    check_pgd_params(step_size, steps, restarts, loss, seed)
    loss_fn = get_loss(loss)
    x = tf.convert_to_tensor(x, tf.float32)
    eps = broadcast_eps(eps, x)
    alpha = 2.5 * eps / steps if step_size is None else tf.constant(float(step_size))
    if y is None:
        labels = predicted_labels(model(x))
    else:  # the extra forward pass runs only when some label is unknown (-1)
        y = tf.cast(y, tf.int32)
        labels = tf.cond(tf.reduce_any(y < 0), lambda: resolve_labels(y, model(x)), lambda: y)
    base_seed = None
    if restarts > 1:
        base_seed = (tf.constant(seed, tf.int64) if seed is not None
                     else tf.random.uniform([], 0, _SEED_RANGE, tf.int64))

    def step(i, x_k, blind):
        gradient, _, _ = input_gradient(model, x_k, labels, loss)
        x_k = project(signed_gradient_step(x_k, gradient, alpha), x, eps)
        return i + 1, x_k, tf.logical_and(blind, is_zero_gradient(gradient))

    best = best_fooled = best_loss = None
    blind = tf.ones(tf.shape(x)[:1], tf.bool)
    for restart in range(restarts):
        x_k = restart_start(x, eps, restart, base_seed)
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
        best, best_fooled, best_loss = keep_better_restart(
            (best, best_fooled, best_loss), (x_k, fooled, value))
    return (best, blind) if return_diagnostics else best


def keep_better_restart(kept, candidate):
    """Per image, the better of two restarts' `(images, fooled, loss)`: the one that fools,
    and among equals the one with the higher loss. `kept` may be `(None, None, None)`."""
    if kept[0] is None:
        return candidate
    (best, best_fooled, best_loss), (x_k, fooled, value) = kept, candidate
    better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (value > best_loss))
    return (tf.where(better[:, None, None, None], x_k, best), best_fooled | fooled,
            tf.where(better, value, best_loss))
