"""SavedModel export in the TF-Serving layout (DESIGN.md, "Export and serving").

``export_detector(detector, export_root, config)`` writes
``export_root/VERSION/`` with integer versions 1, 2, ... It writes into a hidden
temporary folder beside it and renames that folder at the end, so a model server
polling ``export_root`` never sees half a model, and a failed export leaves
nothing behind.

Signatures (all with an explicit float32 input, so a mixed-precision model does
not export a float16 signature):

* ``serving_default``: ``images`` float32 ``[N, S, S, 3]`` in [0, 255] →
  ``probabilities`` float32 ``[N, 2]`` and ``label`` int64 ``[N]``
  (0 = original, 1 = recaptured);
* ``logits``: the same input → ``logits`` float32 ``[N, 2]``. Attacks and audits
  use this one: attacking probabilities invites saturated gradients;
* ``classify_images``: ``image_bytes`` string ``[N]`` (encoded JPEG or PNG, each
  at least S×S; images may differ in size; BMP and GIF decode too) → a whole-image
  verdict per image:
  ``recaptured_probability`` float32 ``[N]`` (the tile probabilities aggregated by the
  export's :class:`tfrecap.verdict.Verdict`), ``label`` int64 ``[N]`` (1 = recaptured, when
  the probability is ``>=`` the stored threshold), ``threshold`` float32 ``[N]`` (that
  threshold, for each image) and ``patch_count`` int32 ``[N]``.
  It decodes, scales and tiles exactly as ``data import`` does (:mod:`tfrecap.data.decode`,
  :mod:`tfrecap.data.tiling`: a photo whose long side exceeds 1024 px is first downscaled to
  1024), so a photo is judged on the tiles import stores. Exported only when the detector
  has a fixed patch size S.

The exported graph holds inference only (the detector, called with
``training=False``); the resolved run config is stored as the asset
``assets/tfrecap_config.json`` and the verdict as ``assets/tfrecap_verdict.json``
(:func:`load_verdict`; an export without it used the default :class:`Verdict`). A run trained
with ``[guard]`` also stores the guard's summary as ``assets/tfrecap_guard.json``
(:func:`load_guard_asset`): which step was exported, its clean and PGD accuracy, and every
guard record of the run.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from tfrecap.data.decode import (
    GRAPH_SIGNATURES,
    BadImageError,
    decode_in_graph,
    decode_rgb,
    serving_bytes,
)
from tfrecap.data.tiling import (
    DEFAULT_MAX_TILES,
    REFERENCE_LONG_SIDE,
    cut_tiles_tf,
    normalize_scale_tf,
    reference_shape_tf,
)
from tfrecap.jsonio import write_json
from tfrecap.verdict import Verdict, aggregate_tf

CONFIG_ASSET = "tfrecap_config.json"
VERDICT_ASSET = "tfrecap_verdict.json"
GUARD_ASSET = "tfrecap_guard.json"

MAX_TILES = DEFAULT_MAX_TILES
"""At most this many S×S tiles judge one image in ``classify_images`` by default
(:data:`tfrecap.data.tiling.DEFAULT_MAX_TILES`, the default of ``data import`` too)."""


def next_version(export_root: Path) -> int:
    """1 + the highest integer version under ``export_root`` (1 if none)."""
    versions = [int(p.name) for p in export_root.glob("*") if re.fullmatch(r"\d+", p.name)]
    return max(versions, default=0) + 1


def latest_version_dir(path: str | Path) -> Path:
    """``path`` itself if it is a SavedModel, else its highest integer version.

    Raises:
        FileNotFoundError: naming ``path`` when it holds no SavedModel.
    """
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = sorted(
        (int(p.name) for p in path.glob("*") if re.fullmatch(r"\d+", p.name)), reverse=True
    )
    for version in versions:
        if (path / str(version) / "saved_model.pb").exists():
            return path / str(version)
    raise FileNotFoundError(
        f"{path} is not a SavedModel and has no numbered version folder holding one "
        f"(expected {path}/1/saved_model.pb); train one with `tfrecap train --export-dir {path}`"
    )


def export_detector(
    detector: keras.Model,
    export_root: str | Path,
    config=None,
    *,
    max_tiles: int = MAX_TILES,
    verdict: Verdict | None = None,
    guard: dict | None = None,
) -> Path:
    """Export ``detector`` (images → logits) to ``export_root/NEXT_VERSION``.

    Args:
        detector: a built Keras model mapping float32 ``[N, S, S, 3]`` pixels to 2 logits.
        export_root: the model's folder, e.g. ``saved_models/secure_64``.
        config: a :class:`tfrecap.config.PipelineConfig` (or dict) stored as an asset.
        max_tiles: the cap of ``classify_images``; pass the training data's
            ``max_tiles_per_image`` so that serving judges the tiles import stored.
        verdict: how ``classify_images`` aggregates tiles and where it cuts
            (:func:`tfrecap.verdict.choose_verdict`); None is the default :class:`Verdict`,
            the mean tile probability cut at 0.5.
        guard: the summary of the run's robustness guard (``run_dir/best/best.json`` and the
            exported step, :mod:`tfrecap.training.guard`), stored as an asset; None stores
            none.

    Returns:
        The version folder written.
    """
    verdict = Verdict() if verdict is None else verdict
    if not isinstance(verdict, Verdict):
        raise TypeError(f"verdict must be a tfrecap.verdict.Verdict, got {type(verdict).__name__}")
    export_root = Path(export_root)
    export_root.mkdir(parents=True, exist_ok=True)
    size = detector.input_shape[1]
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="images")

    archive = keras.export.ExportArchive()
    archive.track(detector)

    @tf.function(input_signature=[spec])
    def logits_fn(images):
        return {"logits": tf.cast(detector(images, training=False), tf.float32)}

    @tf.function(input_signature=[spec])
    def serving_fn(images):
        logits = logits_fn(images)["logits"]
        return {"probabilities": tf.nn.softmax(logits), "label": tf.argmax(logits, axis=-1)}

    archive.add_endpoint("serving_default", serving_fn)
    archive.add_endpoint("logits", logits_fn)
    if size is not None:

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def classify_fn(image_bytes):
            return classify_image_bytes(
                image_bytes, lambda tiles: logits_fn(tiles)["logits"], size, max_tiles,
                verdict=verdict,
            )

        archive.add_endpoint("classify_images", classify_fn)

    with tempfile.TemporaryDirectory(dir=export_root, prefix=".tmp-export-") as staging:
        staging = Path(staging)
        config_file = staging / CONFIG_ASSET
        payload = config.to_dict() if hasattr(config, "to_dict") else (config or {})
        write_json(config_file, payload, sort_keys=True)
        # An Asset reachable from the exported object graph is copied into
        # assets/ by the SavedModel writer; ExportArchive has no public hook for
        # non-variable objects, so attach it to the archive's root trackable.
        archive._tf_trackable.tfrecap_config = tf.saved_model.Asset(str(config_file))
        verdict_file = write_json(staging / VERDICT_ASSET, verdict.to_dict(), sort_keys=True)
        archive._tf_trackable.tfrecap_verdict = tf.saved_model.Asset(str(verdict_file))
        if guard is not None:
            guard_file = write_json(staging / GUARD_ASSET, guard, sort_keys=True)
            archive._tf_trackable.tfrecap_guard = tf.saved_model.Asset(str(guard_file))
        model_dir = staging / "model"
        archive.write_out(str(model_dir), verbose=False)
        # Another exporter may have taken the number meanwhile; retry the rename.
        for _ in range(100):
            target = export_root / str(next_version(export_root))
            try:
                model_dir.rename(target)
                return target
            except OSError:
                continue
    raise RuntimeError(f"could not claim a version number under {export_root}")


def _image_tiles(image_bytes, index, size, max_tiles):
    """Decode one image, scale it by the rule and cut its S×S tiles: float32 ``[T, S, S, 3]``."""
    header_ok = tf.reduce_any(
        [tf.equal(tf.strings.substr(image_bytes, 0, len(magic)), magic)
         for magic in GRAPH_SIGNATURES]
    )
    decodable = tf.debugging.Assert(header_ok, [tf.strings.format(
        "classify_images: could not decode image bytes of image {}: not a JPEG or PNG "
        "({} bytes with an unknown header)", (index, tf.strings.length(image_bytes)))])
    with tf.control_dependencies([decodable]):
        image = decode_in_graph(image_bytes)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    big_enough = tf.debugging.Assert(
        tf.logical_and(height >= size, width >= size),
        [tf.strings.format(
            "classify_images: image {} is {}x{} (height x width), smaller than the "
            "{}x{} patch size", (index, height, width, size, size))])
    ref_h, ref_w = reference_shape_tf(height, width)
    with tf.control_dependencies([big_enough]):
        still_big_enough = tf.debugging.Assert(
            tf.logical_and(ref_h >= size, ref_w >= size),
            [tf.strings.format(
                "classify_images: image {} is {}x{} (height x width), {}x{} after scaling to "
                "the {}-pixel reference long side, smaller than the {}x{} patch size",
                (index, height, width, ref_h, ref_w, REFERENCE_LONG_SIDE, size, size))])
    with tf.control_dependencies([still_big_enough]):
        return photo_tiles(tf.identity(image), size, max_tiles)


def photo_tiles(image, size, max_tiles=MAX_TILES):
    """The tiles ``classify_images`` judges from a decoded photo: scale rule, then the grid.

    The one pixel path from a photo's pixels to the detector's input, shared by the
    ``classify_images`` graph and by the whole-image attack
    (:mod:`tfrecap.attacks.whole_image`), so an attack goes through exactly what is served.

    Args:
        image: ``[H, W, C]`` photo pixels (H, W ≥ S after scaling). uint8 (the serving
            graph): :func:`tfrecap.data.tiling.normalize_scale_tf` as it is. float32
            holding integral levels in [0, 255] (an attack; C may hold several photos of one
            size side by side): the same resize, rounding and clipping in float, with the
            rounding straight-through (identity gradient), so the tiles have the same values
            as from uint8 and a gradient reaches the photo.
        size: the patch side S.
        max_tiles: at most this many tiles.

    Returns:
        float32 ``[T, S, S, C]``, row-major over the kept grid.
    """
    if image.dtype == tf.uint8:
        scaled = normalize_scale_tf(image)
    else:
        scaled = _normalize_scale_float(tf.cast(image, tf.float32))
    return tf.cast(cut_tiles_tf(scaled, size, max_tiles), tf.float32)


def _normalize_scale_float(image):
    """:func:`tfrecap.data.tiling.normalize_scale_tf` on float32 pixels, differentiably.

    ``tf.image.resize`` casts uint8 to float32 before resizing, so on integral float32 levels
    it computes the same numbers; round-half-to-even and the clip follow, the rounding with a
    straight-through gradient (a plain round has none).
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    new_h, new_w = reference_shape_tf(height, width)

    def downscale():
        resized = tf.image.resize(
            image, tf.stack([new_h, new_w]), method="bilinear", antialias=True
        )
        rounded = resized + tf.stop_gradient(tf.round(resized) - resized)
        return tf.clip_by_value(rounded, 0.0, 255.0)

    changed = tf.logical_or(tf.not_equal(new_h, height), tf.not_equal(new_w, width))
    return tf.cond(changed, downscale, lambda: tf.identity(image))


