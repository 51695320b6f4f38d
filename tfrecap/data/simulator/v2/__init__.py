"""Recapture simulator v2: domain randomization at the scale the detector sees.

v1 simulated a patch at the detector's own scale; real photos arrive at 1-16 MP, resized, and
the detector sees them normalised to a reference resolution (long side 1024). v2 renders each
capture at sensor resolution, about d (1-4) times the reference, and brings it down through the
camera and post-processing chain a real photo goes through; every nuisance of that chain is
drawn from a wide range (Tobin et al. 2017), so a real photo looks like one more sample.

Modules, one job each: `params` (`SimulatorParamsV2`, `V2_PARAMS`), `draws` (per-capture
records), `scenes` (photo regions, dead leaves), `optics` (fine grid, lens, pixel aperture),
`display` (the screen), `isp` (sensor and phone ISP), `post` (JPEG, messaging app, resize),
`pair` (`simulate_pair`), `photo` (whole frames). See docs/simulator_v2.md.
"""

from tfrecap.data.simulator.v2.params import V2_PARAMS, SimulatorParamsV2

__all__ = ["V2_PARAMS", "SimulatorParamsV2"]
