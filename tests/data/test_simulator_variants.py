"""scripts/simulator_variants.py: each variant changes what it says, deterministically, and the
simulator is restored afterwards (numpy only, no training)."""

import numpy as np
import pytest
from scipy import ndimage

from tests.script_loader import load_script
from tfrecap.data import simulator, sources

variants = load_script("simulator_variants")
_hf = variants.mean_abs_laplacian  # the script's own measure of a patch's HF energy


def _simulate(count):
    # The radius inside: far_screen changes the window a pair needs.
    radius = simulator.window_radius(64)
    regions = sources.split_regions(64, radius, "train")[:count]
    return [simulator.simulate_pair(sources.window(region, radius), 64, np.random.default_rng(i))
            for i, region in enumerate(regions)]


def _pairs(variant, count=6):
    with variants.patched_simulator(variant):
        return _simulate(count)


def _same(first, second):
    return all(np.array_equal(a, b) for pa, pb in zip(first, second, strict=True)
               for a, b in zip(pa, pb, strict=True))


def test_control_is_the_committed_simulator_and_patches_are_undone():
    committed = _simulate(6)  # no patch at all
    assert _same(_pairs("none"), committed)
    for variant in variants.VARIANTS:
        _pairs(variant, 1)  # patches and restores
    assert simulator.FULL_WELL == (3000.0, 30000.0)
    assert simulator.DISPLAY_PITCH == (1.3, 2.6)
    assert _same(_simulate(6), committed)


def test_diffuser_weakens_only_the_recaptures_high_frequencies():
    control, diffused = _pairs("none"), _pairs("diffuser")
    for pair_control, pair_diffused in zip(control, diffused, strict=True):
        assert np.array_equal(pair_control[0], pair_diffused[0])  # the scene path is untouched
    assert np.mean([_hf(p[1]) for p in diffused]) < 0.8 * np.mean([_hf(p[1]) for p in control])


def test_far_screen_weakens_the_recaptures_high_frequencies():
    # Its smaller window changes the regions (and so the originals): compare each class's mean.
    control, far = _pairs("none", 12), _pairs("far_screen", 12)
    assert np.mean([_hf(p[1]) for p in far]) < 0.8 * np.mean([_hf(p[1]) for p in control])
    assert np.mean([_hf(p[0]) for p in far]) > 0.7 * np.mean([_hf(p[0]) for p in control])


@pytest.mark.parametrize("variant", ["sensor_noise", "grain", "scene_texture"])
def test_noise_variants_raise_the_originals_high_frequencies(variant):
    control, noisy = _pairs("none"), _pairs(variant)
    assert np.mean([_hf(p[0]) for p in noisy]) > 1.1 * np.mean([_hf(p[0]) for p in control])


def test_scene_texture_with_diffuser_levels_the_fine_detail():
    """The point of scene_texture_diffuser: originals carry about the recaptures' fine detail
    (on the committed simulator recaptures have about 3x the originals')."""
    pairs = _pairs("scene_texture_diffuser", 12)
    original = np.median([_hf(o) for o, _ in pairs])
    recaptured = np.median([_hf(r) for _, r in pairs])
    assert 0.7 < recaptured / original < 1.3


def test_jpeg_444_keeps_the_colour_detail_that_4_2_0_removes():
    def colour_detail(image):  # mean |Laplacian| of each channel's difference from grey
        x = image.astype(np.float32)
        colour = x - x.mean(axis=-1, keepdims=True)
        return np.mean([np.abs(ndimage.laplace(colour[..., c])).mean() for c in range(3)])

    control, full_chroma = _pairs("none"), _pairs("jpeg_444")
    for index in (0, 1):  # originals (sensor noise) and recaptures (mosaic)
        assert (np.median([colour_detail(p[index]) for p in full_chroma])
                > 1.5 * np.median([colour_detail(p[index]) for p in control]))


@pytest.mark.parametrize("variant", ["grain", "diffuser_moire", "scene_texture"])
def test_variants_are_deterministic(variant):
    first, second = _pairs(variant, 2), _pairs(variant, 2)
    assert _same(first, second)


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="unknown variant"):
        with variants.patched_simulator("fog"):
            pass


def test_readme_table_is_the_recorded_runs(capsys):
    """The README's variant table is what the recorded JSON says, cell for cell."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    variants.main(["--summary", str(root / "docs" / "simulator_variants.json")])
    table = capsys.readouterr().out.strip()
    assert table.count("\n") == 1 + len(variants.VARIANTS)  # every variant was run
    assert table in (root / "README.md").read_text()
    # The merge takes each variant's first baseline and secure model: the diffuser's secure
    # model comes from the --secure run, its baseline from the first run.
    record = json.loads((root / "docs" / "simulator_variants.json").read_text())
    secure_clean = next(row["demo"]["clean"] for run in record["runs"]
                        for row in run["result"]["rows"]
                        if row["variant"] == "diffuser" and "demo" in row)
    assert f"| {secure_clean:.1%} |" in next(line for line in table.splitlines()
                                             if line.startswith("| `diffuser` |"))
