"""Every range and constant of recapture simulator v2, in one frozen, hashable dataclass.

v2 is a separate class from v1's `SimulatorParams`, so that v1's fields, and with them its
fingerprint and pixels, stay exactly as they were. `V2_PARAMS` is the committed v2 simulator; a
variant is ``dataclasses.replace(V2_PARAMS, ...)``. Pure Python (no NumPy), so the TFDS builder
can name it without loading the physics. Its fingerprint (sha256 of the canonical JSON of every
field, the class name included) goes into the dataset identity, as v1's does.
"""

from __future__ import annotations

import dataclasses
import hashlib

from tfrecap import jsonio
from tfrecap.data.simulator.params import JPEG_SUBSAMPLING

Range = tuple[float, float]

# The display sub-pixel layouts v2 draws from (see `v2.display`).
LAYOUTS = ("rgb_stripe", "bgr_stripe", "pentile", "diamond")
# Pillow resampling filters the resize steps draw from; "box" is an area average.
RESIZE_FILTERS = ("bilinear", "bicubic", "lanczos", "box")
DEMOSAICS = ("bilinear", "malvar")

# Fields that are non-empty tuples of names, with the names each may hold.
_NAME_TUPLES = {"layouts": LAYOUTS, "demosaics": DEMOSAICS, "resize_filters": RESIZE_FILTERS}
# Fields that are probabilities, and fields that must be positive ranges.
_PROBABILITIES = ("dead_leaves_fraction", "dead_leaves_texture_prob", "dead_leaves_blur_prob",
                  "dead_leaves_weave_prob", "level_match_strength",
                  "content_upscale_prob", "content_jpeg_prob", "refresh_band_prob",
                  "glare_prob", "diffuser_prob",
                  "denoise_prob", "sharpen_prob", "messaging_prob", "messaging_444_prob")
_POSITIVE = ("downscale", "pitch", "content_scale", "dead_leaves_radius", "lens_sigma",
             "dead_leaves_weave_period",
             "full_well", "tone_gamma", "display_gamma", "brightness", "exposure")
_INT_FIELDS = frozenset({"version", "margin", "crop_jitter", "max_supersample",
                         "fine_budget", "subpixel_samples", "phone_jpeg_quality",
                         "messaging_jpeg_quality", "content_jpeg_quality",
                         "dead_leaves_max_disks", "photo_tile", "photo_pad", "burst_frames"})

# Fields added after v2 was first built, with the value that reproduces the first v2 exactly.
# A field at that value is left out of the fingerprint, so the committed v2 keeps its identity
# (c614e5082a86ba02) and its datasets are not rebuilt; set to anything else, it is hashed.
ADDED_FIELDS = {"dead_leaves_weave_prob": 0.0, "dead_leaves_weave_period": [1.5, 8.0],
                "layouts": list(LAYOUTS), "level_match_strength": 1.0,
                "burst_frames": [1, 1], "burst_shift": 1.0,
                "content_upscale_prob": 0.0, "content_upscale": [1.0, 2.0]}


