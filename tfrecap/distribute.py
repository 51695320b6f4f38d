"""Strategy construction for ``[train] strategy`` (DESIGN.md, "Distribution").

* ``"default"``: ``tf.distribute.get_strategy()``, the no-op default strategy.
* ``"mirrored"``: ``tf.distribute.MirroredStrategy()`` over all local GPUs (one CPU
  device on a machine without GPUs).
* ``"multi_worker"``: :class:`MultiWorkerMirroredStrategy` (a
  ``tf.distribute.MultiWorkerMirroredStrategy`` that Keras 3 ``fit`` can use, see
  there), configured by the ``TF_CONFIG`` environment variable, which every worker
  sets to the same ``cluster`` and its own ``task`` index. Two workers::

      # on host1
      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}' tfrecap train ...
      # on host2: the same, with "index": 1

  Every worker runs the same command. Worker 0 is the chief: only it writes the
  export, ``config.json``, ``history.json``, TensorBoard logs and checkpoints into
  the run directory. Checkpoint saving is a collective operation, so every worker
  must save: the non-chief workers write theirs to a temporary directory that is
  deleted afterwards (the TF multi-worker Keras tutorial's pattern); see
  :func:`checkpoint_dir` and :func:`is_chief`. Resuming reads the chief's
  checkpoints, so the run directory must be one that every worker sees (a shared
  file system); :func:`check_same_step` stops a run whose workers would start
  from different steps.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import tensorflow as tf

from tfrecap.names import STRATEGY_NAMES


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
        return MultiWorkerMirroredStrategy()
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


def check_same_step(strategy: tf.distribute.Strategy, step: int) -> None:
    """Raise on every worker unless all workers of ``strategy`` are at ``step``.

    A collective (every worker must call it at the same point). Workers that
    restored different checkpoints would otherwise run different numbers of
    steps and hang in the first unmatched all-reduce.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    steps = strategy.gather(tf.constant([step], tf.int64), axis=0).numpy().tolist()
    if len(set(steps)) > 1:
        raise StrategyError(
            f"the workers would resume from different steps {steps}: every worker must "
            "see the chief's run directory (put --run-dir on a shared file system), or "
            "start again with a fresh --run-dir"
        )


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``tf.distribute.MultiWorkerMirroredStrategy`` whose ``reduce`` Keras 3 ``fit`` can use.

    Keras 3.15 ``fit`` fails under the stock strategy with two or more workers,
    in two calls to the public ``Strategy.reduce`` that the stock strategy
    rejects (Keras takes both paths only in multi-worker mode):

    1. **Every step** (the error "Invalid reduction dimension 0 for input with 0
       dimensions"). ``keras/src/backend/tensorflow/trainer.py``,
       ``reduce_per_replica`` with ``reduction="auto"`` (= ``"mean"``), which
       ``one_step_on_data`` applies to the logs that ``train_step`` and
       ``test_step`` return, calls ``strategy.reduce("MEAN", v, axis=0)`` in
       multi-worker mode. Logs are metric results, i.e. scalars, and a scalar
       has no axis 0. (Keras' single-worker branch takes a plain mean over the
       replicas instead; tensorflow/tensorflow#72388 reports the same failure.)
       Here a rank-0 value is reduced with ``axis=None``: the mean over the
       replicas, which is what the single-worker branch computes.
    2. **Once per fit/evaluate call** ("Attempt to convert a value (PerReplica
       ...) with an unsupported type"). ``_maybe_symbolic_build`` passes the
       first distributed batch, an ``(images, labels)`` tuple of ``PerReplica``
       values, to ``strategy.reduce("MEAN", batch, axis=None)`` to learn its
       shapes; the collective implementation takes one value, not a tuple.
       Here a nested structure is reduced leaf by leaf. That costs one
       all-reduce of one batch per ``fit``/``evaluate`` call.

    Both only widen what ``reduce`` accepts: every call that the stock strategy
    accepts is passed through unchanged.
    """

    def reduce(self, reduce_op, value, axis):
        leaves = tf.nest.flatten(value)
        if len(leaves) != 1 or leaves[0] is not value:
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        if axis is not None and all(
            getattr(v, "shape", None) is not None and v.shape.rank == 0
            for v in self.experimental_local_results(value)
        ):
            axis = None
        return super().reduce(reduce_op, value, axis)
