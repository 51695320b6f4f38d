"""One simulated pair: an original capture and a recapture of the same source window.

The original is the window itself through the camera optics and pipeline; the recapture is a
screen showing the window through the same optics and pipeline, each with its own draws from
the same ranges, so that the screen is the only class difference (and no blur, interpolation or
scale cue is).
"""

from __future__ import annotations

import numpy as np

from tfrecap import names
from tfrecap.data.simulator import effects
from tfrecap.data.simulator.camera import match_levels, render, sense
from tfrecap.data.simulator.draws import draw_camera, draw_display, draw_geometry
from tfrecap.data.simulator.optics import image_original, window_radius
from tfrecap.data.simulator.params import DEFAULT_PARAMS, SimulatorParams
from tfrecap.data.simulator.screen import image_recaptured

SIZES = names.SYNTHETIC_SIZES


def simulate_pair(
    window: np.ndarray,
    size: int,
    rng: np.random.Generator,
    params: SimulatorParams = DEFAULT_PARAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulates an original capture and a recapture of the region at a window's centre.

    Args:
        window: uint8 [2 r, 2 r, 3] sRGB source pixels, r = `window_radius(size, params)`.
        size: patch side, one of `SIZES`.
        rng: the pair's generator; every parameter is drawn from it, in a fixed order.
        params: the ranges and constants of the simulator.

    Returns:
        (original, recaptured), each uint8 [size, size, 3].

    A `SimulatorParamsV2` dispatches to `v2.pair.simulate_pair` (whose `window` may be None,
    for a dead-leaves scene).

    Raises:
        ValueError: if the size or the window shape is wrong.
    """
    if getattr(params, "version", 1) == 2:
        from tfrecap.data.simulator.v2 import pair as pair_v2

        return pair_v2.simulate_pair(window, size, rng, params)
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")
    radius = window_radius(size, params)
    if window.shape != (2 * radius, 2 * radius, 3):
        raise ValueError(f"window must be {2 * radius}x{2 * radius}x3, got {window.shape}")
    window = effects.scene_texture(window, params)
    original = image_original(window, size, draw_geometry(rng, size, params), params)
    recaptured = image_recaptured(
        window, size, draw_geometry(rng, size, params), draw_display(rng, params), params
    )
    cameras = draw_camera(rng, params), draw_camera(rng, params)
    original = sense(original, cameras[0], rng)
    recaptured = match_levels(sense(recaptured, cameras[1], rng), original)
    return render(original, cameras[0], params), render(recaptured, cameras[1], params)
