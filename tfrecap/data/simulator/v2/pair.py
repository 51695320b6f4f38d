"""One simulated v2 pair: an original capture and a recapture of the same scene.

Each capture is rendered at sensor resolution (about d times the reference resolution the
detector sees), goes through the same camera and post-processing chain (`isp`, `post`) with its
own draws from the same ranges, and is cut to S x S at a jittered offset. The recapture's light
is matched in level to the original's in linear light before the camera (`camera.match_levels`,
as in v1): each capture's own exposure and white balance then randomise both classes alike.
A variant can keep the screen's tone reproduction instead (`level_match_strength` < 1, see
`match_recapture_levels`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfrecap import names
from tfrecap.data.simulator.v2 import display as screen
from tfrecap.data.simulator.v2 import isp, post, scenes
from tfrecap.data.simulator.v2.draws import (
    draw_burst_shifts,
    draw_camera,
    draw_display,
    draw_pose,
    draw_post,
    log_uniform,
)
from tfrecap.data.simulator.v2.optics import SensorWindow
from tfrecap.data.simulator.v2.params import V2_PARAMS, SimulatorParamsV2

SIZES = names.SYNTHETIC_SIZES


def scene_half(size: int, params: SimulatorParamsV2 = V2_PARAMS) -> float:
    """Half-side, in reference px, of the scene area any capture of an S-px patch may read.

    It bounds, over every parameter range, the canvas with its margin and the lens halo,
    stretched by rotation, aspect, keystone and zoom, plus one display pixel and the bilinear
    footprint.
    """
    blur = 3.0 * math.hypot(params.lens_sigma[1], params.diffuser_sigma[1] * params.pitch[1])
    reach = (size / 2 + params.margin) + (blur + 2.0) / params.downscale[0]
    angle = math.radians(max(abs(a) for a in params.rotation_deg))
    stretch = (math.cos(angle) + math.sin(angle)) * max(params.aspect[1], 1 / params.aspect[0])
    stretch /= params.zoom[0] * (1.0 - 2.2 * params.keystone)
    display_pixel = params.pitch[1] / (params.downscale[0] * params.zoom[0])
    return reach * stretch + 0.5 + display_pixel + 1.0


def window_radius(size: int, params: SimulatorParamsV2 = V2_PARAMS) -> int:
    """Half-side, in source px, of the photo window a v2 pair reads around a region centre.

    Photos are shown at `content_scale` >= 1 reference px per source px, so the scene bound
    in reference px bounds it in source px too.
    """
    return math.ceil(scene_half(size, params))


def capture(light, camera, post_draw, size, params, rng, render=None, window=None):
    """Camera, delivery and crop of one capture's linear light: uint8 [S, S, 3].

    With a burst camera, `render` (SensorWindow -> linear light) and the first frame's
    `window` give the further frames (`isp.sense_burst`).
    """
    n_ref = size + 2 * params.margin
    shifts = draw_burst_shifts(rng, camera, params)
    image = isp.process(isp.sense_burst(light, render, window, camera, shifts, rng), camera)
    image = post.deliver(image, n_ref, n_ref, camera.jpeg_quality, post_draw)
    top, left = post_draw.crop
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def simulate_pair(
    window: np.ndarray | None,
    size: int,
    rng: np.random.Generator,
    params: SimulatorParamsV2 = V2_PARAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulates an original capture and a recapture of one scene.

    Args:
        window: uint8 [2 r, 2 r, 3] sRGB photo pixels, r = `window_radius(size, params)`, or
            None for a dead-leaves scene drawn from `rng`.
        size: patch side, one of `SIZES`.
        rng: the pair's generator; every parameter is drawn from it, in a fixed order.
        params: simulator v2's ranges and constants.

    Returns:
        (original, recaptured), each uint8 [size, size, 3].

    Raises:
        ValueError: if the size or the window shape is wrong.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")
    radius = window_radius(size, params)
    if window is not None and window.shape != (2 * radius, 2 * radius, 3):
        raise ValueError(f"window must be {2 * radius}x{2 * radius}x3, got {window.shape}")
    n_ref = size + 2 * params.margin
    poses = []
    for is_screen in (False, True):
        pose = draw_pose(rng, params, screen=is_screen)
        n_sensor = max(n_ref, round(n_ref * pose.downscale))
        poses.append(dataclasses.replace(pose, downscale=n_sensor / n_ref))
    display = draw_display(rng, params)
    cameras = draw_camera(rng, params), draw_camera(rng, params)
    posts = [draw_post(rng, params, p.downscale) for p in poses]
    content_scale = log_uniform(rng, params.content_scale)
    if window is None:
        density = max(p.downscale for p in poses)
        scene = scenes.dead_leaves(rng, scene_half(size, params), density, params)
    else:
        scene = scenes.photo_scene(window, content_scale)
    windows = [SensorWindow.centred(round(n_ref * p.downscale), round(n_ref * p.downscale))
               for p in poses]

    def original_light(window):
        return screen.original_light(scene, poses[0], window)

    def recaptured_light(window):
        # A burst's every frame is matched to the original's first frame.
        light = screen.recapture_light(scene, poses[1], display, window, params)
        return match_recapture_levels(light, original, params.level_match_strength)

    original = original_light(windows[0])
    recaptured = recaptured_light(windows[1])
    return (capture(original, cameras[0], posts[0], size, params, rng, original_light,
                    windows[0]),
            capture(recaptured, cameras[1], posts[1], size, params, rng, recaptured_light,
                    windows[1]))


def match_recapture_levels(image: np.ndarray, reference: np.ndarray,
                           strength: float = 1.0) -> np.ndarray:
    """The recapture's level matching, linear light: quantiles, channel means, or a blend.

    At `strength` 1 (the committed v2) this is `match_levels`, bit for bit: the recapture gets
    the original's per-channel distribution of levels, so nothing global tells the classes
    apart. At 0 it is `match_means`: each channel's mean is the original's (the camera's
    exposure and white balance then randomise both classes alike), but the shape of the
    distribution, the screen's gamma, gamut and glare's lift of the shadows, survives.
    Between, the blend ``s · quantile map + (1 − s) · mean map``, monotone per channel too.
    Nothing is drawn, so the strength moves no random draw of the pair.
    """
    if strength == 1.0:
        return match_levels(image, reference)
    by_mean = match_means(image, reference)
    if strength == 0.0:
        return by_mean
    return (strength * match_levels(image, reference) + (1.0 - strength) * by_mean).astype(
        np.float32)


def match_means(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-channel gain in linear light: each channel of `image` gets `reference`'s mean.

    A gain keeps every ratio inside a channel, so the tone curve the light went through (a
    panel's gamma, an additive glare) is still in it. The means are taken on the same strided
    subsamples as `match_levels`' quantiles; a channel that is black (mean below 1e-8 of full
    scale, where a gain would be unbounded) is left black.
    """
    out = np.empty(image.shape, np.float32)
    for c in range(3):
        have = float(np.mean(image[::3, ::3, c]))
        want = float(np.mean(reference[::3, ::3, c]))
        out[..., c] = image[..., c] * (want / have if have > 1e-8 else 0.0)
    return out


def match_levels(image: np.ndarray, reference: np.ndarray, levels: int = 1024) -> np.ndarray:
    """Per-channel quantile matching in linear light: `image` gets the levels of `reference`.

    v1's `camera.match_levels` sorts every pixel; this one maps through `levels` quantiles of
    strided subsamples (monotone per channel too, so every spatial pattern keeps its shape),
    about ten times cheaper at sensor resolution.
    """
    grid = np.linspace(0.0, 1.0, levels)
    ramp = np.linspace(0.0, 1e-7, levels)  # strictly increasing, for interp
    out = np.empty(image.shape, np.float32)
    for c in range(3):
        source = _quantiles(image[::3, ::3, c], grid) + ramp
        target = _quantiles(reference[::3, ::3, c], grid)
        out[..., c] = np.interp(image[..., c], source, target)
    return out


def _quantiles(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    ordered = np.sort(values, axis=None)
    return np.interp(grid * (ordered.size - 1), np.arange(ordered.size), ordered)
