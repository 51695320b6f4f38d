"""The one tiling rule: NumPy (import) and TF (serving graph) keep the same tiles."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

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
