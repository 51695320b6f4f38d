"""Offline recapture simulator: a photo, and a photo of a screen showing it (numpy/scipy only).

A pair is simulated from one source window (uint8 sRGB pixels around a region centre):

* **recapture**: (1) a display shows the window on a stripe sub-pixel mosaic (R, G, B columns
  with a black matrix) at a non-integer pitch; (2) display gamma and gamut; (3) a camera looks at
  the screen through a random homography with a small rotation; (4) lens blur; (5) each sensor
  pixel integrates the blurred light over its area (box aperture) on a grid that is not aligned
  with the display: this is where aliasing and moiré come from.
* **original**: the window itself is the scene. It goes through the *same* optics (3)-(5), with
  parameters from the same ranges, so that blur, interpolation and scale are no class cue: the
  only difference between the classes is the screen, (1)-(2).

Both then go through the same camera pipeline, each with its own draw: (6) Bayer CFA sampling,
(7) Poisson-Gaussian noise on the raw mosaic (physically the noise is added before demosaicing,
so it is spatially correlated by it, as in a real camera), bilinear demosaicing, (8) tone curve,
(9) JPEG through Pillow (its default 4:2:0 chroma subsampling, as in cameras), decoded back.

Between demosaicing and the tone curve, in linear light, the recapture's per-channel level
histogram is matched to its original's (`match_levels`): auto exposure and white balance plus
the display's brightness/contrast. Matching only the means was not enough: measured with the
guard in ``scripts/shortcut_guard.py``, per-channel deviations then separated the classes
(64-68 %), because the concave tone curve and JPEG's YCbCr quantisation turn the screen's dark
black-matrix samples and chroma moiré into channel-deviation differences. With the matching the
nuisance-feature guard is near chance while the spectral probe stays high.

Parameter ranges (drawn uniformly unless marked log; ``pitch`` etc. in sensor pixels):

======================  =====================  ======================================
parameter               range                  why
======================  =====================  ======================================
magnification (both)    1.0 - 1.25 (log)       source px -> sensor px; never below 1,
                                               so a region's window stays small
rotation (both)         -4 - 4 degrees         hand-held framing
keystone (both)         -0.02 - 0.02           off-axis view, per axis
aspect (both)           0.98 - 1.02            lens distortion, locally
offset (both)           -0.5 - 0.5 source px   sub-pixel crop offset, per axis
lens blur sigma (both)  0.25 - 0.55 px         sharp phone lens to mild defocus
display pitch           1.3 - 2.6 px (log)     display pixel imaged on 1.3-2.6 sensor px:
                                               the mosaic aliases at pixel scale
sub-pixel fill          0.55 - 0.9             lit width of each R/G/B column
row fill                0.65 - 0.9             lit height (black matrix between rows)
sub-pixel order         RGB or BGR             panel type
display gamma           1.9 - 2.5              around sRGB's 2.2, both ways
display saturation      0.85 - 1.15            narrow vs wide gamut, both ways
full well (both)        3000 - 30000 e- (log)  photon noise at linear 1.0
read noise (both)       0.0005 - 0.003         of full scale
CFA phase (both)        RGGB/GRBG/GBRG/BGGR
tone gamma (both)       2.0 - 2.4
tone S-curve (both)     0.0 - 0.25             blend with smoothstep
JPEG quality (both)     75 - 95                Pillow, 4:2:0
======================  =====================  ======================================
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
from PIL import Image
from scipy import ndimage

MAGNIFICATION = (1.0, 1.25)
ROTATION_DEG = (-4.0, 4.0)
KEYSTONE = 0.02
ASPECT = (0.98, 1.02)
TRANSLATION = 0.5  # source px, the sub-pixel crop offset, same for both classes
LENS_SIGMA = (0.25, 0.55)
DISPLAY_PITCH = (1.3, 2.6)
SUBPIXEL_FILL = (0.55, 0.9)
ROW_FILL = (0.65, 0.9)
DISPLAY_GAMMA = (1.9, 2.5)
DISPLAY_SATURATION = (0.85, 1.15)
FULL_WELL = (3000.0, 30000.0)
READ_NOISE = (0.0005, 0.003)
TONE_GAMMA = (2.0, 2.4)
TONE_S_CURVE = (0.0, 0.25)
JPEG_QUALITY = (75, 95)

SIZES = (64, 128)
PAD = 4  # sensor px around the patch, for demosaicing at the border
SUPERSAMPLE = 8  # fine samples per sensor px for the screen (stripes are ~0.5 px wide)
SUPERSAMPLE_SCENE = 2  # the bilinear-interpolated scene is smooth at sub-pixel scale
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _srgb_to_linear(levels: np.ndarray) -> np.ndarray:
    v = levels / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


_SRGB_TO_LINEAR = _srgb_to_linear(np.arange(256, dtype=np.float64)).astype(np.float32)


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


def draw_geometry(rng: np.random.Generator, size: int) -> Geometry:
    """Draws a camera pose and lens blur (same distribution for both classes)."""
    half = size / 2 + PAD
    return Geometry(
        magnification=_log_uniform(rng, MAGNIFICATION),
        rotation=math.radians(rng.uniform(*ROTATION_DEG)),
        aspect=float(rng.uniform(*ASPECT)),
        # Scaled by the canvas half-size, so the keystone is a fraction at the border.
        keystone=tuple(float(k) / half for k in rng.uniform(-KEYSTONE, KEYSTONE, 2)),
        translation=tuple(float(t) for t in rng.uniform(-TRANSLATION, TRANSLATION, 2)),
        lens_sigma=float(rng.uniform(*LENS_SIGMA)),
    )


def draw_display(rng: np.random.Generator) -> Display:
    """Draws a screen."""
    return Display(
        pitch=_log_uniform(rng, DISPLAY_PITCH),
        fill=float(rng.uniform(*SUBPIXEL_FILL)),
        row_fill=float(rng.uniform(*ROW_FILL)),
        bgr=bool(rng.integers(2)),
        phase=tuple(float(p) for p in rng.uniform(0.0, 1.0, 2)),
        gamma=float(rng.uniform(*DISPLAY_GAMMA)),
        saturation=float(rng.uniform(*DISPLAY_SATURATION)),
    )


def draw_camera(rng: np.random.Generator) -> Camera:
    """Draws the camera settings (same distribution for both classes)."""
    return Camera(
        cfa_phase=(int(rng.integers(2)), int(rng.integers(2))),
        full_well=_log_uniform(rng, FULL_WELL),
        read_noise=float(rng.uniform(*READ_NOISE)),
        tone_gamma=float(rng.uniform(*TONE_GAMMA)),
        s_curve=float(rng.uniform(*TONE_S_CURVE)),
        jpeg_quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)),
    )


def _kernel_halfwidth(supersample: int) -> int:
    return math.ceil(3.0 * LENS_SIGMA[1] * supersample)


def window_radius(size: int) -> int:
    """Half-side of the source window the simulator may read around a region centre.

    It bounds, over every parameter range, where the fine sample grid lands on the source,
    plus the bilinear footprint and one display pixel.

    Args:
        size: patch side in pixels.

    Returns:
        The radius in source pixels.
    """
    reach = size / 2 + PAD + _kernel_halfwidth(SUPERSAMPLE) / SUPERSAMPLE
    angle = math.radians(max(abs(a) for a in ROTATION_DEG))
    stretch = (math.cos(angle) + math.sin(angle)) * max(ASPECT[1], 1 / ASPECT[0])
    plane = reach * stretch / MAGNIFICATION[0] / (1.0 - 2.0 * KEYSTONE)
    display_pixel = DISPLAY_PITCH[1] / MAGNIFICATION[0]
    return math.ceil(plane + TRANSLATION + 1.0 + display_pixel)


def _fine_grid(canvas: int, supersample: int, geometry: Geometry):
    """Plane coordinates of the fine sample grid (padded for the blur kernel)."""
    halfwidth = _kernel_halfwidth(supersample)
    q = np.arange(canvas * supersample + 2 * halfwidth, dtype=np.float32)
    axis = (q - halfwidth + 0.5) / supersample - canvas / 2
    u, v = np.meshgrid(axis, axis)
    return geometry.map(u, v)


def _optics(field: np.ndarray, canvas: int, supersample: int, sigma: float) -> np.ndarray:
    """Lens blur and box pixel aperture, sampled on the sensor grid.

    Only the decimated outputs are computed: a strided correlation with the (box * Gaussian)
    kernel along each axis. The blur must act before the sampling, otherwise it would not
    attenuate what aliases.
    """
    halfwidth = _kernel_halfwidth(supersample)
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


def _check_inside(x: np.ndarray, y: np.ndarray, radius: int, margin: float) -> None:
    # The split rule depends on this: nothing outside the window may ever be read.
    reach = max(np.abs(x).max(), np.abs(y).max()) + margin
    if reach > radius:
        raise RuntimeError(f"simulator read {reach:.1f} px from the centre, window is {radius}")


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Samples an [H, W, C] image at centred plane coordinates, bilinearly."""
    radius = image.shape[0] / 2
    rows, cols = y + radius - 0.5, x + radius - 0.5
    channels = [
        ndimage.map_coordinates(image[..., c], [rows, cols], order=1, mode="nearest")
        for c in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def image_original(window: np.ndarray, size: int, geometry: Geometry) -> np.ndarray:
    """Linear-light sensor image of the scene itself, [size + 2 PAD]^2 x 3."""
    canvas = size + 2 * PAD
    x, y = _fine_grid(canvas, SUPERSAMPLE_SCENE, geometry)
    _check_inside(x, y, window.shape[0] // 2, 1.0)
    scene = _SRGB_TO_LINEAR[window]
    return _optics(_bilinear(scene, x, y), canvas, SUPERSAMPLE_SCENE, geometry.lens_sigma)


def _display_levels(window, display, geometry, x0, x1, y0, y1):
    """Linear light emitted by display pixels [y0, y1) x [x0, x1), before the mosaic."""
    pitch = display.pitch / geometry.magnification  # source px per display px
    cols = (np.arange(x0, x1) + 0.5 - display.phase[0]) * pitch
    rows = (np.arange(y0, y1) + 0.5 - display.phase[1]) * pitch
    x, y = np.meshgrid(cols, rows)
    _check_inside(x, y, window.shape[0] // 2, 1.0)
    code = _bilinear(window.astype(np.float32), x, y) / 255.0  # the display resamples
    light = np.clip(code, 0.0, 1.0) ** display.gamma
    grey = light @ _LUMA
    # Saturation about the grey axis: > 1 is a wide-gamut panel showing sRGB unmanaged.
    return grey[..., None] + display.saturation * (light - grey[..., None])


def image_recaptured(window: np.ndarray, size: int, geometry: Geometry, display: Display):
    """Linear-light sensor image of a screen showing the window, [size + 2 PAD]^2 x 3."""
    canvas = size + 2 * PAD
    x, y = _fine_grid(canvas, SUPERSAMPLE, geometry)
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
    levels = _display_levels(window, display, geometry, x0, x1, y0, y1).astype(np.float32)
    # One gather of the lit sub-pixel's value, scattered into its colour plane.
    flat = ((iy - y0) * (x1 - x0) + (ix - x0)) * 3 + column
    value = levels.ravel()[flat] * lit
    field = np.zeros(value.shape + (3,), np.float32)
    np.put_along_axis(field, column[..., None], value[..., None], axis=-1)
    return _optics(field, canvas, SUPERSAMPLE, geometry.lens_sigma)


def _demosaic(raw: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    """Bilinear demosaicing of a Bayer mosaic whose red site is at `phase` in each 2x2 cell."""
    rows, cols = np.indices(raw.shape)
    red = (rows % 2 == phase[0]) & (cols % 2 == phase[1])
    blue = (rows % 2 != phase[0]) & (cols % 2 != phase[1])
    green = ~(red | blue)
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    planes = [
        ndimage.convolve(raw * mask, kernel, mode="mirror")
        for mask, kernel in ((red, k_rb), (green, k_g), (blue, k_rb))
    ]
    return np.stack(planes, axis=-1)


def _mosaic(linear: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    rows, cols = np.indices(linear.shape[:2])
    red = (rows % 2 == phase[0]) & (cols % 2 == phase[1])
    blue = (rows % 2 != phase[0]) & (cols % 2 != phase[1])
    channel = np.where(red, 0, np.where(blue, 2, 1))
    return np.take_along_axis(linear, channel[..., None], axis=-1)[..., 0]


def _jpeg(image: np.ndarray, quality: int, subsampling: int = -1) -> np.ndarray:
    # subsampling: Pillow's code; -1, its default, is 4:2:0 (0 would be 4:4:4).
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def sense(linear: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """CFA sampling, Poisson-Gaussian noise on the raw mosaic, bilinear demosaicing.

    Args:
        linear: float32 [size + 2 PAD, size + 2 PAD, 3] linear light, about [0, 1].
        camera: the camera settings.
        rng: generator for the noise.

    Returns:
        float32 demosaiced linear RGB, same shape, clipped to [0, 1].
    """
    raw = np.clip(_mosaic(linear, camera.cfa_phase), 0.0, None)
    electrons = rng.poisson(raw * camera.full_well)
    raw = electrons / camera.full_well + rng.normal(0.0, camera.read_noise, raw.shape)
    return np.clip(_demosaic(raw.astype(np.float32), camera.cfa_phase), 0.0, 1.0)


def render(rgb: np.ndarray, camera: Camera) -> np.ndarray:
    """Tone curve, crop of the padding, JPEG: the uint8 [size, size, 3] patch."""
    tone = rgb ** (1.0 / camera.tone_gamma)
    tone = (1.0 - camera.s_curve) * tone + camera.s_curve * tone * tone * (3.0 - 2.0 * tone)
    patch = np.round(255.0 * tone[PAD:-PAD, PAD:-PAD]).astype(np.uint8)
    return _jpeg(patch, camera.jpeg_quality)


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


def simulate_pair(
    window: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Simulates an original capture and a recapture of the region at a window's centre.

    Args:
        window: uint8 [2 r, 2 r, 3] sRGB source pixels, r = `window_radius(size)`.
        size: patch side, one of `SIZES`.
        rng: the pair's generator; every parameter is drawn from it, in a fixed order.

    Returns:
        (original, recaptured), each uint8 [size, size, 3].

    Raises:
        ValueError: if the size or the window shape is wrong.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")
    radius = window_radius(size)
    if window.shape != (2 * radius, 2 * radius, 3):
        raise ValueError(f"window must be {2 * radius}x{2 * radius}x3, got {window.shape}")
    original = image_original(window, size, draw_geometry(rng, size))
    recaptured = image_recaptured(window, size, draw_geometry(rng, size), draw_display(rng))
    cameras = draw_camera(rng), draw_camera(rng)
    original = sense(original, cameras[0], rng)
    recaptured = match_levels(sense(recaptured, cameras[1], rng), original)
    return render(original, cameras[0]), render(recaptured, cameras[1])
