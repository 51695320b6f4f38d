"""Tests for the recapture simulator and the source regions (tiny, numpy only)."""

import subprocess
import sys

import numpy as np
import pytest

from tfrecap import names
from tfrecap.data import simulator, sources


def _window(size, split="train", index=0):
    radius = simulator.window_radius(size)
    region = sources.split_regions(size, radius, split)[index]
    return sources.window(region, radius)


def test_pair_shapes_and_dtypes():
    original, recaptured = simulator.simulate_pair(_window(64), 64, np.random.default_rng(0))
    for image in (original, recaptured):
        assert image.shape == (64, 64, 3)
        assert image.dtype == np.uint8


def test_same_generator_seed_gives_identical_pair():
    window = _window(64)
    first = simulator.simulate_pair(window, 64, np.random.default_rng(7))
    second = simulator.simulate_pair(window, 64, np.random.default_rng(7))
    third = simulator.simulate_pair(window, 64, np.random.default_rng(8))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[1], third[1])


def test_wrong_size_or_window_is_rejected():
    with pytest.raises(ValueError, match="size"):
        simulator.simulate_pair(_window(64), 256, np.random.default_rng(0))
    with pytest.raises(ValueError, match="window"):
        simulator.simulate_pair(_window(64)[1:], 64, np.random.default_rng(0))


def test_reads_outside_the_window_raise():
    # Poison everything outside the window's inner part: a read there must raise, never clamp.
    radius = simulator.window_radius(64)
    x = np.linspace(-radius - 5, radius + 5, 3)
    with pytest.raises(RuntimeError, match="window"):
        simulator.check_inside(x, x, radius, 1.0)
    for seed in range(5):  # extreme draws stay inside (the bound covers every range)
        simulator.simulate_pair(_window(64), 64, np.random.default_rng(seed))


def test_match_levels_copies_the_reference_histogram():
    rng = np.random.default_rng(0)
    image, reference = rng.random((8, 8, 3)), rng.random((8, 8, 3)) ** 3
    matched = simulator.match_levels(image, reference)
    for c in range(3):
        np.testing.assert_allclose(np.sort(matched[..., c].ravel()),
                                   np.sort(reference[..., c].ravel()), rtol=1e-6)
        # Monotone: the spatial ranking (the pattern) is kept.
        assert np.array_equal(np.argsort(matched[..., c].ravel(), kind="stable"),
                              np.argsort(image[..., c].ravel(), kind="stable"))


def test_bands_are_disjoint_and_split_40_10_50():
    for shape, row_cuts in (((512, 512), False), ((300, 451), False), ((500, 741), True)):
        boxes = sources.band_boxes(*shape, row_cuts_only=row_cuts)
        cover = np.zeros(shape, int)
        for r0, r1, c0, c1 in boxes.values():
            cover[r0:r1, c0:c1] += 1
        assert (cover == 1).all()
        areas = [(r1 - r0) * (c1 - c0) / cover.size for r0, r1, c0, c1 in boxes.values()]
        np.testing.assert_allclose(areas, names.SPLIT_FRACTIONS, atol=0.01)


@pytest.mark.parametrize("size", [64, 128])
def test_windows_stay_inside_their_band(size):
    radius = simulator.window_radius(size)
    for split in sources.SPLITS:
        for region in sources.split_regions(size, radius, split):
            photo = sources.load_scene(region.scene)[region.photo]
            row_cuts = region.scene == "motorcycle"
            r0, r1, c0, c1 = sources.band_boxes(*photo.shape[:2], row_cuts_only=row_cuts)[split]
            row, col = region.center
            assert r0 <= row - radius and row + radius <= r1
            assert c0 <= col - radius and col + radius <= c1


def test_every_scene_loads_as_uint8_rgb():
    for scene in sources.SCENES:
        photos = sources.load_scene(scene)
        assert len(photos) == (2 if scene == "motorcycle" else 1)
        for photo in photos:
            assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3


def test_simulator_modules_do_not_import_tensorflow():
    code = (
        "import sys, tfrecap.data.generate, tfrecap.data.simulator, tfrecap.data.sources; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
