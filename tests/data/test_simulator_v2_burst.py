"""A capture as a merged burst (`burst_frames`, `burst_shift`): one frame in the committed v2,
whose identity and pixels are unchanged; more frames, realigned on the scene, average a
screen's aliasing down and keep what the sensor resolves."""

import dataclasses
import hashlib

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


def _grating(frequency: float, axis: str = "cols"):
    """render(window): grey light 0.5 + 0.3 cos(2 pi f t) at each pixel centre, t the column
    or the row (point samples: above 0.5 cycles/px the sensor aliases it)."""

    def render(window: SensorWindow) -> np.ndarray:
        rows = (window.top + np.arange(window.height) + 0.5)[:, None]
        cols = (window.left + np.arange(window.width) + 0.5)[None, :]
        t = np.broadcast_to(cols if axis == "cols" else rows, (window.height, window.width))
        light = 0.5 + 0.3 * np.cos(2 * np.pi * frequency * t)
        return np.repeat(light[..., None], 3, -1).astype(np.float32)

    return render


def _merged(frequency: float, frames: int, seed: int = 0, axis: str = "cols") -> np.ndarray:
    render, window = _grating(frequency, axis), SensorWindow.centred(96, 96)
    camera = dataclasses.replace(CLEAN, burst_frames=frames)
    rng = np.random.default_rng(seed)
    shifts = draw_burst_shifts(rng, camera, dataclasses.replace(V2_PARAMS, burst_frames=(1, 16)))
    out = isp.sense_burst(render(window), render, window, camera, shifts, rng)
    return out.mean(-1)[8:-8, 8:-8]  # away from the borders the spline and demosaic reach


def test_committed_v2_takes_one_frame_and_keeps_its_identity_and_pixels():
    assert V2_PARAMS.burst_frames == (1, 1)
    assert V2_PARAMS.fingerprint() == "c614e5082a86ba02"
    # The shift is unused with one frame: it changes neither identity nor pixel.
    still = dataclasses.replace(FAST, burst_shift=2.0)
    assert still.fingerprint() == FAST.fingerprint()
    assert pairs_digest(still) == GOLDEN_PAIRS


# Four small whole photos (seeds 0-1, both labels, 32x48) at V2_PARAMS, hashed with the code
# before the burst existed (b2f3b8a): the golden pairs above cover patches, this covers photos.
GOLDEN_PHOTOS = "33a5909521b19fb79b1768867ed12fdcc8c4197a25f6dded82af4a47086e81d1"


def test_committed_v2_whole_photos_are_unchanged():
    digest = hashlib.sha256()
    for seed in range(2):
        for label in (0, 1):
            digest.update(simulate_photo(np.random.default_rng(seed), label, 32, 48).tobytes())
    assert digest.hexdigest() == GOLDEN_PHOTOS


def test_a_burst_is_another_simulator():
    four = dataclasses.replace(V2_PARAMS, burst_frames=(4, 4))
    shaky = dataclasses.replace(four, burst_shift=2.0)
    drawn = dataclasses.replace(V2_PARAMS, burst_frames=(1, 8))
    prints = {p.fingerprint() for p in (V2_PARAMS, four, shaky, drawn)}
    assert len(prints) == 4
    assert with_overrides(V2_PARAMS, {"burst_frames": "4,4"}) == four


@pytest.mark.parametrize("field, value", [("burst_frames", (0, 2)), ("burst_frames", (1, 17)),
                                          ("burst_frames", (1.5, 2)), ("burst_shift", -0.5),
                                          ("burst_shift", 2.5), ("burst_shift", float("nan"))])
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


@pytest.mark.parametrize("axis", ["cols", "rows"])
def test_the_merge_keeps_what_the_sensor_resolves(axis):
    # 0.1 cycles/px: every frame sees it; realigned by its own shift (the sign matters, on
    # each axis: the wrong one smears the grating by up to 0.09), the merge is the single frame.
    single, merged = _merged(0.1, 1, axis=axis), _merged(0.1, 8, axis=axis)
    assert single.std() > 0.15
    assert np.abs(merged - single).max() < 0.01
    # Nearer Nyquist the spline's realignment softens a little (both classes alike): most
    # of a 0.3 cycles/px grating's contrast is kept.
    assert _merged(0.3, 8, axis=axis).std() > 0.85 * _merged(0.3, 1, axis=axis).std()


def test_the_merge_averages_aliasing_down():
    # 0.8 cycles/px aliases to 0.2 in every frame, at a phase set by the frame's shift, so
    # realigned on the scene the copies disagree and average down (to about half with 8
    # frames here; independent phases alone would give 1/sqrt(8)).
    single = np.mean([_merged(0.8, 1, seed).std() for seed in range(4)])
    merged = np.mean([_merged(0.8, 8, seed).std() for seed in range(4)])
    assert single > 0.1
    assert merged < 0.6 * single


def test_the_merge_averages_noise_down():
    # Flat light, no shift: the frames differ only by their noise, which averages down.
    flat = dataclasses.replace(CLEAN, full_well=2000.0, burst_frames=4)
    window = SensorWindow.centred(64, 64)

    def render(moved):
        return np.full((moved.height, moved.width, 3), 0.4, np.float32)

    def merged_std(frames):
        shifts = np.zeros((frames - 1, 2))
        out = isp.sense_burst(render(window), render, window, flat, shifts,
                              np.random.default_rng(0))
        return out[8:-8, 8:-8].std()

    assert merged_std(4) < 0.6 * merged_std(1)


def test_a_burst_without_its_renderer_is_a_clear_error():
    light = _grating(0.1)(SensorWindow.centred(16, 16))
    with pytest.raises(ValueError, match="needs `render` and `window`"):
        isp.sense_burst(light, None, None, CLEAN, np.zeros((1, 2)), np.random.default_rng(0))


def test_burst_pairs_and_photos_are_deterministic():
    burst = dataclasses.replace(FAST, burst_frames=(2, 3))
    first = simulate_pair(None, 64, np.random.default_rng(3), burst)
    again = simulate_pair(None, 64, np.random.default_rng(3), burst)
    single = simulate_pair(None, 64, np.random.default_rng(3), FAST)
    for a, b, c in zip(first, again, single, strict=True):
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)  # (the burst's draws move the stream too)
    photo = simulate_photo(np.random.default_rng(0), 1, 32, 48, burst)
    np.testing.assert_array_equal(photo, simulate_photo(np.random.default_rng(0), 1, 32, 48, burst))
    assert photo.shape == (32, 48, 3)
