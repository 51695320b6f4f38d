"""LaplacianCNN: architecture, fixed filter, dtype policies, .keras round trip."""

import keras
import numpy as np
import pytest
from scipy import ndimage

from tests.models.helpers import TINY_WIDTHS, batch, tiny_detector
from tfrecap.models import LaplacianCNN, LaplacianFilter, build_detector


def test_default_widths_parameter_count():
    # Documented in laplacian_cnn.py; independent of the patch size.
    for size in (64, None):
        model = build_detector(size)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
        assert (trainable, frozen) == (1_570_594, 1_984)


def test_filter_is_fixed_laplacian_with_reflect_border():
    x, _ = batch(2, 8)
    layer = LaplacianFilter()
    out = np.asarray(layer(x))
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], "float32")
    for n in range(2):
        for c in range(3):
            expected = ndimage.correlate(x[n, :, :, c].astype("float64"), kernel, mode="mirror")
            np.testing.assert_allclose(out[n, :, :, c], expected, rtol=1e-5, atol=1e-3)
    assert layer.weights == []  # nothing to train or save
    assert not hasattr(layer, "scale") and "scale" not in layer.get_config()
    flat = np.full((1, 8, 8, 3), 97.0, "float32")
    np.testing.assert_array_equal(np.asarray(layer(flat)), 0.0)


def test_shapes_units_and_float32_logits():
    model = tiny_detector(16, dtype="mixed_float16")
    out = model(batch(2, 16)[0], training=False)
    assert tuple(out.shape) == (2, 2)
    assert "float32" in str(out.dtype)
    assert model.convs[0].compute_dtype == "float16"
    assert model.logits.compute_dtype == "float32"
    assert [c.filters for c in model.convs] == list(TINY_WIDTHS)
    assert len(model.norms) == 5 and len(model.pools) == 4
    # global average pooling: any spatial size works with input_size=None
    model_any = build_detector(None, TINY_WIDTHS)
    assert tuple(model_any(batch(1, 24)[0]).shape) == (1, 2)


def test_no_batchnorm_variant_has_biases():
    model = tiny_detector(16, batchnorm=False)
    assert model.norms == [] and all(c.use_bias for c in model.convs)
    assert model.non_trainable_weights == []


def test_rejects_bad_widths():
    with pytest.raises(ValueError, match="5 positive"):
        LaplacianCNN(widths=(4, 4, 4))


def test_keras_file_round_trip_safe_mode(tmp_path):
    model = tiny_detector(16, bn_momentum=0.9)
    x, y = batch(4, 16)
    # move BatchNorm statistics away from their initial values
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "detector.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, LaplacianCNN)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_synchronized_batchnorm_round_trips_through_keras_file(tmp_path):
    model = tiny_detector(16, synchronized_batchnorm=True)
    assert [norm.synchronized for norm in model.norms] == [True] * 5
    path = tmp_path / "synced.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_config()["synchronized_batchnorm"] is True
    assert [norm.synchronized for norm in loaded.norms] == [True] * 5
    assert tiny_detector(16).get_config()["synchronized_batchnorm"] is False