def classify_image_bytes(image_bytes, logits_fn, size, max_tiles=MAX_TILES, *, verdict=None):
    """Whole-image verdicts from encoded images, as in the ``classify_images`` signature.

    Each image is decoded by :func:`tfrecap.data.decode.decode_in_graph` (JPEG with the
    accurate IDCT, the pixels ``data import`` stores), downscaled to a long side of at most
    1024 px and cut by the one rule of :mod:`tfrecap.data.tiling` (a top-left S×S grid, at
    most ``max_tiles`` tiles evenly spread over it), so it judges exactly the tiles an import
    of the same photo stores. The tiles' probabilities softmax(logits)[:, 1] are aggregated by
    :func:`tfrecap.verdict.aggregate_tf`, and ``label`` is 1 when that aggregate is ``>=``
    the verdict's threshold (so a threshold of 0 calls everything recaptured, and an
    aggregate exactly at the threshold is recaptured). All tiles of one image go through the
    detector in one batch.

    Args:
        image_bytes: string ``[N]``, encoded JPEG or PNG (GIF and BMP decode too).
        logits_fn: float32 ``[T, S, S, 3]`` pixels → float32 ``[T, 2]`` logits.
        size: the patch side S.
        max_tiles: at most this many tiles per image.
        verdict: the :class:`tfrecap.verdict.Verdict` (None: the default, mean at 0.5).

    Returns:
        ``{"recaptured_probability": float32 [N], "label": int64 [N],
        "threshold": float32 [N], "patch_count": int32 [N]}``.

    Raises:
        tf.errors.InvalidArgumentError: naming the image, when its bytes are not
            an image or it is smaller than S×S.
    """
    verdict = Verdict() if verdict is None else verdict
    indices = tf.range(tf.shape(image_bytes)[0])

    def judge(args):
        data, index = args
        tiles = _image_tiles(data, index, size, max_tiles)
        return aggregate_tf(logits_fn(tiles), verdict), tf.shape(tiles)[0]

    probability, count = tf.map_fn(
        judge, (image_bytes, indices),
        fn_output_signature=(tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32)),
    )
    threshold = tf.constant(verdict.threshold, tf.float32)
    return {
        "recaptured_probability": probability,
        "label": tf.cast(probability >= threshold, tf.int64),
        "threshold": tf.fill(tf.shape(probability), threshold),
        "patch_count": count,
    }


