"""The one decoder: encoded image bytes → 8-bit RGB pixels, the same at import and in serving.

A JPEG decoded two ways differs by up to 6–8 levels on most pixels (libjpeg's fast integer
IDCT against its accurate one), which is the size of the attack budget ε. So the pixels a
detector is trained on and the pixels it judges must come from the same decoding:

* **In Python** (``data import``, ``tfrecap predict``) :func:`decode_rgb` decodes with Pillow.
  The format is read from the bytes, never the extension (a WebP named ``.jpg`` is a WebP):
  JPEG, PNG, WebP, BMP and TIFF (:data:`FORMATS`). Odd modes (grey, palette, RGBA, CMYK,
  16-bit, float) are converted to 8-bit RGB, and the conversion is reported so that the
  caller warns about it.
* **In the exported graph** (``classify_images``) :func:`decode_in_graph` decodes JPEG with
  ``tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`` and PNG (and BMP, GIF) with
  ``tf.io.decode_image``. Pillow and TF both use libjpeg-turbo's accurate integer IDCT with
  fancy upsampling: measured bit-identical at 4:4:4, 4:2:2 and 4:2:0, baseline and
  progressive, odd sizes, qualities 50–95 (``tests/data/test_decode.py`` keeps checking it).
  TF's default ``decode_image`` uses the fast IDCT and is *not* identical.
* Bytes whose pixels the graph would decode identically are **native**
  (:attr:`Decoded.native`): 8-bit YCbCr or grey JPEG; PNG in RGB, grey, palette, RGBA or
  16-bit RGB (both keep the high byte). Anything else (WebP, TIFF, BMP, CMYK JPEG, 16-bit grey
  PNG, ...) is handed to the graph as lossless PNG of the pixels decoded here
  (:func:`serving_bytes`), so predict judges the very pixels import stores.

No EXIF rotation is applied, on either side: the CFA and moiré traces are tied to the sensor
grid.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

# Format name → (magic bytes at offset 0, Pillow's format name). WebP also needs "WEBP" at 8.
_SIGNATURES = {
    "JPEG": ((b"\xff\xd8\xff",), "JPEG"),
    "PNG": ((b"\x89PNG\r\n\x1a\n",), "PNG"),
    "WebP": ((b"RIFF",), "WEBP"),
    "BMP": ((b"BM",), "BMP"),
    "TIFF": ((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "TIFF"),
}
FORMATS = tuple(_SIGNATURES)
"""The formats both ``data import`` and ``predict`` read, by their content."""

FORMATS_TEXT = "JPEG, PNG, WebP, BMP or TIFF"

_JPEG_MAGIC = _SIGNATURES["JPEG"][0][0]
GRAPH_SIGNATURES = (_JPEG_MAGIC, _SIGNATURES["PNG"][0][0], b"GIF8", _SIGNATURES["BMP"][0][0])
"""Headers :func:`decode_in_graph` can decode (JPEG, PNG, GIF, BMP)."""

_NATIVE_MODES = {"JPEG": ("RGB", "L"), "PNG": ("RGB", "L", "P", "RGBA")}


class BadImageError(ValueError):
    """Bytes or a file that cannot be used as an image.

    Attributes:
        category: short name counted in an import summary ("corrupt", "truncated", ...).
    """

    def __init__(self, category: str, reason: str):
        super().__init__(reason)
        self.category = category


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Pixels decoded by :func:`decode_rgb`.

    Attributes:
        pixels: uint8 ``[H, W, 3]``.
        conversion: what was converted to reach 8-bit RGB ("grey", "16-bit RGB ...", ...),
            or None for plain 8-bit RGB.
        format: one of :data:`FORMATS`.
        native: whether the serving graph decodes the same bytes to exactly these pixels.
    """

    pixels: np.ndarray
    conversion: str | None
    format: str
    native: bool


def sniff_format(data: bytes) -> str | None:
    """The image format of ``data`` from its first bytes (one of :data:`FORMATS`), or None."""
    for name, (magics, _) in _SIGNATURES.items():
        if any(data.startswith(m) for m in magics):
            if name == "WebP" and data[8:12] != b"WEBP":
                continue
            return name
    return None


