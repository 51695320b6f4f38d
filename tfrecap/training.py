"""Run a training pipeline: data → SecureForensicModel.fit → checkpoints → export.

One function, :func:`train`, does the whole job for ``tfrecap train``. What it
guarantees:

* **Resume.** Checkpoints (every model variable, BatchNorm statistics and the
  fusion RNG included; optimizer state and step counter) are written every
  ``train.checkpoint_every`` steps by ``tf.train.CheckpointManager`` (`make_checkpoint`).
  Rerunning the same command after a crash or a kill restores the newest one and
  continues; the step counter is ``optimizer.iterations``, so nothing is counted
  twice and the run ends at exactly ``train.steps``.
* **Records.** The resolved config (``config.json``), TensorBoard logs
  (``logs/``) and the per-epoch history (``history.json``, appended across
  resumes) live in the run directory.
* **Distribution.** ``train.strategy`` picks a ``tf.distribute`` strategy
  (:func:`tfrecap.distribute.make_strategy`); model, optimizer and checkpoint are
  built under its scope and Keras distributes the datasets. ``train.batch_size`` is
  the *global* batch: each of N replicas gets ``batch_size / N`` images, and the
  fusion step makes the first ``k·local/global`` images of each replica
  adversarial (``k`` = ``defence.fusion_count``). XLA is off under a strategy.
  ``model.synchronized_batchnorm`` makes BatchNorm use the global batch's
  statistics (an all-reduce per BatchNorm layer and pass) instead of each
  replica's.
* **Multi-worker** (``multi_worker``, see :mod:`tfrecap.distribute`). The training
  and validation sets are sharded by DATA: every worker reads every file, and of
  each global batch keeps its own replicas' slices, so the workers together see
  exactly the batches that one device would (FILE sharding would not, and can
  leave a worker with no files: a split has only a few shards). Only the chief (worker 0) writes
  ``config.json``, the history, TensorBoard logs, the run-dir checkpoints and the
  export; the other workers save their (collective) checkpoints to a temporary
  directory that is deleted at the end. Resuming reads the chief's checkpoints,
  so the run directory must be on a file system that every worker sees.
* **Export.** At the end the detector (inference only) is exported to
  ``EXPORT_DIR/VERSION`` by :func:`tfrecap.export.export_detector`.

An "epoch" here is ``checkpoint_every`` steps: Keras's progress bar, the
validation pass and the checkpoint all happen at that cadence.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from tfrecap.config import PipelineConfig

HISTORY_SCHEMA_VERSION = 1


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did."""

    run_dir: Path
    steps_done: int
    resumed_from_step: int  # 0 when the run started fresh
    history: list[dict]
    export_path: Path | None
    seconds: float
    model: keras.Model | None = None  # the trained SecureForensicModel


def resolve_precision(precision: str) -> str:
    """``auto`` means mixed_float16 on a GPU and float32 on CPU (DESIGN.md, Mixed precision)."""
    if precision != "auto":
        return precision
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def resolve_jit_compile(jit_compile: str, strategy: str = "default") -> bool:
    """XLA is on by default on GPU only: on CPU it halved a tf.function FGSM's speed."""
    if jit_compile == "on":
        return True
    if jit_compile == "off" or strategy != "default":
        return False
    return bool(tf.config.list_physical_devices("GPU"))


def build_optimizer(config: PipelineConfig) -> keras.optimizers.Optimizer:
    """Adam (or SGD), lr x decay_rate every decay_steps, staircase (paper Sec. 4)."""
    t = config.train
    schedule = keras.optimizers.schedules.ExponentialDecay(
        t.learning_rate, decay_steps=t.lr_decay_steps, decay_rate=t.lr_decay_rate, staircase=True
    )
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9)
    return keras.optimizers.Adam(schedule)


def build_model(config: PipelineConfig, precision: str = "float32", jit_compile: bool = False):
    """The compiled SecureForensicModel for ``config`` (built, optimizer built)."""
    from tfrecap.models import SecureForensicModel, build_detector

    size = config.data.patch_size
    m, s = config.model, config.defence
    detector = build_detector(
        input_shape=(size, size, 3),
        widths=m.widths,
        batchnorm=m.batchnorm,
        synchronized_batchnorm=m.synchronized_batchnorm,
        bn_momentum=m.bn_momentum,
        dtype=precision,
    )
    model = SecureForensicModel(
        detector,
        penalty_weight=s.penalty_weight,
        fusion_count=s.fusion_count,
        fusion_weight=s.fusion_weight,
        eps_min=s.eps_min,
        eps_max=s.eps_max,
        attack_batchnorm=s.attack_batchnorm,
        seed=config.train.seed,
        dtype=precision,
    )
    model.compile(optimizer=build_optimizer(config), jit_compile=jit_compile)
    model(tf.zeros((1, size, size, 3)))
    model.optimizer.build(model.trainable_variables)
    return model


