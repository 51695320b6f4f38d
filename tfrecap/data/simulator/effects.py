"""Optional nuisance effects, off in the committed simulator: diffuser, moiré, grain, texture.

Each is switched on by its `SimulatorParams` field (None means off, and the data passes through
untouched). Each draws from a generator seeded by integer data of its pair (the uint8 scene
window or patch) rather than from the pair's generator, so turning an effect on changes nothing
else about a pair: a variant and the control differ only by that effect, and stay deterministic.
Never by float arrays: their last bits differ between CPUs (BLAS kernels, SIMD maths), and a
seed from their bytes made the same parameter set give other pixels on another machine.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage

from tfrecap.data.simulator.params import SimulatorParams


def data_rng(*arrays: np.ndarray, tag: str = "") -> np.random.Generator:
    """A generator seeded by the CRC-32 of integer arrays and a tag: deterministic, different per
    patch, and different per effect (the tag) when two effects key on the same window."""
    seed = zlib.crc32(tag.encode())
    for array in arrays:
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"data_rng keys on integer data only, got {array.dtype}: the last "
                            "bits of floats differ between machines")
        seed = zlib.crc32(np.ascontiguousarray(array).tobytes(), seed)
    return np.random.default_rng(seed)


def diffuse(field: np.ndarray, window: np.ndarray, params: SimulatorParams) -> np.ndarray:
    """The screen's anti-glare diffuser: Gaussian blur of the emitted sub-pixel field.

    Args:
        field: float [H, W, 3] screen light on the fine grid (`params.supersample` per px).
        window: the uint8 scene window the screen shows, which seeds the blur's draw.
        params: `diffuser_sigma` gives the blur range in sensor px.

    Returns:
        The blurred field, or `field` itself when the effect is off.
    """
    if params.diffuser_sigma is None:
        return field
    rng = data_rng(window, tag="diffuser")
    sigma = rng.uniform(*params.diffuser_sigma) * params.supersample  # in fine samples
    return ndimage.gaussian_filter(field, (sigma, sigma, 0), mode="nearest")


def moire(light: np.ndarray, window: np.ndarray, params: SimulatorParams) -> np.ndarray:
    """A multiplicative cosine pattern of any orientation on the recapture's sensor light.

    The uint8 scene `window` the screen shows seeds the pattern's draws.

    Returns:
        float64 ``light * (1 + a cos(...))``, or `light` itself when the effect is off.
    """
    if params.moire_period is None:
        return light
    rng = data_rng(window, tag="moire")
    amplitude, period = rng.uniform(*params.moire_amplitude), rng.uniform(*params.moire_period)
    theta, phase = rng.uniform(0.0, np.pi), rng.uniform(0.0, 2 * np.pi)
    rows, cols = np.indices(light.shape[:2])
    wave = np.cos(2 * np.pi * (cols * np.cos(theta) + rows * np.sin(theta)) / period + phase)
    return light * (1.0 + amplitude * wave)[..., None]


def grain(patch: np.ndarray, params: SimulatorParams) -> np.ndarray:
    """Gaussian noise in levels on the uint8 patch just before JPEG (both classes)."""
    if params.grain_sigma is None:
        return patch
    rng = data_rng(patch)
    noisy = patch + rng.normal(0.0, rng.uniform(*params.grain_sigma), patch.shape)
    return np.round(np.clip(noisy, 0, 255)).astype(np.uint8)


def scene_texture(window: np.ndarray, params: SimulatorParams) -> np.ndarray:
    """Fine grey texture in the scene itself (fabric, foliage, paper grain), per source pixel.

    The same textured window feeds both captures: the original records it through the lens
    alone, the recapture only as far as the display's coarser pixel grid can show it.
    """
    if params.scene_texture_sigma is None:
        return window
    rng = data_rng(window)
    texture = rng.normal(0.0, rng.uniform(*params.scene_texture_sigma), window.shape[:2])
    return np.round(np.clip(window + texture[..., None], 0, 255)).astype(np.uint8)
