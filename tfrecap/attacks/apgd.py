"""Auto-PGD (APGD) under an L∞ budget: PGD with momentum and a step size that tunes itself.

PGD's fixed step is either too short to reach the ball's far side in a few steps or too long
to settle on a maximum; APGD starts at 2ε and halves the step, per image, at checkpoints
where the loss stopped rising, restarting then from the best point found. It is the white-box
half of AutoAttack, the evaluation the field trusts (DESIGN.md, "Strong attacks for a binary
detector"). With two classes, cross-entropy and margin give the same sign steps up to float32
saturation, so the diversity comes from random restarts, drawn per image (`tfrecap.ops.random`).

Reference:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020 (Sec. 3, Algorithm 1).
"""

import math
import numbers

import tensorflow as tf

from tfrecap.attacks._gradients import (
    check_eps,
    input_gradient,
    is_zero_gradient,
    predicted_labels,
    resolve_labels,
)
from tfrecap.attacks.pgd import _SEED_RANGE, check_pgd_params, keep_better_restart
from tfrecap.ops.losses import get_loss
from tfrecap.ops.random import default_index, per_image_uniform
from tfrecap.ops.steps import broadcast_eps, project, to_valid_image

MOMENTUM = 0.75  # α of the paper: weight of the new step against the previous one
RHO = 0.75  # a checkpoint halves η where fewer than this fraction of the steps raised the loss


def checkpoints(steps):
    """The iterations ``w_j = ceil(p_j · steps)`` at which APGD may halve its step.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)``: the
    intervals shrink by 3 % of the iterations down to a floor of 6 %. Computed in whole
    percents, so that ``ceil`` never sees a float like 41.000000000000004. Repeated
    iterations (few `steps`) are dropped and none exceeds `steps`; for 100 iterations:
    ``[0, 22, 41, 57, 70, 80, 87, 93, 99]``.
    """
    percents = [0, 22]
    while percents[-1] + max(percents[-1] - percents[-2] - 3, 6) <= 100:
        percents.append(percents[-1] + max(percents[-1] - percents[-2] - 3, 6))
    return sorted({math.ceil(p * steps / 100) for p in percents if p <= 100})


def halve_step(raised, window, reduced_last, best_loss, best_loss_last, rho=RHO):
    """Per image, whether a checkpoint halves η and restarts from the best point.

    Condition 1: fewer than ``rho · window`` of the `window` steps since the last checkpoint
    raised the loss (the iterates oscillate). Condition 2: η was not halved at the last
    checkpoint and the best loss has not risen since (the search stalled). At the first
    checkpoint the "last" one is iteration 0, with η as it started and the start's loss.

    Args:
        raised: float `[N]`, how many of the steps since the last checkpoint raised the loss.
        window: the number of those steps.
        reduced_last: bool `[N]`, η was halved at the last checkpoint.
        best_loss, best_loss_last: float `[N]`, the best loss now and at the last checkpoint.
    """
    oscillating = raised < rho * tf.cast(window, tf.float32)
    stalled = tf.logical_and(tf.logical_not(reduced_last), best_loss <= best_loss_last)
    return tf.logical_or(oscillating, stalled)


def restart_start(x, eps, restart, seed, index):
    """Restart 0 starts at x; restart r ≥ 1 at a uniform point of the ε-ball keyed per image."""
    if restart == 0:
        return x
    noise = per_image_uniform(seed, restart, index, tf.shape(x)[1:], -1.0, 1.0)
    return project(x + eps * noise, x, eps)


def _ascend(model, x, labels, eps, start, steps, loss):
    """One APGD run from `start`: `(best-loss point, last fooling point, fooled, blind)`."""
    loss_fn = get_loss(loss)
    marks = checkpoints(steps)
    # Indexed by the number of steps taken: is it a checkpoint, and how long was its interval.
    is_mark = tf.constant([k in marks[1:] for k in range(steps + 1)])
    window = tf.constant([k - max(m for m in marks if m < k) if k in marks[1:] else 1
                          for k in range(steps + 1)], tf.float32)
    n = tf.shape(x)[0]
    eta = 2.0 * eps * tf.ones([n, 1, 1, 1])

    def evaluate(point):
        gradient, logits, _ = input_gradient(model, point, labels, loss)
        return gradient, loss_fn(labels, logits), tf.not_equal(predicted_labels(logits), labels)

    grad, value, fooled = evaluate(start)
    state = dict(
        i=tf.constant(0), x_k=start, x_prev=start, grad=grad, eta=eta, last=value,
        best=start, best_grad=grad, best_loss=value, fooled_x=start, fooled=fooled,
        raised=tf.zeros([n]), reduced_last=tf.zeros([n], tf.bool), best_loss_last=value,
        blind=is_zero_gradient(grad),
    )

    def step(s):
        z = project(s["x_k"] + s["eta"] * tf.sign(s["grad"]), x, eps)
        a = tf.where(s["i"] == 0, 1.0, MOMENTUM)  # no momentum on the first step
        x_new = project(s["x_k"] + a * (z - s["x_k"]) + (1.0 - a) * (s["x_k"] - s["x_prev"]),
                        x, eps)
        grad, value, fooled = evaluate(x_new)
        improved = value > s["best_loss"]
        best = tf.where(improved[:, None, None, None], x_new, s["best"])
        best_grad = tf.where(improved[:, None, None, None], grad, s["best_grad"])
        best_loss = tf.where(improved, value, s["best_loss"])
        raised = s["raised"] + tf.cast(value > s["last"], tf.float32)
        at_mark = is_mark[s["i"] + 1]
        halve = tf.logical_and(at_mark, halve_step(raised, window[s["i"] + 1], s["reduced_last"],
                                                   best_loss, s["best_loss_last"]))
        back = halve[:, None, None, None]
        return dict(
            i=s["i"] + 1, x_k=tf.where(back, best, x_new), x_prev=s["x_k"],
            grad=tf.where(back, best_grad, grad), eta=tf.where(back, s["eta"] / 2, s["eta"]),
            last=value, best=best, best_grad=best_grad, best_loss=best_loss,
            fooled_x=tf.where(fooled[:, None, None, None], x_new, s["fooled_x"]),
            fooled=s["fooled"] | fooled,
            raised=tf.where(at_mark, tf.zeros_like(raised), raised),
            reduced_last=tf.where(at_mark, halve, s["reduced_last"]),
            best_loss_last=tf.where(at_mark, best_loss, s["best_loss_last"]),
            blind=s["blind"] & is_zero_gradient(grad),
        )

    s = tf.while_loop(lambda s: s["i"] < steps, lambda s: (step(s),), (state,))[0]
    return s["best"], s["fooled_x"], s["fooled"], s["blind"]


