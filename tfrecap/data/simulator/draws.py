"""The per-pair random draws: camera pose, screen and camera settings, each a frozen record.

Every value is drawn from a range of `SimulatorParams`, in a fixed order from the pair's
generator, so a pair is fixed by its seed and its parameters. Pose and camera come from the
same distribution for both classes: only the screen (`Display`) belongs to recaptures alone.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfrecap.data.simulator.params import SimulatorParams


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Camera pose: sensor coordinates (centred, px) -> plane coordinates (centred, source px)."""

    magnification: float
    rotation: float  # radians
    aspect: float
    keystone: tuple[float, float]  # per sensor px
    translation: tuple[float, float]  # source px
    lens_sigma: float  # sensor px

    def map(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps sensor column/row coordinates to plane x/y coordinates."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        scale = 1.0 / self.magnification
        denominator = 1.0 + self.keystone[0] * u + self.keystone[1] * v
        x = scale * self.aspect * (c * u - s * v) / denominator + self.translation[0]
        y = scale / self.aspect * (s * u + c * v) / denominator + self.translation[1]
        return x, y


@dataclasses.dataclass(frozen=True)
class Display:
    """The screen: stripe mosaic, gamma and gamut."""

    pitch: float  # sensor px per display px
    fill: float
    row_fill: float
    bgr: bool
    phase: tuple[float, float]  # display px
    gamma: float
    saturation: float


@dataclasses.dataclass(frozen=True)
class Camera:
    """The camera after the optics: CFA, noise, tone curve, JPEG."""

    cfa_phase: tuple[int, int]  # (row, col) of the red site in each 2x2 cell
    full_well: float
    read_noise: float
    tone_gamma: float
    s_curve: float
    jpeg_quality: int


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def draw_geometry(rng: np.random.Generator, size: int, params: SimulatorParams) -> Geometry:
    """Draws a camera pose and lens blur (same distribution for both classes)."""
    half = size / 2 + params.pad
    return Geometry(
        magnification=_log_uniform(rng, params.magnification),
        rotation=math.radians(rng.uniform(*params.rotation_deg)),
        aspect=float(rng.uniform(*params.aspect)),
        # Scaled by the canvas half-size, so the keystone is a fraction at the border.
        keystone=tuple(
            float(k) / half for k in rng.uniform(-params.keystone, params.keystone, 2)
        ),
        translation=tuple(
            float(t) for t in rng.uniform(-params.translation, params.translation, 2)
        ),
        lens_sigma=float(rng.uniform(*params.lens_sigma)),
    )


def draw_display(rng: np.random.Generator, params: SimulatorParams) -> Display:
    """Draws a screen."""
    return Display(
        pitch=_log_uniform(rng, params.display_pitch),
        fill=float(rng.uniform(*params.subpixel_fill)),
        row_fill=float(rng.uniform(*params.row_fill)),
        bgr=bool(rng.integers(2)),
        phase=tuple(float(p) for p in rng.uniform(0.0, 1.0, 2)),
        gamma=float(rng.uniform(*params.display_gamma)),
        saturation=float(rng.uniform(*params.display_saturation)),
    )


def draw_camera(rng: np.random.Generator, params: SimulatorParams) -> Camera:
    """Draws the camera settings (same distribution for both classes)."""
    return Camera(
        cfa_phase=(int(rng.integers(2)), int(rng.integers(2))),
        full_well=_log_uniform(rng, params.full_well),
        read_noise=float(rng.uniform(*params.read_noise)),
        tone_gamma=float(rng.uniform(*params.tone_gamma)),
        s_curve=float(rng.uniform(*params.tone_s_curve)),
        jpeg_quality=int(rng.integers(params.jpeg_quality[0], params.jpeg_quality[1] + 1)),
    )
