"""Offline recapture simulator: a photo, and a photo of a screen showing it (NumPy/SciPy only).

`params` holds every range and constant (`SimulatorParams`, `DEFAULT_PARAMS`); the physics is
one step per module: `draws` (per-pair random settings), `optics` (pose, lens, pixel aperture),
`screen` (the display mosaic), `camera` (CFA, noise, tone, JPEG), `effects` (optional
nuisances, off by default) and `pair` (`simulate_pair`, which chains them). The physics modules
load on first use, so that naming the parameters (the TFDS builder does) does not load SciPy.
"""

from __future__ import annotations

import importlib

from tfrecap.data.simulator.params import DEFAULT_PARAMS, JPEG_SUBSAMPLING, SimulatorParams

_EXPORTS = {
    "Camera": "draws",
    "Display": "draws",
    "Geometry": "draws",
    "draw_camera": "draws",
    "draw_display": "draws",
    "draw_geometry": "draws",
    "check_inside": "optics",
    "image_original": "optics",
    "window_radius": "optics",
    "image_recaptured": "screen",
    "match_levels": "camera",
    "render": "camera",
    "sense": "camera",
    "SIZES": "pair",
    "simulate_pair": "pair",
}

__all__ = ["DEFAULT_PARAMS", "JPEG_SUBSAMPLING", "SimulatorParams", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
