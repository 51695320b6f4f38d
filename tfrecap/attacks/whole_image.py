"""The whole-image verdict as a differentiable model: attacks on what a deployed detector judges.

A deployed detector judges a whole photo (``classify_images``, :mod:`tfrecap.export`): the
scale rule, the tile grid, the detector on every tile, then the stored
:class:`tfrecap.verdict.Verdict` (aggregation and threshold). :class:`WholeImageModel` is that
path as a callable photos → 2 logits ``[0, m]``, with ``m`` the margin of the aggregated score
against the stored threshold, so that every attack of the registry (``attack(model, x, y, *,
eps, ...)``) attacks a photo with one perturbation at the photo's own resolution, and a tile
flip that does not flip the verdict is no success. The pixels take the very path of the
export (:func:`tfrecap.export.photo_tiles`).

Gradient masking, and what is attacked instead: the exact aggregate (:func:`tfrecap.verdict.
aggregate_tf`) works on float32 probabilities, which saturate at 0 and 1, and ``mean_logit``
clips them to [1e-6, 1 − 1e-6], where a clipped tile has no gradient at all. So the *value* of
``m`` is the exact deployed margin (its sign is the deployed label), but its *gradient* is that
of an unclipped surrogate of the same aggregate, computed from the tile logit margins
``z = l1 − l0`` in log space (``m = surrogate + stop_gradient(exact − surrogate)``):

* ``mean_probability``: ``log mean σ(z) − log mean σ(−z)`` (= logit of the mean probability);
* ``mean_logit``: ``mean z``, unclipped;
* ``trimmed_mean`` and ``top_k``: the first formula over the tiles the aggregation keeps
  (chosen by ``z``, which orders the tiles as ``p`` does);
* plus ``1e-3 · mean z`` over those tiles, so that a confident tile's weight does not
  underflow to 0 (which left it unattacked by a sign step).

The value of ``m`` is clipped to ±:data:`MARGIN_CAP` (its sign kept, and never 0), so a
photo whose score saturates to exactly 0 or 1 still has a finite margin and a ``ce`` loss
whose gradient does not underflow. Judge the final photo with the real export
(:func:`tfrecap.evaluation.images.evaluate_folders_under_attack` PNG-encodes it and runs
``classify_images``), never with this model alone.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

from tfrecap.export import MAX_TILES, photo_tiles
from tfrecap.verdict import Verdict, aggregate_tf

MARGIN_CAP = 30.0
"""``|m|`` is clipped to this (sign kept): logits of 30 keep ``ce``'s gradient in float32."""

_TINY_MARGIN = 1e-6  # the smallest |m|: argmax must give the label even at s == threshold
_WEIGHT_FLOOR = 1e-3  # the surrogate's least weight per tile (relative): see `surrogate`


def _logit(value):
    value = tf.cast(value, tf.float64)
    return tf.math.log(value) - tf.math.log1p(-value)


