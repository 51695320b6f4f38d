"""The per-capture random draws of simulator v2: pose, display, camera, post-processing.

Each is a frozen record drawn from `SimulatorParamsV2` in a fixed order from the pair's
generator, so a pair is fixed by its seed and its parameters. Both classes draw pose, camera
and post-processing from the same ranges, independently per capture; only the `Display`
belongs to recaptures.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tfrecap.data.simulator.v2.params import SimulatorParamsV2


@dataclasses.dataclass(frozen=True)
class Pose:
    """Sensor px (centred on the frame) -> plane coordinates in reference px.

    The plane is the scene for an original and the screen for a recapture; `content_rotation`
    turns screen coordinates into scene coordinates (the scene's own framing).
    """

    downscale: float  # d: sensor px per reference px
    rotation: float  # radians: the scene for originals, the pixel grid for recaptures
    content_rotation: float  # radians: screen -> scene (0 for originals)
    aspect: float
    zoom: float
    keystone: tuple[float, float]  # fraction at the frame border
    translation: tuple[float, float]  # reference px
    lens_sigma: float  # sensor px

    def map(self, u, v, half: float):
        """Maps sensor column/row coordinates (centred, px) to plane x/y (reference px)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        scale = 1.0 / (self.downscale * self.zoom)
        denominator = 1.0 + (self.keystone[0] * u + self.keystone[1] * v) / half
        x = scale * self.aspect * (c * u - s * v) / denominator
        y = scale / self.aspect * (s * u + c * v) / denominator
        return x, y

    def to_scene(self, x, y):
        """Plane coordinates -> scene coordinates (reference px)."""
        c, s = math.cos(self.content_rotation), math.sin(self.content_rotation)
        return c * x - s * y + self.translation[0], s * x + c * y + self.translation[1]


@dataclasses.dataclass(frozen=True)
class Display:
    """The screen: layout, pitch, fill, tone and colour, content, nuisances."""

    layout: str
    pitch: float  # p: sensor px per display px
    fill: float
    row_fill: float
    phase: tuple[float, float]  # display px
    gamma: float
    brightness: float
    white_point: tuple[float, float]  # red, blue gains
    saturation: float
    content_jpeg: int | None  # quality, or None
    refresh_band: tuple[float, float, float] | None  # amplitude, period (sensor px), phase
    glare: tuple[float, float, float, float, float] | None  # amplitude, gx, gy, bx, by
    diffuser_sigma: float  # display px, 0 = none
    content_upscale: float = 1.0  # display px per content px (1: content at the panel's own)


@dataclasses.dataclass(frozen=True)
class Camera:
    """Sensor and phone ISP settings."""

    cfa_phase: tuple[int, int]  # (row, col) of the red site: RGGB (0,0) ... BGGR (1,1)
    exposure: float
    white_balance: tuple[float, float]  # residual red, blue gains
    full_well: float
    read_noise: float
    demosaic: str
    denoise_sigma: float  # 0 = none
    sharpen: tuple[float, float]  # amount (0 = none), sigma
    tone_gamma: float
    s_curve: float
    jpeg_quality: int
    burst_frames: int = 1  # frames merged (1: a single frame, the committed v2)


@dataclasses.dataclass(frozen=True)
class Post:
    """After the phone: messaging-app resize and JPEG, normalisation resize, crop."""

    messaging: tuple[float, int, str] | None  # downscale d1, quality, subsampling
    filters: tuple[str, str]  # messaging resize, normalisation resize
    crop: tuple[int, int]  # row, col offset in reference px


def log_uniform(rng: np.random.Generator, bounds) -> float:
    return float(np.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _chance(rng: np.random.Generator, probability: float) -> bool:
    return bool(rng.uniform() < probability)


def draw_pose(rng: np.random.Generator, params: SimulatorParamsV2, screen: bool) -> Pose:
    """A camera pose; `screen` adds the display grid's rotation (recaptures)."""
    downscale = log_uniform(rng, params.downscale)
    scene = math.radians(rng.uniform(*params.rotation_deg))
    grid = math.radians(rng.uniform(*params.screen_rotation_deg)) if screen else scene
    return Pose(
        downscale=downscale,
        rotation=grid,
        content_rotation=scene - grid,
        aspect=float(rng.uniform(*params.aspect)),
        zoom=log_uniform(rng, params.zoom),
        keystone=tuple(float(k) for k in rng.uniform(-params.keystone, params.keystone, 2)),
        translation=tuple(float(t) for t in rng.uniform(-0.5, 0.5, 2)),
        lens_sigma=float(rng.uniform(*params.lens_sigma)),
    )


def draw_display(rng: np.random.Generator, params: SimulatorParamsV2) -> Display:
    """A screen (recaptures only)."""
    # One 32-bit draw scaled to the number of layouts (Lemire's multiply-shift, without the
    # rejection step): for all four it is exactly `rng.integers(4)`, so v2's stream and pixels
    # are unchanged, and for any subset it takes the same draw, so a variant's pairs differ
    # from v2's only by their screens' layouts. (`rng.integers(n)` would take no draw for
    # n = 1 and, rarely, two for n = 3.) The bias for n = 3 is below 1e-9.
    draw = int(rng.integers(2**32))
    layout = params.layouts[(draw * len(params.layouts)) >> 32]
    pitch = log_uniform(rng, params.pitch)
    fill, row_fill = float(rng.uniform(*params.subpixel_fill)), float(rng.uniform(*params.row_fill))
    phase = tuple(float(p) for p in rng.uniform(0.0, 1.0, 2))
    gamma = float(rng.uniform(*params.display_gamma))
    brightness = log_uniform(rng, params.brightness)
    white = tuple(float(w) for w in rng.uniform(*params.white_point, 2))
    saturation = float(rng.uniform(*params.display_saturation))
    quality = int(rng.integers(params.content_jpeg_quality[0], params.content_jpeg_quality[1] + 1))
    content_jpeg = quality if _chance(rng, params.content_jpeg_prob) else None
    band = (float(rng.uniform(*params.refresh_band_amplitude)),
            log_uniform(rng, params.refresh_band_period), float(rng.uniform(0, 2 * math.pi)))
    band = band if _chance(rng, params.refresh_band_prob) else None
    glare = (float(rng.uniform(*params.glare_amplitude)), *map(float, rng.uniform(-1, 1, 4)))
    glare = glare if _chance(rng, params.glare_prob) else None
    diffuser = float(rng.uniform(*params.diffuser_sigma))
    diffuser = diffuser if _chance(rng, params.diffuser_prob) else 0.0
    upscale = 1.0
    if params.content_upscale_prob > 0:
        # From a generator of its own, seeded by this display's phase draw, so that no draw of
        # the pair's stream moves: the pair's originals stay v2's, bit for bit.
        own = np.random.default_rng(np.random.SeedSequence([int(phase[0] * 2**53), 0x5CA1E]))
        upscale = log_uniform(own, params.content_upscale)
        upscale = upscale if _chance(own, params.content_upscale_prob) else 1.0
    return Display(layout, pitch, fill, row_fill, phase, gamma, brightness, white, saturation,
                   content_jpeg, band, glare, diffuser, upscale)


def draw_camera(rng: np.random.Generator, params: SimulatorParamsV2) -> Camera:
    """Sensor and ISP settings (same distribution for both classes)."""
    cfa = (int(rng.integers(2)), int(rng.integers(2)))
    exposure = log_uniform(rng, params.exposure)
    balance = tuple(float(w) for w in rng.uniform(*params.white_balance, 2))
    full_well = log_uniform(rng, params.full_well)
    read_noise = float(rng.uniform(*params.read_noise))
    demosaic = params.demosaics[int(rng.integers(len(params.demosaics)))]
    denoise = float(rng.uniform(*params.denoise_sigma))
    denoise = denoise if _chance(rng, params.denoise_prob) else 0.0
    amount, radius = float(rng.uniform(*params.sharpen_amount)), float(
        rng.uniform(*params.sharpen_sigma))
    amount = amount if _chance(rng, params.sharpen_prob) else 0.0
    tone_gamma, s_curve = float(rng.uniform(*params.tone_gamma)), float(
        rng.uniform(*params.tone_s_curve))
    quality = int(rng.integers(params.phone_jpeg_quality[0], params.phone_jpeg_quality[1] + 1))
    low, high = params.burst_frames
    # Drawn last, and only when there is a choice, so v2's stream is unchanged at (1, 1).
    frames = int(rng.integers(low, high + 1)) if high > low else low
    return Camera(
        cfa_phase=cfa,
        exposure=exposure,
        white_balance=balance,
        full_well=full_well,
        read_noise=read_noise,
        demosaic=demosaic,
        denoise_sigma=denoise,
        sharpen=(amount, radius),
        tone_gamma=tone_gamma,
        s_curve=s_curve,
        jpeg_quality=quality,
        burst_frames=frames,
    )


def draw_burst_shifts(rng: np.random.Generator, camera: Camera,
                      params: SimulatorParamsV2) -> np.ndarray:
    """The hand's (row, column) shift of each frame after the first, sensor px: [frames - 1, 2].

    Nothing is drawn for a single frame, so v2's stream is unchanged.
    """
    if camera.burst_frames == 1:
        return np.zeros((0, 2))
    return rng.uniform(-params.burst_shift, params.burst_shift, (camera.burst_frames - 1, 2))


def draw_post(rng: np.random.Generator, params: SimulatorParamsV2, downscale: float) -> Post:
    """Messaging chain, resize filters and crop (same distribution for both classes)."""
    share = float(rng.uniform(*params.messaging_share))
    quality = int(rng.integers(params.messaging_jpeg_quality[0],
                               params.messaging_jpeg_quality[1] + 1))
    subsampling = "4:4:4" if _chance(rng, params.messaging_444_prob) else "4:2:0"
    messaging = (downscale**share, quality, subsampling)
    messaging = messaging if _chance(rng, params.messaging_prob) else None
    filters = tuple(params.resize_filters[int(i)]
                    for i in rng.integers(len(params.resize_filters), size=2))
    low = params.margin - params.crop_jitter // 2
    crop = tuple(int(low + o) for o in rng.integers(0, max(params.crop_jitter, 1), 2))
    return Post(messaging, filters, crop)