class _CheckpointEveryEpoch(keras.callbacks.Callback):
    """Save a checkpoint and append the epoch's logs to history.json, both atomically."""

    def __init__(self, manager: tf.train.CheckpointManager, history_path: Path, history: list,
                 write_history: bool = True):
        super().__init__()
        self.write_history = write_history
        self.manager = manager
        self.history_path = history_path
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        self.manager.save(checkpoint_number=step)
        record = {"epoch": epoch + 1, "step": step, "time": time.time()}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        self.history.append(record)
        if not self.write_history:
            return
        _write_json_atomic(
            self.history_path, {"schema_version": HISTORY_SCHEMA_VERSION, "epochs": self.history}
        )


def train(
    config: PipelineConfig,
    *,
    data_dir: str | Path,
    run_dir: str | Path,
    export_dir: str | Path | None = None,
    verbose: int = 1,
    extra_callbacks: list | None = None,
    log=print,
) -> TrainResult:
    """Train ``config`` on its dataset, resuming from ``run_dir`` if it holds checkpoints.

    Args:
        config: the resolved pipeline.
        data_dir: TFDS data directory holding ``config.data.dataset``.
        run_dir: checkpoints, logs, history and the resolved config go here.
        export_dir: SavedModel root; ``None`` skips the export.
        verbose: Keras ``fit`` verbosity (1 = progress bar).
        extra_callbacks: more Keras callbacks (e.g. adversarial evaluation).
        log: where human-readable status lines go.

    Returns:
        A :class:`TrainResult`.
    """
    from tfrecap.data.catalog import load_builder
    from tfrecap.data.pipeline import make_dataset

    started = time.time()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.train.seed)

    precision = resolve_precision(config.train.precision)
    jit = resolve_jit_compile(config.train.jit_compile, config.train.strategy)
    from tfrecap.distribute import check_same_step, checkpoint_dir, is_chief, make_strategy

    strategy = make_strategy(config.train.strategy)
    chief = is_chief(strategy)
    _check_resumable(run_dir / "config.json", config)
    if chief:
        _write_json_atomic(run_dir / "config.json", config.to_dict())

    t = config.train
    train_ds = make_dataset(
        data_dir, config.data.dataset, "train", t.batch_size, training=True, seed=t.seed,
        repeat=True,
    )
    val_ds = make_dataset(data_dir, config.data.dataset, "validation", t.batch_size, training=False)
    # An explicit count: the interleaved dataset's cardinality is unknown, and
    # Keras warns that it "ran out of data" when left to find the end itself.
    splits = load_builder(data_dir, config.data.dataset).info.splits
    val_examples = splits["validation"].num_examples
    val_steps = math.ceil(val_examples / t.batch_size)
    if t.validation_steps:
        val_steps = min(val_steps, t.validation_steps)
    _check_patch_size(train_ds, config)
    if t.strategy != "default":
        # Under a strategy Keras keeps the validation iterator across epochs and
        # raises StopIteration at the second pass; repeating the batched set
        # gives every pass the same val_steps batches (one full pass).
        val_ds = val_ds.repeat()
    if t.strategy == "multi_worker":
        train_ds, val_ds = shard_by_data(train_ds), shard_by_data(val_ds)

    with strategy.scope():
        model = build_model(config, precision=precision, jit_compile=jit)
        checkpoint = make_checkpoint(model)
    # Resume always reads the chief's checkpoints (a shared run dir under multi_worker).
    chief_ckpt = run_dir / "checkpoints"
    latest = tf.train.latest_checkpoint(str(chief_ckpt))
    resumed_from = 0
    if latest:
        complete = restore_checkpoint(model, checkpoint, latest, log)
        resumed_from = _step(model)
        log(f"Resumed from step {resumed_from} ({latest}).")
        if not complete and resumed_from >= t.steps:
            # Nothing left to train: the model would keep fresh BatchNorm statistics.
            raise ValueError(
                f"{latest} is a finished run from an older tfrecap without BatchNorm "
                f"statistics; train on (--steps more than {resumed_from}) so they settle, "
                "or retrain in a new --run-dir")
    check_same_step(strategy, resumed_from)
    # Every worker saves (saving is collective); non-chief workers to a temp dir.
    ckpt_dir = checkpoint_dir(strategy, chief_ckpt)
    if not chief:
        log(f"Not the chief: checkpoints go to the temporary {ckpt_dir}; "
            "no history, logs or export.")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=3)

    history_path = run_dir / "history.json"
    # Keep only epochs that the restored checkpoint covers.
    history = [h for h in _read_history(history_path) if h["step"] <= resumed_from]
    callbacks = []
    if config.monitor.enabled:
        from tfrecap.callbacks import AdversarialEvaluation

        # First in the list: callbacks share one logs dict, so the values it adds
        # reach the history and TensorBoard callbacks after it.
        mon = config.monitor
        callbacks.append(AdversarialEvaluation(
            val_ds, attacks=mon.attacks, eps=mon.eps, every=mon.every, limit=mon.limit
        ))
    callbacks.append(_CheckpointEveryEpoch(manager, history_path, history, write_history=chief))
    if chief:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False)
        )
    callbacks += extra_callbacks or []

    log(
        f"Training {config.name}: {model.describe() if hasattr(model, 'describe') else ''}"
        f"strategy={t.strategy} ({strategy.num_replicas_in_sync} replicas), "
        f"precision={precision}, jit_compile={jit}, steps {resumed_from}->{t.steps}."
    )
    # shuffle=False: the tf.data pipeline shuffles.
    fit_kwargs = dict(validation_data=val_ds, validation_steps=val_steps, shuffle=False,
                      callbacks=callbacks, verbose=verbose)
    try:
        _fit_to_steps(model, train_ds, t.steps, t.checkpoint_every, resumed_from, fit_kwargs)
    finally:
        if ckpt_dir != chief_ckpt:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    steps_done = _step(model)

    export_path = None
    if export_dir is not None and chief:
        from tfrecap.export import export_detector

        export_path = export_detector(model.detector, export_dir, config)
        log(f"Exported to {export_path}")
    return TrainResult(
        run_dir=run_dir,
        steps_done=steps_done,
        resumed_from_step=resumed_from,
        history=history,
        export_path=export_path,
        seconds=time.time() - started,
        model=model,
    )