def _reason(err: tf.errors.InvalidArgumentError) -> str:
    """The one line of a graph error that says what is wrong with the image."""
    lines = err.message.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("assertion failed: ["):
            reason = line.removeprefix("assertion failed: [").removesuffix("]")
            reason = reason.removeprefix("classify_images: ")
            return reason.replace("bytes of image 0:", "bytes:").replace("image 0 is", "image is")
        if line.lstrip().startswith("[[{{node") and i > 0:
            return f"could not decode image bytes: {lines[i - 1].strip()}"
    return f"could not decode image bytes: {lines[0] if lines else err}"


def classify_files(classify, paths, *, warn=None) -> list[dict]:
    """Judge image files one by one with an export's ``classify_images`` signature.

    Each file is decoded first by the one decoder of ``data import``
    (:func:`tfrecap.data.decode.decode_rgb`, format from the content), so predict reads the
    same formats, and judges the same pixels, as import stores. Bytes the graph decodes to
    those very pixels go to it as they are; others (WebP, TIFF, BMP, CMYK, 16-bit grey, ...)
    as lossless PNG of the decoded pixels.

    Args:
        classify: the loaded signature, ``tf.saved_model.load(dir).signatures["classify_images"]``.
        paths: image files (JPEG, PNG, WebP, BMP or TIFF, at least S×S).
        warn: called with one line naming the file when its pixels had to be converted to
            8-bit RGB (16-bit, CMYK, ...); the line also goes into the result as ``warning``.

    Returns:
        One dict per path, in order: ``{"path", "label" ("original" or "recaptured"),
        "recaptured_probability", "patch_count", "threshold"}`` (``"threshold"`` only from
        exports that return it; ``"warning"`` after a conversion),
        or ``{"path", "error"}`` when the file is missing, unreadable, not an image or
        smaller than S×S.
    """
    results = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            results.append({"path": str(path), "error": "file not found"})
            continue
        except OSError as err:
            results.append({"path": str(path), "error": f"cannot read: {err.strerror or err}"})
            continue
        try:
            decoded = decode_rgb(data)
        except BadImageError as err:
            results.append({"path": str(path), "error": f"could not decode image bytes: {err}"})
            continue
        warning = None
        if decoded.conversion:
            warning = f"{path}: {decoded.format} converted to 8-bit RGB: {decoded.conversion}"
            if warn:
                warn(warning)
        try:
            out = classify(image_bytes=tf.constant([serving_bytes(data, decoded)]))
        except tf.errors.InvalidArgumentError as err:
            results.append({"path": str(path), "error": _reason(err)})
            continue
        result = {
            "path": str(path),
            "label": "recaptured" if int(out["label"][0]) == 1 else "original",
            "recaptured_probability": float(out["recaptured_probability"][0]),
            "patch_count": int(out["patch_count"][0]),
        }
        if "threshold" in out:  # exports older than the calibrated verdict have none
            result["threshold"] = float(out["threshold"][0])
        if warning:
            result["warning"] = warning
        results.append(result)
    return results


def load_config_asset(version_dir: str | Path) -> dict:
    """The run config stored in an export (``{}`` if there is none)."""
    path = Path(version_dir) / "assets" / CONFIG_ASSET
    return json.loads(path.read_text()) if path.exists() else {}


def load_guard_asset(version_dir: str | Path) -> dict:
    """The robustness guard's summary stored in an export (``{}`` if the run had no guard)."""
    path = Path(version_dir) / "assets" / GUARD_ASSET
    return json.loads(path.read_text()) if path.exists() else {}


def load_verdict(version_dir: str | Path) -> Verdict:
    """The verdict stored in an export; the default :class:`Verdict` for an older export
    without one (those cut the mean tile probability at 0.5).

    Raises:
        ValueError: naming the file, when the stored verdict is not valid JSON or not a
            valid verdict.
    """
    path = Path(version_dir) / "assets" / VERDICT_ASSET
    if not path.exists():
        return Verdict()
    try:
        return Verdict.from_dict(json.loads(path.read_text()))
    except ValueError as err:  # json.JSONDecodeError is a ValueError too
        raise ValueError(f"{path}: not a valid tfrecap verdict: {err}") from err