class WholeImageModel:
    """Photos → ``[N, 2]`` logits ``[0, m]`` of the deployed whole-image verdict.

    Args:
        logits_fn: float32 tiles ``[T, S, S, 3]`` → float32 logits ``[T, 2]`` (the export's
            ``logits`` signature, or a Keras detector).
        size: the patch side S.
        max_tiles: the export's tile cap.
        verdict: the export's :class:`tfrecap.verdict.Verdict` (None: the default).

    Calling it on float32 photos ``[N, H, W, 3]`` in [0, 255] (the N photos of one batch share
    their size; one photo per batch is fine) gives ``[N, 2]`` logits whose argmax is the
    label ``classify_images`` gives (1 = recaptured, when the aggregate is ``>=`` the
    threshold). See the module doc for the value and the gradient of ``m``.
    """

    def __init__(self, logits_fn, size: int, max_tiles: int = MAX_TILES,
                 verdict: Verdict | None = None):
        self.logits_fn = logits_fn
        self.size = int(size)
        self.max_tiles = int(max_tiles)
        self.verdict = Verdict() if verdict is None else verdict

    def tiles(self, x):
        """The tiles ``classify_images`` judges, per photo: float32 ``[N, T, S, S, 3]``."""
        x = tf.convert_to_tensor(x, tf.float32)
        n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        # The photos side by side in the channels: one resize and one cut for the batch.
        folded = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [h, w, n * 3])
        tiles = photo_tiles(folded, self.size, self.max_tiles)
        tiles = tf.reshape(tiles, [-1, self.size, self.size, n, 3])
        return tf.transpose(tiles, [3, 0, 1, 2, 4])

    def tile_logits(self, x):
        """The detector's logits on every tile: float32 ``[N, T, 2]``."""
        tiles = self.tiles(x)
        shape = tf.shape(tiles)
        flat = tf.reshape(tiles, [-1, self.size, self.size, 3])
        logits = tf.cast(self.logits_fn(flat), tf.float32)
        return tf.reshape(logits, [shape[0], shape[1], 2])

    def scores(self, x=None, *, tile_logits=None):
        """The exact deployed aggregate per photo (``recaptured_probability``): float32 ``[N]``."""
        logits = self.tile_logits(x) if tile_logits is None else tile_logits
        return tf.map_fn(lambda one: aggregate_tf(one, self.verdict), tf.stop_gradient(logits),
                         fn_output_signature=tf.TensorSpec([], tf.float32))

    def surrogate(self, tile_logits):
        """The unclipped log-space surrogate of ``logit(aggregate)`` (module doc): ``[N]``."""
        z = all_z = tile_logits[..., 1] - tile_logits[..., 0]
        aggregation = self.verdict.aggregation
        if aggregation == "mean_logit":
            return tf.reduce_mean(z, axis=1)
        count = tf.shape(z)[1]
        if aggregation == "trimmed_mean":
            drop = tf.cast(tf.floor(self.verdict.trim_fraction * tf.cast(count, tf.float64)
                                    + 1e-9), tf.int32)
            drop = tf.maximum(0, tf.minimum(drop, (count - 1) // 2))
            z = tf.sort(z, axis=1)[:, drop : count - drop]
        elif aggregation == "top_k":
            keep = tf.cast(tf.math.ceil(self.verdict.top_k_fraction
                                        * tf.cast(count, tf.float64) - 1e-9), tf.int32)
            z = tf.math.top_k(z, k=tf.maximum(1, tf.minimum(count, keep)), sorted=False).values
        # log mean σ(z) − log mean σ(−z); the log of the count cancels. Its weight on a tile
        # is about σ(z_i) / Σ σ(z_j), which underflows to exactly 0 in float32 for tiles some
        # 100 logits more confident than the least confident one: a sign step would then leave
        # them untouched, although raising any z raises the aggregate. The small mean-z term
        # keeps every tile's weight positive (the direction of the exact gradient, which is
        # positive in every kept z, at a cost of 1e-3 of its scale). It is taken over all
        # tiles, not only those top-k or the trimmed mean keep: a tile left out now enters the
        # kept set once the kept ones move, so the attack moves it too, as a tile-by-tile
        # attack would (with the term over the kept tiles only, whole-image PGD on a top-k
        # verdict left 10 of 12 test photos robust at ε = 2 where tile-by-tile PGD left 6;
        # not yet re-measured with it over all tiles).
        return (tf.reduce_logsumexp(tf.math.log_sigmoid(z), axis=1)
                - tf.reduce_logsumexp(tf.math.log_sigmoid(-z), axis=1)
                + _WEIGHT_FLOOR * tf.reduce_mean(all_z, axis=1))

    def margin(self, x=None, *, tile_logits=None):
        """``logit(s) − logit(t)`` of the exact aggregate s and threshold t, float64 ``[N]``
        (±inf where s or t is 0 or 1; NaN when both are)."""
        scores = self.scores(x, tile_logits=tile_logits)
        return _logit(scores) - _logit(tf.constant(self.verdict.threshold, tf.float64))

    def __call__(self, x):
        logits = self.tile_logits(x)
        scores = self.scores(tile_logits=logits)
        exact = self.margin(tile_logits=logits)
        exact = tf.where(tf.math.is_nan(exact), tf.zeros_like(exact), exact)
        recaptured = scores >= tf.constant(self.verdict.threshold, tf.float32)
        value = tf.where(recaptured, tf.clip_by_value(exact, _TINY_MARGIN, MARGIN_CAP),
                         tf.clip_by_value(exact, -MARGIN_CAP, -_TINY_MARGIN))
        surrogate = self.surrogate(logits)
        # The value is exactly the deployed margin (its sign is the label); only the gradient
        # is the surrogate's. `surrogate + stop_gradient(value - surrogate)` would cancel in
        # float32 when |surrogate| >> |value| and could return 0, the wrong label.
        m = tf.cast(value, tf.float32) + (surrogate - tf.stop_gradient(surrogate))
        return tf.stack([tf.zeros_like(m), m], axis=1)


def encode_png(photo) -> bytes:
    """A valid 8-bit photo ``[H, W, 3]`` (float levels or uint8) as lossless PNG bytes.

    Raises:
        ValueError: the photo has values that are not integral levels in [0, 255].
    """
    from PIL import Image

    pixels = np.asarray(photo)
    if pixels.dtype != np.uint8:
        if (not np.all(np.isfinite(pixels)) or pixels.min() < 0 or pixels.max() > 255
                or np.any(pixels != np.round(pixels))):
            raise ValueError("a photo to encode must hold integral levels in [0, 255]")
        pixels = pixels.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def classify_photo(classify, photo) -> dict:
    """Judge one photo as a deployed user gets it: PNG bytes through ``classify_images``.

    Returns:
        ``{"label" (0 or 1), "recaptured_probability", "patch_count"}``.
    """
    out = classify(image_bytes=tf.constant([encode_png(photo)]))
    return {"label": int(out["label"][0]),
            "recaptured_probability": float(out["recaptured_probability"][0]),
            "patch_count": int(out["patch_count"][0])}
