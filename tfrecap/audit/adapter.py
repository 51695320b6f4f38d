"""Any detector as tfrecap's attacks see one: float32 images in [0, 255] → logits ``[N, 2]``.

A user's own detector takes its own pixel range and returns its own kind of output. The
attacks and :func:`tfrecap.evaluation.evaluate` need one contract (DESIGN.md): float32 RGB
``[N, S, S, 3]`` in [0, 255] in, float32 logits ``[N, 2]`` out, class 1 = recaptured, and
gradients all the way back to the pixels. :func:`load_audited_model` loads the detector and
wraps it in an :class:`AuditedModel` that keeps that contract:

* **Input range**, inside the graph (so differentiable): our x ∈ [0, 255] becomes x / 255
  for ``0-1``, x / 127.5 − 1 for ``-1-1``, and stays x for ``0-255``. Exact at the ends:
  0 and 255 map to exactly the range's bounds.
* **Output**, as two logits whose argmax is the model's verdict, with recaptured index r:
  - ``logits`` (C ≥ 2): ``[max_{k≠r} z_k, z_r]``, the recaptured logit against the best
    other one; for C = 2 and r = 1 that is the model's own logits.
  - ``probabilities`` (C ≥ 2): ``[0, m]`` with ``m = log p_r − log max_{k≠r} p_k``. For two
    classes this is ``log p_r − log(1 − p_r)``, but taken from the model's own p_other, which
    keeps a gradient where ``1 − p_r`` has rounded to 0 in float32 and p_other has not.
  - ``sigmoid`` (one output p, recaptured above 0.5 for r = 1, below it for r = 0):
    ``[0, m]`` with ``m = log p − log1p(−p)`` (negated for r = 0).
  - Probabilities are clipped to ``[tiny, 1 − 2⁻²⁴]`` (float32) before the logarithms, so
    m stays finite. Inside that interval the clip passes gradients unchanged; only a
    probability that is exactly 0 or 1.0 in float32 is saturated: it has no gradient (the
    model's own sigmoid or softmax gradient is already 0 there), its m is a constant ±16.6
    or so, and the attacks count it as a zero-gradient image, which the report's
    zero-gradient check shows.
* **Pre-activation logits where the model has them**: a ``.keras`` model whose output layer
  ends in the sigmoid (for ``--output sigmoid``) or the softmax (for ``probabilities``) is
  attacked on the logits before it, which never saturate: a last ``Activation``/``Softmax``
  layer is cut off, and a layer with ``activation=`` gets a linear one in this loaded copy.
  A SavedModel's graph is opaque here, so its probabilities are inverted as above.

The model is checked at load time, by its declared input shape and by a probe call on a batch
of two zero images; anything that does not fit raises one :class:`AuditError` naming what was
expected and what was found.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrecap.audit import INPUT_RANGES, OUTPUT_KINDS

DEFAULT_SIGNATURE = "serving_default"

_TINY = float(np.finfo(np.float32).tiny)
_ONE_BELOW = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
_PROBE_BATCH = 2

# Our [0, 255] → the model's range: x / divisor + offset (a division, so 255 → 1.0 exactly).
_RANGE_MAPS = {"0-255": (1.0, 0.0), "0-1": (255.0, 0.0), "-1-1": (127.5, -1.0)}

# The activation that --output names, when a Keras model's last layer applies it.
_ACTIVATION_OF = {"sigmoid": "sigmoid", "probabilities": "softmax"}


class AuditError(ValueError):
    """A model that cannot be audited as given: the message names what was expected."""


class AuditedModel:
    """A foreign detector as tfrecap's attacks see it: images [0, 255] → logits ``[N, 2]``.

    Call it as ``model(images, training=False)``, like a Keras model, so that
    :func:`tfrecap.evaluation.run.logits_fn_of` takes it as it is.

    Attributes:
        patch_size: S, the side of the square patches it judges.
        meta: how it was loaded (path, signature, input range, output kind, recaptured index,
            S, what the attacks differentiate), for the report's ``audit`` block.
    """

    def __init__(self, call: Callable, *, patch_size: int, input_range: str, output: str,
                 recaptured_index: int, meta: dict, keep=None):
        self._call = call
        self._keep = keep  # a loaded SavedModel must outlive the signature taken from it
        self.patch_size = patch_size
        self.input_range = input_range
        self.output = output  # what the wrapped call returns: logits, probabilities, sigmoid
        self.recaptured_index = recaptured_index
        self.meta = meta

    def model_inputs(self, images) -> tf.Tensor:
        """Our float32 pixels in [0, 255], mapped to the model's input range."""
        divisor, offset = _RANGE_MAPS[self.input_range]
        x = tf.ensure_shape(tf.cast(images, tf.float32),
                            [None, self.patch_size, self.patch_size, 3])
        return x if divisor == 1.0 else x / divisor + offset

    def model_outputs(self, images) -> tf.Tensor:
        """The wrapped model's own float32 output on our images (range mapped)."""
        return tf.cast(self._call(self.model_inputs(images)), tf.float32)

    # Nothing here branches on a tensor; AutoGraph would only re-parse this code, and the Keras
    # model below it, on every trace of an attack (measured: 30 s for one PGD trace on 2 cores).
    @tf.autograph.experimental.do_not_convert
    def __call__(self, images, training=False) -> tf.Tensor:
        del training  # a foreign model is always judged in inference mode
        return two_class_logits(self.model_outputs(images), self.output, self.recaptured_index)


