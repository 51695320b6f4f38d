"""Simulator v2: determinism, identity, validation, shapes, physics sanity, parallel generation."""

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tfrecap.data import builder, generate, sources
from tfrecap.data.simulator import DEFAULT_PARAMS, V2_PARAMS, SimulatorParamsV2, simulate_pair
from tfrecap.data.simulator.v2 import pair as pair_v2
from tfrecap.data.simulator.v2 import scenes

# Cheap v2 parameters for tests: small sensor canvases, coarse dead leaves.
FAST = dataclasses.replace(V2_PARAMS, downscale=(1.0, 1.5), pitch=(1.5, 6.0),
                           dead_leaves_radius=(4.0, 40.0))


def _window(size=64, params=V2_PARAMS, index=0):
    radius = pair_v2.window_radius(size, params)
    return sources.window(sources.split_regions(size, radius, "train")[index], radius)


def _same(a, b):
    return len(a) == len(b) and all(
        x.label == y.label and x.region == y.region and np.array_equal(x.image, y.image)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("scene", ["photo", "dead_leaves"])
def test_pair_is_deterministic_for_a_seed_and_uint8(scene):
    window = _window(params=FAST) if scene == "photo" else None
    first = simulate_pair(window, 64, np.random.default_rng(5), FAST)
    again = simulate_pair(window, 64, np.random.default_rng(5), FAST)
    other = simulate_pair(window, 64, np.random.default_rng(6), FAST)
    for image in first:
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])


def test_v1_and_v2_identities_differ():
    assert V2_PARAMS.version == 2 and DEFAULT_PARAMS.version == 1
    assert V2_PARAMS.fingerprint() != DEFAULT_PARAMS.fingerprint()
    v1, v2 = builder.synthetic_config(64), builder.synthetic_config(64, params=V2_PARAMS)
    assert (v1.name, v2.name) == ("synthetic_64", "synthetic_v2_64")
    assert v1.identity() != v2.identity()
    assert v2.identity()["simulator_version"] == 2
    # Equal parameters hash equally; another value does not.
    assert SimulatorParamsV2().fingerprint() == V2_PARAMS.fingerprint()
    assert dataclasses.replace(V2_PARAMS, pitch=(0.5, 5.0)).fingerprint() != \
        V2_PARAMS.fingerprint()
    json.dumps(V2_PARAMS.to_dict())  # plain JSON for the identity record
    hash(V2_PARAMS)


@pytest.mark.parametrize(("field", "value"), [
    ("pitch", (6.0, 0.5)),
    ("downscale", (0.5, 2.0)),
    ("messaging_prob", 1.5),
    ("phone_jpeg_quality", (85, 101)),
    ("demosaics", ("bilinear", "magic")),
    ("resize_filters", ()),
    ("margin", 2.5),
    ("version", 1),
])
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(V2_PARAMS, **{field: value})


def test_wrong_window_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="window must be"):
        simulate_pair(np.zeros((10, 10, 3), np.uint8), 64, np.random.default_rng(0), FAST)


def _low_pass_luma(image):
    grey = image.astype(np.float64).mean(axis=-1)
    small = grey.reshape(8, 8, 8, 8).mean(axis=(1, 3))
    return (small - small.mean()).ravel()


def test_both_captures_of_a_pair_show_the_same_scene():
    # Coarse structure of the original and its recapture agree far better than across pairs.
    pairs = [simulate_pair(None, 64, np.random.default_rng(s), FAST) for s in range(6)]
    def corr(a, b):
        a, b = _low_pass_luma(a), _low_pass_luma(b)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
    same = np.mean([corr(o, r) for o, r in pairs])
    other = np.mean([abs(corr(pairs[i][0], pairs[(i + 1) % 6][1])) for i in range(6)])
    assert same > 0.5 and same > other + 0.3


