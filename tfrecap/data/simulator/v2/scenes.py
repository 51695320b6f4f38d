"""Scenes for simulator v2: a bundled photo region, or a procedural dead-leaves scene.

A scene is a linear-light raster with a density (raster px per reference px), centred on the
scene origin; both captures of a pair sample the same scene. The bundled photos are sampled at
no more than one source px per reference px (never upsampled at the reference scale). Dead
leaves (Lee, Mumford & Huang 2001) are occluding disks with radii drawn ∝ r^-3, the size law
that gives natural images their scale invariance: random colours, some textured (noise or
stripes; in variants with `dead_leaves_weave_prob` > 0 also 2-D weaves, the fabrics and meshes
whose fine periodic grids look most like a screen's), some blur. They are rendered at sensor
resolution (`density` = the largest d of the pair), with antialiased edges, so no capture ever
sees them upsampled.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage

from tfrecap.data.simulator.optics import SRGB_TO_LINEAR
from tfrecap.data.simulator.v2.params import SimulatorParamsV2


@dataclasses.dataclass(frozen=True)
class Scene:
    """A linear-light raster [H, W, 3] covering `density` raster px per reference px.

    Attributes:
        raster: float32 linear RGB, about [0, 1].
        density: raster px per reference px.
        bounded: reads must stay inside the raster (a photo region: the split rule).
    """

    raster: np.ndarray
    density: float
    bounded: bool = False

    def check(self, x: np.ndarray, y: np.ndarray) -> None:
        """Raises if a bounded scene would be read outside its raster at (x, y)."""
        if not self.bounded or x.size == 0:
            return
        # The split rule depends on this: no pixel outside a region's window is ever read.
        reach = max(np.abs(x).max(), np.abs(y).max()) * self.density + 1.0
        if reach > min(self.raster.shape[:2]) / 2:
            raise RuntimeError(f"simulator v2 read {reach:.1f} px from the centre of a "
                               f"{self.raster.shape[0]}x{self.raster.shape[1]} photo window")

    def sample(self, x: np.ndarray, y: np.ndarray, check: bool = True) -> np.ndarray:
        """Bilinear samples at scene coordinates (reference px, centred): [..., 3] float32.

        Reads beyond the raster repeat its edge; with `check`, a bounded scene raises instead.
        """
        if check:
            self.check(x, y)
        height, width = self.raster.shape[:2]
        cols = x * self.density + width / 2 - 0.5
        rows = y * self.density + height / 2 - 0.5
        coords = np.stack([rows.ravel(), cols.ravel()])
        out = np.empty(x.shape + (3,), np.float32)
        for c in range(3):
            out[..., c] = ndimage.map_coordinates(
                self.raster[..., c], coords, order=1, mode="nearest").reshape(x.shape)
        return out


def photo_scene(window: np.ndarray, content_scale: float) -> Scene:
    """A bundled photo window shown at `content_scale` reference px per source px (>= 1)."""
    return Scene(SRGB_TO_LINEAR[window], 1.0 / content_scale, bounded=True)


def power_law_radii(rng: np.random.Generator, n: int, bounds) -> np.ndarray:
    """n radii with density ∝ r^-3 on [low, high], by inverting the CDF."""
    low, high = bounds
    a, b = low**-2.0, high**-2.0
    return (a - rng.uniform(size=n) * (a - b)) ** -0.5


def disk_count(half: float, params: SimulatorParamsV2) -> int:
    """Disks for the scene's expected coverage: coverage * area / (pi E[r^2])."""
    low, high = params.dead_leaves_radius
    mean_square = 2.0 * math.log(high / low) / (low**-2.0 - high**-2.0)
    wanted = params.dead_leaves_coverage * (2.0 * half) ** 2 / (math.pi * mean_square)
    return int(min(params.dead_leaves_max_disks, math.ceil(wanted)))


@dataclasses.dataclass(frozen=True)
class Weaves:
    """Per-disk draws of the woven textures of one scene (arrays of length n).

    A weave is two crossed gratings, the threads, at periods ``period`` and ``period * ratio``
    raster px, the second at 90° + ``skew`` from the first. ``cells`` picks how they combine:
    bright cells between dark lines (their product: a mesh, a grille, a screen-like grid) or
    bright threads over dark gaps (their mean: a fabric); ``sharpness`` raises the result to a
    power, from soft (0.5) to thin threads (3).
    """

    woven: np.ndarray
    period: np.ndarray
    ratio: np.ndarray
    skew: np.ndarray
    cells: np.ndarray
    sharpness: np.ndarray

    def pattern(self, i: int, xx: np.ndarray, yy: np.ndarray, angle: float) -> np.ndarray:
        """Disk i's weave on the raster offsets (xx, yy), standardized to mean 0, std 1."""
        second = angle + math.pi / 2 + self.skew[i]
        u = xx * np.float32(math.cos(angle)) + yy * np.float32(math.sin(angle))
        v = xx * np.float32(math.cos(second)) + yy * np.float32(math.sin(second))
        a = 0.5 + 0.5 * np.cos(np.float32(2.0 * math.pi / self.period[i]) * u)
        b = 0.5 + 0.5 * np.cos(np.float32(2.0 * math.pi / (self.period[i] * self.ratio[i])) * v)
        w = (a * b if self.cells[i] else 0.5 * (a + b)) ** np.float32(self.sharpness[i])
        return ((w - w.mean()) / (w.std() + 1e-6)).astype(np.float32)


