"""Strategy construction for ``[train] strategy`` (DESIGN.md, "Distribution").

* ``"default"``: ``tf.distribute.get_strategy()``, the no-op default strategy.
* ``"mirrored"``: ``tf.distribute.MirroredStrategy()`` over all local GPUs (one CPU
  device on a machine without GPUs).
* ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy()``, configured by
  the ``TF_CONFIG`` environment variable, which every worker sets to the same
  ``cluster`` and its own ``task`` index. Two workers::

      # on host1
      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}' tfrecap train ...
      # on host2: the same, with "index": 1

  Every worker runs the same command. Worker 0 is the chief: only it writes the
  export, ``config.json``, ``history.json`` and checkpoints into the run directory.
  Checkpoint saving is a collective operation, so every worker must save: the
  non-chief workers write theirs to a temporary directory that is deleted
  afterwards (the TF multi-worker Keras tutorial's pattern); see
  :func:`checkpoint_dir` and :func:`is_chief`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import tensorflow as tf

STRATEGY_NAMES = ("default", "mirrored", "multi_worker")


class StrategyError(ValueError):
    """A strategy that cannot be built as configured (e.g. a bad ``TF_CONFIG``)."""


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named ``name`` (one of :data:`STRATEGY_NAMES`)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise StrategyError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGY_NAMES)}")


def _check_tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')
    if not raw:
        raise StrategyError(
            "strategy 'multi_worker' needs the TF_CONFIG environment variable, e.g. "
            f"TF_CONFIG='{example}'"
        )
    try:
        conf = json.loads(raw)
        workers = conf["cluster"]["worker"]
        task = conf["task"]
        index = int(task["index"])
        if not isinstance(workers, list) or not workers or task["type"] not in (
            "worker", "chief"
        ) or not 0 <= index < len(workers) + ("chief" in conf["cluster"]):
            raise ValueError("inconsistent cluster/task")
    except (ValueError, KeyError, TypeError) as err:
        raise StrategyError(
            f"TF_CONFIG is malformed ({err}); expected e.g. TF_CONFIG='{example}'"
        ) from None
    return conf


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def checkpoint_dir(strategy: tf.distribute.Strategy, wanted: str | Path) -> Path:
    """``wanted`` on the chief; a fresh temporary directory on the other workers."""
    if is_chief(strategy):
        return Path(wanted)
    return Path(tempfile.mkdtemp(prefix="tfrecap_worker_ckpt_"))


def skip_symbolic_build(model) -> None:
    """Work around Keras 3.15 under ``MultiWorkerMirroredStrategy``.

    ``fit`` calls ``_maybe_symbolic_build``, which reduces the first distributed
    batch with ``strategy.reduce("MEAN", PerReplica)``; with one local replica per
    worker that raises "Attempt to convert a value (PerReplica ...)". Our models
    and optimizers are built before ``fit`` (see ``training.build_model``), so the
    symbolic build is not needed and is skipped here.
    """
    model._maybe_symbolic_build = lambda *args, **kwargs: None
