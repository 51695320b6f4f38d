"""The screen in simulator v2: content at the panel's resolution, sub-pixel layouts, nuisances.

A screen pixel shows the area average of the scene under it (k x k samples, k from the pixel's
size in scene raster px, at most 4), optionally JPEG-compressed first, as most screen content
is. Its code values go through the panel's gamma, white point, gamut and brightness, and light
one sub-pixel per colour: RGB or BGR stripes, PenTile (RGBG: red and blue alternate, sharing
each pixel with a green) or a diamond OLED. The camera images that emitted mosaic through the
same optics as an original (`optics`), with the diffuser's blur added to the lens's; refresh
bands (rolling shutter against the panel's PWM) and glare act on the sensor image.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from tfrecap.data.simulator.camera import jpeg
from tfrecap.data.simulator.v2.draws import Display, Pose
from tfrecap.data.simulator.v2.optics import SensorWindow, fine_grid, lens_and_aperture
from tfrecap.data.simulator.v2.params import SimulatorParamsV2
from tfrecap.data.simulator.v2.scenes import Scene

# Rec. 601 luma weights, the grey axis of the saturation change: a standard, not a parameter.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve, linear [0, 1] -> code values [0, 1]."""
    v = np.clip(linear, 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def supersampling(pitch: float, side: int, params: SimulatorParamsV2) -> int:
    """Fine samples per sensor px: `subpixel_samples` across a stripe, within the caps."""
    wanted = math.ceil(3 * params.subpixel_samples / pitch)
    return max(1, min(wanted, params.max_supersample, params.fine_budget // side))


def subpixels(layout: str, ix, iy, fx, fy, fill: float, row_fill: float):
    """Which colour plane a point of a display pixel lights, and whether it is lit.

    Args:
        layout: a name of `params.LAYOUTS`.
        ix, iy: integer display pixel of each point.
        fx, fy: position inside it, [0, 1).
        fill: lit fraction of a sub-pixel's slot.
        row_fill: lit fraction of the row height.

    Returns:
        (channel int32 array, lit bool array).
    """
    if layout in ("rgb_stripe", "bgr_stripe"):
        sub = fx * 3.0
        column = np.minimum(sub.astype(np.int32), 2)
        lit = ((sub - column) < fill) & (fy < row_fill)
        return (2 - column if layout == "bgr_stripe" else column), lit
    red_or_blue = np.where((ix + iy) % 2 == 0, 0, 2).astype(np.int32)
    if layout == "pentile":
        right = fx >= 0.5
        hx = 2.0 * fx - right
        lit = (hx < fill) & (fy < row_fill)
        return np.where(right, 1, red_or_blue).astype(np.int32), lit
    # Diamond: a large red or blue diamond and a small round green per pixel.
    right = fx >= 0.5
    dx, dy = 2.0 * fx - right - 0.5, fy - 0.5
    diamond = (np.abs(dx) * 0.5 + np.abs(dy)) < 0.5 * fill
    round_green = (dx * dx * 0.25 + dy * dy) < (0.3 * fill) ** 2
    return np.where(right, 1, red_or_blue).astype(np.int32), np.where(right, round_green, diamond)


def screen_light(scene: Scene, pose: Pose, display: Display, x0, y0, touched) -> np.ndarray:
    """Linear light of display pixels from (y0, x0), before the mosaic: [rows, cols, 3].

    `touched` [rows, cols] marks the pixels the camera sees; the others (corners of the
    bounding box of a rotated view) are computed too, for the content JPEG's blocks, but may
    read beyond a photo window, where its edge repeats.
    """
    y1, x1 = y0 + touched.shape[0], x0 + touched.shape[1]
    pitch = display.pitch / (pose.downscale * pose.zoom)  # reference px per display px
    k = int(min(4, max(1, math.ceil(pitch * scene.density))))
    sub = (np.arange(k) + 0.5) / k
    xs = ((np.arange(x0, x1)[:, None] + sub).ravel() - display.phase[0]) * pitch
    ys = ((np.arange(y0, y1)[:, None] + sub).ravel() - display.phase[1]) * pitch
    x, y = pose.to_scene(*np.meshgrid(xs, ys))
    seen = np.repeat(np.repeat(touched, k, axis=0), k, axis=1)
    scene.check(x[seen], y[seen])
    linear = scene.sample(x, y, check=False)
    linear = linear.reshape(y1 - y0, k, x1 - x0, k, 3).mean(axis=(1, 3))
    code = linear_to_srgb(linear)
    if display.content_jpeg is not None and min(code.shape[:2]) >= 8:
        levels = np.round(code * 255.0).astype(np.uint8)
        code = jpeg(levels, display.content_jpeg, "4:2:0").astype(np.float32) / 255.0
    if display.content_upscale > 1.0:
        # The image is coarser than the panel and the viewer resamples it (after its JPEG
        # was decoded): its detail stops short of the display pixel.
        sigma = 0.5 * math.sqrt(display.content_upscale**2 - 1.0)
        code = ndimage.gaussian_filter(np.asarray(code, np.float32), (sigma, sigma, 0),
                                       mode="nearest")
    light = np.asarray(code, np.float32) ** display.gamma
    light = light * np.array([display.white_point[0], 1.0, display.white_point[1]], np.float32)
    grey = light @ LUMA
    light = grey[..., None] + display.saturation * (light - grey[..., None])
    return np.clip(light, 0.0, None) * display.brightness


def nuisances(light: np.ndarray, display: Display, window: SensorWindow) -> np.ndarray:
    """Refresh bands along sensor rows, and glare (additive gradient and soft blob)."""
    rows = (window.top + np.arange(window.height) + 0.5)[:, None]
    cols = (window.left + np.arange(window.width) + 0.5)[None, :]
    if display.refresh_band is not None:
        amplitude, period, phase = display.refresh_band
        light = light * (1.0 + amplitude * np.cos(2 * math.pi * rows / period + phase))[..., None]
    if display.glare is not None:
        amplitude, gx, gy, bx, by = display.glare
        u, v = cols / window.half, rows / window.half
        blob = np.exp(-((u - bx) ** 2 + (v - by) ** 2) / (2 * 0.5**2))
        glare = 0.5 + 0.25 * (gx * u + gy * v) + 0.5 * blob
        light = light + (amplitude * float(light.mean()) * glare)[..., None]
    return light.astype(np.float32)


def recapture_light(
    scene: Scene, pose: Pose, display: Display, window: SensorWindow, params: SimulatorParamsV2,
    *, mosaic: bool = True,
) -> np.ndarray:
    """Linear light a sensor window records of a screen showing the scene: [H, W, 3].

    ``mosaic=False`` is a diagnostic, used by no simulator version: each display pixel emits
    its colour uniformly over its whole area (no sub-pixel layout, no black matrix), so that
    what the sub-pixel mosaic alone contributes can be measured
    (``scripts/experiments/softness_by_variant.py --components``).
    """
    q = supersampling(display.pitch, max(window.height, window.width), params)
    sigma = math.hypot(pose.lens_sigma, display.diffuser_sigma * display.pitch)
    u, v = fine_grid(window, q, sigma)
    x, y = pose.map(u, v, window.half)
    pitch = display.pitch / (pose.downscale * pose.zoom)
    xd, yd = x / pitch + display.phase[0], y / pitch + display.phase[1]
    del u, v, x, y
    fx, fy = np.floor(xd), np.floor(yd)
    ix, iy = fx.astype(np.int32), fy.astype(np.int32)
    column, lit = subpixels(display.layout, ix, iy, xd - fx, yd - fy, display.fill,
                            display.row_fill)
    x0, y0 = int(ix.min()), int(iy.min())
    x1, y1 = int(ix.max()) + 1, int(iy.max()) + 1
    touched = np.zeros((y1 - y0, x1 - x0), bool)
    touched[iy - y0, ix - x0] = True
    levels = screen_light(scene, pose, display, x0, y0, touched)
    pixel = (iy - y0) * (x1 - x0) + (ix - x0)
    if not mosaic:
        field = levels.reshape(-1, 3)[pixel].astype(np.float32)
        return nuisances(lens_and_aperture(field, q, sigma), display, window)
    value = levels.ravel()[pixel * 3 + column] * lit
    field = np.zeros(value.shape + (3,), np.float32)
    np.put_along_axis(field, column[..., None], value[..., None], axis=-1)
    return nuisances(lens_and_aperture(field, q, sigma), display, window)


def original_light(scene: Scene, pose: Pose, window: SensorWindow) -> np.ndarray:
    """Linear light a sensor window records of the scene itself: [H, W, 3]."""
    # A raster at sensor resolution (dead leaves) is sampled twice per px for antialiasing; a
    # photo, at most one px per reference px, is smooth at sensor scale.
    q = 2 if scene.density > pose.downscale / 2 else 1
    u, v = fine_grid(window, q, pose.lens_sigma)
    field = scene.sample(*pose.to_scene(*pose.map(u, v, window.half)))
    return lens_and_aperture(field, q, pose.lens_sigma)