def draw_weaves(rng: np.random.Generator, n: int, textured: np.ndarray, density: float,
                params: SimulatorParamsV2) -> Weaves | None:
    """The weave draws of a scene's n disks, or None when weaves are off.

    Nothing is drawn when ``dead_leaves_weave_prob`` is 0, so the committed v2 (which has no
    weaves) keeps its random stream and its pixels.
    """
    if params.dead_leaves_weave_prob <= 0.0:
        return None
    woven = textured & (rng.uniform(size=n) < params.dead_leaves_weave_prob)
    period = np.exp(rng.uniform(*np.log(params.dead_leaves_weave_period), n)) * density
    ratio = np.exp(rng.uniform(math.log(0.8), math.log(1.25), n))
    skew = rng.uniform(-math.pi / 18, math.pi / 18, n)
    cells = rng.integers(2, size=n).astype(bool)
    sharpness = np.exp(rng.uniform(math.log(0.5), math.log(3.0), n))
    return Weaves(woven, period, ratio, skew, cells, sharpness)


def dead_leaves(
    rng: np.random.Generator, half: float, density: float, params: SimulatorParamsV2
) -> Scene:
    """A dead-leaves scene covering [-half, half]^2 reference px at `density` px per ref px.

    Disks are painted front to back (the first drawn is on top): each pixel keeps the first
    disk that covers it, so the front ones occlude.
    """
    side = int(math.ceil(2.0 * half * density)) + 2
    n = disk_count(half, params)
    background = rng.uniform(0.0, 1.0, 3)
    radii = power_law_radii(rng, n, params.dead_leaves_radius) * density
    reach = (side / 2) + radii  # centres may fall outside, so the border is covered too
    centres = rng.uniform(-1.0, 1.0, (n, 2)) * reach[:, None] + side / 2
    colours = rng.uniform(0.0, 1.0, (n, 3))
    textured = rng.uniform(size=n) < params.dead_leaves_texture_prob
    kinds = rng.integers(2, size=n)  # 0 noise, 1 stripes
    amplitudes = rng.uniform(*params.dead_leaves_texture_amplitude, n)
    periods = np.exp(rng.uniform(*np.log(params.dead_leaves_stripe_period), n)) * density
    angles = rng.uniform(0.0, math.pi, n)
    weaves = draw_weaves(rng, n, textured, density, params)
    # Painted front to back: the first disk is on top. `clear` is the fraction of each pixel
    # still uncovered; a disk whose box is already covered costs one reduction, not a blend.
    image = np.zeros((side, side, 3), np.float32)
    clear = np.ones((side, side, 1), np.float32)
    for i in range(n):
        r, (cy, cx) = np.float32(radii[i]), centres[i]
        r0, r1 = max(int(cy - r - 1), 0), min(int(cy + r + 2), side)
        c0, c1 = max(int(cx - r - 1), 0), min(int(cx + r + 2), side)
        if r0 >= r1 or c0 >= c1:
            continue
        open_ = clear[r0:r1, c0:c1]
        if open_.max() < 1e-3:
            continue
        yy = np.arange(r0, r1, dtype=np.float32)[:, None] + np.float32(0.5 - cy)
        xx = np.arange(c0, c1, dtype=np.float32)[None, :] + np.float32(0.5 - cx)
        # Antialiased edge: coverage of a pixel by the disk, to first order.
        alpha = np.clip(r + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)[..., None] * open_
        colour = colours[i].astype(np.float32)
        if textured[i]:
            if weaves is not None and weaves.woven[i]:
                pattern = weaves.pattern(i, xx, yy, angles[i])
            elif kinds[i] == 0:
                pattern = rng.normal(0.0, 1.0, alpha.shape[:2]).astype(np.float32)
            else:
                phase = xx * np.float32(math.cos(angles[i])) + yy * np.float32(
                    math.sin(angles[i]))
                pattern = np.cos(np.float32(2.0 * math.pi / periods[i]) * phase)
            amplitude = np.float32(amplitudes[i])
            colour = colour * np.clip(1.0 + amplitude * pattern, 0.0, 2.0)[..., None]
        image[r0:r1, c0:c1] += alpha * colour
        open_ -= alpha
    image += clear * background.astype(np.float32)
    if rng.uniform() < params.dead_leaves_blur_prob:
        sigma = rng.uniform(*params.dead_leaves_blur_sigma) * density
        image = ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="nearest")
    levels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    # Colours are drawn as sRGB code values, as a photo's are, then made linear.
    linear = SRGB_TO_LINEAR[levels]
    return Scene(linear, density)
