"""A capture as a merged burst (`burst_frames`, `burst_shift`): one frame in the committed v2,
whose identity and pixels are unchanged; more frames, realigned on the scene, average a
screen's aliasing down and keep what the sensor resolves."""

import dataclasses

import numpy as np
import pytest

from tests.data.v2_golden import FAST, GOLDEN_PAIRS, pairs_digest
from tfrecap.data.simulator import V2_PARAMS, simulate_pair
from tfrecap.data.simulator.overrides import with_overrides
from tfrecap.data.simulator.v2 import isp
from tfrecap.data.simulator.v2.draws import Camera, draw_burst_shifts
from tfrecap.data.simulator.v2.optics import SensorWindow
from tfrecap.data.simulator.v2.photo import simulate_photo

# A camera that adds (almost) nothing: grey light in, the same grey out of `sense`.
CLEAN = Camera(cfa_phase=(0, 0), exposure=1.0, white_balance=(1.0, 1.0), full_well=1e9,
               read_noise=0.0, demosaic="bilinear", denoise_sigma=0.0, sharpen=(0.0, 1.0),
               tone_gamma=2.2, s_curve=0.0, jpeg_quality=95)


def _grating(frequency: float):
    """render(window): grey light 0.5 + 0.3 cos(2 pi f x) at each pixel centre (point samples:
    above 0.5 cycles/px the sensor aliases it)."""

    def render(window: SensorWindow) -> np.ndarray:
        cols = window.left + np.arange(window.width) + 0.5
        row = 0.5 + 0.3 * np.cos(2 * np.pi * frequency * cols)
        return np.repeat(np.tile(row, (window.height, 1))[..., None], 3, -1).astype(np.float32)

    return render


def _merged(frequency: float, frames: int, seed: int = 0) -> np.ndarray:
    render, window = _grating(frequency), SensorWindow.centred(48, 96)
    camera = dataclasses.replace(CLEAN, burst_frames=frames)
    rng = np.random.default_rng(seed)
    shifts = draw_burst_shifts(rng, camera, dataclasses.replace(V2_PARAMS, burst_frames=(1, 16)))
    out = isp.sense_burst(render(window), render, window, camera, shifts, rng)
    return out.mean(-1)[8:-8, 8:-8]  # away from the borders the spline and demosaic reach


def test_committed_v2_takes_one_frame_and_keeps_its_identity_and_pixels():
    assert V2_PARAMS.burst_frames == (1, 1)
    assert V2_PARAMS.fingerprint() == "c614e5082a86ba02"
    # The shift is unused with one frame: it changes neither identity nor pixel.
    still = dataclasses.replace(FAST, burst_shift=3.0)
    assert still.fingerprint() == FAST.fingerprint()
    assert pairs_digest(still) == GOLDEN_PAIRS


def test_a_burst_is_another_simulator():
    four = dataclasses.replace(V2_PARAMS, burst_frames=(4, 4))
    shaky = dataclasses.replace(four, burst_shift=2.0)
    drawn = dataclasses.replace(V2_PARAMS, burst_frames=(1, 8))
    prints = {p.fingerprint() for p in (V2_PARAMS, four, shaky, drawn)}
    assert len(prints) == 4
    assert with_overrides(V2_PARAMS, {"burst_frames": "4,4"}) == four


@pytest.mark.parametrize("field, value", [("burst_frames", (0, 2)), ("burst_frames", (1, 17)),
                                          ("burst_frames", (1.5, 2)), ("burst_shift", -0.5)])
def test_a_bad_burst_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(V2_PARAMS, **{field: value})


def test_one_frame_draws_nothing_and_is_sense_itself():
    rng = np.random.default_rng(0)
    assert draw_burst_shifts(rng, CLEAN, V2_PARAMS).shape == (0, 2)
    assert rng.uniform() == np.random.default_rng(0).uniform()  # the stream did not move
    light = _grating(0.1)(SensorWindow.centred(16, 16))
    np.testing.assert_array_equal(
        isp.sense_burst(light, None, None, CLEAN, np.zeros((0, 2)), np.random.default_rng(1)),
        isp.sense(light, CLEAN, np.random.default_rng(1)))


def test_the_merge_keeps_what_the_sensor_resolves():
    # 0.1 cycles/px: every frame sees it; realigned by its own shift (the sign matters: the
    # wrong one would smear the grating), the merge is the single frame.
    single, merged = _merged(0.1, 1), _merged(0.1, 8)
    assert single.std() > 0.15
    assert np.abs(merged - single).max() < 0.01


def test_the_merge_averages_aliasing_down():
    # 0.8 cycles/px aliases to 0.2 in every frame, at a phase set by the frame's shift, so
    # realigned on the scene the copies disagree and average down (to about 1/sqrt(8)).
    single = np.mean([_merged(0.8, 1, seed).std() for seed in range(4)])
    merged = np.mean([_merged(0.8, 8, seed).std() for seed in range(4)])
    assert single > 0.1
    assert merged < 0.6 * single


def test_burst_pairs_and_photos_are_deterministic_and_differ_from_one_frame():
    burst = dataclasses.replace(FAST, burst_frames=(2, 3))
    first = simulate_pair(None, 64, np.random.default_rng(3), burst)
    again = simulate_pair(None, 64, np.random.default_rng(3), burst)
    single = simulate_pair(None, 64, np.random.default_rng(3), FAST)
    for a, b, c in zip(first, again, single, strict=True):
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)  # both classes are merged bursts
    photo = simulate_photo(np.random.default_rng(0), 1, 32, 48, burst)
    np.testing.assert_array_equal(photo, simulate_photo(np.random.default_rng(0), 1, 32, 48, burst))
    assert photo.shape == (32, 48, 3)
