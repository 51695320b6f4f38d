"""The one decoder: import (Pillow) and the serving graph give identical pixels."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecap.data import decode


def _photo(h, w, seed=0):
    # Blocky content plus noise: real JPEG work for every IDCT and chroma upsampling path.
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (h // 8 + 2, w // 8 + 2, 3))
    pixels = np.kron(base, np.ones((8, 8, 1)))[:h, :w] + rng.normal(0, 20, (h, w, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _encode(array, fmt, mode=None, **kwargs):
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def graph_decode():
    fn = tf.function(decode.decode_in_graph, input_signature=[tf.TensorSpec([], tf.string)])
    return lambda data: fn(tf.constant(data)).numpy()


JPEGS = [
    (size, subsampling, quality, progressive)
    for size in [(64, 64), (65, 97), (131, 77)]
    for subsampling in (0, 1, 2)  # 4:4:4, 4:2:2, 4:2:0
    for quality in (50, 75, 95)
    for progressive in (False, True)
]


def test_jpeg_pixels_are_identical_at_import_and_in_the_graph(graph_decode):
    fast_differs = 0
    for (h, w), subsampling, quality, progressive in JPEGS:
        data = _encode(_photo(h, w), "JPEG", quality=quality, subsampling=subsampling,
                       progressive=progressive)
        decoded = decode.decode_rgb(data)
        assert decoded.native and decoded.format == "JPEG"
        np.testing.assert_array_equal(
            graph_decode(data), decoded.pixels,
            err_msg=f"{h}x{w} subsampling {subsampling} q{quality} progressive {progressive}")
        fast = tf.io.decode_image(data, channels=3).numpy()  # the old serving decoder
        fast_differs += int(np.any(fast != decoded.pixels))
    assert fast_differs == len(JPEGS)  # the test can tell the two decoders apart


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "16-bit RGB"])
def test_native_png_pixels_are_identical(graph_decode, mode):
    array = _photo(45, 67, seed=1)
    if mode == "16-bit RGB":
        data = tf.io.encode_png(array.astype(np.uint16) * 257 + 100).numpy()
    else:
        data = _encode(array, "PNG", mode=mode if mode != "RGB" else None)
    decoded = decode.decode_rgb(data)
    assert decoded.native, mode
    np.testing.assert_array_equal(graph_decode(data), decoded.pixels, err_msg=mode)
    assert decode.serving_bytes(data, decoded) is data


@pytest.mark.parametrize("kind", ["WebP", "TIFF", "BMP", "CMYK JPEG", "16-bit grey PNG",
                                  "grey with alpha PNG"])
def test_other_formats_reach_the_graph_as_the_same_pixels(graph_decode, kind):
    array = _photo(40, 51, seed=2)
    data = {
        "WebP": lambda: _encode(array, "WEBP", quality=80),
        "TIFF": lambda: _encode(array, "TIFF"),
        "BMP": lambda: _encode(array, "BMP"),
        "CMYK JPEG": lambda: _encode(array, "JPEG", mode="CMYK", quality=90),
        "16-bit grey PNG": lambda: _encode(
            (array[..., 0].astype(np.uint16) * 200).astype(np.int32), "PNG", mode="I;16"),
        "grey with alpha PNG": lambda: _encode(array, "PNG", mode="LA"),
    }[kind]()
    decoded = decode.decode_rgb(data)
    assert not decoded.native
    np.testing.assert_array_equal(graph_decode(decode.serving_bytes(data, decoded)),
                                  decoded.pixels, err_msg=kind)


def test_format_comes_from_the_bytes():
    webp = _encode(_photo(20, 20), "WEBP")
    assert decode.sniff_format(webp) == "WebP"
    assert decode.decode_rgb(webp).format == "WebP"
    assert decode.sniff_format(b"II*\x00rest") == "TIFF"
    assert decode.sniff_format(b"RIFF\x00\x00\x00\x00WAVE") is None
    with pytest.raises(decode.BadImageError, match=r"not an image \(JPEG, PNG, WebP, BMP or TIFF"):
        decode.decode_rgb(b"%PDF-1.4 not a photo")


def test_sixteen_bit_rgb_png_is_reported():
    data = tf.io.encode_png(np.full((8, 8, 3), 40000, np.uint16)).numpy()
    decoded = decode.decode_rgb(data)
    assert decoded.conversion and decoded.conversion.startswith("16-bit RGB")
    assert np.all(decoded.pixels == 40000 >> 8)
    assert decode.decode_rgb(_encode(_photo(8, 8), "PNG")).conversion is None
