"""The training loop of ``tfrecap train``: dataset → SecureForensicModel.fit → checkpoints → export.

:func:`train` runs a pipeline in epochs of ``checkpoint_every`` steps, each ending in a
checkpoint and a line of ``history.json``, so that rerunning the same command resumes exactly
where a crash or a kill stopped it. The run directory's format is :mod:`.checkpoint`'s; the
model comes from :mod:`.factory`.
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

from tfrecap import jsonio
from tfrecap.config import PipelineConfig
from tfrecap.training.checkpoint import (
    RunDirError,
    TrainingError,
    check_resumable,
    check_same_data,
    has_checkpoint,
    make_checkpoint,
    resolve_init_checkpoint,
    restore_checkpoint,
    warm_start,
)
from tfrecap.training.factory import build_model, describe, resolve_jit_compile, resolve_precision

HISTORY_SCHEMA_VERSION = 1
_NEEDED_SPLITS = ("train", "validation")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did."""

    run_dir: Path
    steps_done: int
    resumed_from_step: int  # 0 when the run started fresh
    history: list[dict]
    export_path: Path | None
    seconds: float
    # The trained SecureForensicModel; with [guard], on the chief, holding the exported weights
    # (the best checkpoint, its optimizer state included), not the last ones.
    model: keras.Model | None = None
    # [guard] on: the record of the checkpoint that was exported, None when none reached the
    # clean floor (the last weights were exported); `guard` is run_dir/best/best.json's content
    # plus `exported_step`. Both None when the guard is off.
    best: dict | None = None
    guard: dict | None = None


class _CheckpointEveryEpoch(keras.callbacks.Callback):
    """Save a checkpoint and append the epoch's logs to history.json, both atomically.

    A non-finite figure (a NaN loss) is written as ``null``: history.json stays strict JSON.
    Each record carries ``session_from``, the step its training session started from (0 for a
    fresh run), so a reader can tell the epochs of one session from the next even when a
    session was killed before anything else recorded it (the time between two sessions is
    then never read as training time).
    """

    def __init__(self, manager: tf.train.CheckpointManager, history_path: Path, history: list,
                 write_history: bool = True, session_from: int = 0):
        super().__init__()
        self.session_from = int(session_from)
        self.write_history = write_history
        self.manager = manager
        self.history_path = history_path
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        self.manager.save(checkpoint_number=step)
        record = {"epoch": epoch + 1, "step": step, "time": time.time(),
                  "session_from": self.session_from}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        self.history.append(record)
        if not self.write_history:
            return
        jsonio.write_json(
            self.history_path, {"schema_version": HISTORY_SCHEMA_VERSION, "epochs": self.history},
            sort_keys=True,
        )


