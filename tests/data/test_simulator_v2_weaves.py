"""Woven dead-leaves textures (`dead_leaves_weave_prob`): off in the committed v2, which keeps
its identity and its pixels; on, a 2-D periodic grid in both classes."""

import dataclasses
import hashlib

import numpy as np
import pytest

from tfrecap.data.simulator import V2_PARAMS, simulate_pair
from tfrecap.data.simulator.v2 import scenes

# Every disk textured, so that the texture branch the weaves sit in is exercised.
TEXTURED = dataclasses.replace(V2_PARAMS, dead_leaves_texture_prob=1.0)
# Taken with the code before weaves existed (the same call, same seed).
GOLDEN_RASTER = "d2369ae980ddf845310ac838a25ebe654b3c1de95e553ef572f0445c3041f6fa"
FAST = dataclasses.replace(V2_PARAMS, downscale=(1.0, 1.5), pitch=(1.5, 6.0),
                           dead_leaves_radius=(4.0, 40.0))


def test_committed_v2_keeps_its_identity_and_pixels():
    assert V2_PARAMS.dead_leaves_weave_prob == 0.0
    assert V2_PARAMS.fingerprint() == "c614e5082a86ba02"
    scene = scenes.dead_leaves(np.random.default_rng(9), 40.0, 1.0, TEXTURED)
    assert hashlib.sha256(scene.raster.tobytes()).hexdigest() == GOLDEN_RASTER


def test_weave_fields_enter_the_identity_only_when_weaves_are_drawn():
    # The period changes no pixel while weaves are off, so it does not change the identity.
    assert dataclasses.replace(V2_PARAMS, dead_leaves_weave_period=(2.0, 3.0)).fingerprint() \
        == V2_PARAMS.fingerprint()
    woven = dataclasses.replace(V2_PARAMS, dead_leaves_weave_prob=0.5)
    assert woven.fingerprint() != V2_PARAMS.fingerprint()
    assert dataclasses.replace(woven, dead_leaves_weave_period=(2.0, 3.0)).fingerprint() \
        != woven.fingerprint()


@pytest.mark.parametrize(("field", "value"), [("dead_leaves_weave_prob", 1.5),
                                              ("dead_leaves_weave_period", (0.0, 2.0))])
def test_bad_weave_parameters_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(V2_PARAMS, **{field: value})


def test_no_weave_draws_when_weaves_are_off():
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    assert scenes.draw_weaves(rng, 10, np.ones(10, bool), 1.0, V2_PARAMS) is None
    assert rng.bit_generator.state == before


def test_weaves_only_on_textured_disks():
    params = dataclasses.replace(V2_PARAMS, dead_leaves_weave_prob=1.0)
    textured = np.array([True, False] * 50)
    weaves = scenes.draw_weaves(np.random.default_rng(1), 100, textured, 2.0, params)
    assert np.array_equal(weaves.woven, textured)
    # Periods are drawn in reference px and rendered at the density (2 raster px per ref px).
    assert np.all((weaves.period >= 2 * 1.5) & (weaves.period <= 2 * 8.0))


@pytest.mark.parametrize("cells", [True, False])
def test_weave_is_a_standardized_grid_at_its_two_periods(cells):
    weaves = scenes.Weaves(woven=np.array([True]), period=np.array([8.0]), ratio=np.array([1.0]),
                           skew=np.array([0.0]), cells=np.array([cells]),
                           sharpness=np.array([2.0]))
    grid = np.arange(64, dtype=np.float32)
    pattern = weaves.pattern(0, grid[None, :], grid[:, None], angle=0.0)
    assert pattern.shape == (64, 64)
    assert abs(pattern.mean()) < 1e-4 and abs(pattern.std() - 1.0) < 1e-3
    # Period 8 along both axes: the strongest non-DC frequencies lie on the two axes at 1/8.
    power = np.abs(np.fft.fft2(pattern)) ** 2
    power[0, 0] = 0.0
    assert power[0, 8] == pytest.approx(power[8, 0], rel=1e-3)
    assert power[0, 8] == pytest.approx(power.max(), rel=1e-3)
    # Every frequency is a harmonic or a cross term of the two gratings.
    harmonics = power.reshape(8, 8, 8, 8)[:, 0, :, 0]
    assert harmonics.sum() == pytest.approx(power.sum(), rel=1e-3)
    # 2-D, not stripes: a shift of half a period along either axis changes it.
    assert not np.allclose(pattern, np.roll(pattern, 4, axis=0), atol=1e-3)
    assert not np.allclose(pattern, np.roll(pattern, 4, axis=1), atol=1e-3)
    assert np.allclose(pattern, np.roll(pattern, 8, axis=0), atol=1e-4)


def test_woven_scenes_differ_and_stay_deterministic():
    woven = dataclasses.replace(TEXTURED, dead_leaves_weave_prob=1.0)
    a = scenes.dead_leaves(np.random.default_rng(9), 40.0, 1.0, woven).raster
    b = scenes.dead_leaves(np.random.default_rng(9), 40.0, 1.0, woven).raster
    plain = scenes.dead_leaves(np.random.default_rng(9), 40.0, 1.0, TEXTURED).raster
    assert np.array_equal(a, b) and not np.array_equal(a, plain)
    pair = simulate_pair(None, 64, np.random.default_rng(3),
                         dataclasses.replace(FAST, dead_leaves_weave_prob=0.5))
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for image in pair)
