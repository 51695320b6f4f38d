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
  use this one: attacking probabilities invites saturated gradients.

The exported graph holds inference only (the detector, called with
``training=False``); the resolved run config is stored as the asset
``assets/tfrecap_config.json``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

CONFIG_ASSET = "tfrecap_config.json"


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


def export_detector(detector: keras.Model, export_root: str | Path, config=None) -> Path:
    """Export ``detector`` (images → logits) to ``export_root/NEXT_VERSION``.

    Args:
        detector: a built Keras model mapping float32 ``[N, S, S, 3]`` pixels to 2 logits.
        export_root: the model's folder, e.g. ``saved_models/secure_64``.
        config: a :class:`tfrecap.config.PipelineConfig` (or dict) stored as an asset.

    Returns:
        The version folder written.
    """
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

    with tempfile.TemporaryDirectory(dir=export_root, prefix=".tmp-export-") as staging:
        staging = Path(staging)
        config_file = staging / CONFIG_ASSET
        payload = config.to_dict() if hasattr(config, "to_dict") else (config or {})
        config_file.write_text(json.dumps(payload, indent=2, sort_keys=True))
        # An Asset reachable from the exported object graph is copied into
        # assets/ by the SavedModel writer; ExportArchive has no public hook for
        # non-variable objects, so attach it to the archive's root trackable.
        archive._tf_trackable.tfrecap_config = tf.saved_model.Asset(str(config_file))
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


def load_config_asset(version_dir: str | Path) -> dict:
    """The run config stored in an export (``{}`` if there is none)."""
    path = Path(version_dir) / "assets" / CONFIG_ASSET
    return json.loads(path.read_text()) if path.exists() else {}


def remove_failed_exports(export_root: str | Path) -> None:
    """Delete staging folders that a killed export left behind."""
    for staging in Path(export_root).glob(".tmp-export-*"):
        shutil.rmtree(staging, ignore_errors=True)
