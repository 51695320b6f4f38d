"""The phone camera of simulator v2, both classes: sensor, demosaicing and ISP.

Exposure scales the linear light; the Bayer CFA (any of the four layouts) keeps one channel per
pixel; photon (Poisson) and read (Gaussian) noise land on that raw mosaic, so demosaicing
correlates them, as in a real camera. Demosaicing is bilinear or Malvar-He-Cutler (2004, the
gradient-corrected 5x5 filters most ISPs improve on); then residual white balance, denoising
(Gaussian, chroma twice as strong as luma), the tone curve and unsharp-mask sharpening, in the
order a phone applies them. The result is the uint8 image the phone would JPEG.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from tfrecap.data.simulator.camera import demosaic as bilinear_demosaic
from tfrecap.data.simulator.camera import mosaic
from tfrecap.data.simulator.v2.draws import Camera
from tfrecap.data.simulator.v2.optics import SensorWindow

# Malvar, He & Cutler (ICASSP 2004), Fig. 2, times 8.
_G_AT_RB = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0],
                     [0, 0, -1, 0, 0]], np.float32) / 8
_AT_G_ROW = np.array([[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1],
                      [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]], np.float32) / 8
_AT_G_COL = _AT_G_ROW.T.copy()
_AT_OPPOSITE = np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5],
                         [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]], np.float32) / 8


def malvar_demosaic(raw: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Gradient-corrected linear demosaicing of a Bayer mosaic (red site at `phase`)."""
    rows, cols = np.indices(raw.shape)
    red_row, red_col = rows % 2 == phase[0], cols % 2 == phase[1]
    red, blue = red_row & red_col, ~red_row & ~red_col
    green_in_red_row, green_in_blue_row = red_row & ~red_col, ~red_row & red_col
    g_at, row, col, opposite = (ndimage.convolve(raw, k, mode="mirror")
                                for k in (_G_AT_RB, _AT_G_ROW, _AT_G_COL, _AT_OPPOSITE))
    green = np.where(red | blue, g_at, raw)
    r = np.where(red, raw, np.where(green_in_red_row, row,
                                    np.where(green_in_blue_row, col, opposite)))
    b = np.where(blue, raw, np.where(green_in_blue_row, row,
                                     np.where(green_in_red_row, col, opposite)))
    return np.stack([r, green, b], axis=-1)


def sense(linear: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Exposure, CFA, Poisson-Gaussian noise and demosaicing: float32 linear RGB, >= 0."""
    raw = np.clip(mosaic(linear * camera.exposure, camera.cfa_phase), 0.0, 1.0)
    electrons = rng.poisson(raw * camera.full_well)
    raw = electrons / camera.full_well + rng.normal(0.0, camera.read_noise, raw.shape)
    raw = np.clip(raw, 0.0, 1.0).astype(np.float32)
    if camera.demosaic == "malvar":
        rgb = malvar_demosaic(raw, camera.cfa_phase)
    else:
        rgb = bilinear_demosaic(raw, camera.cfa_phase)
    return np.clip(rgb, 0.0, None).astype(np.float32)


def sense_burst(first_light: np.ndarray, render: Callable[[SensorWindow], np.ndarray] | None,
                window: SensorWindow | None, camera: Camera, shifts: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """`sense` of a burst: the first frame and one more per shift, merged on the scene.

    Frame k's sensor window is moved by its shift (rows, columns; sensor px), so it samples
    the light at another sub-pixel phase. Realigned by that shift (cubic spline), what is
    resolved lines up with the first frame, while what the sensor aliased, a screen's moiré
    above all, lands at another phase in each frame and averages down; so does the noise
    (each frame draws its own). This is an idealised merge: known shifts, no robustness
    weights, and frames merged after demosaicing, where HDR+ (Hasinoff et al. 2016) and
    Wronski et al. (2019) merge raw frames. The spline's realignment also softens detail near
    Nyquist a little, in both classes alike.

    Args:
        first_light: the first frame's linear light, `render(window)`.
        render: callable SensorWindow -> linear light [H, W, 3] of that window.
        window: the first frame's sensor window.
        camera: the capture's camera; its noise and demosaicing serve every frame.
        shifts: [frames - 1, 2] shifts of the further frames (`draws.draw_burst_shifts`);
            empty for one frame, which is then `sense` itself.
        rng: the noise's generator.

    Returns:
        float32 [H, W, 3] linear RGB, >= 0.
    """
    merged = sense(first_light, camera, rng)
    if not len(shifts):
        return merged
    if render is None or window is None:
        raise ValueError(f"a burst of {len(shifts) + 1} frames needs `render` and `window` to "
                         f"take its further frames")
    for dy, dx in shifts:
        moved = SensorWindow(window.top + dy, window.left + dx, window.height, window.width,
                             window.half)
        frame = sense(render(moved), camera, rng)
        # Row i of the moved frame saw what row i + dy of the first did, so the realigned
        # frame is out[i] = frame[i - dy]: ndimage.shift by +dy (columns alike).
        merged += ndimage.shift(frame, (dy, dx, 0.0), order=3, mode="nearest")
    return np.clip(merged / (len(shifts) + 1), 0.0, None).astype(np.float32)


def process(rgb: np.ndarray, camera: Camera) -> np.ndarray:
    """White balance, denoising, tone curve and sharpening: uint8 [H, W, 3]."""
    rgb = rgb * np.array([camera.white_balance[0], 1.0, camera.white_balance[1]], np.float32)
    if camera.denoise_sigma > 0:
        luma = rgb.mean(axis=-1, keepdims=True)
        chroma = rgb - luma
        sigma = camera.denoise_sigma
        luma = ndimage.gaussian_filter(luma, (sigma, sigma, 0), mode="nearest")
        chroma = ndimage.gaussian_filter(chroma, (2 * sigma, 2 * sigma, 0), mode="nearest")
        rgb = luma + chroma
    tone = np.clip(rgb, 0.0, 1.0) ** (1.0 / camera.tone_gamma)
    tone = (1.0 - camera.s_curve) * tone + camera.s_curve * tone * tone * (3.0 - 2.0 * tone)
    amount, sigma = camera.sharpen
    if amount > 0:
        blurred = ndimage.gaussian_filter(tone, (sigma, sigma, 0), mode="nearest")
        tone = tone + amount * (tone - blurred)
    return np.round(255.0 * np.clip(tone, 0.0, 1.0)).astype(np.uint8)
