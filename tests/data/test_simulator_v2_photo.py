"""Whole synthetic photos of simulator v2: shapes, determinism, a visible screen."""

import dataclasses

import numpy as np
import pytest

from tfrecap.data import generate
from tfrecap.data.simulator import V2_PARAMS
from tfrecap.data.simulator.v2.photo import simulate_photo

FAST = dataclasses.replace(V2_PARAMS, downscale=(1.0, 1.5), pitch=(2.0, 6.0),
                           dead_leaves_radius=(4.0, 40.0))


@pytest.mark.parametrize("label", [0, 1])
def test_photo_shape_and_determinism(label):
    first = simulate_photo(np.random.default_rng(1), label, 40, 56, FAST)
    again = simulate_photo(np.random.default_rng(1), label, 40, 56, FAST)
    other = simulate_photo(np.random.default_rng(2), label, 40, 56, FAST)
    assert first.shape == (40, 56, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_bad_label_and_size_are_clear_errors():
    with pytest.raises(ValueError, match="label"):
        simulate_photo(np.random.default_rng(0), 2, 40, 40, FAST)
    with pytest.raises(ValueError, match="at least 16"):
        simulate_photo(np.random.default_rng(0), 0, 8, 40, FAST)


def test_photos_alternate_labels_and_do_not_depend_on_workers():
    serial = list(generate.photos("validation", 2, 3, FAST, workers=1, height=32, width=40))
    parallel = list(generate.photos("validation", 2, 3, FAST, workers=2, height=32, width=40))
    assert [label for _, label in serial] == [0, 1, 0, 1]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(serial, parallel, strict=True))
    test = next(generate.photos("test", 1, 3, FAST, workers=1, height=32, width=40))
    assert not np.array_equal(test[0], serial[0][0])


def test_sensor_photo_is_the_phone_jpeg_at_d_times_the_reference_size():
    params = dataclasses.replace(V2_PARAMS, downscale=(2.0, 2.0))
    big = simulate_photo(np.random.default_rng(3), 1, 32, 48, params, sensor=True)
    small = simulate_photo(np.random.default_rng(3), 1, 32, 48, params)
    assert big.shape == (64, 96, 3) and big.dtype == np.uint8
    assert small.shape == (32, 48, 3)


@pytest.mark.parametrize("frames", [(1, 1), (3, 3)])
def test_render_tiles_join_without_seams(frames):
    # An original rendered in many tiles matches the same photo rendered as one tile: the
    # tiles share the frame's Bayer phase and only the per-tile noise differs, which a huge
    # full well and no read noise remove. Measured mean difference: 0.04 levels; 0.20 when
    # odd tile sides flipped the Bayer phase of every other tile (0.54 on those tiles). A
    # burst shares its shifts over the frame, so its tiles join too.
    quiet = dataclasses.replace(V2_PARAMS, downscale=(1.3, 1.3), full_well=(1e9, 1e9),
                                read_noise=(0.0, 0.0), burst_frames=frames)
    tiled = simulate_photo(np.random.default_rng(5), 0, 64, 96, quiet, sensor=True)
    whole = simulate_photo(np.random.default_rng(5), 0, 64, 96,
                           dataclasses.replace(quiet, photo_tile=512), sensor=True)
    difference = np.abs(tiled.astype(int) - whole.astype(int))
    assert difference.mean() < 0.1, difference.mean()