def _fit_to_steps(model, train_ds, steps: int, every: int, done: int, fit_kwargs: dict) -> None:
    """``fit`` from step ``done`` to ``steps`` in epochs of ``every`` steps.

    Whole epochs of ``every`` steps, then a last short epoch if ``steps`` is not a
    multiple, so that the run ends at exactly ``steps`` and every epoch boundary is
    a checkpoint (which is what makes resume exact).
    """
    full_epochs = steps // every
    if done < full_epochs * every:
        model.fit(train_ds, epochs=full_epochs, initial_epoch=done // every,
                  steps_per_epoch=every, **fit_kwargs)
        done = _step(model)
    remainder = steps - done
    if remainder > 0:
        model.fit(train_ds, epochs=full_epochs + 1, initial_epoch=full_epochs,
                  steps_per_epoch=remainder, **fit_kwargs)


MODEL_VARIABLES = "model_variables"
VARIABLE_PATHS = "model_variable_paths"


class VariablePaths(tf.train.experimental.PythonState):
    """The Keras paths of a checkpoint's ``model_variables``, in order, saved as a JSON string.

    Python state rather than a ``tf.string`` variable: a variable made inside a strategy's
    scope is mirrored, and ``MultiWorkerMirroredStrategy`` cannot broadcast a string
    variable's initial value (its collective ops take numbers only), nor can a GPU hold one.
    """

    def __init__(self, paths: list[str]):
        self.paths = list(paths)

    def serialize(self) -> str:
        return json.dumps(self.paths)

    def deserialize(self, string_value) -> None:
        self.paths = json.loads(string_value)


