"""tfrecap audit: a foreign detector (SavedModel or .keras) adapted to our attacks and judged."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from tfrecap.audit.adapter import AuditError, load_audited_model
from tfrecap.cli.main import cli

S = 16
RANGES = {"0-255": (0.0, 255.0), "0-1": (0.0, 1.0), "-1-1": (-1.0, 1.0)}
# Output kind → (what the model applies to its linear scores, outputs C, recaptured index).
KINDS = {
    "logits": (None, 2, 1),
    "probabilities": ("softmax", 2, 1),
    "sigmoid": ("sigmoid", 1, 1),
    "logits-3": (None, 3, 2),
}


def _images(n=8, size=S, seed=0):
    """Images whose channel means vary widely, so that the verdicts differ."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0, 255, [n, 1, 1, 3])
    return np.clip(level + rng.normal(0, 20, [n, size, size, 3]), 0, 255).astype(np.float32)


def _weights(classes, input_range, seed=1):
    """Linear weights on the channel means, centred on the range's midpoint."""
    lo, hi = RANGES[input_range]
    w = np.random.default_rng(seed).normal(0, 4.0 / (hi - lo), [3, classes]).astype(np.float32)
    return w, (-(lo + hi) / 2 * w.sum(axis=0)).astype(np.float32)


def _to_range(images, input_range):
    lo, hi = RANGES[input_range]
    return images / 255.0 * (hi - lo) + lo


class _Foreign(tf.Module):
    """A detector made elsewhere: channel means → linear scores → the output kind."""

    def __init__(self, w, b, activation, size=S, channels=3):
        super().__init__()
        self.w, self.b, self.activation = tf.Variable(w), tf.Variable(b), activation
        self.serve = tf.function(
            self._serve, input_signature=[tf.TensorSpec([None, size, size, channels])])

    def _serve(self, x):
        z = tf.reduce_mean(x, axis=[1, 2]) @ self.w + self.b
        if self.activation == "softmax":
            z = tf.nn.softmax(z)
        elif self.activation == "sigmoid":
            z = tf.sigmoid(z)
        return {"scores": z}


def _keras_model(w, b, activation, size=S):
    inp = keras.Input((size, size, 3), name="pixels")
    h = keras.layers.GlobalAveragePooling2D()(inp)
    dense = keras.layers.Dense(w.shape[1], activation=activation, name="head")
    out = dense(h)
    dense.set_weights([w, b])
    return keras.Model(inp, out)


def _save(fmt, w, b, activation, path, size=S):
    """The detector as a file in ``fmt``, and a callable on images in its own range."""
    if fmt == "module":
        module = _Foreign(w, b, activation, size)
        tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
        return path, lambda x: module.serve(tf.constant(x))["scores"].numpy()
    model = _keras_model(w, b, activation, size)
    if fmt == "keras":
        path = path.with_suffix(".keras")
        model.save(path)
    else:
        model.export(str(path), verbose=False)
    return path, lambda x: model(x, training=False).numpy()


def _verdict(outputs, kind, index):
    """The raw model's own verdict: recaptured or not."""
    if kind == "sigmoid":
        return outputs.reshape(-1) > 0.5
    return outputs.argmax(axis=-1) == index


