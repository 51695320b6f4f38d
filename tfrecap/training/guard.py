"""The guard against catastrophic and robust overfitting: keep, and export, the most robust epoch.

Adversarial training can lose its robustness late in a run: FGSM training catastrophically
(robust accuracy falls to about 0 within an epoch; Wong et al. 2020), PGD training slowly
(robust overfitting; Rice et al. 2020). Both are caught the same way, for every ``[defence]
method``: every ``[guard] every`` epochs :class:`RobustnessGuard` measures clean and PGD
accuracy on one fixed set of validation patches, and keeps the checkpoint with the best PGD
accuracy among those whose clean accuracy reaches ``clean_floor`` (a constant predictor, which
no attack can move, must not win). :func:`tfrecap.training.train` exports that checkpoint,
not the last one. An undefended model is ranked by its clean accuracy instead (``[guard]
select = "clean"``, as ``demo_baseline`` sets it): its PGD accuracy is near 0 and noisy, and
ranking by it would export whichever early checkpoint an attack happened to spare, which
understates the baseline every defence is compared with.

* **The measurement** (:func:`measure`) is :func:`tfrecap.evaluation.evaluate` itself, so a
  guard figure means what ``tfrecap evaluate --attack pgd --loss margin`` reports: PGD on the
  logit margin, ``pgd_steps`` steps of Madry's size ``2.5·ε/steps``, one restart from the clean
  image (deterministic: the same weights always give the same figure), the adversarial images
  rounded to valid 8-bit pixels; logits from ``model(x, training=False)``.
* **The patches** (:func:`fixed_patches`) are the first ``patches`` of the validation set read
  in stored order (``make_dataset(..., training=False)``), decoded once and kept as uint8.
* **The rule** (:func:`better`): below the clean floor never wins; then the higher PGD
  accuracy; at equal PGD accuracy the higher clean accuracy; a full tie keeps the earlier.
  With ``select = "clean"`` the two figures swap roles.
* **On disk**, ``run_dir/best/``: the best checkpoint (the layout of
  :func:`~tfrecap.training.checkpoint.make_checkpoint`, outside the rotation of the last
  three in ``checkpoints/``) and ``best.json`` (the settings, the best record and every
  record). The new checkpoint is written first, then ``best.json`` naming it, and only then
  are older best checkpoints deleted, so ``best.json`` always names a checkpoint that exists.
* **Resume.** A rerun reads ``best.json``: the records up to the resumed step and the best so
  far are kept. Records made with other ``eps``, ``patches``, ``pgd_steps`` or ``select``
  are not comparable and are dropped (the log says so), as is a best below a raised floor.
* **Multi-worker.** Saving is collective, so every worker measures and saves; the workers
  adopt worker 0's figures (one gather), so they always decide alike. Only the chief writes
  ``run_dir/best``; the others write to a temporary folder that :meth:`RobustnessGuard.close`
  removes.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfrecap import jsonio
from tfrecap.names import GUARD_SELECT

GUARD_SCHEMA_VERSION = 1
BEST_DIR = "best"
BEST_JSON = "best.json"
ATTACK = "pgd"
LOSS = "margin"
# The settings that make two records comparable; the floor only filters them. A best chosen
# under another `select` is another checkpoint, so that setting counts too; best.json files
# written before it existed ranked by PGD.
_COMPARABLE = ("eps", "patches", "pgd_steps", "select")
_DEFAULT_SETTINGS = {"select": "pgd"}


def better(candidate: dict, best: dict | None, clean_floor: float, select: str = "pgd") -> bool:
    """Whether the record ``candidate`` replaces ``best`` (records hold ``clean`` and ``pgd``).

    A candidate whose clean accuracy is below ``clean_floor`` (or NaN: no patches) never wins,
    not even the first record. Otherwise the higher PGD accuracy wins; at equal PGD accuracy
    the higher clean accuracy (as robust, and more useful); a full tie keeps the earlier.
    ``select="clean"`` ranks by clean accuracy first and PGD accuracy second.

    Args:
        candidate: the new record.
        best: the best record so far, None when there is none.
        clean_floor: the lowest clean accuracy a record may have.
        select: ``"pgd"`` or ``"clean"``, the figure ranked first.
    """
    if select not in GUARD_SELECT:
        raise ValueError(f"`select` has to be one of {GUARD_SELECT}, got {select!r}")
    clean, pgd = candidate["clean"], candidate["pgd"]
    if clean is None or pgd is None or math.isnan(clean) or math.isnan(pgd):
        return False
    if not clean >= clean_floor:
        return False
    if best is None:
        return True
    if select == "clean":
        return (clean, pgd) > (best["clean"], best["pgd"])
    return (pgd, clean) > (best["pgd"], best["clean"])


def fixed_patches(dataset, n: int) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """The first ``n`` examples of ``dataset`` (or all, if fewer) as uint8 batches.

    Args:
        dataset: batches of ``(float32 images in [0, 255] holding whole numbers, int labels)``,
            in a fixed order (a validation set made with ``training=False``).
        n: how many examples to keep.

    Returns:
        A list of ``(uint8 images, int32 labels)`` batches, in the dataset's batch size. The
        pixels are whole numbers, so uint8 keeps them exactly in a quarter of the memory.
    """
    batches, seen = [], 0
    for images, labels in dataset:
        images, labels = images[: n - seen], labels[: n - seen]
        batches.append((tf.cast(images, tf.uint8), tf.cast(labels, tf.int32)))
        seen += int(tf.shape(labels)[0])
        if seen >= n:
            break
    return batches


def measure(model, batches, *, eps: float, pgd_steps: int) -> dict:
    """Clean and PGD-margin accuracy of ``model`` on ``batches``, by the library's evaluator.

    Args:
        model: a Keras model mapping float32 pixels to logits (called with ``training=False``).
        batches: ``(uint8 images, labels)`` batches, e.g. from :func:`fixed_patches`.
        eps: the L∞ budget, in pixel levels.
        pgd_steps: PGD iterations.

    Returns:
        ``{"clean", "pgd", "n", "zero_grad"}``: the two accuracies (NaN when ``n`` is 0), the
        number of patches and the fraction of them whose gradient was zero at every step.
    """
    from tfrecap.evaluation import AttackSpec, evaluate

    spec = AttackSpec(ATTACK, {"steps": pgd_steps, "restarts": 1, "loss": LOSS})
    float_batches = ((tf.cast(images, tf.float32), labels) for images, labels in batches)
    report = evaluate(model, float_batches, [spec], [eps], unbounded_check=False)
    result = report.attacks[0]
    return {"clean": report.clean.value, "pgd": result.accuracy[0].value, "n": report.clean.n,
            "zero_grad": result.zero_grad_fraction_at(0)}


def incomparable_settings(saved: dict | None, settings: dict) -> str | None:
    """``saved``'s comparable settings, described (``eps=2.0, patches=512, pgd_steps=10``),
    when they differ from ``settings``; None when they agree or nothing was saved."""
    if saved is None:
        return None
    saved = {**_DEFAULT_SETTINGS, **saved}
    if all(saved.get(key) == settings.get(key) for key in _COMPARABLE):
        return None
    return ", ".join(f"{key}={saved.get(key)}" for key in _COMPARABLE)


def comparable_settings(eps: float, patches: int, pgd_steps: int, select: str = "pgd") -> dict:
    """The settings that make two guard records comparable (`_COMPARABLE`), as
    :class:`RobustnessGuard` keeps them and ``best.json`` records them."""
    return {"eps": float(eps), "patches": int(patches), "pgd_steps": int(pgd_steps),
            "select": str(select)}


def guard_settings(guard_config) -> dict:
    """The comparable settings of a ``[guard]`` config (``patches`` is the requested count)."""
    return comparable_settings(guard_config.eps, guard_config.patches, guard_config.pgd_steps,
                               guard_config.select)


def check_finished_guard(run_dir: str | Path, config, done_step: int) -> None:
    """Refuse a run that has trained all its steps under a guard with other settings.

    Such a run has nothing left to train, so its checkpoints would never be measured under
    the new settings: the guard would keep no best, and the last weights would be exported
    under a warning that gives the wrong reason.

    Raises:
        RunDirError: the message names the run directory and both settings.
    """
    from tfrecap.training.checkpoint import RunDirError

    if config.guard.every <= 0 or done_step < config.train.steps:
        return
    best_dir = Path(run_dir) / BEST_DIR
    old = incomparable_settings(read_best_json(best_dir), guard_settings(config.guard))
    if old:
        raise RunDirError(
            f"{run_dir} holds a finished run ({done_step} steps) whose guard ranked its "
            f"checkpoints with other settings ({old}), not [guard]'s "
            f"{', '.join(f'{k}={v}' for k, v in guard_settings(config.guard).items())}; they "
            f"cannot be ranked again: use another --run-dir, or delete that folder to start "
            "over")


def read_best_json(best_dir: str | Path) -> dict | None:
    """The ``best.json`` of ``best_dir``, or None when there is none or it is unreadable."""
    import json

    path = Path(best_dir) / BEST_JSON
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema_version") == 1 else None


class RobustnessGuard(keras.callbacks.Callback):
    """Measure clean and PGD accuracy every ``every`` epochs; keep the best checkpoint.

    It adds ``val_guard_clean_acc`` and ``val_guard_pgd_acc`` to the epoch logs, so put it
    before the history and TensorBoard callbacks (callbacks share one logs dict, in order).

    Args:
        patches: the fixed ``(uint8 images, labels)`` batches (:func:`fixed_patches`).
        best_dir: where the best checkpoint and ``best.json`` go (``run_dir/best``).
        checkpoint: :func:`~tfrecap.training.checkpoint.make_checkpoint` of the model;
            None makes one when the guard is first run.
        every: measure on epochs ``every, 2·every, ...`` (1-based) and on the epoch that ends
            at ``final_step``, so that the last weights compete too.
        eps: the PGD budget, pixel levels.
        pgd_steps: PGD iterations.
        clean_floor: the lowest clean accuracy of a checkpoint that may be kept.
        select: the figure that ranks checkpoints, ``"pgd"`` or ``"clean"`` (:func:`better`).
        requested_patches: ``[guard] patches`` (``patches`` may hold fewer: a small split).
        final_step: the run's last step (``[train] steps``); None: only every ``every``.
        resumed_from: the step the run resumed from; records after it are dropped.
        write: write ``best_dir`` (the chief); False writes the checkpoints to a temporary
            folder instead (saving is collective under multi-worker) and no ``best.json``.
        strategy: the training strategy; under multi-worker the workers adopt worker 0's
            figures.
        log: where status lines go.
    """

    def __init__(self, patches, best_dir: str | Path, *, checkpoint=None, every: int = 1,
                 eps: float = 2.0, pgd_steps: int = 10, clean_floor: float = 0.6,
                 select: str = "pgd", requested_patches: int | None = None,
                 final_step: int | None = None, resumed_from: int = 0, write: bool = True,
                 strategy=None, log=print):
        super().__init__()
        if every < 1:
            raise ValueError(f"`every` has to be >= 1, got {every}")
        if select not in GUARD_SELECT:
            raise ValueError(f"`select` has to be one of {GUARD_SELECT}, got {select!r}")
        self.patches = patches
        self.best_dir = Path(best_dir)
        self.checkpoint = checkpoint
        self.every = every
        self.eps = float(eps)
        self.pgd_steps = int(pgd_steps)
        self.clean_floor = float(clean_floor)
        self.select = select
        self.final_step = final_step
        self.write = write
        self.strategy = strategy
        self.log = log
        self.n = sum(int(tf.shape(labels)[0]) for _, labels in patches)
        self.settings = {**comparable_settings(self.eps, requested_patches or self.n,
                                               self.pgd_steps, select),
                         "clean_floor": self.clean_floor, "every": every, "attack": ATTACK,
                         "loss": LOSS, "restarts": 1}
        self._save_dir = (self.best_dir if write
                          else Path(tempfile.mkdtemp(prefix="tfrecap_worker_best_")))
        self.records: list[dict] = []
        self.best: dict | None = None
        # The saved records' settings when they were dropped as not comparable, else None.
        self.incomparable: str | None = None
        self._resume(resumed_from)

    # -- state ----------------------------------------------------------------------------

    def _resume(self, resumed_from: int) -> None:
        saved = read_best_json(self.best_dir)
        if saved is None:
            return
        self.incomparable = incomparable_settings(saved, self.settings)
        if self.incomparable:
            self.log(f"Guard: {self.best_dir / BEST_JSON} was made with other settings "
                     f"({self.incomparable}); starting a new best.")
            return
        self.records = [r for r in saved.get("history", []) if r["step"] <= resumed_from]
        best = saved.get("best")
        if best is None:
            return
        if best["step"] > resumed_from:
            # The run died after the guard saved this best but before the rotation saved
            # its step, so training redoes those steps: the old best belongs to weights that
            # the resumed run never has, and its record was dropped above.
            self.log(f"Guard: the best so far (step {best['step']}) is after the resumed "
                     f"step {resumed_from}; starting a new best.")
            return
        if not (self.best_dir / f"{best['checkpoint']}.index").exists():
            self.log(f"Guard: the best checkpoint {best['checkpoint']} named in "
                     f"{self.best_dir / BEST_JSON} is missing; starting a new best.")
            return
        if not better(best, None, self.clean_floor):
            self.log(f"Guard: the best so far (step {best['step']}, clean {best['clean']:.3f}) "
                     f"is below the clean floor {self.clean_floor}; starting a new best.")
            return
        self.best = best
        if self.write:
            self.log(f"Guard: best so far is step {best['step']} "
                     f"(clean {best['clean']:.3f}, PGD {best['pgd']:.3f}).")

    def summary(self) -> dict:
        """The content of ``best.json``: the settings, the best record and every record.

        The best record's figures are also at the top level (``step``, ``clean``, ``pgd``;
        all None when no record passed the floor, with a ``warning``).
        """
        best = self.best
        out = {"schema_version": GUARD_SCHEMA_VERSION, **self.settings, "measured_patches": self.n,
               "step": best["step"] if best else None,
               "clean": best["clean"] if best else None,
               "pgd": best["pgd"] if best else None,
               "best": best, "history": self.records}
        if best is None:
            out["warning"] = self.no_best_warning()
        return out

    def no_best_warning(self) -> str:
        measured = len(self.records)
        return (f"no guard record reached the clean floor {self.clean_floor} "
                f"({measured} measured): the last weights are exported, unguarded")

    @property
    def best_checkpoint(self) -> str | None:
        """The prefix of the best checkpoint (in this worker's folder), or None."""
        if self.best is None:
            return None
        return str(self._save_dir / self.best["checkpoint"])

    # -- the callback -----------------------------------------------------------------------

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        last = self.final_step is not None and step >= self.final_step
        if (epoch + 1) % self.every and not last:
            return
        started = time.time()
        figures = self._agreed(measure(self.model, self.patches, eps=self.eps,
                                       pgd_steps=self.pgd_steps))
        record = {"epoch": epoch + 1, "step": step, **figures,
                  "seconds": round(time.time() - started, 3)}
        record["passed_floor"] = better(record, None, self.clean_floor)
        self.records.append(record)
        if logs is not None:
            logs["val_guard_clean_acc"] = record["clean"]
            logs["val_guard_pgd_acc"] = record["pgd"]
        improved = better(record, self.best, self.clean_floor, self.select)
        if improved:
            self._save(record)
        elif self.write:
            jsonio.write_json(self.best_dir / BEST_JSON, self.summary(), sort_keys=True)
        if self.write:
            self.log(self._describe(record, improved))

    def _describe(self, record: dict, improved: bool) -> str:
        verdict = ("new best" if improved else
                   f"below the clean floor {self.clean_floor}" if not record["passed_floor"]
                   else f"best stays step {self.best['step']} ({self._ranked(self.best)})")
        return (f"Guard at step {record['step']}: clean {record['clean']:.3f}, PGD-{LOSS} "
                f"(eps {self.eps:g}, {self.pgd_steps} steps) {record['pgd']:.3f} on {record['n']} "
                f"validation patches ({record['seconds']:.1f} s): {verdict}.")

    def _ranked(self, record: dict) -> str:
        """The figure that ranks ``record``, e.g. ``PGD 0.412`` or ``clean 0.963``."""
        return (f"clean {record['clean']:.3f}" if self.select == "clean"
                else f"PGD {record['pgd']:.3f}")

    def _agreed(self, figures: dict) -> dict:
        """Worker 0's figures on every worker, so that all take the same (collective) path."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return figures
        keys = ("clean", "pgd", "n", "zero_grad")
        mine = tf.constant([[float(figures[k]) for k in keys]], tf.float64)
        first = self.strategy.gather(mine, axis=0).numpy()[0]
        out = dict(zip(keys, (float(v) for v in first), strict=True))
        out["n"] = int(out["n"])
        return out

    def _save(self, record: dict) -> None:
        if self.checkpoint is None:
            from tfrecap.training.checkpoint import make_checkpoint

            self.checkpoint = make_checkpoint(self.model)
        name = _free_prefix(self._save_dir, f"ckpt-{record['step']}")
        self._save_dir.mkdir(parents=True, exist_ok=True)
        # `write` saves the save counter only once it exists, and restoring a checkpoint
        # without it into one that has it fails: create it (a first best can come before
        # the first CheckpointManager.save).
        _ = self.checkpoint.save_counter
        self.checkpoint.write(str(self._save_dir / name))
        self.best = {k: record[k] for k in ("epoch", "step", "clean", "pgd", "n", "zero_grad")}
        self.best["checkpoint"] = name
        if self.write:
            jsonio.write_json(self.best_dir / BEST_JSON, self.summary(), sort_keys=True)
        _delete_other_checkpoints(self._save_dir, keep=name)

    def close(self) -> None:
        """Remove a non-chief worker's temporary folder (the chief's ``best_dir`` stays)."""
        if not self.write:
            shutil.rmtree(self._save_dir, ignore_errors=True)


def _free_prefix(folder: Path, name: str) -> str:
    """``name``, or ``name-1``, ``name-2``, ...: a prefix no file in ``folder`` has yet, so a
    rerun at the same step never overwrites the checkpoint ``best.json`` still names."""
    candidate, k = name, 0
    while any(folder.glob(f"{candidate}.*")):
        k += 1
        candidate = f"{name}-{k}"
    return candidate


def _delete_other_checkpoints(folder: Path, keep: str) -> None:
    for path in folder.glob("ckpt-*"):
        if path.name.split(".", 1)[0] == keep:
            continue
        if path.is_dir():  # a `<prefix>_temp` folder a killed write left behind
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# How far above a constant predictor's accuracy (the majority share) the effective clean floor
# sits, so that a constant predictor, whose PGD accuracy equals its clean accuracy, never wins.
CONSTANT_PREDICTOR_MARGIN = 0.05


def effective_clean_floor(clean_floor: float, share: float) -> float:
    """``[guard] clean_floor``, raised to ``share + CONSTANT_PREDICTOR_MARGIN`` when the patches
    are so imbalanced that a constant predictor (accuracy ``share``) would pass it."""
    return max(float(clean_floor), min(1.0, float(share) + CONSTANT_PREDICTOR_MARGIN))


def majority_share(patches) -> float:
    """The share of the most frequent label among ``patches``: a constant predictor's accuracy."""
    labels = np.concatenate([np.asarray(labels) for _, labels in patches]) if patches else []
    if len(labels) == 0:
        return float("nan")
    return float(np.bincount(labels).max() / len(labels))
