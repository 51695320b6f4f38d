"""Camera optics shared by both classes: pose, lens blur and the sensor's pixel aperture.

A fine sample grid of the sensor is mapped onto the source plane through the pose (steps 3-5 of
the recapture model): the light there is blurred by the lens and integrated over each sensor
pixel's area, on a grid not aligned with the display, which is where aliasing and moiré come
from. `window_radius` bounds every read, so that a region's pixels never leave its split band.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from tfrecap.data.simulator.draws import Geometry
from tfrecap.data.simulator.params import DEFAULT_PARAMS, SimulatorParams


def _srgb_to_linear(levels: np.ndarray) -> np.ndarray:
    v = levels / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


# The sRGB transfer curve is a standard, not a parameter.
SRGB_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64)).astype(np.float32)


def kernel_halfwidth(supersample: int, params: SimulatorParams) -> int:
    """Half-width in fine samples of the lens kernel at the largest blur of the range."""
    return math.ceil(3.0 * params.lens_sigma[1] * supersample)


def window_radius(size: int, params: SimulatorParams = DEFAULT_PARAMS) -> int:
    """Half-side of the source window the simulator may read around a region centre.

    It bounds, over every parameter range, where the fine sample grid lands on the source,
    plus the bilinear footprint and one display pixel.

    Args:
        size: patch side in pixels.
        params: the simulator parameters (their ranges set the bound).

    Returns:
        The radius in source pixels.
    """
    blur = kernel_halfwidth(params.supersample, params) / params.supersample
    reach = size / 2 + params.pad + blur
    angle = math.radians(max(abs(a) for a in params.rotation_deg))
    stretch = (math.cos(angle) + math.sin(angle)) * max(params.aspect[1], 1 / params.aspect[0])
    plane = reach * stretch / params.magnification[0] / (1.0 - 2.0 * params.keystone)
    display_pixel = params.display_pitch[1] / params.magnification[0]
    return math.ceil(plane + params.translation + 1.0 + display_pixel)


def fine_grid(canvas: int, supersample: int, geometry: Geometry, params: SimulatorParams):
    """Plane coordinates of the fine sample grid (padded for the blur kernel)."""
    halfwidth = kernel_halfwidth(supersample, params)
    q = np.arange(canvas * supersample + 2 * halfwidth, dtype=np.float32)
    axis = (q - halfwidth + 0.5) / supersample - canvas / 2
    u, v = np.meshgrid(axis, axis)
    return geometry.map(u, v)


def lens_and_aperture(
    field: np.ndarray, canvas: int, supersample: int, sigma: float, params: SimulatorParams
) -> np.ndarray:
    """Lens blur and box pixel aperture, sampled on the sensor grid.

    Only the decimated outputs are computed: a strided correlation with the (box * Gaussian)
    kernel along each axis. The blur must act before the sampling, otherwise it would not
    attenuate what aliases.
    """
    halfwidth = kernel_halfwidth(supersample, params)
    taps = np.arange(-halfwidth, halfwidth + 1)
    gauss = np.exp(-0.5 * (taps / (sigma * supersample)) ** 2)
    kernel = np.convolve(np.full(supersample, 1.0 / supersample), gauss / gauss.sum())
    for axis in (0, 1):
        out = 0.0
        for t, weight in enumerate(kernel):
            index = [slice(None)] * field.ndim
            index[axis] = slice(t, t + canvas * supersample, supersample)
            out = out + weight * field[tuple(index)]
        field = out
    return field.astype(np.float32)


def check_inside(x: np.ndarray, y: np.ndarray, radius: int, margin: float) -> None:
    """Raises if a read at plane coordinates (x, y) would leave the window of `radius`."""
    # The split rule depends on this: nothing outside the window may ever be read.
    reach = max(np.abs(x).max(), np.abs(y).max()) + margin
    if reach > radius:
        raise RuntimeError(f"simulator read {reach:.1f} px from the centre, window is {radius}")


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Samples an [H, W, C] image at centred plane coordinates, bilinearly."""
    radius = image.shape[0] / 2
    rows, cols = y + radius - 0.5, x + radius - 0.5
    channels = [
        ndimage.map_coordinates(image[..., c], [rows, cols], order=1, mode="nearest")
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def image_original(
    window: np.ndarray, size: int, geometry: Geometry, params: SimulatorParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Linear-light sensor image of the scene itself, [size + 2 pad]^2 x 3."""
    canvas = size + 2 * params.pad
    x, y = fine_grid(canvas, params.supersample_scene, geometry, params)
    check_inside(x, y, window.shape[0] // 2, 1.0)
    scene = SRGB_TO_LINEAR[window]
    return lens_and_aperture(
        bilinear(scene, x, y), canvas, params.supersample_scene, geometry.lens_sigma, params
    )
