"""Choose the exported whole-image verdict on synthetic validation photos (issue 13, item 3).

A detector trained on patches still needs a rule for whole photos: how its tile probabilities
are aggregated, and where the aggregate is cut. Both are chosen here, after training, on whole
*validation* photos of the simulator (`tfrecap.data.generate.photos`), tiled exactly as served
(:func:`tfrecap.data.tiling.served_tiles`: the scale rule, then the tile grid),
by :func:`tfrecap.verdict.choose_verdict`: the aggregation with the highest ROC AUC, then the
threshold with the best balanced accuracy. Never on real photos: a threshold chosen on the
photos it is judged on is optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from tfrecap.data.tiling import DEFAULT_MAX_TILES, served_tiles
from tfrecap.verdict import Verdict, choose_verdict


def tile_probabilities(
    probabilities_fn: Callable[[np.ndarray], np.ndarray],
    photo: np.ndarray,
    size: int,
    max_tiles: int = DEFAULT_MAX_TILES,
) -> np.ndarray:
    """The recaptured probability of each served tile of one photo.

    Args:
        probabilities_fn: float32 ``[T, S, S, 3]`` pixels → float32 ``[T]`` recaptured
            probabilities (``softmax(logits)[:, 1]``, as ``serving_default``).
        photo: uint8 ``[H, W, 3]``, at any resolution (the scale rule is applied here).
        size: the patch side S.
        max_tiles: the tile cap of the export.
    """
    _, tiles = served_tiles(photo, size, max_tiles)
    if not len(tiles):
        raise ValueError(f"a {photo.shape[0]}x{photo.shape[1]} photo has no {size}x{size} tile")
    return np.asarray(probabilities_fn(tiles.astype(np.float32)), np.float64)


def calibrate(
    probabilities_fn: Callable[[np.ndarray], np.ndarray],
    photos: Iterable[tuple[np.ndarray, int]],
    size: int,
    max_tiles: int = DEFAULT_MAX_TILES,
) -> tuple[Verdict, list[dict]]:
    """Choose the verdict on labelled photos (0 = original, 1 = recaptured).

    Returns:
        ``(verdict, table)``: the chosen :class:`Verdict` and, per aggregation, its AUC, best
        balanced accuracy and threshold (see :func:`tfrecap.verdict.choose_verdict`).
    """
    per_image, labels = [], []
    for photo, label in photos:
        per_image.append(tile_probabilities(probabilities_fn, photo, size, max_tiles))
        labels.append(int(label))
    if len(set(labels)) < 2:
        raise ValueError("calibration needs photos of both classes")
    return choose_verdict(per_image, labels)


def keras_probabilities(detector) -> Callable[[np.ndarray], np.ndarray]:
    """``probabilities_fn`` of a Keras detector (images → 2 logits), in float32 as served."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def probabilities(tiles):
        logits = tf.cast(detector(tiles, training=False), tf.float32)
        return tf.nn.softmax(logits)[:, 1]

    return lambda tiles: probabilities(tf.constant(tiles)).numpy()
