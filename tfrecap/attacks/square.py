"""The Square attack under an L∞ budget: a score-based random search that never takes a gradient.

Each query changes one random square of the image to the corners of the ε-ball (one random
sign per channel) and keeps the change only if it lowers the margin ``z_y − max_{k≠y} z_k``.
Needing forward passes only, it checks the white-box attacks: Square beating them points to
gradient masking (DESIGN.md, "Strong attacks for a binary detector").

Every random number comes from `tfrecap.ops.random.per_image_uniform`, keyed by the image's
index in the dataset, and each image's search depends on its own state only: an image gets
the same result in a full batch and in the subset that the ``auto`` ensemble hands on. Images
already fooled are gathered out of every later forward pass, and the loop ends when none is
left.

Reference:
    Andriushchenko, Croce, Flammarion, Hein, "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020 (Algorithm 1, L∞; its p schedule).
"""

import numbers

import numpy as np
import tensorflow as tf

from tfrecap.attacks._gradients import check_eps, predicted_labels, resolve_labels
from tfrecap.ops.losses import margin_loss
from tfrecap.ops.random import default_index, per_image_uniform
from tfrecap.ops.steps import broadcast_eps, project, to_valid_image

OUTPUTS = ("logits", "probabilities")
# The paper's schedule: p halves after these iterations of a 10,000-query run.
PAPER_QUERIES = 10_000
PAPER_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
DRAWS = ("upfront", "per_iteration")
_SEED_RANGE = 2**62
# log(p) of a probability that underflowed to 0 is clipped at log(tiny) ≈ -87.3, not -inf.
_TINY = float(np.finfo(np.float32).tiny)


