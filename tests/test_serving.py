"""The SavedModel's three signatures, reloaded in a fresh process, and `tfrecap predict`."""

import io
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from tfrecap.cli.main import cli
from tfrecap.data import decode, tiling
from tfrecap.export import MAX_TILES, export_detector
from tfrecap.jsonio import loads_strict
from tfrecap.models import build_detector

S = 16
# 1, 6, 132 → 64 tiles; strips of 64 tiles at the 1024-px reference long side, unscaled;
# a photo above it, scaled to 1024 x 751 (64 x 46 → 9 x 7 = 63 tiles); a wide strip scaled
# to 17 x 1024.
SIZES = [(16, 16), (40, 50), (12 * S + 5, 11 * S), (S, 64 * S), (64 * S, S + 3), (1500, 1100),
         (S + 3, 70 * S)]


def _images():
    rng = np.random.default_rng(0)
    images = []
    for h, w in SIZES:
        # Tiles of different textures, so that the choice of tiles changes the mean.
        scale = rng.uniform(2, 120, (h // S + 1, w // S + 1, 1))
        scale = np.kron(scale, np.ones((S, S, 1)))[:h, :w]
        pixels = 128 + scale * rng.standard_normal((h, w, 3))
        images.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return images


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    keras_seed = 1
    tf.keras.utils.set_random_seed(keras_seed)
    detector = build_detector(input_shape=(S, S, 3), widths=(4, 4, 4, 8, 8))
    root = tmp_path_factory.mktemp("serving")
    version_dir = export_detector(detector, root / "saved_models" / "tiny", {"seed": keras_seed})
    return detector, version_dir


def _expected_verdict(detector, pixels):
    """Mean tile probability over the tiles of the one rule, scaled and cut as import does."""
    pixels = tiling.normalize_scale(pixels)
    tiles = np.stack([
        pixels[y:y + S, x:x + S] for y, x in tiling.tile_positions(*pixels.shape[:2], S)
    ]).astype(np.float32)
    logits = np.asarray(detector(tiles, training=False))
    probabilities = np.asarray(tf.nn.softmax(logits))[:, 1]
    return probabilities.mean(), len(tiles), probabilities


FRESH_PROCESS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf

    inputs = np.load(sys.argv[2], allow_pickle=True)
    loaded = tf.saved_model.load(sys.argv[1])
    out = {}
    serving = loaded.signatures["serving_default"](images=tf.constant(inputs["tiles"]))
    out["probabilities"] = serving["probabilities"].numpy()
    out["label"] = serving["label"].numpy()
    out["logits"] = loaded.signatures["logits"](images=tf.constant(inputs["tiles"]))["logits"]
    classify = loaded.signatures["classify_images"]
    for kind in ("png", "jpeg"):
        verdict = classify(image_bytes=tf.constant(list(inputs[kind])))
        for key, value in verdict.items():
            out[f"{kind}_{key}"] = value.numpy()
    np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in out.items()})
