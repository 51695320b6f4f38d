"""Offline recapture simulator: a photo, and a photo of a screen showing it (NumPy/SciPy only).

`params` holds every range and constant (`SimulatorParams`, `DEFAULT_PARAMS`); the physics is
one step per module: `draws` (per-pair random settings), `optics` (pose, lens, pixel aperture),
`screen` (the display mosaic), `camera` (CFA, noise, tone, JPEG), `effects` (optional
nuisances, off by default) and `pair` (`simulate_pair`, which chains them). The physics modules
load on first use, so that naming the parameters (the TFDS builder does) does not load SciPy.

Simulator v2 (`v2`: `SimulatorParamsV2`, `V2_PARAMS`) renders at sensor resolution with domain
randomization; `simulate_pair` and `window_radius` dispatch on the parameters' version, and
`PARAMS_BY_VERSION` names the committed set of each version.
"""

from __future__ import annotations

import importlib

from tfrecap.data.simulator.params import DEFAULT_PARAMS, JPEG_SUBSAMPLING, SimulatorParams
from tfrecap.data.simulator.v2.params import V2_PARAMS, SimulatorParamsV2

# The committed parameters of each simulator version ("v1", "v2"): what `data synth
# --simulator` offers.
PARAMS_BY_VERSION = {"v1": DEFAULT_PARAMS, "v2": V2_PARAMS}
ALL_PARAMS = (SimulatorParams, SimulatorParamsV2)

_EXPORTS = {
    "Camera": "draws",
    "Display": "draws",
    "Geometry": "draws",
    "draw_camera": "draws",
    "draw_display": "draws",
    "draw_geometry": "draws",
    "check_inside": "optics",
    "image_original": "optics",
    "image_recaptured": "screen",
    "match_levels": "camera",
    "render": "camera",
    "sense": "camera",
    "SIZES": "pair",
    "simulate_pair": "pair",
}

__all__ = ["ALL_PARAMS", "DEFAULT_PARAMS", "JPEG_SUBSAMPLING", "PARAMS_BY_VERSION",
           "SimulatorParams", "SimulatorParamsV2", "V2_PARAMS", "window_radius", *_EXPORTS]


def window_radius(size: int, params=DEFAULT_PARAMS) -> int:
    """Half-side of the source window a pair reads around a region centre, either version."""
    if isinstance(params, SimulatorParamsV2):
        from tfrecap.data.simulator.v2.pair import window_radius as radius_v2

        return radius_v2(size, params)
    from tfrecap.data.simulator.optics import window_radius as radius_v1

    return radius_v1(size, params)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