def two_class_logits(outputs, output: str, recaptured_index: int) -> tf.Tensor:
    """``[N, 2]`` logits (class 1 = recaptured) from a model's outputs (module doc)."""
    outputs = tf.cast(outputs, tf.float32)
    r = recaptured_index
    if output == "sigmoid" or output == "sigmoid_logit":
        z = tf.reshape(outputs, [-1])
        if output == "sigmoid":
            p = tf.clip_by_value(z, _TINY, _ONE_BELOW)
            z = tf.math.log(p) - tf.math.log1p(-p)
        margin = z if r == 1 else -z
        return tf.stack([tf.zeros_like(margin), margin], axis=-1)
    others = tf.one_hot(r, tf.shape(outputs)[-1], on_value=True, off_value=False,
                        dtype=tf.bool)[tf.newaxis]
    best_other = tf.reduce_max(tf.where(others, tf.constant(-np.inf, tf.float32), outputs),
                               axis=-1)
    if output == "logits":
        return tf.stack([best_other, outputs[:, r]], axis=-1)
    p_r = tf.clip_by_value(outputs[:, r], _TINY, _ONE_BELOW)
    p_other = tf.clip_by_value(best_other, _TINY, _ONE_BELOW)
    margin = tf.math.log(p_r) - tf.math.log(p_other)
    return tf.stack([tf.zeros_like(margin), margin], axis=-1)


def load_audited_model(
    path: str | Path,
    *,
    signature: str | None = None,
    input_key: str | None = None,
    output_key: str | None = None,
    input_range: str = "0-255",
    output: str = "logits",
    recaptured_index: int = 1,
    patch_size: int | None = None,
) -> AuditedModel:
    """Load a SavedModel directory or a ``.keras`` file as an :class:`AuditedModel`.

    Args:
        path: a SavedModel directory (or a TF-Serving root of numbered versions: the highest
            is used), or a ``.keras`` file.
        signature: the SavedModel signature to judge (default ``serving_default``); not for
            ``.keras`` files.
        input_key: the signature's image input, needed when it has several inputs.
        output_key: the signature's output to judge, needed when it has several outputs.
        input_range: the pixel range the model expects, one of :data:`INPUT_RANGES`.
        output: what it returns, one of :data:`OUTPUT_KINDS`.
        recaptured_index: which output means "recaptured" (for ``sigmoid``: 1 when the
            output is the probability of recaptured, 0 when it is that of original).
        patch_size: S, for a model whose input size is dynamic; must match a fixed one.

    Raises:
        AuditError: the file cannot be loaded, or its input or output does not fit; the
            message names what was expected and what was found.
    """
    if input_range not in INPUT_RANGES:
        raise AuditError(f"input range {input_range!r} unknown; known: {', '.join(INPUT_RANGES)}")
    if output not in OUTPUT_KINDS:
        raise AuditError(f"output kind {output!r} unknown; known: {', '.join(OUTPUT_KINDS)}")
    if patch_size is not None and patch_size < 1:
        raise AuditError(f"patch size must be positive, got {patch_size}")
    path = Path(path)
    if path.is_dir():
        call, shape, dtype, keep, meta = _load_saved_model(
            path, signature or DEFAULT_SIGNATURE, input_key, output_key)
        kind = output
    elif path.is_file() and path.suffix == ".keras":
        for flag, value in (("--signature", signature), ("--input-key", input_key),
                            ("--output-key", output_key)):
            if value is not None:
                raise AuditError(f"{flag} applies to a SavedModel; {path} is a .keras file")
        call, shape, dtype, keep, meta, kind = _load_keras(path, output)
    elif path.exists():
        raise AuditError(f"{path} is neither a SavedModel directory nor a .keras file")
    else:
        raise AuditError(f"{path} does not exist")
    where = meta["model"] + (f" (signature {meta['signature']!r}, input {meta['input_key']!r})"
                             if "signature" in meta else "")
    if not dtype.is_floating:
        raise AuditError(f"{where} takes {dtype.name} images; expected float pixels "
                         "(the attacks take gradients through them)")
    size = _patch_size(shape, patch_size, where)
    if kind in ("probabilities", "sigmoid"):
        meta["attacked"] += (", its probabilities inverted to a logit margin (saturated, "
                             "without gradient, where a probability is exactly 0 or 1)")
    model = AuditedModel(
        (lambda x: call(tf.cast(x, dtype))), patch_size=size, input_range=input_range,
        output=kind, recaptured_index=recaptured_index, keep=keep,
        meta={**meta, "input_range": input_range, "output": output,
              "recaptured_index": recaptured_index, "patch_size": size},
    )
    _probe(model, where, output, recaptured_index)
    return model