""")


def test_round_trip_in_a_fresh_process(export, tmp_path):
    detector, version_dir = export
    images = _images()
    tiles = np.random.default_rng(1).uniform(0, 255, (5, S, S, 3)).astype(np.float32)
    png = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    jpeg = np.array([tf.io.encode_jpeg(im, quality=90).numpy() for im in images], dtype=object)
    np.savez(tmp_path / "in.npz", tiles=tiles, png=png, jpeg=jpeg)
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_PROCESS)
    subprocess.run(
        [sys.executable, str(script), str(version_dir), str(tmp_path / "in.npz"),
         str(tmp_path / "out.npz")],
        check=True, capture_output=True, timeout=120,
    )
    out = np.load(tmp_path / "out.npz")

    logits = np.asarray(detector(tiles, training=False))
    np.testing.assert_allclose(out["logits"], logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["label"], logits.argmax(-1))

    for kind, encoded in (("png", png), ("jpeg", jpeg)):
        for i, data in enumerate(encoded):
            pixels = decode.decode_rgb(data).pixels  # the pixels import would store
            mean, count, probabilities = _expected_verdict(detector, pixels)
            assert count <= MAX_TILES
            assert out[f"{kind}_patch_count"][i] == count, (kind, SIZES[i])
            np.testing.assert_allclose(out[f"{kind}_recaptured_probability"][i], mean,
                                       rtol=1e-5, atol=1e-6, err_msg=f"{kind} {SIZES[i]}")
            assert out[f"{kind}_label"][i] == int(mean >= 0.5)
            assert out[f"{kind}_threshold"][i] == np.float32(0.5)  # the default verdict
            if count > 1:  # the test can tell a wrong choice of tiles from the right one
                assert probabilities.std() > 1e-4, (kind, SIZES[i])
    assert list(out["png_patch_count"]) == [1, 6, 64, 64, 64, 63, 64]
    assert out["png_recaptured_probability"].dtype == np.float32
    assert out["png_threshold"].dtype == np.float32
    assert out["png_label"].dtype == np.int64 and out["png_patch_count"].dtype == np.int32


def test_bad_bytes_give_an_error_naming_the_problem(export):
    _, version_dir = export
    classify = tf.saved_model.load(str(version_dir)).signatures["classify_images"]
    good = tf.io.encode_png(np.zeros((S, S, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="could not decode image bytes"):
        classify(image_bytes=tf.constant([good, b"not an image at all"]))
    small = tf.io.encode_png(np.zeros((S - 4, 3 * S, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image 1 is 12x48 .*smaller than the 16x16 patch size"):
        classify(image_bytes=tf.constant([good, small]))
    # 2100 x 30 is big enough as it is, but 1024 x 15 after the scale rule.
    strip = tf.io.encode_png(np.zeros((2100, 30, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image 0 is 2100x30 .*1024x15 after scaling to the 1024-pixel "
                             r"reference long side, smaller than the 16x16 patch size"):
        classify(image_bytes=tf.constant([strip]))
    assert classify(image_bytes=tf.constant([good]))["patch_count"].numpy().tolist() == [1]


def test_saved_model_cli_lists_the_three_signatures(export):
    _, version_dir = export
    command = shutil.which("saved_model_cli")
    command = [command] if command else [sys.executable, "-m",
                                         "tensorflow.python.tools.saved_model_cli"]
    shown = subprocess.run(command + ["show", "--dir", str(version_dir), "--all"],
                           check=True, capture_output=True, text=True, timeout=120).stdout
    for name in ("serving_default", "logits", "classify_images"):
        assert f"signature_def['{name}']" in shown, shown
    classify = shown.split("signature_def['classify_images']")[1].split("signature_def[")[0]
    assert "DT_STRING" in classify and "image_bytes" in classify, classify
    for output in ("recaptured_probability", "label", "threshold", "patch_count"):
        assert output in classify
    serving = shown.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "DT_FLOAT" in serving and "images" in serving, serving


def test_predict_judges_good_files_and_reports_bad_ones(export, tmp_path):
    _, version_dir = export
    model = version_dir.parent
    good_png, good_jpg = tmp_path / "a.png", tmp_path / "b.jpg"
    good_png.write_bytes(tf.io.encode_png(_images()[1]).numpy())
    good_jpg.write_bytes(tf.io.encode_jpeg(_images()[0]).numpy())
    garbage, missing = tmp_path / "garbage.jpg", tmp_path / "missing.png"
    garbage.write_bytes(b"\x00" * 100)
    out = tmp_path / "verdicts.json"
    result = CliRunner().invoke(cli, ["predict", str(model), str(good_png), str(missing),
                                      str(garbage), str(good_jpg), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{missing}\terror: file not found" in result.output
    assert f"{garbage}\terror: could not decode image bytes: not an image (JPEG, PNG, WebP, " \
        "BMP or TIFF) by its content" in result.output
    assert "\t6 tiles" in result.output and "\t1 tiles" in result.output

    report = loads_strict(out.read_text())
    assert report["schema_version"] == 1 and report["model_version"] == version_dir.name
    assert report["model"] == str(model)
    assert [r["path"] for r in report["results"]] == [
        str(good_png), str(missing), str(garbage), str(good_jpg)]
    judged = report["results"][0]
    assert set(judged) == {"path", "label", "recaptured_probability", "patch_count", "threshold"}
    assert judged["threshold"] == pytest.approx(0.5)
    assert judged["label"] in ("original", "recaptured") and judged["patch_count"] == 6
    assert 0 <= judged["recaptured_probability"] <= 1
    assert set(report["results"][1]) == {"path", "error"}

    small = tmp_path / "small.png"
    small.write_bytes(tf.io.encode_png(np.zeros((8, 30, 3), np.uint8)).numpy())
    result = CliRunner().invoke(cli, ["predict", str(version_dir), str(small), str(missing)])
    assert result.exit_code != 0
    assert "image is 8x30 (height x width), smaller than the 16x16 patch size" in result.output
    assert "no image could be judged" in result.output


def test_predict_help_shows_an_example():
    result = CliRunner().invoke(cli, ["predict", "--help"])
    assert result.exit_code == 0
    assert "tfrecap predict saved_models/demo" in result.output


def _encoded(pixels, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_predict_reads_webp_named_jpg_tiff_and_warns_on_16_bit(export, tmp_path):
    detector, version_dir = export
    pixels = _images()[1]  # 40 x 50: 6 tiles
    webp, tiff, deep = tmp_path / "dev_photo.jpg", tmp_path / "scan.tif", tmp_path / "deep.png"
    webp.write_bytes(_encoded(pixels, "WEBP", quality=80))  # a WebP under a JPEG name
    tiff.write_bytes(_encoded(pixels, "TIFF"))
    deep.write_bytes(tf.io.encode_png(pixels.astype(np.uint16) * 257).numpy())
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    out = tmp_path / "verdicts.json"
    result = CliRunner().invoke(cli, ["predict", str(version_dir.parent), str(webp), str(tiff),
                                      str(deep), str(notes), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = loads_strict(out.read_text())["results"]
    for r, path in zip(report[:3], (webp, tiff, deep), strict=True):
        assert r["path"] == str(path) and r["patch_count"] == 6, r
        expected, _, _ = _expected_verdict(detector, decode.decode_rgb(path.read_bytes()).pixels)
        np.testing.assert_allclose(r["recaptured_probability"], expected, rtol=1e-5, atol=1e-6)
        assert r["label"] == ("recaptured" if expected >= 0.5 else "original")
    assert report[3] == {"path": str(notes), "error": "could not decode image bytes: not an "
                         "image (JPEG, PNG, WebP, BMP or TIFF) by its content"}
    assert f"warning: {deep}: PNG converted to 8-bit RGB: 16-bit RGB" in result.output
    assert report[2]["warning"].startswith(f"{deep}: PNG converted")
    assert "warning" not in report[0] and "warning" not in report[1]
    help_text = " ".join(CliRunner().invoke(cli, ["predict", "--help"]).output.split())
    assert "JPEG, PNG, WebP, BMP or TIFF" in help_text
