"""The calibrated whole-image verdict: aggregation maths, the choice on labelled images, and
the verdict stored in an export (threshold returned, label cut at it, older exports default)."""

import math
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecap import verdict as V
from tfrecap.export import classify_files, classify_image_bytes, export_detector, load_verdict

# ---------------------------------------------------------------- aggregation maths


def _aggregate_tf(logits, verdict):
    return float(V.aggregate_tf(tf.constant(logits, tf.float32), verdict))


def _probabilities(logits):
    """What serving_default gives the tiles: float32 softmax(logits)[:, 1]."""
    return tf.nn.softmax(tf.constant(logits, tf.float32))[:, 1].numpy()


@pytest.mark.parametrize("aggregation", V.AGGREGATIONS)
def test_numpy_and_tf_give_the_same_aggregate(aggregation):
    rng = np.random.default_rng(0)
    fractions = [(0.25, 0.2), (0.07, 0.29), (1.0, 0.0), (0.5, 0.49), (0.01, 0.1)]
    checked = 0
    for count in (1, 2, 3, 4, 5, 7, 10, 63, 64, 100):
        for top_k_fraction, trim_fraction in fractions:
            verdict = V.Verdict(aggregation, top_k_fraction=top_k_fraction,
                                trim_fraction=trim_fraction)
            logits = rng.normal(0, 3, (count, 2))
            got = _aggregate_tf(logits, verdict)
            expected = V.aggregate_np(_probabilities(logits), verdict)
            assert got == pytest.approx(expected, abs=1e-6), (count, verdict)
            assert 0.0 <= got <= 1.0
            checked += 1
    assert checked == 50


def test_known_values():
    p = [0.1, 0.95, 0.3, 0.9, 0.2]
    assert V.aggregate_np(p, V.Verdict("mean_probability")) == pytest.approx(0.49)
    # 20 % of 5 tiles = 1 dropped at each end: mean of 0.2, 0.3, 0.9.
    assert V.aggregate_np(p, V.Verdict("trimmed_mean")) == pytest.approx(1.4 / 3)
    # ceil(25 % of 5) = 2 largest: 0.9 and 0.95.
    assert V.aggregate_np(p, V.Verdict("top_k")) == pytest.approx(0.925)
    margins = [math.log(q / (1 - q)) for q in p]
    expected = 1 / (1 + math.exp(-sum(margins) / len(margins)))
    assert V.aggregate_np(p, V.Verdict("mean_logit")) == pytest.approx(expected)
    # mean_logit is sigmoid of the mean logit margin l1 - l0, computed from the logits too.
    logits = np.stack([np.zeros(5), margins], axis=1)
    assert _aggregate_tf(logits, V.Verdict("mean_logit")) == pytest.approx(expected, abs=1e-6)


def test_fractions_count_what_a_reader_counts():
    # 0.07 * 100 is 7.000000000000001 in floating point, 0.29 * 100 is 28.999999999999996.
    assert V.top_count(100, 0.07) == 7 and V.trimmed_count(100, 0.29) == 29
    assert V.top_count(1, 0.01) == 1 and V.top_count(4, 1.0) == 4
    assert V.trimmed_count(1, 0.49) == 0 and V.trimmed_count(2, 0.49) == 0
    assert V.trimmed_count(3, 0.49) == 1  # one tile is always kept


@pytest.mark.parametrize("aggregation", V.AGGREGATIONS)
def test_one_tile_or_equal_tiles_give_that_probability(aggregation):
    verdict = V.Verdict(aggregation)
    assert V.aggregate_np([0.37], verdict) == pytest.approx(0.37)
    assert V.aggregate_np([0.81] * 9, verdict) == pytest.approx(0.81)
    logits = [[0.0, 1.3]] * 6
    assert _aggregate_tf(logits, verdict) == pytest.approx(1 / (1 + math.exp(-1.3)), abs=1e-6)
    assert _aggregate_tf([[0.5, -0.2]], verdict) == pytest.approx(
        float(_probabilities([[0.5, -0.2]])[0]), abs=1e-6)


def test_saturated_tiles_keep_mean_logit_finite_and_the_same_on_both_sides():
    logits = [[0.0, 200.0], [0.0, -200.0], [0.0, 30.0]]  # float32 probabilities 1, 0, 1
    p = _probabilities(logits)
    assert p.tolist() == [1.0, 0.0, 1.0]
    verdict = V.Verdict("mean_logit")
    value = V.aggregate_np(p, verdict)
    clip = math.log((1 - V.PROBABILITY_CLIP) / V.PROBABILITY_CLIP)  # 13.8
    assert value == pytest.approx(1 / (1 + math.exp(-clip / 3)))
    assert _aggregate_tf(logits, verdict) == pytest.approx(value, abs=1e-6)


def test_bad_tile_probabilities_are_refused():
    with pytest.raises(ValueError, match="at least one tile probability"):
        V.aggregate_np([])
    with pytest.raises(ValueError, match=r"finite and in \[0, 1\], got range \[0.1, 1.5\]"):
        V.aggregate_np([0.1, 1.5])
    with pytest.raises(ValueError, match="finite"):
        V.aggregate_np([float("nan")])