@pytest.mark.parametrize("fmt", ["module", "keras", "export"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_adapter_keeps_the_verdict_and_the_gradient(fmt, kind, tmp_path):
    input_range = list(RANGES)[(list(KINDS).index(kind) + ["module", "keras", "export"]
                                .index(fmt)) % 3]
    activation, classes, index = KINDS[kind]
    output = kind.split("-")[0]
    w, b = _weights(classes, input_range)
    path, raw = _save(fmt, w, b, activation, tmp_path / "model")
    model = load_audited_model(path, input_range=input_range, output=output,
                               recaptured_index=index)
    images = _images()
    expected = _verdict(raw(_to_range(images, input_range)), output, index)
    assert 0 < expected.sum() < len(expected), "the images should get both verdicts"

    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x, training=False)
        margin = logits[:, 1] - logits[:, 0]
    assert logits.shape == (8, 2) and logits.dtype == tf.float32
    np.testing.assert_array_equal(logits.numpy().argmax(axis=-1) == 1, expected)
    gradient = tape.gradient(margin, x).numpy()
    assert np.all(np.abs(gradient).reshape(8, -1).max(axis=1) > 0)
    assert model.patch_size == S
    assert model.meta["input_range"] == input_range and model.meta["output"] == output
    if fmt == "keras" and activation:
        assert f"before its {activation}" in model.meta["attacked"]


@pytest.mark.parametrize("input_range", list(RANGES))
def test_input_range_mapping_is_exact(input_range, tmp_path):
    class MinMax(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, S, S, 3])])
        def serve(self, x):
            return {"out": tf.stack([tf.reduce_min(x, axis=[1, 2, 3]),
                                     tf.reduce_mean(x, axis=[1, 2, 3])], axis=-1)}

    module = MinMax()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    model = load_audited_model(tmp_path, input_range=input_range)
    images = np.zeros([3, S, S, 3], np.float32)
    images[1] = 255.0
    images[2, : S // 2] = 255.0  # half black, half white: the mean is the range's middle
    seen = model.model_outputs(images).numpy()
    lo, hi = RANGES[input_range]
    np.testing.assert_array_equal(seen[:, 0], [lo, hi, lo])
    np.testing.assert_array_equal(seen[:, 1], [lo, hi, (lo + hi) / 2])
    # C = 2 logits with r = 1 pass through as they are: [z_0, z_1].
    np.testing.assert_array_equal(model(images).numpy(), seen)


def test_saturated_probability_has_no_gradient_unless_the_logit_is_reachable(tmp_path):
    w, b = np.full([3, 1], 50.0, np.float32), np.zeros([1], np.float32)
    images = np.full([2, S, S, 3], 250.0, np.float32)  # sigmoid(≈ 37500) == 1.0 in float32
    inverted, _ = _save("export", w, b, "sigmoid", tmp_path / "export")
    unwrapped, _ = _save("keras", w, b, "sigmoid", tmp_path / "model")
    gradients = {}
    for name, path in (("inverted", inverted), ("keras", unwrapped)):
        model = load_audited_model(path, output="sigmoid")
        x = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model(x)
            margin = logits[:, 1] - logits[:, 0]
        assert np.all(np.isfinite(logits.numpy())) and np.all(logits.numpy().argmax(-1) == 1)
        gradients[name] = tape.gradient(margin, x).numpy()
    assert np.all(gradients["inverted"] == 0)  # what the zero-gradient check then reports
    assert np.all(gradients["keras"] != 0)


def test_recaptured_index_zero_flips_a_sigmoid(tmp_path):
    w, b = _weights(1, "0-255")
    path, raw = _save("keras", w, b, "sigmoid", tmp_path / "model")
    model = load_audited_model(path, output="sigmoid", recaptured_index=0)
    images = _images()
    np.testing.assert_array_equal(model(images).numpy().argmax(-1) == 1,
                                  raw(images).reshape(-1) <= 0.5)


def _module_with(tmp_path, shape, outputs=None):
    class Odd(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec(shape)])
        def serve(self, x):
            batch = tf.shape(x)[:1]
            if outputs == "batch-of-one":
                return {"scores": tf.zeros([1, 2])}
            if outputs == "two":
                return {"a": tf.zeros(tf.concat([batch, [2]], 0)),
                        "b": tf.ones(tf.concat([batch, [2]], 0))}
            return {"scores": tf.zeros(tf.concat([batch, [outputs or 2]], 0))}

    module = Odd()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    return tmp_path


