"""The recapture's screen: a stripe sub-pixel mosaic with display gamma and gamut.

Steps 1-2 of the recapture model: the display resamples the window onto its own pixel grid at a
non-integer pitch, lights R, G and B columns separated by a black matrix, and applies its gamma
and saturation; the camera then images that light through the same optics as an original.
"""

from __future__ import annotations

import numpy as np

from tfrecap.data.simulator import effects
from tfrecap.data.simulator.draws import Display, Geometry
from tfrecap.data.simulator.optics import bilinear, check_inside, fine_grid, lens_and_aperture
from tfrecap.data.simulator.params import DEFAULT_PARAMS, SimulatorParams

# Rec. 601 luma weights, the grey axis of the saturation change: a standard, not a parameter.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def display_levels(window, display, geometry, x0, x1, y0, y1):
    """Linear light emitted by display pixels [y0, y1) x [x0, x1), before the mosaic."""
    pitch = display.pitch / geometry.magnification  # source px per display px
    cols = (np.arange(x0, x1) + 0.5 - display.phase[0]) * pitch
    rows = (np.arange(y0, y1) + 0.5 - display.phase[1]) * pitch
    x, y = np.meshgrid(cols, rows)
    check_inside(x, y, window.shape[0] // 2, 1.0)
    code = bilinear(window.astype(np.float32), x, y) / 255.0  # the display resamples
    light = np.clip(code, 0.0, 1.0) ** display.gamma
    grey = light @ LUMA
    # Saturation about the grey axis: > 1 is a wide-gamut panel showing sRGB unmanaged.
    return grey[..., None] + display.saturation * (light - grey[..., None])


def image_recaptured(
    window: np.ndarray,
    size: int,
    geometry: Geometry,
    display: Display,
    params: SimulatorParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Linear-light sensor image of a screen showing the window, [size + 2 pad]^2 x 3."""
    canvas = size + 2 * params.pad
    x, y = fine_grid(canvas, params.supersample, geometry, params)
    pitch = display.pitch / geometry.magnification
    xd, yd = x * (1.0 / pitch) + display.phase[0], y * (1.0 / pitch) + display.phase[1]
    fx, fy = np.floor(xd), np.floor(yd)
    ix, iy = fx.astype(np.int32), fy.astype(np.int32)
    sub = (xd - fx) * 3.0
    column = np.minimum(sub.astype(np.int32), 2)
    lit = ((sub - column) < display.fill) & ((yd - fy) < display.row_fill)
    if display.bgr:
        column = 2 - column
    x0, y0 = int(ix.min()), int(iy.min())
    x1, y1 = int(ix.max()) + 1, int(iy.max()) + 1
    levels = display_levels(window, display, geometry, x0, x1, y0, y1).astype(np.float32)
    # One gather of the lit sub-pixel's value, scattered into its colour plane.
    flat = ((iy - y0) * (x1 - x0) + (ix - x0)) * 3 + column
    value = levels.ravel()[flat] * lit
    field = np.zeros(value.shape + (3,), np.float32)
    np.put_along_axis(field, column[..., None], value[..., None], axis=-1)
    # A diffuser acts on the emitted light, before the lens.
    field = effects.diffuse(field, window, params)
    light = lens_and_aperture(field, canvas, params.supersample, geometry.lens_sigma, params)
    return effects.moire(light, window, params)
