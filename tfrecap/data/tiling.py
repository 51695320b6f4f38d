"""The one tiling rule: which S×S tiles of a photo are imported, and judged when served.

``data import`` stores exactly the tiles that the exported ``classify_images`` signature
judges, so a detector is served on what it was trained on. The rule, in integer arithmetic
that NumPy (at import) and TensorFlow (inside the exported graph) compute identically:

* **Grid and phase.** The grid of non-overlapping S×S tiles starts at the top-left pixel:
  ``rows = H // S``, ``cols = W // S``, tile ``(i, j)`` has its corner at ``(i·S, j·S)``; a
  remainder at the bottom and right is ignored. Every corner is then a multiple of S, hence
  of 8 and 16, so every tile has the same phase against a JPEG's 8×8 blocks and 16×16 MCUs
  (a trace the detector may use): a centred grid would shift that phase photo by photo.
* **Cap.** When ``rows·cols > max_tiles``, an ``r × c`` sub-grid is kept, spread evenly in
  both directions: ``r = isqrt(max_tiles·rows // cols)`` clipped to ``[1, min(rows,
  max_tiles)]``, ``c = min(cols, max_tiles // r)``, then ``r = min(rows, max_tiles // c)``.
  The kept rows are the centres of ``r`` equal bins, ``((2k + 1)·rows) // (2r)`` for
  ``k < r``, and likewise for columns. So at most ``max_tiles`` tiles, about the photo's
  aspect ratio, covering the whole frame.
* **Order.** Row-major over the kept rows and columns.

TensorFlow is imported only inside the ``*_tf`` functions, so the NumPy side stays light.
"""

from __future__ import annotations

import math

RULE = "top-left-grid/1"
"""Name and version of the rule above and of the decoder (``data/decode.py``); part of a folder
dataset's identity, so a dataset imported under another rule is rebuilt, never reused. Change it
whenever a change to either would give other tiles or other pixels."""

DEFAULT_MAX_TILES = 64
"""Default cap on tiles per photo, at import and in ``classify_images``.

64 tiles cover a 512×512 photo at S = 64 completely; above that, the cap keeps one huge photo
from outweighing a hundred small ones at import, and bounds the detector's batch when served.
"""


def kept_grid(rows: int, cols: int, max_tiles: int) -> tuple[int, int]:
    """Rows and columns of the grid that are kept: all, or an ``r × c`` sub-grid under the cap.

    Raises:
        ValueError: ``max_tiles`` is below 1.
    """
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be at least 1, got {max_tiles}")
    if rows * cols <= max_tiles:
        return rows, cols
    r = min(max(math.isqrt(max_tiles * rows // cols), 1), rows, max_tiles)
    c = min(cols, max_tiles // r)
    return min(rows, max_tiles // c), c


def grid_indices(count: int, keep: int) -> list[int]:
    """``keep`` evenly spaced indices of ``0 .. count-1``: the centres of ``keep`` equal bins."""
    return [((2 * k + 1) * count) // (2 * keep) for k in range(keep)]


def tile_positions(height: int, width: int, size: int, max_tiles: int = DEFAULT_MAX_TILES):
    """Top-left corners ``(y, x)`` of the tiles the rule keeps, in row-major order.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        size: tile side S.
        max_tiles: cap on tiles per image.

    Returns:
        A list of ``(y, x)``; empty when the image is smaller than S×S.
    """
    rows, cols = height // size, width // size
    if rows == 0 or cols == 0:
        return []
    keep_rows, keep_cols = kept_grid(rows, cols, max_tiles)
    return [
        (i * size, j * size)
        for i in grid_indices(rows, keep_rows)
        for j in grid_indices(cols, keep_cols)
    ]


def _isqrt_tf(n):
    """Exact integer square root of a non-negative int32 scalar (float sqrt, then corrected)."""
    import tensorflow as tf

    r = tf.cast(tf.floor(tf.sqrt(tf.cast(n, tf.float64))), tf.int32)
    r = tf.where(r * r > n, r - 1, r)
    return tf.where((r + 1) * (r + 1) <= n, r + 1, r)


def kept_grid_tf(rows, cols, max_tiles: int):
    """:func:`kept_grid` in TF ops on int32 scalars, for the exported graph."""
    import tensorflow as tf

    r = _isqrt_tf((max_tiles * rows) // tf.maximum(cols, 1))
    r = tf.clip_by_value(r, 1, tf.maximum(tf.minimum(rows, max_tiles), 1))
    c = tf.maximum(tf.minimum(cols, max_tiles // r), 1)
    r = tf.minimum(rows, max_tiles // c)
    capped = rows * cols > max_tiles
    return tf.where(capped, r, rows), tf.where(capped, c, cols)


def grid_indices_tf(count, keep):
    """:func:`grid_indices` in TF ops: int32 ``[keep]``."""
    import tensorflow as tf

    return ((2 * tf.range(keep) + 1) * count) // tf.maximum(2 * keep, 1)


def tile_positions_tf(height, width, size: int, max_tiles: int = DEFAULT_MAX_TILES):
    """:func:`tile_positions` in TF ops: int32 ``[T, 2]`` corners ``(y, x)``, row-major."""
    import tensorflow as tf

    rows, cols = height // size, width // size
    keep_rows, keep_cols = kept_grid_tf(rows, cols, max_tiles)
    ys = grid_indices_tf(rows, keep_rows) * size
    xs = grid_indices_tf(cols, keep_cols) * size
    grid_y, grid_x = tf.meshgrid(ys, xs, indexing="ij")
    return tf.reshape(tf.stack([grid_y, grid_x], axis=-1), [-1, 2])


def cut_tiles_tf(image, size: int, max_tiles: int = DEFAULT_MAX_TILES):
    """The kept tiles of one decoded image ``[H, W, C]`` (H, W ≥ S): ``[T, S, S, C]``, row-major.

    Same tiles as slicing at :func:`tile_positions`; cut by reshaping the grid and gathering
    its kept rows and columns, which needs no per-tile loop in the graph.
    """
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    channels = image.shape[-1] if image.shape[-1] is not None else tf.shape(image)[2]
    rows, cols = height // size, width // size
    keep_rows, keep_cols = kept_grid_tf(rows, cols, max_tiles)
    grid = tf.reshape(image[: rows * size, : cols * size], [rows, size, cols, size, channels])
    grid = tf.gather(grid, grid_indices_tf(rows, keep_rows), axis=0)
    grid = tf.gather(grid, grid_indices_tf(cols, keep_cols), axis=2)
    tiles = tf.transpose(grid, [0, 2, 1, 3, 4])
    return tf.reshape(tiles, [-1, size, size, channels])
