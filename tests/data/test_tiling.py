"""The one tiling rule: NumPy (import) and TF (serving graph) keep the same scale and tiles."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecap.data import tiling

SIZES = (8, 16, 64)
CAPS = (1, 2, 3, 5, 7, 10, 64)
# (rows, cols) of the grid and the remainder beyond it, including tall and wide strips.
GRIDS = [(1, 1), (1, 2), (2, 1), (3, 3), (2, 7), (7, 2), (9, 9), (10, 7), (1, 100), (100, 1),
         (13, 40), (40, 13), (64, 1), (0, 3)]
REMAINDERS = [(0, 0), (5, 3), (7, 1)]


@pytest.fixture(scope="module")
def positions_tf():
    # One traced graph, every argument a tensor (the exported graph has S and the cap as
    # constants; the integer arithmetic is the same).
    spec = [tf.TensorSpec([], tf.int32)] * 4
    traced = tf.function(tiling.tile_positions_tf, input_signature=spec)
    return lambda *args: traced(*[tf.constant(a) for a in args]).numpy()


def test_numpy_and_tf_keep_the_same_tiles(positions_tf):
    checked = 0
    for size, cap, (rows, cols), (dy, dx) in itertools.product(SIZES, CAPS, GRIDS, REMAINDERS):
        height, width = rows * size + dy, cols * size + dx
        expected = tiling.tile_positions(height, width, size, cap)
        got = positions_tf(height, width, size, cap)
        assert got.tolist() == [list(p) for p in expected], (height, width, size, cap)
        cells = rows * cols
        assert len(expected) <= min(cells, cap)
        assert len(set(expected)) == len(expected)
        for y, x in expected:  # on the top-left grid, inside the image
            assert y % size == 0 and x % size == 0
            assert y + size <= height and x + size <= width
        if cells and cells <= cap:
            assert len(expected) == cells
        checked += 1
    assert checked == len(SIZES) * len(CAPS) * len(GRIDS) * len(REMAINDERS)


def test_cap_spreads_tiles_over_the_whole_frame():
    corners = tiling.tile_positions(100, 200, 32, max_tiles=64)
    assert corners[0] == (0, 0) and len(corners) == 3 * 6  # top-left 3x6 grid, no cap
    capped = tiling.tile_positions(3200, 3200, 32, max_tiles=9)
    assert len(capped) == 9
    assert sorted({y for y, _ in capped}) == [16 * 32, 50 * 32, 83 * 32]  # bin centres
    assert {y for y, _ in capped} == {x for _, x in capped}


def test_a_tall_strip_under_a_small_cap_keeps_tiles():
    # The rule once took r = isqrt(cap * rows // cols) = 80 rows for a 100 x 1 grid and a cap
    # of 64, then c = 64 // 80 = 0 columns: a division by zero in the graph.
    assert len(tiling.tile_positions(100 * 16, 16, 16, 64)) == 64
    assert tiling.kept_grid(100, 1, 64) == (64, 1)
    assert tiling.kept_grid(100, 3, 5) == (5, 1)


def test_cut_tiles_tf_equals_slicing_at_the_positions():
    rng = np.random.default_rng(0)
    for height, width, size, cap in [(16, 16, 16, 64), (70, 101, 16, 64), (200, 37, 16, 5),
                                     (37, 300, 8, 7), (129, 130, 64, 64)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        tiles = tiling.cut_tiles_tf(tf.constant(image), size, cap).numpy()
        expected = [image[y:y + size, x:x + size]
                    for y, x in tiling.tile_positions(height, width, size, cap)]
        np.testing.assert_array_equal(tiles, np.stack(expected))


def test_cap_must_be_positive():
    with pytest.raises(ValueError, match="max_tiles must be at least 1, got 0"):
        tiling.kept_grid(3, 3, 0)


# (height, width): under, at and just over the 1024-px reference, both orientations, strips,
# squares, odd sides, and photos of 1 to 16 MP.
SHAPES = [(1, 1), (16, 16), (1024, 1024), (1024, 1), (1, 1024), (1025, 1025), (1025, 1),
          (1, 1025), (1500, 1100), (1100, 1500), (2000, 37), (37, 2000), (2048, 1536),
          (1155, 866), (866, 1155), (3000, 4000), (4000, 3000), (4624, 3472), (5000, 5001),
          (100_000, 3), (3, 2_500_000), (1023, 4097), (700, 1024)]


def test_reference_shape_numpy_and_tf_agree():
    traced = tf.function(tiling.reference_shape_tf,
                         input_signature=[tf.TensorSpec([], tf.int32)] * 2)
    rng = np.random.default_rng(0)
    shapes = SHAPES + [tuple(int(v) for v in rng.integers(1, 9000, 2)) for _ in range(300)]
    for height, width in shapes:
        expected = tiling.reference_shape(height, width)
        got = tuple(int(v) for v in traced(tf.constant(height), tf.constant(width)))
        assert got == expected, (height, width)
        if max(height, width) <= tiling.REFERENCE_LONG_SIDE:
            assert expected == (height, width)  # never upsampled
        else:
            assert max(expected) == tiling.REFERENCE_LONG_SIDE and min(expected) >= 1
            assert expected[0] <= height and expected[1] <= width
            # orientation kept (a near-square photo may round to a square)
            assert expected[0] >= expected[1] if height >= width else expected[0] <= expected[1]
            ratio = min(height, width) / max(height, width) * tiling.REFERENCE_LONG_SIDE
            assert abs(min(expected) - max(ratio, 1)) <= 0.5 + 1e-9, (height, width)
    assert tiling.reference_shape(2048, 1536) == (1024, 768)
    assert tiling.reference_shape(1100, 1500) == (751, 1024)
    assert tiling.reference_shape(2000, 37) == (1024, 19)


def test_normalize_scale_keeps_small_photos_and_downscales_large_ones():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (1024, 700, 3), dtype=np.uint8)
    assert tiling.normalize_scale(small) is small  # exactly the input pixels, no TF call
    np.testing.assert_array_equal(tiling.normalize_scale_tf(small).numpy(), small)
    large = rng.integers(0, 256, (1100, 1500, 3), dtype=np.uint8)
    scaled = tiling.normalize_scale(large)
    assert scaled.shape == (751, 1024, 3) and scaled.dtype == np.uint8
    flat = np.full((1500, 1100, 3), 77, np.uint8)  # antialiasing keeps a flat photo flat
    np.testing.assert_array_equal(tiling.normalize_scale(flat), np.full((1024, 751, 3), 77))
    with pytest.raises(TypeError, match="wants a uint8 image, got float32"):
        tiling.normalize_scale_tf(np.zeros((2000, 2000, 3), np.float32))


def test_normalize_scale_is_the_same_eagerly_and_in_a_graph():
    traced = tf.function(tiling.normalize_scale_tf,
                         input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    rng = np.random.default_rng(2)
    for height, width in [(1500, 1100), (1100, 1500), (2000, 37), (1025, 1025), (900, 1000)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        eager = tiling.normalize_scale(image)
        assert eager.shape[:2] == tiling.reference_shape(height, width)
        np.testing.assert_array_equal(traced(tf.constant(image)).numpy(), eager)


def _natural(height, width, seed):
    """A photo-like image: smooth structure at three scales plus a little sensor noise."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 128.0, np.float32)
    for cells in (16, 64, 256):
        coarse = rng.uniform(-60, 60, (max(1, cells * height // width), cells, 3))
        image += tf.image.resize(coarse.astype(np.float32), (height, width)).numpy()
    image += rng.normal(0, 4, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _tiles(pixels, size=64):
    return np.stack([pixels[y:y + size, x:x + size]
                     for y, x in tiling.tile_positions(*pixels.shape[:2], size)]).astype(float)


def test_a_photo_and_its_resize_give_almost_the_same_tiles():
    # A 3 MP photo and the same photo as a messaging app might resize it (antialiased, Pillow):
    # both become 1024 x 768 before tiling. Measured: 0.65 levels mean absolute difference.
    photo = _natural(1536, 2048, seed=3)
    resized = np.asarray(Image.fromarray(photo).resize((1155, 866), Image.BILINEAR))
    a, b = tiling.normalize_scale(photo), tiling.normalize_scale(resized)
    assert a.shape == b.shape == (768, 1024, 3)
    tiles_a, tiles_b = _tiles(a), _tiles(b)
    assert len(tiles_a) == len(tiles_b) == 60
    assert np.abs(tiles_a - tiles_b).mean() < 1.5
    # Without the rule the same grid cuts other content at another scale: far apart.
    raw_a, raw_b = _tiles(photo)[:len(tiles_b)], _tiles(resized)[:len(tiles_b)]
    assert np.abs(raw_a - raw_b).mean() > 5 * np.abs(tiles_a - tiles_b).mean()
