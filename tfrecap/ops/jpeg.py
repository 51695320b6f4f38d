"""JPEG re-encoding as an attack sees it: the real round trip, BPDA, a differentiable JPEG, EOT.

A photo sent through a messaging app is resized and re-encoded as JPEG before a detector
judges it. An attack made without that step can lose its effect in the re-encoding, so a
robustness figure "after JPEG" must come from an attack optimised *through* it (issue 14):

* :func:`jpeg_roundtrip`: the real encoder and decoder (libjpeg-turbo through
  ``tf.io.encode_jpeg``, 4:2:0 chroma, TF's default; decoded with the accurate integer IDCT, as
  :func:`tfrecap.data.decode.decode_in_graph` does).
* :func:`jpeg_bpda`: forward the real round trip, backward the identity (BPDA).
* :func:`differentiable_jpeg`: the JPEG pipeline in TF ops (YCbCr, 4:2:0, 8×8 DCT, the IJG
  tables scaled by quality as libjpeg scales them) with a differentiable rounding.
* :func:`through_jpeg`: wraps a logits_fn so an attack optimises through JPEG at a fixed
  quality, or in expectation (EOT) over random qualities and resizes.

Reference:
    Athalye, Carlini, Wagner, "Obfuscated Gradients Give a False Sense of Security:
    Circumventing Defenses to Adversarial Examples", ICML 2018 (BPDA and EOT).
    Shin, Song, "JPEG-resistant Adversarial Images", NeurIPS 2017 MLSec workshop (the cubic
    rounding approximation).
"""

import numbers

import numpy as np
import tensorflow as tf

from tfrecap.ops.random import default_index, per_image_uniform

METHODS = ("bpda", "differentiable")
ROUNDINGS = ("cubic", "straight_through")

# Stream of the per-image draws of `through_jpeg` (ASCII "JPEG"), away from the attacks' own.
_STREAM = 0x4A504547

# ITU-T T.81 Annex K (the IJG tables), row-major: libjpeg's jpeg_set_quality scales these.
_LUMA_TABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
], np.float32)
_CHROMA_TABLE = np.full((8, 8), 99, np.float32)
_CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

# Orthonormal 8-point DCT-II: JPEG's FDCT, F = D·B·Dᵀ.
_DCT = np.array([[np.sqrt((1.0 if u == 0 else 2.0) / 8) * np.cos((2 * x + 1) * u * np.pi / 16)
                  for x in range(8)] for u in range(8)], np.float32)

# JFIF full-range YCbCr (what libjpeg converts to and from).
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                          [-0.168735892, -0.331264108, 0.5],
                          [0.5, -0.418687589, -0.081312411]], np.float32)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR).astype(np.float32)


def check_quality(quality, name="quality"):
    """Raise unless `quality` is an integer JPEG quality in [1, 100]."""
    if (isinstance(quality, bool) or not isinstance(quality, numbers.Integral)
            or not 1 <= quality <= 100):
        raise ValueError(f"`{name}` has to be an integer JPEG quality in [1, 100], "
                         f"got {quality!r}")
    return int(quality)


def quantization_tables(quality):
    """The luminance and chrominance tables libjpeg writes at `quality`, float32 `[..., 8, 8]`.

    libjpeg's ``jpeg_set_quality(cinfo, quality, force_baseline=TRUE)``: scale ``5000 / Q``
    below 50 and ``200 − 2Q`` from 50 up, entries ``(base · scale + 50) // 100`` clipped to
    [1, 255]. `quality` may be a Python int or an int/float tensor of any shape (one table
    per entry), so a differentiable JPEG can take a quality per image.
    """
    q = tf.cast(quality, tf.float32)[..., None, None]
    scale = tf.where(q < 50, tf.floor(5000.0 / q), 200.0 - 2.0 * q)

    def scaled(base):
        return tf.clip_by_value(tf.floor((base * scale + 50.0) / 100.0), 1.0, 255.0)

    return scaled(_LUMA_TABLE), scaled(_CHROMA_TABLE)