class _StopOnNonFiniteWeights(keras.callbacks.Callback):
    """Stop with a :class:`TrainingError` when a weight is NaN or infinite at an epoch's end,
    before the guard or the checkpoint sees it: the last finite checkpoint stays the newest,
    so nothing good is overwritten and a rerun resumes from it.

    The loss is not the test: under mixed precision a step that overflowed is skipped by the
    loss-scale optimizer (weights unchanged) yet still counted in the epoch's mean loss.
    """

    def __init__(self, manager: tf.train.CheckpointManager, run_dir: Path):
        super().__init__()
        self.manager = manager
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        bad = [v.path for v in self.model.variables
               if "float" in str(v.dtype) and not bool(tf.reduce_all(tf.math.is_finite(v)))]
        if not bad:
            return
        diverged = (f"training diverged: at step {_step(self.model)}, {len(bad)} of "
                    f"{len(self.model.variables)} variables hold NaN or infinite values (first: "
                    f"{bad[0]}).")
        latest = self.manager.latest_checkpoint
        if latest is None:
            raise TrainingError(
                f"{diverged} No epoch had finished, so nothing is kept; lower [train] "
                "learning_rate and start again.")
        # Named in the chief's run dir: a non-chief worker's own folder is temporary.
        kept = self.run_dir / "checkpoints" / Path(latest).name
        raise TrainingError(
            f"{diverged} The last finite checkpoint is kept: {kept}. Lower [train] "
            "learning_rate and rerun to resume from it; to change [defence] instead, start a "
            f"new --run-dir, with --init-from {self.run_dir} to keep its weights.")


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

    * **Resume.** Every ``train.checkpoint_every`` steps a checkpoint (:mod:`.checkpoint`)
      is written; a rerun restores the newest one. The step counter is
      ``optimizer.iterations``, so nothing is counted twice and the run ends at exactly
      ``train.steps``. A run directory of another [data], [model] or [defence] config, or
      with an older checkpoint layout, is refused.
    * **Warm start.** With ``[train] init_from`` a fresh run starts from the detector weights
      of another run: the checkpoint it exported, else its newest
      (:func:`.checkpoint.resolve_init_checkpoint`, :func:`.checkpoint.warm_start`); its
      optimizer and step count start at 0. A run that resumes ignores it.
    * **Divergence.** If a weight is NaN or infinite at an epoch's end, training stops with
      a :class:`TrainingError` before that epoch is checkpointed; a rerun resumes from the
      last finite checkpoint.
    * **Records.** The resolved config (``config.json``), TensorBoard logs (``logs/``) and
      the per-epoch history (``history.json``, appended across resumes) go into ``run_dir``.
      If this call created ``run_dir`` and fails before its first checkpoint, it removes
      ``run_dir`` (and the parents it created) again: a failed start leaves nothing
      behind, and a folder that existed before or holds a checkpoint is never removed.
    * **Distribution.** ``train.strategy`` picks a ``tf.distribute`` strategy
      (:func:`tfrecap.distribute.make_strategy`); model, optimizer and checkpoint are built
      under its scope. ``train.batch_size`` is the *global* batch: each of N replicas gets
      ``batch_size / N`` images and fuses its first ``k·local/global`` of them. XLA is off
      under a strategy.
    * **Multi-worker.** The training and validation sets are sharded by DATA: every worker
      reads every file and keeps its own replicas' slices of each global batch, so the
      workers see exactly the batches that one device would (FILE sharding would not, and
      can leave a worker with no files). Only the chief writes the run directory and the
      export; the others checkpoint to a temporary directory (saving is collective) that is
      deleted at the end. Resuming reads the chief's checkpoints, so ``run_dir`` must be on
      a file system that every worker sees.
    * **Guard.** With ``[guard] every > 0``, clean and PGD accuracy are measured on the first
      ``[guard] patches`` validation patches every ``every`` epochs and at the last one
      (:mod:`.guard`; logged as ``val_guard_clean_acc`` and ``val_guard_pgd_acc``), and the
      best checkpoint above the clean floor is kept in ``run_dir/best``. After the last step
      that checkpoint is restored into the model: it is the one calibrated, exported and
      returned. If no record reached the floor the last weights are, and the log says so.
    * **Export.** At the end the detector (inference only) is exported to
      ``export_dir/VERSION`` by :func:`tfrecap.export.export_detector`.

    An "epoch" is ``checkpoint_every`` steps: Keras's progress bar, the validation pass and
    the checkpoint all happen at that cadence.

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

    Raises:
        RunDirError: ``run_dir`` cannot be resumed (another config, checkpoint layout or model).
        TrainingError: the dataset does not fit the pipeline (a missing split, another patch
            size); RunDirError is one too.
        tfrecap.data.catalog.DatasetNotFoundError: the dataset is not built.
    """
    run_dir = Path(run_dir)
    created = _first_missing(run_dir)  # what mkdir will create: run_dir and missing parents
    try:
        return _train(config, data_dir=data_dir, run_dir=run_dir, export_dir=export_dir,
                      verbose=verbose, extra_callbacks=extra_callbacks, log=log)
    except BaseException:
        # Only the chief cleans up: under multi_worker the run dir is shared, and another
        # worker's failure must not delete what the chief is writing.
        if created is not None and not has_checkpoint(run_dir) and _is_chief_task():
            shutil.rmtree(created, ignore_errors=True)
        raise


def _is_chief_task() -> bool:
    """Whether this process is the chief (worker 0, or not a multi-worker task at all)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task") or {}
    if not task or task.get("type") == "chief":
        return True
    if "chief" in tf_config.get("cluster", {}):
        return False
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None if ``path`` exists)."""
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def _train(config, *, data_dir, run_dir: Path, export_dir, verbose, extra_callbacks, log):
    from tfrecap.data.catalog import load_builder, read_metadata
    from tfrecap.data.pipeline import make_dataset
    from tfrecap.distribute import check_same_step, checkpoint_dir, is_chief, make_strategy

    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.train.seed)

    precision = resolve_precision(config.train.precision)
    jit = resolve_jit_compile(config.train.jit_compile, config.train.strategy)
    strategy = make_strategy(config.train.strategy)
    chief = is_chief(strategy)
    check_resumable(run_dir / "config.json", config)
    if chief:
        jsonio.write_json(run_dir / "config.json", config.to_dict(), sort_keys=True)

    t = config.train
    # Resolved once, before the data is read: a bad path fails at once.
    init_prefix = (resolve_init_checkpoint(t.init_from)
                   if t.init_from and not has_checkpoint(run_dir) else None)
    splits = load_builder(data_dir, config.data.dataset).info.splits
    _check_splits(splits, config, data_dir)
    metadata = read_metadata(data_dir, config.data.dataset) or {}
    identity = metadata.get("identity", {})
    check_same_data(run_dir, config.data.dataset, identity, write=chief)
    calibration_params = _calibration_params(config, identity, metadata.get("simulator"))
    train_ds = make_dataset(
        data_dir, config.data.dataset, "train", t.batch_size, training=True, seed=t.seed,
        repeat=True, shuffle_buffer=config.data.shuffle_buffer,
    )
    val_ds = make_dataset(data_dir, config.data.dataset, "validation", t.batch_size, training=False)
    # An explicit count: the interleaved dataset's cardinality is unknown, and
    # Keras warns that it "ran out of data" when left to find the end itself.
    val_steps = math.ceil(splits["validation"].num_examples / t.batch_size)
    if t.validation_steps:
        val_steps = min(val_steps, t.validation_steps)
    _check_patch_size(train_ds, config, data_dir)
    guard_patches = None
    if config.guard.every > 0:
        # The validation set's first patches in stored order, read by a set of its own: not
        # repeated or sharded (the same patches on every worker), and not cached (stopping
        # early in a cached set would discard the cache, with a warning).
        guard_patches, guard_floor = _guard_patches(make_dataset(
            data_dir, config.data.dataset, "validation", t.batch_size, training=False,
            cache=False), config, log)
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
        restore_checkpoint(model, checkpoint, latest, run_dir=run_dir)
        resumed_from = _step(model)
        log(f"Resumed from step {resumed_from} ({latest})"
            + (f"; [train] init_from = {t.init_from!r} is ignored: the run's own checkpoint "
               "wins." if t.init_from else "."))
    elif init_prefix is not None:
        # Every worker reads the same checkpoint, so the replicas start equal.
        source, source_step = warm_start(model, init_prefix)
        log(f"Warm start: the detector weights of {source} (step {source_step}); the "
            "optimizer and the step count start at 0.")
    check_same_step(strategy, resumed_from)
    if guard_patches is not None:
        from tfrecap.training.guard import check_finished_guard

        check_finished_guard(run_dir, config, resumed_from)
    # Every worker saves (saving is collective); non-chief workers to a temp dir.
    ckpt_dir = checkpoint_dir(strategy, chief_ckpt)
    if not chief:
        log(f"Not the chief: checkpoints go to the temporary {ckpt_dir}; "
            "no history, logs or export.")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=3)

    history_path = run_dir / "history.json"
    # Keep only epochs that the restored checkpoint covers.
    history = [h for h in read_history(history_path) if h["step"] <= resumed_from]
    # First: nothing after it (guard, checkpoint) may see non-finite weights.
    callbacks = [_StopOnNonFiniteWeights(manager, run_dir)]
    if config.monitor.enabled:
        from tfrecap.callbacks import AdversarialEvaluation

        # Before the history callback: callbacks share one logs dict, so the values it adds
        # reach the history and TensorBoard callbacks after it.
        mon = config.monitor
        callbacks.append(AdversarialEvaluation(
            val_ds, attacks=mon.attacks, eps=mon.eps, every=mon.every, limit=mon.limit
        ))
    guard = None
    if guard_patches is not None:
        from tfrecap.training.guard import BEST_DIR, RobustnessGuard

        g = config.guard
        # Before the history callback, like AdversarialEvaluation: it adds to the logs.
        guard = RobustnessGuard(
            guard_patches, run_dir / BEST_DIR, checkpoint=checkpoint, every=g.every, eps=g.eps,
            pgd_steps=g.pgd_steps, clean_floor=guard_floor, select=g.select,
            requested_patches=g.patches,
            final_step=t.steps, resumed_from=resumed_from, write=chief, strategy=strategy,
            log=log)
        callbacks.append(guard)
    callbacks.append(_CheckpointEveryEpoch(manager, history_path, history, write_history=chief,
                                           session_from=resumed_from))
    if chief:
        callbacks.append(
            keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False)
        )
    callbacks += extra_callbacks or []

    log(
        f"Training {config.name}: {describe(config, model)}; "
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
        if guard is not None:
            guard.close()
    steps_done = _step(model)
    guard_summary = None
    if guard is not None:
        guard_summary = _restore_best(guard, model, checkpoint, steps_done, run_dir, chief, log)

    export_path = None
    if export_dir is not None and chief:
        from tfrecap.export import export_detector

        # Serve with the tile cap the data was imported with, so classify_images judges the
        # tiles `data import` stored (synthetic data has no cap: the default applies).
        cap = identity.get("max_tiles_per_image")
        verdict = None
        if calibration_params is not None:
            verdict = _calibrate(model.detector, config, calibration_params,
                                 int(identity.get("seed", 0)), run_dir, log)
        export_path = export_detector(model.detector, export_dir, config, verdict=verdict,
                                      **({"max_tiles": int(cap)} if cap else {}),
                                      **({"guard": guard_summary} if guard_summary else {}))
        log(f"Exported to {export_path}")
    return TrainResult(
        run_dir=run_dir,
        steps_done=steps_done,
        resumed_from_step=resumed_from,
        history=history,
        export_path=export_path,
        seconds=time.time() - started,
        model=model,
        best=guard.best if guard is not None else None,
        guard=guard_summary,
    )


def _guard_patches(val_ds: tf.data.Dataset, config: PipelineConfig, log) -> tuple[list, float]:
    """The guard's fixed validation patches and its clean floor: ``[guard] clean_floor``,
    raised above a constant predictor's accuracy when the patches are imbalanced."""
    from tfrecap.training.guard import effective_clean_floor, fixed_patches, majority_share

    g = config.guard
    patches = fixed_patches(val_ds, g.patches)
    n = sum(int(labels.shape[0]) for _, labels in patches)
    share = majority_share(patches)
    log(f"Guard: every {g.every} epoch(s), clean and PGD-margin accuracy (eps {g.eps:g}, "
        f"{g.pgd_steps} steps) on the first {n} validation patches"
        + (f" (of {g.patches} asked: the split is smaller)" if n < g.patches else "")
        + f"; majority class {share:.0%}, clean floor {g.clean_floor:g}.")
    floor = effective_clean_floor(g.clean_floor, share)
    if floor > g.clean_floor:
        log(f"Guard: {share:.0%} of its validation patches are of one class, so a constant "
            f"predictor would pass the clean floor {g.clean_floor:g}; the floor is raised to "
            f"{floor:.3f} for this run.")
    return patches, floor


