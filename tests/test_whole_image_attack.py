"""Attacks on the whole-image verdict (`tfrecap.attacks.whole_image`, `evaluate --attack` on
folders).

Most tests use a detector with fixed weights whose tile logit margin is (tile mean − 128), so a
flat photo of level m has margin m − 128 on every tile, and an L∞ budget ε moves it by at most
ε: which photo flips at which ε is worked out by hand.
"""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from tfrecap.attacks import make_attack_fn
from tfrecap.attacks.whole_image import WholeImageModel, classify_photo, encode_png
from tfrecap.cli.main import cli
from tfrecap.export import classify_image_bytes, export_detector, photo_tiles
from tfrecap.jsonio import loads_strict
from tfrecap.models import build_detector
from tfrecap.verdict import AGGREGATIONS, Verdict

S = 16
H, W = 128, 160  # 8 x 10 tiles, 64 kept by the cap


def _brightness_detector():
    detector = keras.Sequential([keras.Input((S, S, 3)), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2)])
    detector.layers[-1].set_weights([np.array([[0.0, 1 / 3]] * 3, np.float32),
                                     np.array([0.0, -128.0], np.float32)])
    return detector


def _logits_fn(detector):
    return lambda tiles: tf.cast(detector(tiles, training=False), tf.float32)


def _flat(level, size=(H, W)):
    return np.full((*size, 3), level, np.uint8)


def _mixed():
    """Level 40 (clearly original) with one kept tile at 127 (one level from flipping)."""
    photo = _flat(40)
    photo[:S, :S] = 127
    return photo


def _classify_fn(logits_fn, verdict):
    """classify_images' own function, eagerly (the export wraps exactly this)."""
    return lambda image_bytes: classify_image_bytes(image_bytes, logits_fn, S, verdict=verdict)