def _to_uint8(images):
    # Round, not truncate: inside an attack the iterate is not yet on the 8-bit grid.
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)


def jpeg_roundtrip(images, quality):
    """Save and reload as JPEG at `quality`: does the perturbation survive a real file?

    Each image is rounded to 8 bits, encoded by ``tf.io.encode_jpeg`` (libjpeg-turbo, baseline,
    4:2:0 chroma subsampling, which is TF's default ``chroma_downsampling=True``) and decoded
    with the accurate integer IDCT, the decoder of the serving graph.

    Args:
        images: float32 `[N, H, W, 3]` in [0, 255].
        quality: integer in [1, 100] (an attribute of the encoder op, not a tensor).

    Returns:
        float32 `[N, H, W, 3]`, integer-valued. It has no gradient: see :func:`jpeg_bpda`.
    """
    quality = check_quality(quality)
    images = tf.convert_to_tensor(images, tf.float32)

    def one(image):
        encoded = tf.io.encode_jpeg(_to_uint8(image), quality=quality)
        decoded = tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE")
        return tf.cast(decoded, tf.float32)

    out = tf.map_fn(one, images, fn_output_signature=tf.float32)
    return tf.ensure_shape(out, images.shape)


def jpeg_bpda(images, quality):
    """The real JPEG round trip forward, the identity backward (BPDA, Athalye et al. 2018).

    ``x + stop_gradient(jpeg(x) − x)``: the value is exactly :func:`jpeg_roundtrip`'s and the
    gradient passes through unchanged, which works because a JPEG round trip is close to the
    identity. Usable eagerly, in a traced `tf.function` and under `tf.GradientTape`.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    return images + tf.stop_gradient(jpeg_roundtrip(images, quality) - images)


def _round(values, rounding):
    if rounding == "cubic":  # Shin & Song 2017: round(x) + (x − round(x))³
        return tf.stop_gradient(tf.round(values)) + (values - tf.stop_gradient(
            tf.round(values))) ** 3
    return values + tf.stop_gradient(tf.round(values) - values)


def _edge_pad(channel, multiple):
    """Replicate the last row and column of `[N, H, W]` up to a multiple, as libjpeg pads."""
    shape = tf.shape(channel)
    rows = tf.minimum(tf.range(-(-shape[1] // multiple) * multiple), shape[1] - 1)
    cols = tf.minimum(tf.range(-(-shape[2] // multiple) * multiple), shape[2] - 1)
    return tf.gather(tf.gather(channel, rows, axis=1), cols, axis=2)


def _fancy_upsample(chroma, height, width):
    """libjpeg's h2v2 "fancy" (triangle) upsampling: weights 3/4 and 1/4 per axis, edges held."""

    def axis(values, ax):
        size = tf.shape(values)[ax]
        prev = tf.gather(values, tf.maximum(tf.range(size) - 1, 0), axis=ax)
        nxt = tf.gather(values, tf.minimum(tf.range(size) + 1, size - 1), axis=ax)
        even, odd = 0.75 * values + 0.25 * prev, 0.75 * values + 0.25 * nxt
        stacked = tf.stack([even, odd], axis=ax + 1)
        new_shape = tf.concat([tf.shape(values)[:ax], [2 * size], tf.shape(values)[ax + 1:]], 0)
        return tf.reshape(stacked, new_shape)

    return axis(axis(chroma, 1), 2)[:, :height, :width]