def _restore_best(guard, model, checkpoint, steps_done: int, run_dir: Path, chief: bool,
                  log) -> dict:
    """Restore the guard's best checkpoint into ``model`` (on the chief, which exports), and
    return the guard's summary with the step of the weights that are exported."""
    from tfrecap.training.guard import BEST_JSON

    summary = guard.summary()
    best = guard.best
    if best is None:
        summary["exported_step"] = steps_done
        if chief:
            log(f"WARNING: {summary['warning']} (step {steps_done}).")
    else:
        summary["exported_step"] = best["step"]
        if chief:
            restore_checkpoint(model, checkpoint, guard.best_checkpoint, run_dir=run_dir)
            log(f"Guard: restored the best checkpoint, step {best['step']} of {steps_done} "
                f"(clean {best['clean']:.3f}, PGD {best['pgd']:.3f} at eps {guard.eps:g}): "
                "it is the one calibrated and exported.")
    if chief:
        jsonio.write_json(guard.best_dir / BEST_JSON, summary, sort_keys=True)
    return summary


def _calibration_params(config: PipelineConfig, identity: dict, saved: dict | None = None):
    """The simulator parameters that calibrate the verdict, or None when it is not calibrated.

    The committed v2 parameters, or a variant's (``data synth --param``) as its metadata
    records them (``saved``), once they hash to the dataset's fingerprint: the validation
    photos are then remade by the simulator that made the data. Checked before training, so
    that a pipeline asking for calibration on data that has no whole photos fails at once
    rather than after hours of training.
    """
    if not config.verdict.calibration_photos:
        return None
    from tfrecap.data.simulator import V2_PARAMS

    if identity.get("kind") != "synthetic" or identity.get("simulator_version") != 2:
        raise TrainingError(
            f"[verdict] calibration_photos = {config.verdict.calibration_photos} needs synthetic "
            f"v2 data (whole validation photos come from its simulator), but dataset "
            f"{config.data.dataset!r} is not; set calibration_photos = 0 or train on "
            "synthetic_v2_64")
    fingerprint = identity.get("simulator_fingerprint")
    if fingerprint == V2_PARAMS.fingerprint():
        return V2_PARAMS
    if saved is not None:
        from tfrecap.data.simulator import SimulatorParamsV2

        try:
            variant = SimulatorParamsV2(**saved)
        except (TypeError, ValueError):
            variant = None  # written by another tfrecap: its fields are not this one's
        if variant is not None and variant.fingerprint() == fingerprint:
            return variant
    raise TrainingError(
        f"dataset {config.data.dataset!r} was made by simulator parameters {fingerprint}, "
        f"neither the committed v2 ({V2_PARAMS.fingerprint()}) nor the ones its metadata "
        "records: its validation photos cannot be remade; rebuild it or set [verdict] "
        "calibration_photos = 0")