@pytest.mark.parametrize("shape, options, expected", [
    ([None, S, S, 1], {}, "takes 1 channels"),
    ([None, S, S // 2, 3], {}, "not square"),
    ([None, S, S], {}, "input of shape (N, 16, 16)"),
    ([None, None, None, 3], {}, "pass --patch-size S"),
    ([None, S, S, 3], {"patch_size": 32}, "--patch-size 32 does not match"),
])
def test_misfit_input_is_one_clear_error(tmp_path, shape, options, expected):
    path = _module_with(tmp_path, shape)
    with pytest.raises(AuditError) as err:
        load_audited_model(path, **options)
    assert expected in str(err.value)
    assert "expected images [N, S, S, 3]" in str(err.value) or "patch-size" in expected


@pytest.mark.parametrize("outputs, output, expected", [
    (3, "sigmoid", "expected one sigmoid output per image, [2, 1]"),
    (1, "logits", "expected [2, C] with C ≥ 2 logits"),
    ("batch-of-one", "probabilities", "returned shape [1, 2] on a batch of 2 zero images"),
])
def test_misfit_output_is_one_clear_error(tmp_path, outputs, output, expected):
    path = _module_with(tmp_path, [None, S, S, 3], outputs)
    with pytest.raises(AuditError, match="expected") as err:
        load_audited_model(path, output=output)
    assert expected in str(err.value)


def test_dynamic_size_takes_patch_size_and_keys_choose(tmp_path):
    path = _module_with(tmp_path, [None, None, None, 3], "two")
    with pytest.raises(AuditError,
                       match=r"2 outputs \(a \(N, 2\), b \(N, 2\)\); pass --output-key"):
        load_audited_model(path, patch_size=S)
    with pytest.raises(AuditError, match="no signature 'logits'; its signatures: serving_default"):
        load_audited_model(path, signature="logits", patch_size=S)
    model = load_audited_model(path, output_key="b", patch_size=S)
    assert model.patch_size == S and model.meta["output_key"] == "b"
    np.testing.assert_array_equal(model(np.zeros([1, S, S, 3], np.float32)).numpy(), [[1, 1]])


def test_keras_misfits(tmp_path):
    w, b = _weights(2, "0-255")
    path, _ = _save("keras", w, b, None, tmp_path / "model")
    with pytest.raises(AuditError, match="--recaptured-index 2 is out of range"):
        load_audited_model(path, recaptured_index=2)
    with pytest.raises(AuditError, match="--signature applies to a SavedModel"):
        load_audited_model(path, signature="serving_default")
    other = tmp_path / "model.txt"
    other.write_text("no model")
    with pytest.raises(AuditError, match="neither a SavedModel directory nor a .keras file"):
        load_audited_model(other)


# End to end, with the CLI.

AUDIT_KEYS = ("model", "format", "attacked", "input_range", "output", "recaptured_index",
              "patch_size", "data")


def _run(args):
    result = CliRunner().invoke(cli, ["audit", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_audit_a_foreign_sigmoid_model_on_a_dataset(synthetic_dir, tmp_path):
    from tfrecap.data.pipeline import make_dataset

    w, b = _weights(1, "0-1")
    path, raw = _save("keras", w, b, "sigmoid", tmp_path / "model", size=64)
    out = tmp_path / "audit.json"
    result = _run([path, "--input-range", "0-1", "--output", "sigmoid", "--data-dir",
                   synthetic_dir, "--dataset", "synthetic_64", "--attack", "fgsm", "--eps", "2",
                   "--limit", "12", "--batch-size", "8", "--no-unbounded-check",
                   "--json", out])
    assert "| 64×64 | fgsm |" in result.output
    report = json.loads(out.read_text())
    for key in ("schema_version", "model", "label", "dataset", "patch_size", "split", "n",
                "clean", "auc", "attacks", "checks", "audit"):
        assert key in report, key
    audit = report["audit"]
    assert set(AUDIT_KEYS) <= set(audit)
    assert audit["format"] == "keras" and audit["input_range"] == "0-1"
    assert audit["output"] == "sigmoid" and audit["patch_size"] == 64
    assert audit["data"] == {"source": "dataset", "data_dir": str(synthetic_dir),
                             "dataset": "synthetic_64", "split": "test"}
    assert [a["attack"] for a in report["attacks"]] == ["fgsm"]
    assert report["attacks"][0]["results"][0]["eps"] == 2
    # Clean accuracy is the model's own accuracy on the same images.
    images, labels = next(iter(make_dataset(synthetic_dir, "synthetic_64", "test", 12,
                                            training=False)))
    own = (raw(images.numpy() / 255.0).reshape(-1) > 0.5) == (labels.numpy() == 1)
    assert report["n"] == 12 and report["clean"]["accuracy"] == pytest.approx(own.mean())


@pytest.mark.slow
def test_audit_flags_a_saturated_sigmoid_through_the_zero_gradient_check(synthetic_dir, tmp_path):
    # A SavedModel whose sigmoid is exactly 1.0 on every patch: its inverted probabilities
    # have no gradient, and the report must say so (module doc of tfrecap.audit.adapter).
    w, b = np.full([3, 1], 50.0, np.float32), np.zeros([1], np.float32)
    path, _ = _save("export", w, b, "sigmoid", tmp_path / "model", size=64)
    out = tmp_path / "audit.json"
    result = _run([path, "--output", "sigmoid", "--data-dir", synthetic_dir, "--attack", "pgd",
                   "--eps", "2", "--limit", "8", "--batch-size", "8", "--json", out])
    report = json.loads(out.read_text())
    assert {a["attack"] for a in report["attacks"]} == {"pgd", "pgd (eps=255)"}
    assert report["attacks"][0]["results"][0]["zero_grad_fraction"] == 1.0
    check = next(c for c in report["checks"] if "zero-gradient" in c["name"])
    assert not check["passed"] and "possible gradient masking" in result.output


def _photo(path, seed, size=(2 * S + 5, 2 * S + 3)):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.uniform(0, 255, [1, 1, 3]) + rng.normal(0, 10, [*size, 3]), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def test_audit_on_labelled_folders(tmp_path):
    from tfrecap.data.tiling import served_tiles

    w, b = _weights(2, "-1-1")
    path, raw = _save("module", w, b, "softmax", tmp_path / "model")
    originals, recaptured = tmp_path / "originals", tmp_path / "recaptured"
    (originals / "deep").mkdir(parents=True)
    recaptured.mkdir()
    photos = [originals / "a.png", originals / "deep" / "b.png", recaptured / "c.png",
              recaptured / "d.png", recaptured / "e.png"]
    for seed, photo in enumerate(photos):
        _photo(photo, seed)
    (recaptured / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (originals / "notes.txt").write_text("not an image")
    out = tmp_path / "audit.json"
    result = _run([path, "--input-range", "-1-1", "--output", "probabilities", "--originals",
                   originals, "--recaptured", recaptured, "--attack", "fgsm", "--eps", "1,2",
                   "--batch-size", "4", "--no-unbounded-check", "--json", out])
    assert "broken.png" in result.output and "| 16×16 | fgsm |" in result.output
    report = json.loads(out.read_text())
    data = report["audit"]["data"]
    assert data["source"] == "folders" and data["originals"] == str(originals)
    assert data["photos_read"] == {"original": 2, "recaptured": 3}
    assert data["tiles_read"] == {"original": 8, "recaptured": 12}  # 2×2 tiles per photo
    assert {s["path"].rsplit("/", 1)[-1]: s["category"] for s in data["skipped"]} == {
        "broken.png": "corrupt", "notes.txt": "not an image"}
    assert report["n"] == 20 and report["audit"]["output"] == "probabilities"

    right = []
    for label, photo in zip([0, 0, 1, 1, 1], photos, strict=True):
        _, tiles = served_tiles(np.asarray(Image.open(photo)), S)
        right += list(raw(_to_range(tiles.astype(np.float32), "-1-1")).argmax(-1) == label)
    assert report["clean"]["accuracy"] == pytest.approx(np.mean(right))


def test_audit_usage_errors(tmp_path, synthetic_dir):
    w, b = _weights(2, "0-255")
    path, _ = _save("keras", w, b, None, tmp_path / "model")
    runner = CliRunner()
    result = runner.invoke(cli, ["audit", str(path), "--originals", str(tmp_path),
                                 "--attack", "fgsm"])
    assert result.exit_code == 2 and "--originals needs --recaptured" in result.output
    result = runner.invoke(cli, ["audit", str(path), "--data-dir", str(synthetic_dir),
                                 "--dataset", "synthetic_64", "--attack", "fgsm"])
    assert result.exit_code == 1
    assert "takes 16x16 patches but dataset 'synthetic_64' has 64x64" in result.output
    result = runner.invoke(cli, ["audit", str(path), "--output", "sigmoid", "--attack", "fgsm"])
    assert result.exit_code == 1 and "expected one sigmoid output per image" in result.output