def make_checkpoint(model) -> tf.train.Checkpoint:
    """What a run directory's checkpoints hold: every model variable, their paths, the optimizer.

    Every variable is listed explicitly (``model_variables``): Keras 3 layers do not expose
    their variables to ``tf.train.Checkpoint``'s object graph, so ``model=model`` alone saved
    only what the optimizer references, the trainable weights. The BatchNorm moving
    statistics and the fusion ``SeedGenerator`` state were lost: a finished run reloaded from
    its checkpoint classified with fresh statistics (measured: 90 % clean accuracy in memory,
    52.5 % after the reload), and a resumed run restarted its statistics and its random stream.

    The list is matched by position, so the checkpoint also holds each variable's Keras path
    (``model_variable_paths``); `restore_checkpoint` compares them before restoring, so code
    that reorders or renames variables of equal shapes fails loudly instead of restoring
    weights into the wrong slots.
    """
    variables = list(model.variables)
    # model= writes no keys of its own; it is kept so that older checkpoints' object graph
    # (model, optimizer) still matches.
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer, **{
        MODEL_VARIABLES: variables, VARIABLE_PATHS: VariablePaths(v.path for v in variables)})


def restore_checkpoint(model, checkpoint: tf.train.Checkpoint, path: str, log) -> bool:
    """Restores ``path`` into ``checkpoint`` (from `make_checkpoint`), old layouts included.

    Checkpoints written before ``model_variables`` existed hold only the optimizer and the
    trainable weights: they are restored with a warning that the BatchNorm statistics and
    the random stream start afresh (training re-estimates the statistics as it goes on).
    Checkpoints written before ``model_variable_paths`` existed are restored without the
    path check (shapes are still checked).

    Returns:
        True if every model variable was restored, False for such an older checkpoint.

    Raises:
        ValueError: if the checkpoint's variable paths are not the model's, in order.
    """
    reader = tf.train.load_checkpoint(path)
    keys = reader.get_variable_to_shape_map()
    if any(key.startswith(f"{MODEL_VARIABLES}/") for key in keys):
        paths_key = f"{VARIABLE_PATHS}/.ATTRIBUTES/py_state"
        if paths_key in keys:
            _check_variable_paths(path, json.loads(reader.get_tensor(paths_key)),
                                  [v.path for v in model.variables])
        else:  # the checkpoint has no paths entry to match
            checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, **{
                MODEL_VARIABLES: getattr(checkpoint, MODEL_VARIABLES)})
        checkpoint.restore(path).assert_existing_objects_matched()
        return True
    legacy = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    legacy.restore(path).assert_existing_objects_matched()
    log(f"Warning: {path} was written by an older tfrecap and holds no BatchNorm statistics "
        "or random state; they start afresh (train on for them to settle before exporting).")
    return False


def _at(paths: list[str], index: int) -> str:
    return repr(paths[index]) if index < len(paths) else "absent"


def _check_variable_paths(path: str, saved: list[str], current: list[str]) -> None:
    if saved == current:
        return
    i = next((i for i, (a, b) in enumerate(zip(saved, current, strict=False)) if a != b),
             min(len(saved), len(current)))
    detail = (f"variable {i} is {_at(saved, i)} in the checkpoint and {_at(current, i)} in the "
              f"model ({len(saved)} and {len(current)} variables)")
    raise ValueError(
        f"{path} does not match this model: {detail}. The checkpoint was written by other code "
        "or another [model] config; restore it with the tfrecap version that wrote it, or "
        "train in a new --run-dir.")


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's DATA auto-shard policy (see "Multi-worker" above)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _step(model) -> int:
    """The optimizer's step counter (a MirroredVariable under a strategy, so no int())."""
    return int(model.optimizer.iterations.numpy())


def _check_patch_size(dataset: tf.data.Dataset, config: PipelineConfig) -> None:
    shape = dataset.element_spec[0].shape
    if shape[1] is not None and shape[1] != config.data.patch_size:
        raise ValueError(
            f"dataset {config.data.dataset!r} has {shape[1]}x{shape[2]} patches but the "
            f"pipeline {config.name!r} expects patch_size = {config.data.patch_size}"
        )


def _check_resumable(config_path: Path, config: PipelineConfig) -> None:
    """Refuse to resume a run directory that was started with a different model or data."""
    if not config_path.exists():
        return
    old = json.loads(config_path.read_text())
    new = config.to_dict()
    # Steps may grow (train longer); everything else must match to resume.
    for section in ("data", "model", "defence"):
        if old.get(section) != _jsonable(new[section]):
            raise ValueError(
                f"{config_path.parent} holds a run with a different [{section}] config; "
                f"use another --run-dir, or delete that folder to start over"
            )


def _jsonable(value):
    return json.loads(json.dumps(value))


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return json.loads(path.read_text()).get("epochs", [])


def _write_json_atomic(path: Path, payload) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_json_default))
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    raise TypeError(f"not JSON serialisable: {value!r}")