@dataclasses.dataclass(frozen=True)
class SimulatorParamsV2:
    """The ranges every v2 draw comes from, and v2's fixed constants.

    A range ``(low, high)`` is drawn uniformly, or log-uniformly where marked (log). Lengths are
    in sensor px unless marked "ref px" (pixels of the reference-resolution photo the detector
    tiles, after the downscale by d). Both classes draw from the same ranges; the display
    fields are used by recaptures only.

    Attributes:
        version: 2; bumped with every change to the physics these fields do not describe.
        downscale: d, sensor px per reference px, per capture (log): phone sensor (~4000 px)
            to the reference long side 1024, with or without a messaging app's resize.
        margin: ref px rendered around the patch on each side (resize and demosaic borders,
            crop jitter).
        crop_jitter: the patch is cut at an offset drawn in [0, crop_jitter) ref px per axis
            from `margin - crop_jitter / 2`, so the last JPEG's 8x8 grid phase varies.
        rotation_deg: hand-held framing of the scene, both classes, degrees.
        screen_rotation_deg: rotation of the display's pixel grid on the sensor (the moiré
            orientation), recaptures; the content on screen is counter-rotated, so the scene
            itself appears at `rotation_deg` in both classes.
        keystone: tilt, per axis, drawn in [-keystone, keystone] (a fraction at the border).
        aspect: local lens distortion.
        zoom: per-capture scale jitter of the scene (log).
        lens_sigma: Gaussian lens blur and defocus, sensor px.
        content_scale: ref px per scene unit for the bundled photos (log); never below 1, so
            a photo is never shown finer than its own pixels.
        dead_leaves_fraction: probability that a pair's scene is dead leaves, not a photo.
        dead_leaves_radius: disk radii, ref px, drawn with density ∝ r^-3 in this range.
        dead_leaves_coverage: expected disk area over the scene area (the background shows
            through where no disk falls: about exp(-coverage)).
        dead_leaves_max_disks: cap on disks per scene (bounds the cost).
        dead_leaves_texture_prob: probability that a disk is textured (noise or stripes).
        dead_leaves_texture_amplitude: relative amplitude of a disk's texture.
        dead_leaves_stripe_period: period of striped disks, ref px (log).
        dead_leaves_weave_prob: probability that a textured disk is a 2-D weave (two crossed
            gratings with dark gaps between the threads, like fabric, mesh or a grille) instead
            of noise or stripes. 0 in the committed v2 (added later; see `ADDED_FIELDS`).
        dead_leaves_weave_period: thread period of woven disks, ref px (log).
        dead_leaves_blur_prob: probability that the scene is blurred (depth of field).
        dead_leaves_blur_sigma: that blur, ref px.
        layouts: the sub-pixel layouts the displays draw from, uniformly (names of
            `LAYOUTS`); a subset holds a display family out of a variant's data (added later;
            see `ADDED_FIELDS`).
        pitch: p, sensor px per display px (log): 0.5 (a 4K TV across the frame: aliased,
            moiré only) to 6 (a phone shot close: resolved sub-pixels).
        subpixel_fill: lit fraction of a sub-pixel's slot (width for stripes, size for OLED).
        row_fill: lit height of a display row (the black matrix between rows).
        display_gamma: the panel's transfer curve exponent.
        brightness: the panel's peak luminance relative to the scene's (log), before the
            pair's level matching.
        white_point: colour temperature: red and blue gains drawn in this range (green 1).
        display_saturation: narrow vs wide gamut, about the grey axis.
        content_upscale_prob: probability that the screen shows its content upscaled: an
            image of lower resolution than the panel (a 1080p video on a 4K TV, a 1,600-px
            messaging photo on a 2,400-px phone, a web image), resampled by the viewer. 0 in
            the committed v2 (added later; see `ADDED_FIELDS`).
        content_upscale: that upscale, display px per content px (log). The viewer's
            resampling is modelled as a Gaussian of sigma 0.5 * sqrt(u^2 - 1) display px (a
            pixel's blur taken as 0.5 px, added in quadrature), on the content's code values.
        content_jpeg_prob: probability that the screen shows a JPEG of the scene.
        content_jpeg_quality: its quality, inclusive.
        refresh_band_prob: probability of refresh bands (rolling shutter against PWM).
        refresh_band_amplitude: their relative amplitude.
        refresh_band_period: their period along sensor rows, sensor px (log).
        glare_prob: probability of glare (additive gradient and soft specular blob).
        glare_amplitude: glare level relative to the screen's mean light.
        diffuser_prob: probability of an anti-glare diffuser.
        diffuser_sigma: its blur of the emitted mosaic, in display px.
        level_match_strength: how much of the screen's tone reproduction the pair's level
            matching erases. 1 (the committed v2): per-channel quantile matching, so the
            recapture gets the original's levels in each channel and the display's gamma,
            brightness, white point and glare's lift shape only local structure (its gamut
            partly survives: saturation about the grey axis is not a per-channel level).
            0: only each channel's mean is matched (exposure and white balance), so the
            recapture keeps the screen's tone curve and contrast. Between: a blend of the two
            maps (added later; see `ADDED_FIELDS`).
        subpixel_samples: fine samples wanted across one stripe sub-pixel column; the
            supersampling is ceil(3 * subpixel_samples / p) per sensor px, at most
            `max_supersample` and at most `fine_budget` / canvas.
        max_supersample: cap on fine samples per sensor px.
        fine_budget: cap on fine samples per side of the sensor canvas (bounds the cost).
        exposure: exposure gain on the linear light, both classes (log).
        white_balance: residual white-balance gains on red and blue after the ISP.
        full_well: electrons at linear 1.0 (log): photon noise.
        read_noise: Gaussian read noise, of full scale.
        demosaics: the demosaicing algorithms drawn from (a tuple of names of `DEMOSAICS`).
        burst_frames: frames a capture merges, drawn per capture in this inclusive range. A
            phone camera takes a burst and merges it, aligned on the scene (HDR+, Hasinoff et
            al. 2016: 2 to 8 raw frames; hand-held multi-frame super-resolution, Wronski et al.
            2019, which names the hand's tremor between frames as what cancels aliasing). A
            screen's moiré is aliasing: the frames sample it at different sub-pixel phases,
            so aligned on the scene its copies no longer agree and the merge averages them
            down, while the scene, alike in every frame, stays. (1, 1): one frame, the
            committed v2 (added later; see `ADDED_FIELDS`).
        burst_shift: the hand's shift of each further frame against the first, drawn uniformly
            in [-burst_shift, burst_shift] sensor px per axis (at most 2); the merge realigns
            each frame by its own shift (known shifts, cubic spline). Unused with one frame.
        denoise_prob: probability that the ISP denoises.
        denoise_sigma: its Gaussian blur, sensor px, luma (chroma gets twice that).
        sharpen_prob: probability that the ISP sharpens (unsharp mask).
        sharpen_amount: its amount.
        sharpen_sigma: its radius, sensor px.
        tone_gamma: camera tone curve exponent.
        tone_s_curve: blend of the tone curve with a smoothstep.
        phone_jpeg_quality: the phone's JPEG quality, inclusive.
        messaging_prob: probability of a messaging app's resize + JPEG.
        messaging_share: the share of log d done by the messaging app's resize.
        messaging_jpeg_quality: its JPEG quality, inclusive.
        messaging_444_prob: probability that it keeps 4:4:4 chroma (else 4:2:0).
        resize_filters: the antialiased resampling filters drawn (names of `RESIZE_FILTERS`).
        screen_area: whole photos: the fraction of the frame a recaptured screen fills.
        photo_scene_density: whole photos: dead-leaves raster px per reference px (a cap that
            bounds memory; patches render theirs at sensor resolution).
        photo_tile: whole photos: reference px per side of a rendered tile.
        photo_pad: whole photos: sensor px rendered around each tile (ISP filters' reach).
    """

    version: int = 2
    downscale: Range = (1.0, 4.0)
    margin: int = 8
    crop_jitter: int = 8
    rotation_deg: Range = (-5.0, 5.0)
    screen_rotation_deg: Range = (-45.0, 45.0)
    keystone: float = 0.05
    aspect: Range = (0.97, 1.03)
    zoom: Range = (0.95, 1.05)
    lens_sigma: Range = (0.3, 1.4)
    content_scale: Range = (1.0, 1.5)
    dead_leaves_fraction: float = 0.5
    dead_leaves_radius: Range = (2.0, 80.0)
    dead_leaves_coverage: float = 2.5
    dead_leaves_max_disks: int = 1500
    dead_leaves_texture_prob: float = 0.3
    dead_leaves_texture_amplitude: Range = (0.05, 0.4)
    dead_leaves_stripe_period: Range = (2.0, 12.0)
    dead_leaves_weave_prob: float = 0.0
    dead_leaves_weave_period: Range = (1.5, 8.0)
    dead_leaves_blur_prob: float = 0.3
    dead_leaves_blur_sigma: Range = (0.3, 1.5)
    layouts: tuple[str, ...] = LAYOUTS
    pitch: Range = (0.5, 6.0)
    subpixel_fill: Range = (0.5, 0.95)
    row_fill: Range = (0.6, 0.95)
    display_gamma: Range = (1.8, 2.6)
    brightness: Range = (0.6, 1.6)
    white_point: Range = (0.85, 1.15)
    display_saturation: Range = (0.8, 1.25)
    content_upscale_prob: float = 0.0
    content_upscale: Range = (1.0, 2.0)
    content_jpeg_prob: float = 0.5
    content_jpeg_quality: tuple[int, int] = (70, 95)
    refresh_band_prob: float = 0.25
    refresh_band_amplitude: Range = (0.01, 0.08)
    refresh_band_period: Range = (30.0, 400.0)
    glare_prob: float = 0.3
    glare_amplitude: Range = (0.02, 0.25)
    diffuser_prob: float = 0.4
    diffuser_sigma: Range = (0.1, 0.45)
    level_match_strength: float = 1.0
    subpixel_samples: int = 2
    max_supersample: int = 8
    fine_budget: int = 768
    exposure: Range = (0.7, 1.4)
    white_balance: Range = (0.9, 1.1)
    full_well: Range = (1000.0, 30000.0)
    read_noise: Range = (0.0005, 0.004)
    demosaics: tuple[str, ...] = DEMOSAICS
    burst_frames: tuple[int, int] = (1, 1)
    burst_shift: float = 1.0
    denoise_prob: float = 0.6
    denoise_sigma: Range = (0.3, 1.2)
    sharpen_prob: float = 0.7
    sharpen_amount: Range = (0.2, 1.5)
    sharpen_sigma: Range = (0.5, 1.5)
    tone_gamma: Range = (1.9, 2.5)
    tone_s_curve: Range = (0.0, 0.35)
    phone_jpeg_quality: tuple[int, int] = (85, 97)
    messaging_prob: float = 0.5
    messaging_share: Range = (0.3, 1.0)
    messaging_jpeg_quality: tuple[int, int] = (60, 95)
    messaging_444_prob: float = 0.3
    resize_filters: tuple[str, ...] = RESIZE_FILTERS
    screen_area: Range = (0.3, 1.0)
    photo_scene_density: float = 1.0
    photo_tile: int = 64
    photo_pad: int = 12

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in _NAME_TUPLES:
                value = tuple(str(v) for v in value)
            elif isinstance(value, (list, tuple)):
                value = tuple(_number(field.name, v) for v in value)
                if len(value) != 2 or value[0] > value[1]:
                    raise ValueError(
                        f"simulator v2 parameter {field.name} must be a range (low, high) with "
                        f"low <= high, got {value!r}"
                    )
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number(field.name, value)
            object.__setattr__(self, field.name, value)
        self._validate()

    def _validate(self) -> None:
        if self.version != 2:
            raise ValueError(f"simulator v2 parameter version must be 2, got {self.version!r}")
        for name, known in _NAME_TUPLES.items():
            value = getattr(self, name)
            unknown = [v for v in value if v not in known]
            if not value or unknown or len(set(value)) != len(value):
                raise ValueError(f"simulator v2 parameter {name} must be a non-empty tuple of "
                                 f"distinct names from {', '.join(known)}, got {value!r}")
        for name in _PROBABILITIES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"simulator v2 parameter {name} must lie in [0, 1], got "
                                 f"{getattr(self, name)!r}")
        for name in _POSITIVE:
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"simulator v2 parameter {name} must be positive, got "
                                 f"{getattr(self, name)!r}")
        if self.downscale[0] < 1.0:
            raise ValueError(f"simulator v2 parameter downscale must be >= 1 (the reference "
                             f"rule never upsamples), got {self.downscale!r}")
        if self.content_upscale[0] < 1.0:
            raise ValueError(f"simulator v2 parameter content_upscale must be >= 1 (display px "
                             f"per content px), got {self.content_upscale!r}")
        if self.content_scale[0] < 1.0:
            raise ValueError(f"simulator v2 parameter content_scale must be >= 1 (a bundled "
                             f"photo is never upsampled), got {self.content_scale!r}")
        for name in ("phone_jpeg_quality", "messaging_jpeg_quality", "content_jpeg_quality"):
            if not 1 <= getattr(self, name)[0] <= getattr(self, name)[1] <= 100:
                raise ValueError(f"simulator v2 parameter {name} must lie in 1..100, got "
                                 f"{getattr(self, name)!r}")
        if not 0 <= self.keystone < 0.25:
            raise ValueError(f"simulator v2 parameter keystone must lie in [0, 0.25), got "
                             f"{self.keystone!r}")
        if not 0 <= self.crop_jitter <= self.margin:
            raise ValueError(f"simulator v2 parameter crop_jitter must lie in [0, margin="
                             f"{self.margin}], got {self.crop_jitter!r}")
        for name in ("subpixel_samples", "max_supersample", "dead_leaves_max_disks"):
            if getattr(self, name) < 1:
                raise ValueError(f"simulator v2 parameter {name} must be at least 1, got "
                                 f"{getattr(self, name)!r}")
        if self.fine_budget < 64:
            raise ValueError(f"simulator v2 parameter fine_budget must be at least 64, got "
                             f"{self.fine_budget!r}")
        if not 1 <= self.burst_frames[0] <= self.burst_frames[1] <= 16:
            raise ValueError(f"simulator v2 parameter burst_frames must be a range of frame "
                             f"counts in 1..16, got {self.burst_frames!r}")
        if not 0 <= self.burst_shift <= 2:
            # Up to 2 px, the realignment's replicated border stays inside a patch's margin
            # and a whole photo's tile pad.
            raise ValueError(f"simulator v2 parameter burst_shift must lie in [0, 2] sensor "
                             f"px, got {self.burst_shift!r}")
        if self.dead_leaves_coverage <= 0:
            raise ValueError(f"simulator v2 parameter dead_leaves_coverage must be positive, "
                             f"got {self.dead_leaves_coverage!r}")
        if not (0.0 <= self.messaging_share[0] and self.messaging_share[1] <= 1.0):
            raise ValueError(f"simulator v2 parameter messaging_share must lie in [0, 1], got "
                             f"{self.messaging_share!r}")

    def to_dict(self) -> dict:
        """The fields as plain JSON values (ranges as lists), for identity records."""
        return jsonio.to_jsonable(dataclasses.asdict(self))

    def fingerprint(self) -> str:
        """A short, stable hash of every field: sha256 of their canonical JSON, 16 hex digits.

        The class name is hashed too, so no v2 set can share an identity with a v1 set. A field
        of `ADDED_FIELDS` is hashed only when it differs from the value there, and the weave
        period only when weaves are drawn at all, the burst's shift only when a capture can
        merge more than one frame, the content's upscale only when it is drawn at all (none
        changes a pixel otherwise).
        """
        fields = self.to_dict()
        if fields["dead_leaves_weave_prob"] == 0.0:
            fields.pop("dead_leaves_weave_period")
        if fields["burst_frames"] == [1, 1]:
            fields.pop("burst_shift")
        if fields["content_upscale_prob"] == 0.0:
            fields.pop("content_upscale")
        for name, first in ADDED_FIELDS.items():
            if name in fields and fields[name] == first:
                fields.pop(name)
        record = {"class": type(self).__name__, "fields": fields}
        text = jsonio.dumps(record, indent=None, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _number(name: str, value) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"simulator v2 parameter {name} must be a number, got {value!r}")
    if name not in _INT_FIELDS:
        return float(value)
    if value != int(value):
        raise ValueError(f"simulator v2 parameter {name} must be an integer, got {value!r}")
    return int(value)


V2_PARAMS = SimulatorParamsV2()

__all__ = ["ADDED_FIELDS", "JPEG_SUBSAMPLING", "LAYOUTS", "RESIZE_FILTERS", "DEMOSAICS",
           "SimulatorParamsV2", "V2_PARAMS"]
