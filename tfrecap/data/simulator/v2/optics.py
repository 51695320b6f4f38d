"""Sensor sampling for simulator v2: the fine sample grid, lens blur and pixel aperture.

The light on the sensor plane is sampled on a grid `q` times finer than the sensor; the lens
(Gaussian; defocus and a screen's diffuser add in quadrature) blurs it before each sensor pixel
integrates its square, which is where aliasing and moiré come from. Blur and box integration are
separable, so each axis is filtered and decimated in turn: the second axis is filtered on a grid
already q times smaller.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class SensorWindow:
    """A rectangle of sensor pixels of a frame, in px centred on the frame centre.

    Attributes:
        top, left: coordinates of the window's first row / column edge.
        height, width: sensor px.
        half: half the frame's larger side (the keystone is a fraction at the border).
    """

    top: float
    left: float
    height: int
    width: int
    half: float

    @staticmethod
    def centred(height: int, width: int) -> SensorWindow:
        return SensorWindow(-height / 2, -width / 2, height, width, max(height, width) / 2)


def halo(sigma: float, q: int) -> int:
    """Fine samples of lens kernel beyond the window on each side (3 sigma)."""
    return int(math.ceil(3.0 * sigma * q)) + 1


def fine_grid(window: SensorWindow, q: int, sigma: float):
    """Sensor coordinates (u columns, v rows) of the fine grid, with the blur halo."""
    h = halo(sigma, q)
    rows = (np.arange(window.height * q + 2 * h, dtype=np.float32) - h + 0.5) / q + window.top
    cols = (np.arange(window.width * q + 2 * h, dtype=np.float32) - h + 0.5) / q + window.left
    return np.meshgrid(cols, rows)


def lens_and_aperture(field: np.ndarray, q: int, sigma: float) -> np.ndarray:
    """Blurs a fine field [Hq + 2h, Wq + 2h, C] and integrates it over each sensor pixel.

    Only the decimated outputs are computed: per axis, a strided correlation with the
    (box * Gaussian) kernel, q times cheaper than filtering the fine grid.

    Returns:
        float32 [H, W, C].
    """
    h = halo(sigma, q)
    taps = np.arange(-h, h + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (taps / max(sigma * q, 1e-6)) ** 2)
    kernel = np.convolve(np.full(q, 1.0 / q), gauss / gauss.sum()).astype(np.float32)
    out = field
    for axis in (0, 1):
        n = (out.shape[axis] - 2 * h) // q
        acc = None
        for t, weight in enumerate(kernel):
            index = [slice(None)] * out.ndim
            index[axis] = slice(t, t + n * q, q)
            term = weight * out[tuple(index)]
            acc = term if acc is None else acc + term
        out = acc
    return out.astype(np.float32)