def _dct_quantize(channel, table, rounding):
    """8×8 DCT, quantise by `table` (`[8, 8]` or `[N, 8, 8]`), dequantise, inverse DCT.

    libjpeg works on 8-bit samples on both sides of the DCT: the plane is rounded before it
    and the inverse rounded and clamped to [0, 255] (straight-through, whatever `rounding`).
    """
    shape = tf.shape(channel)
    channel = _round(channel, "straight_through")
    blocks = tf.reshape(channel - 128.0, [shape[0], shape[1] // 8, 8, shape[2] // 8, 8])
    coefficients = tf.einsum("ux,nixjy,vy->nijuv", _DCT, blocks, _DCT)
    table = tf.reshape(table, [-1, 1, 1, 8, 8])
    coefficients = _round(coefficients / table, rounding) * table
    blocks = tf.einsum("ux,nijuv,vy->nixjy", _DCT, coefficients, _DCT)
    return tf.clip_by_value(_round(tf.reshape(blocks, shape) + 128.0, "straight_through"),
                            0.0, 255.0)


def differentiable_jpeg(images, quality, rounding="cubic"):
    """A JPEG round trip in differentiable TF ops that tracks the real encoder's output.

    RGB → JFIF YCbCr; Cb and Cr averaged over 2×2 (4:2:0); each plane padded by edge
    replication to whole blocks, 8×8 DCT, divided by the IJG table at `quality`
    (:func:`quantization_tables`), rounded, multiplied back, inverse DCT; chroma upsampled
    with libjpeg's triangle filter; back to RGB, clipped to [0, 255] and rounded to 8 bits
    (straight-through). Only the coefficient rounding is smoothed; the 8-bit roundings of the
    planes are straight-through. libjpeg's integer DCT and the rounding biases of its
    resampling are not modelled: at Q = 60, 75 and 95 the output is within 0.7–0.8 levels of
    the real round trip on average (``tests/ops/test_jpeg.py``).

    Args:
        images: float32 `[N, H, W, 3]` in [0, 255]; any H and W.
        quality: integer in [1, 100], or an int tensor `[]` or `[N]` (a quality per image).
        rounding: "cubic" (Shin & Song 2017, gradient 3·(x − round x)²) or
            "straight_through" (exact rounding forward, identity backward).

    Returns:
        float32 `[N, H, W, 3]`.
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown `rounding` {rounding!r}; known: {', '.join(ROUNDINGS)}")
    if isinstance(quality, numbers.Number):
        check_quality(quality)
    images = tf.convert_to_tensor(images, tf.float32)
    out = _differentiable_jpeg(images, tf.cast(quality, tf.float32), rounding)
    return tf.ensure_shape(out, images.shape)


# Traced once per rounding and input signature (and inlined in a caller's graph): eagerly,
# its ~100 small ops would cost 30 times the compute.
@tf.function(autograph=False, reduce_retracing=True)
def _differentiable_jpeg(images, quality, rounding):
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    luma_table, chroma_table = quantization_tables(quality)
    ycbcr = tf.einsum("nhwc,dc->nhwd", images, _RGB_TO_YCBCR) + [0.0, 128.0, 128.0]
    luma = _dct_quantize(_edge_pad(ycbcr[..., 0], 8), luma_table, rounding)[:, :height, :width]
    chroma = tf.nn.avg_pool2d(
        tf.stack([_edge_pad(ycbcr[..., c], 2) for c in (1, 2)], axis=-1), 2, 2, "VALID")
    planes = [_dct_quantize(_edge_pad(chroma[..., c], 8), chroma_table, rounding)
              [:, :tf.shape(chroma)[1], :tf.shape(chroma)[2]] for c in (0, 1)]
    chroma = _fancy_upsample(tf.stack(planes, axis=-1), height, width)
    ycbcr = tf.concat([luma[..., None], chroma], axis=-1) - [0.0, 128.0, 128.0]
    rgb = tf.clip_by_value(tf.einsum("nhwd,cd->nhwc", ycbcr, _YCBCR_TO_RGB), 0.0, 255.0)
    return _round(rgb, "straight_through")


def _check_through_params(quality, qualities, resize, samples, seed, method):
    if (quality is None) == (qualities is None):
        raise ValueError("give exactly one of `quality` (a fixed JPEG quality) and "
                         f"`qualities` (a list to draw from), got {quality!r} and {qualities!r}")
    if quality is not None:
        check_quality(quality)
    else:
        if isinstance(qualities, (str, bytes)) or not hasattr(qualities, "__iter__"):
            raise ValueError(f"`qualities` has to be a list of JPEG qualities, got {qualities!r}")
        qualities = tuple(qualities)
        if not qualities:
            raise ValueError("`qualities` is empty: give at least one JPEG quality")
        for q in qualities:
            check_quality(q, "qualities")
    if resize is not None:
        try:
            low, high = (float(v) for v in resize)
        except (TypeError, ValueError):
            raise ValueError(f"`resize` has to be a (min, max) range of downscale factors, "
                             f"got {resize!r}") from None
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"`resize` has to satisfy 0 < min <= max <= 1, got {resize!r}")
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or samples < 1:
        raise ValueError(f"`samples` has to be a positive integer, got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` has to be a nonnegative integer, got {seed!r}")
    if method not in METHODS:
        raise ValueError(f"unknown `method` {method!r}; known: {', '.join(METHODS)}")


def jpeg_transform(images, quality=None, qualities=None, resize=None, seed=0, sample=0,
                   index=None, method="bpda"):
    """One draw of what a messaging app does to each image: downscale, JPEG, upscale back.

    Image n gets its quality (uniform over `qualities`, or the fixed `quality`) and its
    downscale factor (uniform in `resize`, a ``(min, max)`` range; None: no resize) from
    ``per_image_uniform(seed, stream, index[n])``, a stream per `sample`, so the draws are
    the same in any batch. The image is downscaled with an antialiased bilinear filter,
    JPEG-encoded, decoded, upscaled back to its size with a bilinear filter and rounded to
    8 bits. With ``method="bpda"`` the value is exactly that of the real encoder and the
    gradient treats the JPEG step as the identity (the resizes are differentiated); with
    ``"differentiable"`` the JPEG step is :func:`differentiable_jpeg`. Judging a model on
    the bpda output of a draw it was not attacked with (another `seed`) is the real test.

    Args:
        images: float32 `[N, H, W, 3]` in [0, 255].
        quality, qualities, resize, seed, method: as in :func:`through_jpeg`.
        sample: which draw (0, 1, ...).
        index: int `[N]`, the images' indices in the dataset; None: 0..N-1.

    Returns:
        float32 `[N, H, W, 3]`.
    """
    _check_through_params(quality, qualities, resize, 1, seed, method)
    images = tf.convert_to_tensor(images, tf.float32)
    index = default_index(images) if index is None else index
    stream = _STREAM + 2 * sample
    if qualities is None:
        levels, choice = (int(quality),), tf.zeros(tf.shape(images)[:1], tf.int32)
    else:
        levels = tuple(int(q) for q in qualities)
        choice = _draw(seed, stream, index, 0, len(levels), tf.int32)

    factor = (tf.ones(tf.shape(images)[:1]) if resize is None
              else _draw(seed, stream + 1, index, float(resize[0]), float(resize[1]),
                         tf.float32))
    out = _transform(images, choice, factor, levels, resize is not None, method)
    return tf.ensure_shape(out, images.shape)


def _draw(seed, stream, index, minval, maxval, dtype):
    """One number per image from `per_image_uniform`, with seed and stream as tensors."""
    return _traced_uniform(tf.constant(seed, tf.int64), tf.constant(stream, tf.int64),
                           tf.cast(index, tf.int64), minval, maxval, dtype)


# Eagerly, the vectorized_map inside per_image_uniform is re-converted at every call
# (~0.7 s on 2 cores); traced, it costs nothing after the first.
@tf.function(autograph=False, reduce_retracing=True)
def _traced_uniform(seed, stream, index, minval, maxval, dtype):
    return per_image_uniform(seed, stream, index, [], minval, maxval, dtype)


# Traced once per (levels, resize, method) and input signature: eagerly, map_fn and
# switch_case would rebuild their branch functions at every call.
@tf.function(autograph=False, reduce_retracing=True)
def _transform(images, choice, factor, levels, resize, method):
    def encode(batch, k):
        """JPEG of `batch` at quality levels[k] (k a scalar tensor): the op needs a constant."""
        if method == "differentiable":
            return differentiable_jpeg(batch, tf.gather(levels, k))
        if len(levels) == 1:
            return jpeg_bpda(batch, levels[0])
        return tf.switch_case(k, [lambda q=q: jpeg_bpda(batch, q) for q in levels])

    if not resize:
        if method == "differentiable":
            return differentiable_jpeg(images, tf.gather(levels, choice))
        if len(levels) == 1:
            return encode(images, 0)
        return tf.map_fn(lambda args: encode(args[0][None], args[1])[0], (images, choice),
                         fn_output_signature=tf.float32)
    size = tf.shape(images)[1:3]

    def one(args):
        image, k, f = args
        small_size = tf.maximum(tf.cast(tf.round(f * tf.cast(size, tf.float32)), tf.int32), 1)
        small = tf.image.resize(image, small_size, "bilinear", antialias=True)
        coded = encode(small[None], k)[0]
        return _round(tf.clip_by_value(tf.image.resize(coded, size, "bilinear"), 0.0, 255.0),
                      "straight_through")

    return tf.map_fn(one, (images, choice, factor), fn_output_signature=tf.float32)


def through_jpeg(logits_fn, quality=None, qualities=None, resize=None, samples=1, seed=0,
                 method="bpda"):
    """A logits_fn to attack instead of `logits_fn`, so the attack survives JPEG re-encoding.

    At a fixed `quality` (no resize) it is ``logits_fn(jpeg_bpda(x, quality))``. With
    `qualities` and/or `resize` it is EOT (Athalye et al. 2018): the logits averaged over
    `samples` draws of :func:`jpeg_transform` per image. The draws are fixed by `seed` and
    the image's index, not fresh at every call: the wrapped model is one deterministic
    function, so APGD's checkpoints and Square's accept/reject compare like with like. A
    batch and its subset see the same draws only when the caller passes `index`; the attacks
    call ``model(x)`` alone, so inside them the draws are keyed by batch position (which is
    why the CLI offers only the fixed-Q BPDA, which draws nothing). Logits are averaged, not
    probabilities: for two classes the margin of the mean logits is the mean margin, which
    the margin attacks maximise, while averaged probabilities saturate and their gradients
    vanish.

    Args:
        logits_fn: callable float32 images `[N, H, W, 3]` → logits `[N, K]`.
        quality: a fixed JPEG quality in [1, 100].
        qualities: instead, a list of qualities to draw one from per image and sample.
        resize: None, or a ``(min, max)`` range of downscale factors in (0, 1], applied
            before the JPEG and undone after.
        samples: EOT draws per image (ignored at a fixed quality without resize).
        seed: nonnegative integer.
        method: "bpda" (the real encoder forward, identity backward) or "differentiable"
            (:func:`differentiable_jpeg`).

    Returns:
        callable ``(images, index=None)`` → float32 logits; `index` as in
        :func:`jpeg_transform`.
    """
    _check_through_params(quality, qualities, resize, samples, seed, method)
    if qualities is not None:
        qualities = tuple(int(q) for q in qualities)
    if qualities is None and resize is None:
        samples = 1  # every draw would be the same

    def wrapped(images, index=None):
        total = 0.0
        for sample in range(samples):
            transformed = jpeg_transform(images, quality, qualities, resize, seed, sample,
                                         index, method)
            total += tf.cast(logits_fn(transformed), tf.float32)
        return total / samples

    return wrapped
