"""Audit a detector that tfrecap did not make: ``tfrecap audit MODEL``.

:mod:`~tfrecap.audit.adapter` turns a foreign SavedModel or ``.keras`` file into what the
attacks and :func:`tfrecap.evaluation.evaluate` take: a callable float32 images ``[N, S, S, 3]``
in [0, 255] → float32 logits ``[N, 2]`` (class 1 = recaptured), with its patch size S.

The name tables below are TensorFlow-free, so that the CLI builds its ``click.Choice`` lists
and answers ``--help`` without loading TensorFlow; the adapter's names are imported on first
use.
"""

INPUT_RANGES = ("0-255", "0-1", "-1-1")
"""Pixel ranges a foreign model may expect; ours, [0, 255], is mapped onto it in the graph."""

OUTPUT_KINDS = ("logits", "probabilities", "sigmoid")
"""What a foreign model returns: C ≥ 2 logits, C ≥ 2 probabilities, or one sigmoid output."""

_ADAPTER_NAMES = ("AuditError", "AuditedModel", "load_audited_model")


def __getattr__(name):
    if name in _ADAPTER_NAMES:
        from tfrecap.audit import adapter

        value = globals()[name] = getattr(adapter, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["INPUT_RANGES", "OUTPUT_KINDS", *_ADAPTER_NAMES]
