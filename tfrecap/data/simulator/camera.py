"""The camera pipeline both classes go through: Bayer CFA, noise, demosaicing, tone, JPEG.

Steps 6-9 of the recapture model. Noise is added to the raw mosaic, before demosaicing, so it is
spatially correlated by it, as in a real camera. `match_levels` is the pair's brightness
normalisation in linear light, applied to the recapture before its tone curve.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from tfrecap.data.simulator import effects
from tfrecap.data.simulator.draws import Camera
from tfrecap.data.simulator.params import DEFAULT_PARAMS, JPEG_SUBSAMPLING, SimulatorParams


def _cfa_masks(shape: tuple[int, int], phase: tuple[int, int]):
    rows, cols = np.indices(shape)
    red = (rows % 2 == phase[0]) & (cols % 2 == phase[1])
    blue = (rows % 2 != phase[0]) & (cols % 2 != phase[1])
    return red, blue


def demosaic(raw: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Bilinear demosaicing of a Bayer mosaic whose red site is at `phase` in each 2x2 cell."""
    red, blue = _cfa_masks(raw.shape, phase)
    green = ~(red | blue)
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    planes = [
        ndimage.convolve(raw * mask, kernel, mode="mirror")
        for mask, kernel in ((red, k_rb), (green, k_g), (blue, k_rb))
    ]
    return np.stack(planes, axis=-1)


def mosaic(linear: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Bayer CFA sampling: each sensor pixel keeps the one channel its filter passes."""
    red, blue = _cfa_masks(linear.shape[:2], phase)
    channel = np.where(red, 0, np.where(blue, 2, 1))
    return np.take_along_axis(linear, channel[..., None], axis=-1)[..., 0]


def jpeg(image: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """JPEG round trip through Pillow; `subsampling` is a key of `JPEG_SUBSAMPLING`."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(
        buffer, format="JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING[subsampling]
    )
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def sense(linear: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """CFA sampling, Poisson-Gaussian noise on the raw mosaic, bilinear demosaicing.

    Args:
        linear: float [size + 2 pad, size + 2 pad, 3] linear light, about [0, 1].
        camera: the camera settings.
        rng: generator for the noise.

    Returns:
        float32 demosaiced linear RGB, same shape, clipped to [0, 1].
    """
    raw = np.clip(mosaic(linear, camera.cfa_phase), 0.0, None)
    electrons = rng.poisson(raw * camera.full_well)
    raw = electrons / camera.full_well + rng.normal(0.0, camera.read_noise, raw.shape)
    return np.clip(demosaic(raw.astype(np.float32), camera.cfa_phase), 0.0, 1.0)


def render(
    rgb: np.ndarray, camera: Camera, params: SimulatorParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Tone curve, crop of the padding, JPEG: the uint8 [size, size, 3] patch."""
    tone = rgb ** (1.0 / camera.tone_gamma)
    tone = (1.0 - camera.s_curve) * tone + camera.s_curve * tone * tone * (3.0 - 2.0 * tone)
    pad = params.pad
    patch = np.round(255.0 * tone[pad:-pad, pad:-pad]).astype(np.uint8)
    return jpeg(effects.grain(patch, params), camera.jpeg_quality, params.jpeg_subsampling)


def match_levels(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-channel histogram matching in linear light: `image` gets the levels of `reference`.

    This is the pair's brightness normalisation (auto exposure and white balance), extended to
    the whole level distribution (the display's brightness, contrast and gamma settings). Means
    or deviations alone are not enough: the tone curve is concave, so two images with equal
    linear means and deviations but differently shaped histograms (a black matrix between
    sub-pixels makes many dark samples) still differ in recorded mean, deviation and saturation.
    The map is monotone per channel, so every spatial pattern (mosaic, moiré) keeps its shape.

    Args:
        image: float [H, W, 3] linear RGB.
        reference: float [H', W', 3] linear RGB.

    Returns:
        float32 [H, W, 3].
    """
    out = np.empty(image.shape, np.float32)
    for c in range(3):
        values = image[..., c].ravel()
        ranks = np.empty(values.size)
        ranks[np.argsort(values, kind="stable")] = np.linspace(0.0, 1.0, values.size)
        levels = np.sort(reference[..., c].ravel())
        grid = np.linspace(0.0, 1.0, levels.size)
        out[..., c] = np.interp(ranks, grid, levels).reshape(image.shape[:2])
    return out