# ---------------------------------------------------------------- the Verdict dataclass


@pytest.mark.parametrize("kwargs, message", [
    ({"aggregation": "median"}, "Verdict.aggregation must be one of mean_probability, "
                                "mean_logit, trimmed_mean, top_k; got 'median'"),
    ({"threshold": 1.5}, r"Verdict.threshold must be in \[0, 1\], got 1.5"),
    ({"threshold": -0.1}, r"Verdict.threshold must be in \[0, 1\]"),
    ({"threshold": float("nan")}, "Verdict.threshold must be finite, got nan"),
    ({"threshold": "0.5"}, "Verdict.threshold must be a number, got '0.5'"),
    ({"threshold": True}, "Verdict.threshold must be a number, got True"),
    ({"top_k_fraction": 0.0}, r"Verdict.top_k_fraction must be in \(0, 1\], got 0.0"),
    ({"top_k_fraction": 1.2}, r"Verdict.top_k_fraction must be in \(0, 1\]"),
    ({"trim_fraction": 0.5}, r"Verdict.trim_fraction must be in \[0, 0.5\), got 0.5"),
    ({"trim_fraction": -0.1}, r"Verdict.trim_fraction must be in \[0, 0.5\)"),
])
def test_verdict_validation_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        V.Verdict(**kwargs)


def test_verdict_dict_round_trip():
    verdict = V.Verdict("top_k", 0.7, top_k_fraction=0.1)
    assert verdict.to_dict() == {"aggregation": "top_k", "threshold": 0.7,
                                 "top_k_fraction": 0.1, "trim_fraction": 0.2}
    assert V.Verdict.from_dict(verdict.to_dict()) == verdict
    assert V.Verdict.from_dict({}) == V.Verdict()
    assert isinstance(V.Verdict(threshold=1).threshold, float)  # ints are stored as floats
    with pytest.raises(ValueError, match="unknown verdict key 'treshold'; known keys: "
                                         "aggregation, threshold"):
        V.Verdict.from_dict({"treshold": 0.5})
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        V.Verdict.from_dict([0.5])


# ---------------------------------------------------------------- choosing the verdict


def test_choose_verdict_picks_top_k_for_screens_filling_part_of_the_frame():
    # Originals: every tile moderately low. Recaptures: one screen tile high, the rest very
    # low, so their mean is below the originals' (AUC 0) and only top_k separates them.
    originals = [[level] * 4 for level in (0.3, 0.35, 0.4)]
    recaptured = [[high, 0.05, 0.05, 0.05] for high in (0.8, 0.9)]
    chosen, table = V.choose_verdict(originals + recaptured, [0, 0, 0, 1, 1])
    assert chosen.aggregation == "top_k"
    assert chosen.threshold == pytest.approx(0.6)  # midway between 0.4 and 0.8
    rows = {row["aggregation"]: row for row in table}
    assert list(rows) == list(V.AGGREGATIONS)
    assert rows["top_k"]["auc"] == 1.0 and rows["top_k"]["balanced_accuracy"] == 1.0
    assert rows["mean_probability"]["auc"] == 0.0 and rows["mean_logit"]["auc"] == 0.0
    assert rows["top_k"]["threshold"] == chosen.threshold


def test_choose_verdict_ties_go_to_the_earlier_aggregation_and_the_threshold_nearest_half():
    # One tile per image: every aggregation gives the same scores, so the same AUC.
    # Cuts at 0.2 and at 0.75 both reach balanced accuracy 0.75; 0.75 is nearer 0.5.
    scores = [[0.1], [0.6], [0.3], [0.9]]
    chosen, table = V.choose_verdict(scores, [0, 0, 1, 1])
    assert chosen.aggregation == "mean_probability"
    assert chosen.threshold == pytest.approx(0.75)
    assert {row["auc"] for row in table} == {0.75}
    assert [row["balanced_accuracy"] for row in table] == [0.75] * 4


def test_choose_verdict_with_a_single_score_keeps_half():
    chosen, table = V.choose_verdict([[0.4], [0.4]], [0, 1])
    assert chosen == V.Verdict() and table[0]["balanced_accuracy"] == 0.5


def test_choose_verdict_refuses_unusable_labels():
    with pytest.raises(ValueError, match="both classes"):
        V.choose_verdict([[0.1], [0.2]], [1, 1])
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        V.choose_verdict([[0.1], [0.2], [0.3]], [0, 1])
    with pytest.raises(ValueError, match=r"labels must be 0 or 1, got \[0, 2\]"):
        V.choose_verdict([[0.1], [0.2]], [0, 2])
    with pytest.raises(ValueError, match="at least one image"):
        V.choose_verdict([], [])


# ---------------------------------------------------------------- the verdict in an export

S = 16
THRESHOLD = 0.7


def _level_detector():
    """Logits (0, (mean pixel − 128) / 16): a tile of level v has p = sigmoid((v − 128) / 16)."""
    inputs = keras.Input((S, S, 3))
    dense = keras.layers.Dense(2)
    outputs = dense(keras.layers.GlobalAveragePooling2D()(inputs))
    dense.set_weights([np.array([[0.0, 1 / 48]] * 3, np.float32),
                       np.array([0.0, -8.0], np.float32)])
    return keras.Model(inputs, outputs)


