"""Every parameter of the recapture simulator, in one frozen, versioned, hashable dataclass.

A synthetic dataset is defined by the simulator that made it as much as by its seed and count,
so `SimulatorParams.fingerprint()` goes into the dataset identity: data made with other
parameters is rebuilt, never reused. `DEFAULT_PARAMS` is the committed simulator; a variant is
``dataclasses.replace(DEFAULT_PARAMS, ...)``. Pure Python (no NumPy), so the TFDS builder can
name it without loading the physics.
"""

from __future__ import annotations

import dataclasses
import hashlib

from tfrecap import jsonio

Range = tuple[float, float]

# Pillow's chroma subsampling codes: phones mostly write 4:2:0, high-quality cameras 4:4:4.
JPEG_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


@dataclasses.dataclass(frozen=True)
class SimulatorParams:
    """The ranges every per-pair draw comes from, and the simulator's fixed constants.

    A range ``(low, high)`` is drawn uniformly, or log-uniformly where marked (log). Lengths are
    in sensor pixels unless marked. Fields marked *effect* are off (None) in the committed
    simulator; `scripts/experiments/simulator_variants.py` turns them on. Each effect draws from a
    generator seeded by the data it changes, not from the pair's generator, so turning one on
    leaves every other draw of the pair as it was.

    Attributes:
        version: bumped with every change to the physics that these fields do not describe.
        magnification: source px -> sensor px, both classes (log); never below 1, so a
            region's window stays small.
        rotation_deg: hand-held framing, both classes, degrees.
        keystone: off-axis view, per axis, drawn in [-keystone, keystone] (a fraction at the
            canvas border).
        aspect: local lens distortion, both classes.
        translation: sub-pixel crop offset, per axis, in [-translation, translation] source px.
        lens_sigma: Gaussian lens blur, both classes: sharp phone lens to mild defocus.
        display_pitch: display pixel imaged on this many sensor px (log); at 1.3-2.6 the
            stripe mosaic aliases at pixel scale.
        subpixel_fill: lit width of each R/G/B column of the stripe mosaic.
        row_fill: lit height of a display row (black matrix between rows).
        display_gamma: around sRGB's 2.2, both ways.
        display_saturation: narrow vs wide gamut, both ways.
        full_well: electrons at linear 1.0, both classes (log): photon noise.
        read_noise: Gaussian read noise, of full scale, both classes.
        tone_gamma: camera tone curve, both classes.
        tone_s_curve: blend of the tone curve with a smoothstep, both classes.
        jpeg_quality: Pillow JPEG quality, both classes, inclusive integer range.
        jpeg_subsampling: JPEG chroma subsampling, a key of `JPEG_SUBSAMPLING`.
        pad: sensor px simulated around the patch, for demosaicing at the border.
        supersample: fine samples per sensor px for the screen (stripes are ~0.5 px wide).
        supersample_scene: fine samples per sensor px for the bilinearly interpolated scene,
            which is smooth at sub-pixel scale.
        diffuser_sigma: *effect*, the screen's anti-glare layer: Gaussian blur of the emitted
            sub-pixel mosaic before the lens, recaptures only.
        moire_period: *effect*, a multiplicative cosine pattern on the recaptures' light, any
            orientation, with this period.
        moire_amplitude: its amplitude (used only with `moire_period`).
        grain_sigma: *effect*, Gaussian noise in levels added just before JPEG, both classes
            (what an ISP's denoise and sharpen leave).
        scene_texture_sigma: *effect*, fine grey texture in the scene itself, in levels per
            source pixel, the same for both captures of a pair.
    """

    version: int = 1
    magnification: Range = (1.0, 1.25)
    rotation_deg: Range = (-4.0, 4.0)
    keystone: float = 0.02
    aspect: Range = (0.98, 1.02)
    translation: float = 0.5
    lens_sigma: Range = (0.25, 0.55)
    display_pitch: Range = (1.3, 2.6)
    subpixel_fill: Range = (0.55, 0.9)
    row_fill: Range = (0.65, 0.9)
    display_gamma: Range = (1.9, 2.5)
    display_saturation: Range = (0.85, 1.15)
    full_well: Range = (3000.0, 30000.0)
    read_noise: Range = (0.0005, 0.003)
    tone_gamma: Range = (2.0, 2.4)
    tone_s_curve: Range = (0.0, 0.25)
    jpeg_quality: tuple[int, int] = (75, 95)
    jpeg_subsampling: str = "4:2:0"
    pad: int = 4
    supersample: int = 8
    supersample_scene: int = 2
    diffuser_sigma: Range | None = None
    moire_period: Range | None = None
    moire_amplitude: Range = (0.1, 0.25)
    grain_sigma: Range | None = None
    scene_texture_sigma: Range | None = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            # Canonical types, so that equal parameters hash equally: (3000, 30000) and
            # (3000.0, 30000.0), or a list read back from JSON, are the same range.
            if isinstance(value, (list, tuple)):
                value = tuple(_number(field.name, v) for v in value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = _number(field.name, value)
            object.__setattr__(self, field.name, value)
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(
                    f"simulator parameter {field.name} must be a range (low, high) with "
                    f"low <= high, got {value!r}"
                )
        if self.jpeg_subsampling not in JPEG_SUBSAMPLING:
            raise ValueError(
                f"simulator parameter jpeg_subsampling must be one of "
                f"{', '.join(JPEG_SUBSAMPLING)}, got {self.jpeg_subsampling!r}"
            )
        positive = ("magnification", "display_pitch", "full_well", "lens_sigma")
        for name in positive:
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"simulator parameter {name} must be positive, got "
                                 f"{getattr(self, name)!r}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"simulator parameter jpeg_quality must lie in 1..100, got "
                             f"{self.jpeg_quality!r}")
        if self.pad < 1 or self.supersample < 1 or self.supersample_scene < 1:
            raise ValueError("simulator parameters pad, supersample and supersample_scene must "
                             "be at least 1")
        if not 0 <= self.keystone < 0.5:
            raise ValueError(f"simulator parameter keystone must lie in [0, 0.5), got "
                             f"{self.keystone!r}")

    def to_dict(self) -> dict:
        """The fields as plain JSON values (ranges as lists), for identity records."""
        return jsonio.to_jsonable(dataclasses.asdict(self))

    def fingerprint(self) -> str:
        """A short, stable hash of every field: sha256 of their canonical JSON, 16 hex digits.

        Equal parameters give equal fingerprints in any process and on any machine; the
        version is one of the fields, so a physics change that bumps it changes the hash too.
        """
        text = jsonio.dumps(self.to_dict(), indent=None, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_INT_FIELDS = frozenset({"version", "jpeg_quality", "pad", "supersample", "supersample_scene"})


def _number(name: str, value) -> int | float:
    if name not in _INT_FIELDS:
        return float(value)
    if value != int(value):
        raise ValueError(f"simulator parameter {name} must be an integer, got {value!r}")
    return int(value)

DEFAULT_PARAMS = SimulatorParams()