def _patch_size(shape: tf.TensorShape, patch_size: int | None, where: str) -> int:
    """S from the model's declared input shape, or ``patch_size`` when that is dynamic."""
    expected = "images [N, S, S, 3] (NHWC, 3 colour channels, square)"
    if shape.rank != 4:
        raise AuditError(f"{where} takes input of shape {_shape(shape)}; expected {expected}")
    _, height, width, channels = shape.as_list()
    if channels not in (None, 3):
        raise AuditError(f"{where} takes {channels} channels (input shape {_shape(shape)}); "
                         f"expected {expected}")
    if height is not None and width is not None and height != width:
        raise AuditError(f"{where} takes {height}x{width} images, not square (input shape "
                         f"{_shape(shape)}); expected {expected}")
    fixed = height if height is not None else width
    if fixed is None:
        if patch_size is None:
            raise AuditError(f"{where} takes images of any size (input shape "
                             f"{_shape(shape)}); pass --patch-size S")
        return patch_size
    if patch_size is not None and patch_size != fixed:
        raise AuditError(f"--patch-size {patch_size} does not match {where}, which takes "
                         f"{fixed}x{fixed} images (input shape {_shape(shape)})")
    return fixed


def _probe(model: AuditedModel, where: str, output: str, recaptured_index: int) -> None:
    """Call the model on two zero images and check the output's shape against ``output``."""
    s = model.patch_size
    probe = f"a batch of {_PROBE_BATCH} zero images [{_PROBE_BATCH}, {s}, {s}, 3]"
    try:
        found = model.model_outputs(tf.zeros([_PROBE_BATCH, s, s, 3], tf.float32))
    except (tf.errors.OpError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AuditError(f"{where} failed on {probe}: {first}") from None
    shape = found.shape.as_list()
    if output == "sigmoid":
        if shape not in ([_PROBE_BATCH], [_PROBE_BATCH, 1]):
            raise AuditError(f"{where} returned shape {shape} on {probe}; expected one "
                             f"sigmoid output per image, [{_PROBE_BATCH}, 1] (--output "
                             "sigmoid)" + _width_hint(shape))
        if recaptured_index not in (0, 1):
            raise AuditError(f"--recaptured-index {recaptured_index} with --output sigmoid: "
                             "expected 1 (the output is P(recaptured)) or 0 (P(original))")
        return
    if len(shape) != 2 or shape[0] != _PROBE_BATCH or shape[1] < 2:
        hint = (" (one output per image: --output sigmoid?)"
                if len(shape) == 2 and shape == [_PROBE_BATCH, 1] else "")
        raise AuditError(f"{where} returned shape {shape} on {probe}; expected "
                         f"[{_PROBE_BATCH}, C] with C ≥ 2 {output} (--output {output}){hint}")
    if not 0 <= recaptured_index < shape[1]:
        raise AuditError(f"--recaptured-index {recaptured_index} is out of range: {where} "
                         f"returns {shape[1]} {output} (indices 0..{shape[1] - 1})")


def _width_hint(shape) -> str:
    if len(shape) == 2 and shape[0] == _PROBE_BATCH and shape[1] >= 2:
        return f" ({shape[1]} outputs: --output logits or probabilities?)"
    return ""


def _shape(shape: tf.TensorShape) -> str:
    return "unknown" if shape.rank is None else str(tuple(shape.as_list())).replace("None", "N")


def _choose(what: str, flag: str, key: str | None, specs: dict, where: str) -> str:
    """The one input or output of a signature: ``key``, or the only one."""
    listed = ", ".join(f"{k} {_shape(getattr(v, 'shape', tf.TensorShape(None)))}"
                       for k, v in sorted(specs.items()))
    if key is not None:
        if key not in specs:
            raise AuditError(f"{where} has no {what} {key!r}; its {what}s: {listed}")
        return key
    if len(specs) != 1:
        raise AuditError(f"{where} has {len(specs)} {what}s ({listed}); pass {flag} to choose "
                         "one")
    return next(iter(specs))


def _load_saved_model(path: Path, signature: str, input_key, output_key):
    from tfrecap.export import latest_version_dir

    try:
        version_dir = latest_version_dir(path)
    except FileNotFoundError as err:
        raise AuditError(str(err)) from None
    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as err:  # noqa: BLE001 - any failure to load is the user's file
        raise AuditError(f"cannot load the SavedModel {version_dir}: {err}") from None
    signatures = getattr(loaded, "signatures", {})
    if signature not in signatures:
        known = ", ".join(sorted(signatures)) or "none"
        raise AuditError(f"{version_dir} has no signature {signature!r}; its signatures: "
                         f"{known}")
    function = signatures[signature]
    where = f"{version_dir} signature {signature!r}"
    inputs = dict(function.structured_input_signature[1])
    outputs = function.structured_outputs
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    in_key = _choose("input", "--input-key", input_key, inputs, where)
    out_key = _choose("output", "--output-key", output_key, outputs, where)
    spec = inputs[in_key]

    def call(x):
        return function(**{in_key: x})[out_key]

    meta = {"model": str(version_dir), "format": "savedmodel", "signature": signature,
            "input_key": in_key, "output_key": out_key, "attacked": "the signature's output"}
    return call, spec.shape, spec.dtype, loaded, meta


def _load_keras(path: Path, output: str):
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - any failure to load is the user's file
        raise AuditError(f"cannot load the Keras model {path}: {err}") from None
    where = str(path)
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) != 1:
        raise AuditError(f"{where} has {len(inputs)} inputs; expected one, images "
                         "[N, S, S, 3]")
    if len(outputs) != 1:
        raise AuditError(f"{where} has {len(outputs)} outputs; expected one")
    kind, attacked = output, "the model's output"
    activation = _ACTIVATION_OF.get(output)
    last = _output_layer(model)
    if activation is not None and last is not None:
        if _is_activation_layer(last, activation):
            # The last layer only applies the activation: judge the tensor that enters it.
            model = keras.Model(model.inputs, last.input)
            kind, attacked = _pre_activation(output), f"the input of layer {last.name!r}"
        elif getattr(getattr(last, "activation", None), "__name__", None) == activation:
            # Our private copy of the model: nothing else sees the swapped activation.
            last.activation = keras.activations.linear
            kind = _pre_activation(output)
            attacked = f"layer {last.name!r} before its {activation}"
    meta = {"model": str(path), "format": "keras", "attacked": attacked}
    spec = inputs[0]
    return ((lambda x: model(x, training=False)), tf.TensorShape(spec.shape),
            tf.as_dtype(spec.dtype), None, meta, kind)


def _pre_activation(output: str) -> str:
    return "sigmoid_logit" if output == "sigmoid" else "logits"


def _output_layer(model):
    history = getattr(model.outputs[0], "_keras_history", None)
    if history is not None:
        return history[0]
    return model.layers[-1] if getattr(model, "layers", None) else None


def _is_activation_layer(layer, activation: str) -> bool:
    import keras

    if activation == "softmax" and isinstance(layer, keras.layers.Softmax):
        return getattr(layer, "axis", -1) in (-1, [-1])
    return (isinstance(layer, keras.layers.Activation)
            and getattr(layer.activation, "__name__", None) == activation)
