"""The exported verdict is calibrated on synthetic validation photos (training/calibration.py)."""

import json

import numpy as np
import pytest

from tfrecap import config as cfg
from tfrecap.data.tiling import normalize_scale, tile_positions
from tfrecap.training.calibration import calibrate, tile_probabilities
from tfrecap.training.loop import TrainingError, _calibration_params


def _brightness_probabilities(tiles):
    # A "detector" whose recaptured probability is the tile's mean level / 255.
    return tiles.mean(axis=(1, 2, 3)) / 255.0


def test_tile_probabilities_judge_the_served_tiles():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (1500, 1100, 3), dtype=np.uint8)
    got = tile_probabilities(_brightness_probabilities, photo, 64)
    scaled = normalize_scale(photo)
    positions = tile_positions(*scaled.shape[:2], 64)
    want = [scaled[r:r + 64, c:c + 64].mean() / 255 for r, c in positions]
    assert scaled.shape[:2] == (1024, 751)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_calibrate_picks_top_k_for_screens_that_fill_part_of_the_frame():
    # Originals are mid-grey everywhere; each "recapture" is dark with one bright quarter (a
    # small screen). Its mean stays below every original's, so only top_k (the brightest
    # quarter of the tiles) ranks the recaptures first, with a threshold between the groups.
    photos = []
    for i in range(6):
        photos.append((np.full((256, 256, 3), 100 + 8 * i, np.uint8), 0))
        screen = np.full((256, 256, 3), 40 + i, np.uint8)
        screen[:128, :128] = 230
        photos.append((screen, 1))
    verdict, table = calibrate(_brightness_probabilities, photos, 64)
    assert verdict.aggregation == "top_k"
    assert 140 / 255 < verdict.threshold < 230 / 255
    aucs = {row["aggregation"]: row["auc"] for row in table}
    assert aucs["top_k"] == 1.0 and aucs["mean_probability"] == 0.0
    assert {row["aggregation"] for row in table} >= {"mean_probability", "top_k"}


def test_calibrate_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        calibrate(_brightness_probabilities, [(np.zeros((64, 64, 3), np.uint8), 0)], 64)


def test_calibration_on_data_without_photos_is_refused_before_training():
    config = cfg.override(cfg.PipelineConfig(), **{"verdict.calibration_photos": 4})
    with pytest.raises(TrainingError, match="synthetic v2"):
        _calibration_params(config, {"kind": "synthetic", "simulator_version": 1})
    assert _calibration_params(cfg.PipelineConfig(), {"kind": "folder"}) is None


def test_a_variant_calibrates_with_the_parameters_its_metadata_records():
    from tfrecap.data.simulator import V2_PARAMS
    from tfrecap.data.simulator.overrides import with_overrides

    config = cfg.override(cfg.PipelineConfig(), **{"verdict.calibration_photos": 4})
    variant = with_overrides(V2_PARAMS, {"glare_prob": "0"})
    identity = {"kind": "synthetic", "simulator_version": 2,
                "simulator_fingerprint": variant.fingerprint()}
    assert _calibration_params(config, identity, variant.to_dict()) == variant
    assert _calibration_params(config, {**identity, "simulator_fingerprint":
                                        V2_PARAMS.fingerprint()}) is V2_PARAMS
    # Recorded parameters that do not hash to the dataset's identity are not trusted.
    with pytest.raises(TrainingError, match="cannot be remade"):
        _calibration_params(config, identity, V2_PARAMS.to_dict())
    with pytest.raises(TrainingError, match="cannot be remade"):
        _calibration_params(config, identity)


def test_bad_verdict_settings_are_config_errors():
    with pytest.raises(cfg.ConfigError, match="calibration_photos"):
        cfg.override(cfg.PipelineConfig(), **{"verdict.calibration_photos": -1})
    with pytest.raises(cfg.ConfigError, match="photo_height"):
        cfg.override(cfg.PipelineConfig(), **{"verdict.photo_height": 32})


@pytest.mark.slow
def test_train_exports_the_calibrated_verdict(tmp_path):
    # Tiny v2 data, 4 steps, 2 photos per class at 128x128: the verdict the run chose is the
    # one the export stores and classify_images applies.
    from tfrecap.data import builder, catalog
    from tfrecap.data.simulator import V2_PARAMS
    from tfrecap.export import latest_version_dir, load_verdict
    from tfrecap.training import train

    data_dir = tmp_path / "data"
    catalog.build_dataset(builder.synthetic_config(64, 10, 0, V2_PARAMS), data_dir, workers=1)
    config = cfg.override(cfg.PipelineConfig(), **{
        "data.dataset": "synthetic_v2_64", "model.widths": (4, 4, 4, 4, 4),
        "train.steps": 4, "train.batch_size": 4, "train.checkpoint_every": 4,
        "verdict.calibration_photos": 2, "verdict.photo_height": 128,
        "verdict.photo_width": 128,
    })
    result = train(config, data_dir=data_dir, run_dir=tmp_path / "run",
                   export_dir=tmp_path / "export", verbose=0)
    record = json.loads((tmp_path / "run" / "calibration.json").read_text())
    stored = load_verdict(latest_version_dir(result.export_path.parent))
    assert stored.to_dict() == record["verdict"]
