"""The one tiling rule: which S×S tiles of a photo are imported, and judged when served.

``data import`` stores exactly the tiles that the exported ``classify_images`` signature
judges, so a detector is served on what it was trained on. The rule, in integer arithmetic
that NumPy (at import) and TensorFlow (inside the exported graph) compute identically:

* **Scale first.** A photo whose long side exceeds :data:`REFERENCE_LONG_SIDE` (1024 px) is
  downscaled, antialiased, so that its long side is exactly 1024 (:func:`reference_shape`,
  :func:`normalize_scale_tf`); a smaller one is never upsampled and keeps exactly its pixels.
  Why: a verdict must not depend on the phone's megapixels or on a messaging app's resize.
  A 64-px tile of a 16 MP photo and one of a 1 MP photo see the screen's pixel grid at
  different scales; after the rule both see it (almost) the same. Why 1024: at or below the
  smallest photos users send (about 1 MP at 4:3), so a 4 MP photo and its 1 MP resize land
  on (almost) the same pixels, and small photos lose nothing. Why antialiased: plain
  decimation aliases fine detail into false low-frequency patterns, and moiré is the very
  cue of a screen. The resize is ``tf.image.resize(bilinear, antialias=True)``, rounded
  half to even and clipped to uint8; import calls the same TF op eagerly, so the pixels it
  stores are bit-identical to those the graph tiles (on the same CPU kernels).
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

RULE = "reference-1024/top-left-grid/2"
"""Name and version of the rule above and of the decoder (``data/decode.py``); part of a folder
dataset's identity, so a dataset imported under another rule is rebuilt, never reused. Change it
whenever a change to either would give other tiles or other pixels."""

REFERENCE_LONG_SIDE = 1024
"""Photos with a longer side than this are downscaled to it before tiling (module doc)."""

DEFAULT_MAX_TILES = 64
"""Default cap on tiles per photo, at import and in ``classify_images``.

64 tiles cover a 512×512 photo at S = 64 completely; above that, the cap keeps one huge photo
from outweighing a hundred small ones at import, and bounds the detector's batch when served.
"""


def reference_shape(height: int, width: int,
                    long_side: int = REFERENCE_LONG_SIDE) -> tuple[int, int]:
    """``(height, width)`` after the scale rule: long side at most ``long_side`` (L, default
    :data:`REFERENCE_LONG_SIDE`).

    Integer arithmetic, so that :func:`reference_shape_tf` gives the same: the long side
    becomes L and the short side ``(short·L + long//2) // long`` (rounded, at least 1); a
    photo whose long side is at most L keeps its shape. Another L serves experiments
    (``scripts/experiments/scale_and_aggregation.py``); import and serving use the default.
    """
    longer, shorter = max(height, width), min(height, width)
    if longer <= long_side:
        return height, width
    shorter = max(1, (shorter * long_side + longer // 2) // longer)
    if height >= width:
        return long_side, shorter
    return shorter, long_side


def reference_shape_tf(height, width, long_side: int = REFERENCE_LONG_SIDE):
    """:func:`reference_shape` in TF ops on int32 scalars: ``(height, width)`` int32."""
    import tensorflow as tf

    # int64 inside: short·L overflows int32 for sides above 2 million pixels.
    h, w = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    longer, shorter = tf.maximum(h, w), tf.minimum(h, w)
    target = tf.constant(long_side, tf.int64)
    scaled = tf.maximum(
        tf.constant(1, tf.int64), (shorter * long_side + longer // 2) // tf.maximum(longer, 1)
    )
    resize = longer > long_side
    tall = h >= w
    new_h = tf.where(resize, tf.where(tall, target, scaled), h)
    new_w = tf.where(resize, tf.where(tall, scaled, target), w)
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def normalize_scale_tf(image, long_side: int = REFERENCE_LONG_SIDE):
    """The scale rule on one decoded image: uint8 ``[H, W, C]`` → uint8 ``[h, w, C]``.

    Downscales with ``tf.image.resize(method="bilinear", antialias=True)`` to
    :func:`reference_shape_tf`, then rounds (half to even), clips to [0, 255] and casts to
    uint8, since import stores uint8 tiles; returns the input pixels unchanged when no
    resize is needed. The exported graph calls it, and import calls it eagerly
    (:func:`normalize_scale`), so both tile the same pixels.

    Raises:
        TypeError: the image is not uint8.
    """
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise TypeError(f"normalize_scale_tf wants a uint8 image, got {image.dtype.name}")
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    new_h, new_w = reference_shape_tf(height, width, long_side)

    def downscale():
        resized = tf.image.resize(
            image, tf.stack([new_h, new_w]), method="bilinear", antialias=True
        )
        return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

    changed = tf.logical_or(tf.not_equal(new_h, height), tf.not_equal(new_w, width))
    return tf.cond(changed, downscale, lambda: tf.identity(image))


def normalize_scale(pixels, long_side: int = REFERENCE_LONG_SIDE):
    """:func:`normalize_scale_tf` for a NumPy uint8 ``[H, W, C]`` image, run eagerly (import).

    A photo that needs no resize is returned as it is, without starting TensorFlow.
    """
    if reference_shape(pixels.shape[0], pixels.shape[1], long_side) == tuple(pixels.shape[:2]):
        return pixels
    return normalize_scale_tf(pixels, long_side).numpy()


def cut_tiles(pixels, size: int, max_tiles: int = DEFAULT_MAX_TILES):
    """The NumPy twin of :func:`cut_tiles_tf`: ``(positions, tiles)`` of an already scaled photo.

    ``positions`` are the ``(y, x)`` corners of :func:`tile_positions`; ``tiles`` is
    ``[T, S, S, C]`` of the same dtype, contiguous (``T = 0`` when the photo is under S×S).
    """
    import numpy as np

    positions = tile_positions(pixels.shape[0], pixels.shape[1], size, max_tiles)
    tiles = np.empty((len(positions), size, size, pixels.shape[2]), pixels.dtype)
    for k, (y, x) in enumerate(positions):
        tiles[k] = pixels[y : y + size, x : x + size]
    return positions, tiles


def served_tiles(pixels, size: int, max_tiles: int = DEFAULT_MAX_TILES,
                 long_side: int = REFERENCE_LONG_SIDE):
    """The tiles ``classify_images`` judges for a decoded photo: scale rule, then
    :func:`cut_tiles`. Returns ``(positions, tiles)``, corners in the scaled photo."""
    return cut_tiles(normalize_scale(pixels, long_side), size, max_tiles)


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
