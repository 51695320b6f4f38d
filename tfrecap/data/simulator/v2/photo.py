"""Whole synthetic photos from simulator v2, at reference resolution, for whole-image tests.

One consistent draw of pose, camera, post-processing and (recaptures) display covers the whole
frame. A recaptured photo shows a screen filling a random quadrilateral (`screen_area` of the
frame) inside a directly captured dead-leaves "room"; an original is a direct capture of such a
room. The frame is rendered in tiles of `photo_tile` reference px with `photo_pad` sensor px
around each (every step before the JPEG is local), each tile's noise from its own seeded
generator, so memory stays bounded and the photo is fixed by the generator's state. Whole-frame
JPEG and resizes come last, as in a phone and a messaging app.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfrecap.data.simulator.v2 import display as screen
from tfrecap.data.simulator.v2 import isp, post, scenes
from tfrecap.data.simulator.v2.draws import (
    draw_burst_shifts,
    draw_camera,
    draw_display,
    draw_pose,
    draw_post,
)
from tfrecap.data.simulator.v2.optics import SensorWindow
from tfrecap.data.simulator.v2.params import V2_PARAMS, SimulatorParamsV2


def lit_gain(display) -> np.ndarray:
    """Per-channel 1 / (lit area fraction) of a layout: a white screen then emits about 1."""
    grid = (np.arange(64) + 0.5) / 32.0  # a 2 x 2 block of display pixels
    x, y = np.meshgrid(grid, grid)
    ix, iy = np.floor(x).astype(np.int32), np.floor(y).astype(np.int32)
    channel, lit = screen.subpixels(display.layout, ix, iy, x - ix, y - iy, display.fill,
                                    display.row_fill)
    fractions = np.array([np.mean(lit & (channel == c)) for c in range(3)])
    return (1.0 / np.maximum(fractions, 1e-3)).astype(np.float32)


def _quad(rng: np.random.Generator, height: float, width: float, params) -> np.ndarray:
    """Corners [4, 2] (x, y, counter-clockwise on screen) of the screen in sensor px."""
    area = rng.uniform(*params.screen_area)
    aspect = math.exp(rng.uniform(-0.3, 0.3))
    w = min(1.0, math.sqrt(area) * aspect) * width
    h = min(1.0, area * width * height / w / height) * height
    cx = rng.uniform(-(width - w) / 2, (width - w) / 2)
    cy = rng.uniform(-(height - h) / 2, (height - h) / 2)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2 + [cx, cy]
    return corners + rng.uniform(-0.04, 0.04, (4, 2)) * [w, h]


def _inside(corners: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Antialiased coverage of pixel centres (u, v) by a convex quadrilateral."""
    distance = np.full(u.shape, np.inf)
    for i in range(4):
        (x0, y0), (x1, y1) = corners[i], corners[(i + 1) % 4]
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        signed = ((x1 - x0) * (v - y0) - (y1 - y0) * (u - x0)) / length
        distance = np.minimum(distance, signed)
    return np.clip(distance + 0.5, 0.0, 1.0)


def simulate_photo(
    rng: np.random.Generator,
    label: int,
    height: int,
    width: int,
    params: SimulatorParamsV2 = V2_PARAMS,
    *,
    sensor: bool = False,
) -> np.ndarray:
    """A whole original (label 0) or recaptured (label 1) photo at reference resolution.

    Args:
        rng: the photo's generator; every draw comes from it, in a fixed order.
        label: 0 original, 1 recaptured.
        height, width: reference resolution of the result, at least 16 px each.
        params: simulator v2's parameters.
        sensor: return the phone's own JPEG at sensor resolution instead (about
            ``d·height × d·width``, d drawn from ``params.downscale``), before any messaging
            app or normalisation: a high-resolution photo for scale tests.

    Returns:
        uint8 [height, width, 3], or the sensor-resolution photo.

    Raises:
        ValueError: a bad label or size.
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 (original) or 1 (recaptured), got {label!r}")
    if min(height, width) < 16:
        raise ValueError(f"photo must be at least 16x16, got {height}x{width}")
    pose = draw_pose(rng, params, screen=True)
    display = draw_display(rng, params)
    camera = draw_camera(rng, params)
    post_draw = draw_post(rng, params, pose.downscale)
    rows, cols = round(height * pose.downscale), round(width * pose.downscale)
    pose = dataclasses.replace(pose, downscale=rows / height)
    room_pose = dataclasses.replace(pose, rotation=pose.rotation + pose.content_rotation,
                                    content_rotation=0.0)
    corners = _quad(rng, rows, cols, params)
    half = 0.5 * math.hypot(height, width) / (params.zoom[0] * (1 - 2.2 * params.keystone))
    big = dataclasses.replace(params, dead_leaves_max_disks=10**7)
    density = params.photo_scene_density
    room = scenes.dead_leaves(rng, half + 8.0, density, big)
    content = scenes.dead_leaves(rng, half + 8.0, density, big) if label else None
    gain = lit_gain(display)
    noise_seed = int(rng.integers(2**63))
    shifts = draw_burst_shifts(rng, camera, params)  # one hand shake for the whole frame
    # Even tile sides (and an even pad): every render tile then starts on the same Bayer phase
    # as the frame, whose CFA `isp.sense` lays from each array's own origin.
    tile = 2 * max(1, round(params.photo_tile * pose.downscale / 2))
    pad = params.photo_pad + params.photo_pad % 2
    frame = SensorWindow.centred(rows, cols)

    def render(window):
        """Linear light of a sensor window: the room, and the screen where it covers it (a
        burst's further frames move the window)."""
        light = screen.original_light(room, room_pose, window)
        if label:
            v = (window.top + np.arange(window.height) + 0.5)[:, None]
            u = (window.left + np.arange(window.width) + 0.5)[None, :]
            cover = _inside(corners, u, v)[..., None]
            if cover.max() > 0:
                shown = screen.recapture_light(content, pose, display, window, params) * gain
                light = cover * shown + (1.0 - cover) * light
        return light

    out = np.empty((rows, cols, 3), np.uint8)
    for index, (top, left) in enumerate(
        (t, s) for t in range(0, rows, tile) for s in range(0, cols, tile)
    ):
        h, w = min(tile, rows - top), min(tile, cols - left)
        window = SensorWindow(frame.top + top - pad, frame.left + left - pad, h + 2 * pad,
                              w + 2 * pad, frame.half)
        tile_rng = np.random.default_rng(np.random.SeedSequence([noise_seed, index]))
        sensed = isp.sense_burst(render(window), render, window, camera, shifts, tile_rng)
        image = isp.process(sensed, camera)
        out[top : top + h, left : left + w] = image[pad : pad + h, pad : pad + w]
    if sensor:
        return post.jpeg(out, camera.jpeg_quality, "4:2:0")
    return post.deliver(out, height, width, camera.jpeg_quality, post_draw)