def _to_rgb8(im: Image.Image) -> tuple[np.ndarray, str | None]:
    """Convert a loaded PIL image to uint8 RGB; return the array and what was converted."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8), None
    if mode.startswith("I") or mode == "F":
        # PIL's own convert("RGB") clips 16-bit values at 255 instead of scaling them.
        arr = np.asarray(im)
        if mode == "F":
            arr = np.nan_to_num(arr.astype(np.float64))
            top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
            grey = np.clip(np.round(arr * (255.0 / top)), 0, 255).astype(np.uint8)
            label = "float"
        else:
            arr = np.clip(arr.astype(np.int64), 0, None)
            top = max(65535, int(arr.max(initial=0)))
            grey = ((arr * 255 + top // 2) // top).astype(np.uint8)
            label = "16-bit"
        return np.repeat(grey[..., None], 3, axis=-1), label
    if mode in ("1", "L"):
        label = "grey"
    elif mode in ("LA", "La"):
        label = "grey with alpha"
    elif mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in im.info):
        label = "RGBA"
    elif mode == "P":
        label = "palette"
    else:
        label = mode
    rgb = im.convert("RGBA" if label == "RGBA" else "RGB").convert("RGB")
    suffix = " (alpha dropped)" if "alpha" in label or label == "RGBA" else ""
    return np.asarray(rgb, dtype=np.uint8), label + suffix


def _sixteen_bit_rgb(data: bytes, fmt: str, im: Image.Image) -> bool:
    """Whether Pillow silently reduced a 16-bit-per-channel colour image to mode RGB."""
    if im.mode not in ("RGB", "RGBA"):
        return False
    if fmt == "PNG":
        return len(data) > 24 and data[24] == 16  # IHDR bit depth
    if fmt == "TIFF":
        bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None  # BitsPerSample
        return bool(bits) and max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def decode_rgb(data: bytes, min_size: int = 1) -> Decoded:
    """Decode image bytes to 8-bit RGB with the one decoder (see the module doc).

    Args:
        data: the encoded image.
        min_size: smallest acceptable height and width; smaller images are rejected before
            their pixels are decoded.

    Returns:
        The pixels, what was converted, the format, and whether they are native.

    Raises:
        BadImageError: the bytes are not one of :data:`FORMATS`, or are corrupt, truncated,
            too large or too small; ``category`` says which.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise BadImageError("not an image", f"not an image ({FORMATS_TEXT}) by its content")
    try:
        with Image.open(io.BytesIO(data), formats=[_SIGNATURES[fmt][1]]) as im:
            w, h = im.size
            if w < min_size or h < min_size:
                raise BadImageError(
                    "too small", f"too small ({w}x{h} pixels, need at least {min_size}x{min_size})"
                )
            try:
                im.load()
            except (OSError, SyntaxError, ValueError) as err:
                if "truncated" in str(err).lower():
                    raise BadImageError("truncated", f"truncated image data ({err})") from err
                raise BadImageError("corrupt", f"corrupt image data ({err})") from err
            pixels, conversion = _to_rgb8(im)
            if conversion is None and _sixteen_bit_rgb(data, fmt, im):
                conversion = "16-bit RGB (reduced to 8 bits, high byte kept)"
            native = im.mode in _NATIVE_MODES.get(fmt, ())
            return Decoded(pixels, conversion, fmt, native)
    except BadImageError:
        raise
    except UnidentifiedImageError as err:
        raise BadImageError(
            "corrupt", f"{fmt} header, but not a readable {fmt} image"
        ) from err
    except Image.DecompressionBombError as err:
        raise BadImageError("too large", f"too large to decode safely ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImageError("corrupt", f"corrupt image data ({err})") from err


def serving_bytes(data: bytes, decoded: Decoded) -> bytes:
    """Bytes for ``classify_images`` that decode to ``decoded.pixels`` in the graph.

    Native bytes go as they are; anything else as lossless PNG of the decoded pixels.
    """
    if decoded.native:
        return data
    buf = io.BytesIO()
    Image.fromarray(decoded.pixels).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def decode_in_graph(image_bytes):
    """Decode one encoded image in the serving graph: uint8 ``[H, W, 3]`` (see the module doc).

    JPEG goes through ``decode_jpeg`` with the accurate IDCT, so that its pixels equal
    Pillow's; PNG, BMP and GIF (first frame) through ``decode_image``.
    """
    import tensorflow as tf

    is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, len(_JPEG_MAGIC)), _JPEG_MAGIC)
    image = tf.cond(
        is_jpeg,
        lambda: tf.io.decode_jpeg(image_bytes, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False),
    )
    return tf.ensure_shape(image, [None, None, 3])