def _png(pixels):
    return tf.io.encode_png(np.asarray(pixels, np.uint8)).numpy()


@pytest.fixture(scope="module")
def top_k_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdict")
    version_dir = export_detector(_level_detector(), root / "saved_models" / "level",
                                  verdict=V.Verdict("top_k", THRESHOLD))
    return version_dir, tf.saved_model.load(str(version_dir))


def test_export_returns_the_stored_threshold_and_cuts_the_label_at_it(top_k_export):
    version_dir, loaded = top_k_export
    assert load_verdict(version_dir) == V.Verdict("top_k", THRESHOLD)
    classify = loaded.signatures["classify_images"]
    levels = list(range(136, 148))  # p = 0.7 lies between levels 141 (0.694) and 142 (0.702)
    out = classify(image_bytes=tf.constant([_png(np.full((2 * S, 2 * S, 3), v))
                                            for v in levels]))
    probability = out["recaptured_probability"].numpy()
    np.testing.assert_array_equal(out["threshold"].numpy(), np.float32(THRESHOLD))
    assert out["threshold"].dtype == tf.float32
    np.testing.assert_array_equal(out["label"].numpy(), probability >= np.float32(THRESHOLD))
    assert out["label"].numpy().tolist() == [0] * 6 + [1] * 6
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-(np.array(levels) - 128) / 16)),
                               rtol=1e-5)


def test_export_aggregates_with_top_k(top_k_export):
    _, loaded = top_k_export
    image = np.full((2 * S, 2 * S, 3), 60, np.uint8)
    image[:S, S:] = 200  # one bright tile of four: ceil(25 % of 4) = 1, its probability
    out = loaded.signatures["classify_images"](image_bytes=tf.constant([_png(image)]))
    tiles = np.stack([image[:S, :S], image[:S, S:], image[S:, :S], image[S:, S:]])
    served = loaded.signatures["serving_default"](images=tf.constant(tiles, tf.float32))
    p = served["probabilities"].numpy()[:, 1]
    got = float(out["recaptured_probability"][0])
    assert got == pytest.approx(V.aggregate_np(p, V.Verdict("top_k")), abs=1e-6)
    assert got == pytest.approx(p.max(), abs=1e-6) and got > p.mean() + 0.5
    assert int(out["label"][0]) == 1 and int(out["patch_count"][0]) == 4


def test_predict_results_carry_the_threshold(top_k_export, tmp_path):
    _, loaded = top_k_export
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((S, S, 3), 150, np.uint8)).save(path)
    (result,) = classify_files(loaded.signatures["classify_images"], [path])
    assert set(result) == {"path", "label", "recaptured_probability", "patch_count",
                           "threshold"}
    assert result["threshold"] == pytest.approx(THRESHOLD)
    assert result["label"] == "recaptured"  # p(150) = 0.80


def test_label_is_recaptured_exactly_at_the_threshold():
    detector = _level_detector()
    image = tf.constant([_png(np.full((S, S, 3), 141))])

    def judge(threshold):
        out = classify_image_bytes(image, detector, S, verdict=V.Verdict(threshold=threshold))
        return float(out["recaptured_probability"][0]), int(out["label"][0])

    probability, _ = judge(0.5)
    assert judge(probability) == (probability, 1)  # >=, not >
    above = float(np.nextafter(np.float32(probability), np.float32(1)))
    assert judge(above) == (probability, 0)


def test_older_exports_give_the_default_verdict_and_no_threshold(top_k_export, tmp_path):
    version_dir, _ = top_k_export
    old = tmp_path / "old" / "1"
    shutil.copytree(version_dir, old)
    (old / "assets" / "tfrecap_verdict.json").unlink()  # as exported before the verdict
    assert (old / "assets" / "tfrecap_config.json").exists()
    assert load_verdict(old) == V.Verdict()

    def old_classify(image_bytes):  # an older classify_images: no threshold output
        return {"label": tf.constant([1], tf.int64),
                "recaptured_probability": tf.constant([0.9]),
                "patch_count": tf.constant([1], tf.int32)}

    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((S, S, 3), np.uint8)).save(path)
    (result,) = classify_files(old_classify, [path])
    assert result == {"path": str(path), "label": "recaptured",
                      "recaptured_probability": pytest.approx(0.9), "patch_count": 1}


def test_a_broken_verdict_asset_is_named(top_k_export, tmp_path):
    version_dir, _ = top_k_export
    broken = tmp_path / "broken"
    shutil.copytree(version_dir, broken)
    asset = broken / "assets" / "tfrecap_verdict.json"
    asset.write_text('{"aggregation": "median"}')
    with pytest.raises(ValueError, match=f"{asset}: not a valid tfrecap verdict: "
                                         "Verdict.aggregation must be one of"):
        load_verdict(broken)
    asset.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid tfrecap verdict"):
        load_verdict(broken)