def _calibrate(detector, config: PipelineConfig, params, seed: int, run_dir: Path, log):
    """Choose the export's verdict on synthetic validation photos; the table goes to the run."""
    from tfrecap.data import generate
    from tfrecap.training.calibration import calibrate, keras_probabilities

    v = config.verdict
    log(f"Calibrating the whole-image verdict on {v.calibration_photos} synthetic validation "
        f"photos per class ({v.photo_height}x{v.photo_width}) ...")
    started = time.time()
    photos = generate.photos("validation", v.calibration_photos, seed, params, workers=None,
                             height=v.photo_height, width=v.photo_width)
    verdict, table = calibrate(keras_probabilities(detector), photos, config.data.patch_size)
    jsonio.write_json(run_dir / "calibration.json",
                      {"verdict": verdict.to_dict(), "table": table,
                       "photos_per_class": v.calibration_photos, "seed": seed,
                       "seconds": time.time() - started})
    log(f"Verdict: {verdict.aggregation} >= {verdict.threshold:.4f} "
        f"({time.time() - started:.0f} s; table in {run_dir / 'calibration.json'}).")
    return verdict


# Each skipped step halves the loss scale: 64 halvings take 2**15 below 2**-48, so a loss
# still non-finite after that many has diverged rather than overflowed.
MAX_SKIPPED_IN_A_ROW = 64


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
    # Usually one pass; more only when the loss-scale optimizer skipped non-finite
    # mixed-precision steps, which do not advance its step counter.
    epoch, skipped_in_a_row = full_epochs, 0
    while (done := _step(model)) < steps:
        model.fit(train_ds, epochs=epoch + 1, initial_epoch=epoch,
                  steps_per_epoch=steps - done, **fit_kwargs)
        skipped_in_a_row = 0 if _step(model) > done else skipped_in_a_row + steps - done
        if skipped_in_a_row > MAX_SKIPPED_IN_A_ROW:
            raise TrainingError(
                f"{skipped_in_a_row} steps in a row were skipped as non-finite at step {done}: "
                "the loss diverged; lower the learning rate")
        epoch += 1


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with tf.data's DATA auto-shard policy (see "Multi-worker" in :func:`train`)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _step(model) -> int:
    """The optimizer's step counter (a MirroredVariable under a strategy, so no int())."""
    return int(model.optimizer.iterations.numpy())


