"""scripts/experiments/spectral_probe.py: a fine grid scores above noise and smooth content,
and the summary's AUCs and halves are those of hand-made scores."""

import numpy as np
import pytest
from PIL import Image

from tests.script_loader import load_script

probe = load_script("experiments/spectral_probe")


def _tile(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=-1)


def test_a_fine_grid_scores_above_noise_and_smooth_content():
    size = 128
    y, x = np.mgrid[:size, :size]
    rng = np.random.default_rng(0)
    noise = 128 + 20 * rng.standard_normal((size, size))
    smooth = 255.0 * x / size + 30 * np.sin(y / 9.0)
    # A pixel grid with a period of 3 px (0.33 cycles/px, above the probe's band edge).
    grid = smooth + 20 * ((x % 3 == 0) | (y % 3 == 0))
    scores = probe.periodicity_scores(np.stack([_tile(noise), _tile(smooth), _tile(grid)]))
    assert scores[2] > scores[0] + 1.0 and scores[2] > scores[1] + 1.0
    # A smooth tile's high band is all but empty: floored, it is not "peaked".
    assert scores[1] < scores[0] < 2.0
    assert np.isfinite(probe.periodicity_scores(np.full((1, 64, 64, 3), 7.0))).all()


def test_the_fine_detail_ratio_orders_smooth_blurred_noise_and_grid():
    from scipy.ndimage import gaussian_filter

    size = 64
    y, x = np.mgrid[:size, :size]
    rng = np.random.default_rng(0)
    smooth = 128 + 60 * np.sin(y / 9.0) + 40 * np.cos(x / 7.0)
    noise = 128 + 20 * rng.standard_normal((size, size))
    grid = smooth + 20 * ((x % 3 == 0) | (y % 3 == 0))
    ratios = probe.fine_detail_ratios(np.stack(
        [_tile(smooth), _tile(gaussian_filter(noise, 1.5)), _tile(noise), _tile(grid)]))
    # A smooth tile: the Laplacian is 4x larger at twice the pixel spacing.
    assert ratios[0] == pytest.approx(0.25, abs=0.02)
    # White noise: the box downscale halves its amplitude, so about 2.
    assert ratios[2] == pytest.approx(2.0, abs=0.2)
    assert ratios[0] < ratios[1] < ratios[2] < ratios[3]
    # Independent of contrast and level; a flat tile is 0, not a division by zero.
    assert probe.fine_detail_ratios(_tile(3 * noise - 100)[None])[0] == pytest.approx(ratios[2])
    assert probe.fine_detail_ratios(np.full((1, 16, 16, 3), 9.0))[0] == 0.0
    with pytest.raises(ValueError, match="tiles"):
        probe.fine_detail_ratios(np.zeros((1, 4, 4, 3)))


def test_softness_is_measured_on_the_detectors_tiles_under_the_rule():
    rng = np.random.default_rng(2)
    photo = (128 + 20 * rng.standard_normal((300, 200, 3))).clip(0, 255).astype(np.uint8)
    native = probe.softness_of_photo("native")(photo)
    # Under reference-128 the photo is downscaled (antialiased): smoother, so softer.
    assert probe.softness_of_photo("reference-128")(photo) > native
    # A photo already under the reference side is not rescaled.
    assert probe.softness_of_photo("reference-1024")(photo) == native
    with pytest.raises(ValueError, match="scale rule"):
        probe.softness_of_photo("1024")


@pytest.mark.parametrize(("shape", "low"), [((2, 64, 32, 3), 0.2), ((2, 64, 64, 3), 0.6)])
def test_bad_tiles_or_band_are_clear_errors(shape, low):
    with pytest.raises(ValueError, match="tiles|low"):
        probe.periodicity_scores(np.zeros(shape), low)


def test_summary_splits_the_screens_at_their_median_probe_score():
    rows = ([{"label": 0, "probe": p, "detector": d} for p, d in [(1, 0.0), (2, 0.2), (3, 0.4)]]
            + [{"label": 1, "probe": p, "detector": d}
               for p, d in [(4, 1.0), (5, 2.0), (0.5, 0.1), (1.5, 0.3)]])
    out = probe.summarise(rows)
    assert out["photos"] == {"originals": 3, "recaptured": 4}
    # Probe: screens 4, 5 beat every original; 0.5 beats none; 1.5 beats one of three.
    assert out["probe_auc"] == pytest.approx((3 + 3 + 0 + 1) / 12)
    assert out["split_at_probe"] == pytest.approx(2.75)
    assert out["screens_periodic"] == {"screens": 2, "detector_auc": 1.0}
    # Detector on the other half: 0.1 beats 0.0 only; 0.3 beats 0.0 and 0.2.
    assert out["screens_not_periodic"]["detector_auc"] == pytest.approx((1 + 2) / 6)