def apgd(model, x, y=None, *, eps, steps=100, loss="ce", restarts=1, random_start=False,
         seed=0, index=None,
         quantize=True, return_diagnostics=False):
    """L∞ APGD: `steps` momentum steps with the self-tuning step size, best of `restarts`.

    Per run, the point returned is the last iterate that fooled the model, if any did and it
    still fools once rounded, else the iterate with the highest loss. Per image, the run that
    fools the model is kept, and among equals the one with the higher loss, judged on the
    final (rounded) image as in `pgd`; so adding restarts never fools fewer images.

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the prediction at x.
        eps: nonnegative scalar or `[N]` tensor, in pixel levels.
        steps: iterations per restart (the paper's 100 by default).
        loss: "ce" (direction-stable cross-entropy) or "margin".
        restarts: runs per image: restart 0 from x, restart r from a uniform point of the
            ε-ball drawn from ``(seed, r, index[n])`` alone.
        random_start: start every run at a random point, restart 0 too (the draws of
            restarts 1, 2, ...). `auto` runs its margin member so: for two classes CE and
            the margin give the same sign steps, and two runs from x would repeat each other.
        seed: integer in [0, 2**62) keying the random starts.
        index: int `[N]`, each image's index in the dataset (default 0..N-1), so an image
            gets the same starts in any batch or subset.
        quantize: round the result toward x to valid 8-bit values.
        return_diagnostics: also return a bool `[N]`, True where the gradient was exactly
            zero at every iterate of every restart (the attack was blind).

    Returns:
        `x_adv`, or `(x_adv, zero_gradient)`.
    """
    check_eps(eps)
    if (seed is None or isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            or not 0 <= seed < _SEED_RANGE):
        # None (a fresh draw per call) would break the per-image keying of the starts.
        raise ValueError(f"`seed` has to be an integer in [0, 2**62) for apgd, got {seed!r}")
    check_pgd_params(None, steps, restarts, loss, seed)
    loss_fn = get_loss(loss)
    x = tf.convert_to_tensor(x, tf.float32)
    eps = broadcast_eps(eps, x)
    index = default_index(x) if index is None else tf.cast(index, tf.int64)
    if y is None:
        labels = predicted_labels(model(x))
    else:  # the extra forward pass runs only when some label is unknown (-1)
        y = tf.cast(y, tf.int32)
        labels = tf.cond(tf.reduce_any(y < 0), lambda: resolve_labels(y, model(x)), lambda: y)

    def settle(point):
        point = to_valid_image(point, x, eps) if quantize else point
        logits = tf.cast(model(point), tf.float32)
        return point, tf.not_equal(predicted_labels(logits), labels), loss_fn(labels, logits)

    out = out_fooled = out_loss = None
    blind = tf.ones(tf.shape(x)[:1], tf.bool)
    for restart in range(restarts):
        start = restart_start(x, eps, restart + int(bool(random_start)), seed, index)
        best, fooled_x, _, run_blind = _ascend(model, x, labels, eps, start, steps, loss)
        blind = blind & run_blind
        point, fooled, value = settle(best)
        other, other_fooled, other_value = settle(fooled_x)
        use_other = (other_fooled & ~fooled)[:, None, None, None]
        point = tf.where(use_other, other, point)
        value = tf.where(other_fooled & ~fooled, other_value, value)
        fooled = fooled | other_fooled
        out, out_fooled, out_loss = keep_better_restart((out, out_fooled, out_loss),
                                                        (point, fooled, value))
    return (out, blind) if return_diagnostics else out
