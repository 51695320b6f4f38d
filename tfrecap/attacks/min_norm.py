"""The smallest ε that flips each image's verdict, by a bisection over ε with APGD.

Robust accuracy at a few fixed ε hides how far a defence is from breaking; the per-image
minimum ε gives the whole robustness curve and its median at once (issue 14, item 3). APGD's
success is close to monotone in ε, so a per-image bisection with one traced APGD (ε a tensor
`[N]`) finds it in `search_steps` rounds. Attacks round to 8-bit images toward x, so on
integral images only whole levels count: the true minimum is then a whole number of levels.
"""

import numbers

import numpy as np
import tensorflow as tf

from tfrecap.attacks import make_attack_fn
from tfrecap.attacks._gradients import predicted_labels, resolve_labels
from tfrecap.ops.random import default_index


def minimum_eps(model, x, y=None, *, eps_max=16.0, search_steps=6, steps=20, loss="margin",
                seed=0, index=None, attack_fn=None):
    """Per image, the smallest ε (in levels) at which APGD flips the prediction.

    Images already misclassified at x get 0; images APGD does not flip at `eps_max` get
    ``np.inf``. The others are bisected over ``[0, eps_max]``: the value returned is the
    smallest ε tried that flipped, so the true minimum (for this attack) lies within
    ``eps_max / 2**search_steps`` below it. On integral (8-bit) images it is rounded down to
    whole levels, the budget the rounded adversarial image really used.

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the prediction at x.
        eps_max: the largest ε tried, in pixel levels (positive).
        search_steps: bisection rounds after the test at `eps_max` (an integer ≥ 0).
        steps, loss, seed: APGD's iterations, loss and seed (`tfrecap.attacks.apgd`).
        index: int `[N]`, each image's index in the dataset (keys APGD's random draws).
        attack_fn: the APGD of :func:`make_minimum_eps_attack` for this model, built once;
            None builds (traces) one on every call, which costs seconds.

    Returns:
        A float32 NumPy array `[N]`.
    """
    if not (isinstance(eps_max, numbers.Real) and 0 < eps_max < np.inf):
        raise ValueError(f"`eps_max` has to be a positive number of levels, got {eps_max!r}")
    if isinstance(search_steps, bool) or not isinstance(search_steps, int) or search_steps < 0:
        raise ValueError(f"`search_steps` has to be an integer >= 0, got {search_steps!r}")
    attack = attack_fn or make_minimum_eps_attack(model, steps=steps, loss=loss, seed=seed)
    x = tf.convert_to_tensor(x, tf.float32)
    logits = model(x)
    labels = resolve_labels(y, logits)
    index = default_index(x) if index is None else tf.cast(index, tf.int64)
    correct = (predicted_labels(logits) == labels).numpy()
    result = np.where(correct, np.inf, 0.0).astype(np.float32)

    def flips(ids, eps):
        ids = tf.constant(ids)
        x_adv = attack(tf.gather(x, ids), tf.gather(labels, ids), tf.constant(eps, tf.float32),
                       tf.gather(index, ids))
        return (predicted_labels(model(x_adv)) != tf.gather(labels, ids)).numpy()

    active = np.flatnonzero(correct)
    if active.size:
        active = active[flips(active, np.full(active.size, eps_max, np.float32))]
    low = np.zeros(active.size, np.float32)
    high = np.full(active.size, eps_max, np.float32)
    for _ in range(search_steps if active.size else 0):
        middle = (low + high) / 2
        flipped = flips(active, middle)
        high, low = np.where(flipped, middle, high), np.where(flipped, low, middle)
    # APGD rounds its image toward x, so on integral images a flip at ε is a flip at floor(ε)
    # levels: report that, or the curve would count the image robust one level too far.
    integral = bool(tf.reduce_all(tf.equal(x, tf.round(x))))
    result[active] = np.floor(high) if integral else high
    return result


def make_minimum_eps_attack(model, *, steps=20, loss="margin", seed=0):
    """The one traced APGD (one ε per image) that :func:`minimum_eps` bisects with."""
    return make_attack_fn(model, "apgd", per_image_eps=True, steps=steps, loss=loss, seed=seed)


def summarize_minimum_eps(min_eps, labels, eps_max, class_names=("original", "recaptured")):
    """What a report shows of the per-image minimum ε: medians and the robustness curve.

    The curve is robust accuracy at every whole level from 0 to ``eps_max`` (attacks make
    8-bit images, so only whole levels count); inf (never flipped) is JSON ``null`` after
    :mod:`tfrecap.jsonio`.
    """
    min_eps = np.asarray(min_eps, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    grid = np.arange(0, int(np.floor(eps_max)) + 1, dtype=np.float64)
    by_class = {}
    for label, name in enumerate(class_names):
        own = min_eps[labels == label]
        by_class[name] = {"n": int(own.size),
                          "median_eps": median_eps(own) if own.size else float("nan")}
    return {
        "n": int(min_eps.size),
        "median_eps": median_eps(min_eps),
        "by_class": by_class,
        "curve": [{"eps": float(e), "accuracy": float(a)}
                  for e, a in zip(grid, robustness_curve(min_eps, grid), strict=True)],
        "min_eps": [float(v) for v in min_eps],
    }


def robustness_curve(min_eps, eps_grid):
    """Robust accuracy at each ε of `eps_grid`: the fraction of images with ``min_eps > ε``.

    An image counted as broken at ε (``min_eps <= ε``) stays broken at every larger ε, so the
    curve never rises. Returns a float64 NumPy array shaped like `eps_grid`.
    """
    min_eps = np.asarray(min_eps, np.float64).reshape(-1)
    if min_eps.size == 0:
        raise ValueError("`min_eps` is empty: no images to draw a robustness curve for")
    grid = np.asarray(eps_grid, np.float64)
    return np.mean(min_eps[:, None] > grid.reshape(-1)[None, :], axis=0).reshape(grid.shape)


def median_eps(min_eps):
    """The median minimum ε, where ``np.inf`` (never flipped) counts as larger than any ε.

    With an even count the two middle values are averaged, and the median is inf when
    either is: at least half the images then withstand every ε tried but the largest.
    """
    values = np.sort(np.asarray(min_eps, np.float64).reshape(-1))
    if values.size == 0:
        raise ValueError("`min_eps` is empty: there is no median")
    middle = values.size // 2
    if values.size % 2:
        return float(values[middle])
    low, high = values[middle - 1], values[middle]
    return float(high) if np.isinf(high) else float((low + high) / 2)