def test_a_score_at_the_median_goes_to_the_periodic_half():
    rows = ([{"label": 0, "probe": 1.0, "detector": 0.0}]
            + [{"label": 1, "probe": p, "detector": p} for p in (2.0, 3.0, 3.0)])
    out = probe.summarise(rows)
    assert out["split_at_probe"] == 3.0
    assert out["screens_periodic"]["screens"] == 2
    assert out["screens_not_periodic"]["screens"] == 1


@pytest.mark.parametrize("labels", [(0, 0), (1, 1)])
def test_one_class_alone_is_a_clear_error(labels):
    rows = [{"label": y, "probe": 1.0 + k, "detector": 0.0} for k, y in enumerate(labels)]
    with pytest.raises(ValueError, match="both classes"):
        probe.summarise(rows)


def test_folders_are_scored_and_a_bad_file_is_skipped(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("originals", "screens"):
        (tmp_path / name).mkdir()
    y, x = np.mgrid[:160, :160]
    for k in range(2):
        noise = (128 + 20 * rng.standard_normal((160, 160, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(noise).save(tmp_path / "originals" / f"{k}.png")
        grid = np.repeat((100 + 60 * ((x % 3 == 0) | (y % 3 == 0)))[..., None], 3, -1)
        Image.fromarray(grid.astype(np.uint8)).save(tmp_path / "screens" / f"{k}.png")
    (tmp_path / "screens" / "broken.jpg").write_bytes(b"not a photo")
    rows, skipped = probe.score_photos({0: tmp_path / "originals", 1: tmp_path / "screens"},
                                       128, 0.2, None)
    assert [r["label"] for r in rows] == [0, 0, 1, 1]
    assert [s["file"] for s in skipped] == ["broken.jpg"]
    assert probe.summarise(rows)["probe_auc"] == 1.0


def test_test_patches_are_scored_with_the_exports_margin(synthetic_dir, exported):
    import tensorflow as tf

    from tfrecap.export import latest_version_dir

    rows = probe.score_patches(str(synthetic_dir), "synthetic_64", 12, 0.2, exported)
    # The detector's score is the recapture logit margin of the export's `logits` endpoint.
    from tfrecap.data.pipeline import make_dataset

    images, labels = next(iter(make_dataset(str(synthetic_dir), "synthetic_64", "test", 256,
                                            training=False)))
    assert [r["label"] for r in rows] == labels[:12].numpy().tolist()
    logits = tf.saved_model.load(str(latest_version_dir(exported))).signatures["logits"](
        images=tf.cast(images[:12], tf.float32))["logits"].numpy()
    assert np.allclose([r["detector"] for r in rows], logits[:, 1] - logits[:, 0], atol=1e-5)
    assert np.allclose([r["probe"] for r in rows],
                       probe.periodicity_scores(images[:12].numpy()))


def test_softness_replaces_the_detector_in_the_summary(tmp_path):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    for name in ("originals", "screens"):
        (tmp_path / name).mkdir()
    for k in range(3):
        sharp = 128 + 25 * rng.standard_normal((160, 160))
        soft = gaussian_filter(128 + 25 * rng.standard_normal((160, 160)), 2.0)
        for name, image in (("originals", sharp), ("screens", soft)):
            Image.fromarray(_tile(image).clip(0, 255).astype(np.uint8)).save(
                tmp_path / name / f"{k}.png")
    out_json = tmp_path / "out.json"
    assert probe.main(["--originals", str(tmp_path / "originals"), "--recaptured",
                       str(tmp_path / "screens"), "--softness", "--json", str(out_json)]) == 0
    import json

    out = json.loads(out_json.read_text())
    assert out["detector_auc"] == 1.0  # every soft "screen" is softer than every original
    assert out["settings"]["softness"] == {"tile": 64, "rule": "native"}
    for extra in (["--softness", "--model", str(tmp_path)], ["--softness-rule", "native"]):
        with pytest.raises(SystemExit):
            probe.main(["--originals", str(tmp_path / "originals"), "--recaptured",
                        str(tmp_path / "screens"), *extra])