def _textured(seed, size=(H + 3, W + 1)):
    rng = np.random.default_rng(seed)
    scale = np.kron(rng.uniform(2, 90, (size[0] // S + 1, size[1] // S + 1, 1)),
                    np.ones((S, S, 1)))[: size[0], : size[1]]
    return np.clip(128 + scale * rng.standard_normal((*size, 3)), 0, 255).astype(np.uint8)


def test_model_label_and_score_equal_classify_images_for_every_aggregation():
    keras.utils.set_random_seed(0)
    logits_fn = _logits_fn(build_detector(input_shape=(S, S, 3), widths=(4, 4, 4, 4, 4)))
    photos = [_textured(seed, size=(3 * S + 3, 4 * S + 1)) for seed in range(4)]
    x = tf.constant(np.stack(photos), tf.float32)  # one batch: photos of one size
    image_bytes = tf.constant([encode_png(p) for p in photos])
    for aggregation in AGGREGATIONS:
        probe = WholeImageModel(logits_fn, S, verdict=Verdict(aggregation))
        scores = probe.scores(x).numpy()
        verdict = Verdict(aggregation, threshold=float(np.median(scores)))
        model = WholeImageModel(logits_fn, S, verdict=verdict)
        served = _classify_fn(logits_fn, verdict)(image_bytes)
        labels = tf.argmax(model(x), axis=-1).numpy()
        assert labels.tolist() == served["label"].numpy().tolist(), aggregation
        assert 0 < labels.sum() < len(labels)  # the threshold splits them: the test bites
        np.testing.assert_array_equal(scores, served["recaptured_probability"].numpy())


def test_float_pixel_path_equals_the_served_one_above_the_reference_side():
    photo = _textured(1, size=(40, 1100))  # scaled to 37 x 1024 by the rule
    served = photo_tiles(tf.constant(photo), S, 64)
    attacked = photo_tiles(tf.constant(photo, tf.float32), S, 64)
    assert served.shape == (64, S, S, 3)
    np.testing.assert_array_equal(served.numpy(), attacked.numpy())
    x = tf.constant(photo, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(photo_tiles(x, S, 64))
    assert float(tf.reduce_max(tf.abs(tape.gradient(total, x)))) > 0  # rounding passes it


def test_the_clipped_mean_logit_still_gives_a_gradient():
    # Every tile at margin −128: p is clipped to 1e-6, where the exact aggregate is flat.
    model = WholeImageModel(_logits_fn(_brightness_detector()), S, verdict=Verdict("mean_logit"))
    x = tf.constant(_flat(0)[None], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        margin = model(x)[:, 1]
    gradient = tape.gradient(margin, x)
    assert float(margin[0]) < 0 and float(tf.reduce_min(gradient[:, :S, :S])) > 0


@pytest.mark.slow
def test_perturbation_is_valid_8_bit_inside_eps_and_nothing_flips_at_zero():
    logits_fn = _logits_fn(_brightness_detector())
    model = WholeImageModel(logits_fn, S)
    attack = make_attack_fn(model, "pgd", steps=3, loss="margin")
    photo = _textured(2, size=(4 * S + 5, 5 * S + 3))
    photo[...] = np.clip(photo.astype(int) // 8 + 110, 0, 255)  # tiles near the threshold
    x = tf.constant(photo[None], tf.float32)
    for eps in (0.0, 2.0, 3.5):
        x_adv = attack(x, tf.constant([0]), eps).numpy()
        delta = x_adv - x.numpy()
        assert np.abs(delta).max() <= eps
        assert np.all(x_adv == np.round(x_adv)) and x_adv.min() >= 0 and x_adv.max() <= 255
        if eps == 0:
            assert np.all(delta == 0)
            judged = classify_photo(_classify_fn(logits_fn, Verdict()), x_adv[0])
            assert judged["label"] == int(tf.argmax(model(x)[0]))
        else:
            assert np.abs(delta).max() > 0


def test_easy_tiles_flip_the_verdict_but_one_flipped_tile_does_not():
    logits_fn = _logits_fn(_brightness_detector())
    verdict = Verdict()
    model = WholeImageModel(logits_fn, S, verdict=verdict)
    classify = _classify_fn(logits_fn, verdict)
    attack = make_attack_fn(model, "pgd", steps=3, loss="margin")
    for photo, flips in ((_flat(127), True), (_mixed(), False)):
        x = tf.constant(photo[None], tf.float32)
        assert classify_photo(classify, photo)["label"] == 0
        x_adv = attack(x, tf.constant([0]), 2.0)
        tiles = tf.argmax(model.tile_logits(x_adv)[0], axis=-1).numpy()
        assert tiles[0] == 1  # the tile at 127 flipped in both
        assert classify_photo(classify, x_adv[0].numpy())["label"] == int(flips)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("whole_image_attack")
    export_detector(_brightness_detector(), root / "brightness")
    return root / "brightness"


def _save(path, photo):
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    path.write_bytes(buf.getvalue())


@pytest.fixture
def folders(tmp_path):
    originals, recaptured = tmp_path / "originals", tmp_path / "recaptured"
    _save(originals / "a_127.png", _flat(127))  # flips at ε = 2
    _save(originals / "b_100.png", _flat(100))  # holds at ε ≤ 27
    _save(originals / "c_mixed.png", _mixed())  # a tile flips at ε = 2, the verdict holds
    _save(originals / "d_tiny.png", _flat(127, (8, 8)))  # skipped: smaller than the patch
    _save(recaptured / "e_129.png", _flat(129))  # flips at ε = 2
    _save(recaptured / "f_131.png", _flat(131))  # holds at ε = 2, flips at ε = 4
    _save(recaptured / "g_90.png", _flat(90))  # wrong when clean: not attacked, not robust
    return originals, recaptured


def test_cli_attack_on_folders_gives_known_counts_and_keys(export, folders, tmp_path):
    originals, recaptured = folders
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, [
        "evaluate", str(export), "--originals", str(originals), "--recaptured",
        str(recaptured), "--attack", "pgd", "--eps", "0,2,4", "--pgd-steps", "3",
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = loads_strict(out.read_text())
    # The keys of the report without attacks are all still there, with their values.
    assert report["classes"]["original"]["n"] == 3 and report["classes"]["original"]["correct"] == 3
    assert report["classes"]["recaptured"]["correct"] == 2
    assert report["skipped"]["count"] == 1 and report["attack_limit"] == 50
    assert report["attacked"]["classes"]["recaptured"]["correct"] == 2
    (attack,) = report["attacks"]
    assert attack["attack"] == "pgd" and attack["params"]["steps"] == 3
    rows = {row["eps"]: row for row in attack["results"]}
    expected = {0.0: (3, 2), 2.0: (2, 1), 4.0: (2, 0)}  # robust originals, recaptures
    for eps, (original, recaptured_) in expected.items():
        row = rows[eps]
        assert row["classes"]["original"]["correct"] == original, eps
        assert row["classes"]["recaptured"]["correct"] == recaptured_, eps
        assert row["n"] == 6 and row["accuracy"] == pytest.approx((original + recaptured_) / 6)
        assert row["balanced_accuracy"] == pytest.approx((original / 3 + recaptured_ / 3) / 2)
        low, high = row["classes"]["original"]["ci"]
        assert low <= original / 3 <= high
        # (evaluate_folders_under_attack also raises on a photo that is not valid 8-bit.)
        assert all(image["linf"] <= eps for image in row["images"])
    assert rows[0.0]["tiles_flipped_verdict_held"] == 0
    assert rows[2.0]["tiles_flipped_verdict_held"] == 1  # the mixed photo, counted robust
    mixed = next(i for i in rows[2.0]["images"] if i["path"].endswith("c_mixed.png"))
    assert mixed["robust"] and mixed["tiles_flipped"] == 1
    assert "Whole-image attacks on 3 original, 3 recaptured photos" in result.output
    assert "pgd" in result.output and "66.7% [" in result.output


@pytest.mark.slow
def test_attack_limit_caps_the_attacked_photos(export, folders):
    originals, recaptured = folders
    result = CliRunner().invoke(cli, [
        "evaluate", str(export), "--originals", str(originals), "--recaptured",
        str(recaptured), "--attack", "pgd", "--eps", "2", "--pgd-steps", "2",
        "--attack-limit", "1",
    ])
    assert result.exit_code == 0, result.output
    assert "Whole-image attacks on 1 original, 1 recaptured photos" in result.output
    # a_127 and e_129, the first of each class, both flip at ε = 2.
    assert "0.0% [0.0%, 79.3%]" in result.output


@pytest.mark.parametrize("args, message", [
    (["--attack", "pgd", "--dataset", "x"], "--dataset only apply to the patch/attack"),
    (["--batch-size", "8"], "--batch-size only apply to the patch/attack"),
    (["--eps", "2"], "--eps need --attack"),
    (["--attack", "none", "--attack-limit", "3"], "--attack-limit need --attack"),
])
def test_refused_whole_image_options(tmp_path, folders, args, message):
    originals, recaptured = folders
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--originals", str(originals),
                                      "--recaptured", str(recaptured), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_attack_limit_without_folders_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--attack-limit", "3"])
    assert result.exit_code == 2 and "--attack-limit only applies to the whole-image" \
        in result.output