def test_resolved_subpixels_show_the_display_period_in_the_spectrum():
    # p = 4 sensor px per display px, no downscale, an upright screen: the recapture's column
    # profile peaks at 64 / 4 = 16 cycles per patch; the original's does not.
    params = dataclasses.replace(
        FAST, downscale=(1.0, 1.0), pitch=(4.0, 4.0), screen_rotation_deg=(0.0, 0.0),
        rotation_deg=(0.0, 0.0), keystone=0.0, aspect=(1.0, 1.0), zoom=(1.0, 1.0),
        lens_sigma=(0.3, 0.3), diffuser_prob=0.0, messaging_prob=0.0, glare_prob=0.0,
        refresh_band_prob=0.0, denoise_prob=0.0, subpixel_fill=(0.6, 0.6))
    peaks = {0: [], 1: []}
    for seed in range(6):
        for label, image in enumerate(simulate_pair(None, 64, np.random.default_rng(seed),
                                                    params)):
            profile = image.astype(np.float64).mean(axis=(0, 2))
            power = np.abs(np.fft.rfft(profile - profile.mean())) ** 2
            peaks[label].append(power[16] / np.median(power[4:30]))
    assert min(peaks[1]) > 20 * max(1.0, np.median(peaks[0]))


def test_dead_leaves_radii_follow_the_inverse_cube_law():
    # Density ∝ r^-3: each octave [r, 2r) holds 4 times as many disks as the next one.
    radii = scenes.power_law_radii(np.random.default_rng(0), 200_000, (1.0, 64.0))
    assert radii.min() >= 1.0 and radii.max() <= 64.0
    counts = np.histogram(radii, bins=[1, 2, 4, 8, 16])[0]
    ratios = counts[:-1] / counts[1:]
    assert np.all(np.abs(ratios - 4.0) < 0.4), ratios


def test_dead_leaves_scene_is_rendered_at_the_given_density():
    scene = scenes.dead_leaves(np.random.default_rng(1), 20.0, 3.0, FAST)
    assert scene.density == 3.0 and scene.raster.shape[0] >= 120
    assert scene.raster.dtype == np.float32
    assert 0.0 <= scene.raster.min() <= scene.raster.max() <= 1.0
    # Not a flat field: many disks of many colours.
    assert len(np.unique(scene.raster.reshape(-1, 3)[:, 0].round(3))) > 20


def test_generation_mixes_dead_leaves_and_photo_regions_per_split():
    examples = generate.generate_split(64, 30, 2, "train", workers=1, params=FAST)
    originals, recaptures = examples[0::2], examples[1::2]
    assert all(o.region == r.region and o.label == 0 and r.label == 1
               for o, r in zip(originals, recaptures, strict=True))
    kinds = {o.source == generate.DEAD_LEAVES for o in originals}
    assert kinds == {True, False}
    dead = [o.region for o in originals if o.source == generate.DEAD_LEAVES]
    assert all(r.startswith("dead_leaves/train/") for r in dead)


def test_v2_generation_does_not_depend_on_the_worker_count():
    serial = generate.generate_split(64, 25, seed=1, split="train", workers=1, params=FAST)
    parallel = generate.generate_split(64, 25, seed=1, split="train", workers=2, params=FAST)
    assert len(serial) == 20 and _same(serial, parallel)


@pytest.mark.slow
def test_data_synth_builds_synthetic_v2_64(tmp_path):
    from tfrecap.cli.data import data
    from tfrecap.data import catalog

    args = ["synth", "--size", "64", "--count", "10", "--seed", "1", "--simulator", "v2",
            "--workers", "1", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(data, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "synthetic_v2_64: built" in result.output
    meta = catalog.read_metadata(tmp_path, "synthetic_v2_64")
    assert meta["identity"]["simulator_version"] == 2
    assert meta["identity"]["simulator_fingerprint"] == V2_PARAMS.fingerprint()
    assert sum(meta["examples"].values()) == 20
    assert catalog.list_datasets(tmp_path) == ["synthetic_v2_64"]