def _check_splits(splits, config: PipelineConfig, data_dir) -> None:
    missing = [name for name in _NEEDED_SPLITS if name not in splits]
    if missing:
        raise TrainingError(
            f"dataset {config.data.dataset!r} in {data_dir} has no {' or '.join(missing)} "
            f"split (it has: {', '.join(splits) or 'none'}); training needs "
            f"{' and '.join(_NEEDED_SPLITS)}. Rebuild it with enough photos for every split."
        )


def _check_patch_size(dataset: tf.data.Dataset, config: PipelineConfig, data_dir) -> None:
    shape = dataset.element_spec[0].shape
    if shape[1] is not None and shape[1] != config.data.patch_size:
        raise TrainingError(
            f"dataset {config.data.dataset!r} in {data_dir} has {shape[1]}x{shape[2]} patches "
            f"but the pipeline {config.name!r} expects patch_size = {config.data.patch_size}"
        )


def read_history(path: Path) -> list[dict]:
    """The epochs of a run's ``history.json`` (none when it is missing).

    Raises:
        RunDirError: the file is unreadable; the message names it.
    """
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text()).get("epochs", [])
    except (OSError, ValueError, AttributeError) as err:
        raise RunDirError(
            f"{path} is not a readable training history ({err}); use another --run-dir, or "
            "delete that folder to start over") from None