def halving_iterations(queries):
    """The iterations after which p halves, the paper's schedule rescaled to `queries`.

    The paper's ``p_selection`` maps iteration i to ``floor(i · 10,000 / queries)`` and halves
    p past 10, 50, ..., 8000; the same test on i itself is ``i > ceil((t + 1) · queries /
    10,000) − 1``. For 5,000 queries: (5, 25, 100, 250, 500, 1000, 2000, 3000, 4000).
    """
    return tuple(-(-(t + 1) * queries // PAPER_QUERIES) - 1 for t in PAPER_HALVINGS)


def square_fraction(iteration, queries, p_init=0.8):
    """p at `iteration` (0-based, after the initialisation): the fraction of pixels changed."""
    halvings = sum(iteration > t for t in halving_iterations(queries))
    return p_init / 2**halvings


def square_side(p, height, width):
    """The square's side: ``round(sqrt(p · H · W))``, at least 1 and at most ``min(H, W) − 1``."""
    return min(max(int(round(np.sqrt(p * height * width))), 1), min(height, width) - 1)


def check_square_params(queries=5000, p_init=0.8, seed=0, output="logits"):
    if isinstance(queries, bool) or not isinstance(queries, numbers.Integral) or queries < 1:
        raise ValueError(f"`queries` has to be a positive integer, got {queries!r}")
    if not 0.0 < float(p_init) <= 1.0:
        raise ValueError(f"`p_init` has to be in (0, 1], got {p_init!r}")
    if (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
            or not 0 <= seed < _SEED_RANGE):
        raise ValueError(f"`seed` has to be an integer in [0, 2**62), got {seed!r}")
    if output not in OUTPUTS:
        raise ValueError(f"`output` has to be one of {OUTPUTS}, got {output!r}")


def scores(model, x, output="logits"):
    """The model's outputs as logits: as given, or the logs of probabilities (clipped at tiny).

    Log-probabilities of a softmax differ from its logits by one constant per image, so the
    margin, and with it the whole attack, is the same in both modes.
    """
    z = tf.cast(model(x), tf.float32)
    return z if output == "logits" else tf.math.log(tf.maximum(z, _TINY))


def square_with_queries(model, x, y=None, *, eps, queries=5000, p_init=0.8, seed=0, index=None,
                        output="logits", quantize=True, draws="upfront"):
    """`square`, also returning the queries each image used: int32 `[N]`.

    An image's count is its forward passes on perturbed images (the initialisation and each
    iteration it took part in), at most `queries`; 0 for an image already fooled at x. The
    clean pass that resolves the labels and finds those images is not counted.

    Args:
        draws: "upfront" draws all of an image's squares and signs before the loop (stream 1);
            "per_iteration" draws them in each iteration (stream = iteration + 2); the
            stripes are stream 0. Both are keyed by the image's index; they give different,
            equally random searches.
    """
    check_eps(eps)
    check_square_params(queries, p_init, seed, output)
    if draws not in DRAWS:
        raise ValueError(f"`draws` has to be one of {DRAWS}, got {draws!r}")
    x = tf.convert_to_tensor(x, tf.float32)
    index = default_index(x) if index is None else tf.cast(index, tf.int64)
    eps = broadcast_eps(eps, x)
    channels = x.shape[-1]
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    # The square's values are x ± ε; with `quantize`, the valid 8-bit pixels nearest to them
    # inside the ball, so that every image queried is one a real attacker can save.
    upper, lower = project(x + eps, x, eps), project(x - eps, x, eps)
    if quantize:
        upper, lower = to_valid_image(upper, x, eps), to_valid_image(lower, x, eps)

    z = scores(model, x, output)
    labels = resolve_labels(y, z)
    margin = -margin_loss(labels, z)
    fooled = tf.not_equal(predicted_labels(z), labels)
    n_queries = tf.zeros(tf.shape(x)[:1], tf.int32)

    def query(idx, candidate, x_best, margin, fooled, n_queries, force=False):
        """Queries `candidate` (rows `idx`); keeps it where it lowers the margin (or `force`)."""
        z = scores(model, candidate, output)
        labels_i = tf.gather(labels, idx)
        m = -margin_loss(labels_i, z)
        better = tf.ones_like(m, tf.bool) if force else m < tf.gather(margin, idx)
        # Only the improved rows are written back: no select over whole images.
        rows = tf.boolean_mask(idx, better)[:, None]
        return (tf.tensor_scatter_nd_update(x_best, rows, tf.boolean_mask(candidate, better)),
                tf.tensor_scatter_nd_update(margin, rows, tf.boolean_mask(m, better)),
                tf.tensor_scatter_nd_update(fooled, rows, tf.boolean_mask(
                    tf.not_equal(predicted_labels(z), labels_i), better)),
                tf.tensor_scatter_nd_add(n_queries, idx[:, None], tf.ones_like(idx, tf.int32)))

    # Pixels are blended with 0/1 float masks, `lower + span · mask`, rather than selected with
    # broadcast `tf.where`, which on CPU cost several times the model's forward pass. With
    # `quantize` every term is an integer, so the blend is exact.
    span = upper - lower

    def initialise():
        """Vertical stripes, one sign per column and channel, always taken (the paper's)."""
        idx = tf.where(~fooled)[:, 0]
        stripes = per_image_uniform(seed, 0, tf.gather(index, idx), [width, channels])[:, None]
        candidate = tf.gather(lower, idx) + tf.gather(span, idx) * tf.round(stripes)
        return query(idx, candidate, x, margin, fooled, n_queries, force=True)

    # A batch fooled at x does not reach the model again, not even as an empty batch.
    x_best, margin, fooled, n_queries = tf.cond(
        tf.reduce_any(~fooled), initialise, lambda: (x, margin, fooled, n_queries))

    iterations = queries - 1
    thresholds = tf.constant(halving_iterations(queries), tf.int32)
    area = tf.cast(height * width, tf.float64)
    max_side = tf.minimum(height, width) - 1
    if draws == "upfront":
        # [iterations, N, 2 + C]: two position draws and C signs per image and iteration, in
        # one call; drawing them in every iteration took 1.6x as long (15.5 against 9.7 ms
        # per query, 32 images of 64x64 on 2 CPU cores), for ~1 MB per 10 images at 5,000.
        table = tf.transpose(per_image_uniform(seed, 1, index, [max(iterations, 1), 2 + channels]),
                             [1, 0, 2])

    def step(i, x_best, margin, fooled, n_queries):
        idx = tf.where(~fooled)[:, 0]
        halvings = tf.reduce_sum(tf.cast(i > thresholds, tf.float64))
        p = p_init * tf.pow(tf.constant(0.5, tf.float64), halvings)
        side = tf.cast(tf.round(tf.sqrt(p * area)), tf.int32)
        side = tf.minimum(tf.maximum(side, 1), max_side)
        if draws == "upfront":
            u = tf.gather(table[i], idx)
        else:
            u = per_image_uniform(seed, tf.cast(i, tf.int64) + 2, tf.gather(index, idx),
                                  [2 + channels])
        top = tf.minimum(tf.cast(u[:, :1] * tf.cast(height - side + 1, tf.float32), tf.int32),
                         height - side)
        left = tf.minimum(tf.cast(u[:, 1:2] * tf.cast(width - side + 1, tf.float32), tf.int32),
                          width - side)
        rows, cols = tf.range(height)[None], tf.range(width)[None]
        in_rows = tf.cast((rows >= top) & (rows < top + side), tf.float32)
        in_cols = tf.cast((cols >= left) & (cols < left + side), tf.float32)
        window = in_rows[:, :, None, None] * in_cols[:, None, :, None]
        values = tf.gather(lower, idx) + tf.gather(span, idx) * tf.round(u[:, None, None, 2:])
        current = tf.gather(x_best, idx)
        candidate = current + window * (values - current)
        return (i + 1, *query(idx, candidate, x_best, margin, fooled, n_queries))

    _, x_best, _, _, n_queries = tf.while_loop(
        lambda i, _x, _m, fooled, _q: (i < iterations) & tf.reduce_any(~fooled),
        step, (tf.constant(0), x_best, margin, fooled, n_queries))
    # The blend may leave a non-integral value an ulp off the ball's face: project it back.
    x_best = to_valid_image(x_best, x, eps) if quantize else project(x_best, x, eps)
    return x_best, n_queries


def square(model, x, y=None, *, eps, queries=5000, p_init=0.8, seed=0, index=None,
           output="logits", quantize=True, return_diagnostics=False):
    """L∞ Square attack: random squares at the ε-ball's corners, kept when the margin drops.

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits `[N, C]`
            (or probabilities, with ``output="probabilities"``); only ever called forward.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the prediction at x.
        eps: nonnegative scalar or `[N]` tensor, in pixel levels.
        queries: forward passes per image on perturbed images, the initialisation included
            (the paper's budget); an image stops as soon as it is fooled.
        p_init: the initial fraction of pixels in a square; it halves on the paper's
            schedule, rescaled to `queries` (`halving_iterations`).
        seed: integer in [0, 2**62); with `index` it keys every random draw.
        index: int `[N]`, the images' indices in the dataset; None gives 0..N-1.
        output: "logits", or "probabilities" (the margin of their logs, the same search).
        quantize: search over, and return, valid 8-bit images.
        return_diagnostics: also return the zero-gradient mask, all False: a score-based
            attack is never blinded by a zero gradient.

    Returns:
        `x_adv`, or `(x_adv, zero_gradient)`.

    Run it traced (`make_attack_fn`, or inside a `tf.function`): called eagerly, every query
    pays tens of milliseconds of Python op dispatch.
    """
    x_adv, _ = square_with_queries(model, x, y, eps=eps, queries=queries, p_init=p_init,
                                   seed=seed, index=index, output=output, quantize=quantize)
    return (x_adv, tf.zeros(tf.shape(x_adv)[:1], tf.bool)) if return_diagnostics else x_adv
