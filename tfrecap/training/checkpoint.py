"""The checkpoint format of a run directory, and the checks that decide whether it resumes.

A checkpoint holds every model variable (``model_variables``: weights, BatchNorm statistics,
the fusion RNG state), their Keras paths (``model_variable_paths``) and the optimizer. Keras 3
layers do not expose their variables to ``tf.train.Checkpoint``'s object graph, so they are
listed explicitly, and matched by position; the path list makes a mismatch fail loudly
instead of restoring weights into the wrong slots. Any other layout is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from tfrecap import jsonio
from tfrecap.config import PipelineConfig, with_defaults

MODEL_VARIABLES = "model_variables"
VARIABLE_PATHS = "model_variable_paths"
_PATHS_KEY = f"{VARIABLE_PATHS}/.ATTRIBUTES/py_state"

# Sections that must match to resume a run directory; steps may grow (train longer).
RESUME_SECTIONS = ("data", "model", "defence")


class TrainingError(ValueError):
    """A training run that cannot go on as asked; the message names the file or value."""


class RunDirError(TrainingError):
    """A run directory that this run cannot resume: another config, layout or model."""


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

    ``model=model`` alone would save only what the optimizer references, the trainable
    weights: a finished run reloaded with fresh BatchNorm statistics and random stream.
    """
    variables = list(model.variables)
    # model= writes no keys of its own; it stays so that the object graph of the run
    # directories written so far keeps matching.
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer, **{
        MODEL_VARIABLES: variables, VARIABLE_PATHS: VariablePaths(v.path for v in variables)})


def restore_checkpoint(model, checkpoint: tf.train.Checkpoint, path: str, *,
                       run_dir: str | Path | None = None) -> None:
    """Restore ``path`` into ``checkpoint`` (from :func:`make_checkpoint`).

    Args:
        model: the model ``checkpoint`` was made for.
        checkpoint: :func:`make_checkpoint` of ``model``.
        path: a checkpoint prefix, e.g. ``tf.train.latest_checkpoint(...)``.
        run_dir: named in the error messages (default: the checkpoint's folder).

    Every model variable is restored, or it raises.

    Raises:
        RunDirError: the checkpoint has another layout (an older tfrecap's, without the
            variable list or the path list), or its variable paths are not the model's.
    """
    where = Path(run_dir) if run_dir is not None else Path(path).parent
    reader = tf.train.load_checkpoint(path)
    keys = reader.get_variable_to_shape_map()
    has_variables = any(key.startswith(f"{MODEL_VARIABLES}/") for key in keys)
    if not has_variables or _PATHS_KEY not in keys:
        missing = "the variable list" if not has_variables else "the variable-path list"
        raise RunDirError(
            f"{path} has the checkpoint layout of an older tfrecap (without {missing}), "
            f"which this version does not restore. Start a new run: pass another --run-dir, "
            f"or delete {where} to train from scratch.")
    saved = json.loads(reader.get_tensor(_PATHS_KEY))
    _check_variable_paths(path, saved, [v.path for v in model.variables])
    checkpoint.restore(path).assert_existing_objects_matched()


def _at(paths: list[str], index: int) -> str:
    return repr(paths[index]) if index < len(paths) else "absent"


def _check_variable_paths(path: str, saved: list[str], current: list[str]) -> None:
    if saved == current:
        return
    i = next((i for i, (a, b) in enumerate(zip(saved, current, strict=False)) if a != b),
             min(len(saved), len(current)))
    detail = (f"variable {i} is {_at(saved, i)} in the checkpoint and {_at(current, i)} in the "
              f"model ({len(saved)} and {len(current)} variables)")
    raise RunDirError(
        f"{path} does not match this model: {detail}. The checkpoint was written by other code "
        "or another [model] config; restore it with the tfrecap version that wrote it, or "
        "train in a new --run-dir.")


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint (of any layout) to resume from."""
    return tf.train.latest_checkpoint(str(Path(run_dir) / "checkpoints")) is not None


def check_resumable(config_path: Path, config: PipelineConfig) -> None:
    """Refuse to resume a run directory that was started with a different model or data.

    Raises:
        RunDirError: ``config_path`` is unreadable or differs in [data], [model] or [defence].
    """
    if not config_path.exists():
        return
    try:
        old = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise RunDirError(
            f"{config_path} is not a readable run config ({err}); use another --run-dir, or "
            "delete that folder to start over") from None
    new = json.loads(jsonio.dumps(config.to_dict()))
    # A key the run's config lacks was added to tfrecap since, with its default value.
    old = with_defaults(old) if isinstance(old, dict) else {}
    for section in RESUME_SECTIONS:
        if old.get(section) != new[section]:
            raise RunDirError(
                f"{config_path.parent} holds a run with a different [{section}] config; "
                f"use another --run-dir, or delete that folder to start over"
            )


DATA_IDENTITY_FILE = "data_identity.json"


def check_same_data(run_dir: Path, dataset: str, identity: dict, *, write: bool) -> None:
    """Refuse to resume on a dataset rebuilt since the run started, under the same name.

    [data] names the dataset; its identity (size, count, seed, simulator fingerprint, or an
    import's folders and files) says what is in it. A rebuilt ablation variant or re-imported
    folder keeps the name, so the name alone would resume, or finish, a run on other data.
    The identity is recorded in ``run_dir/data_identity.json`` when the run starts (``write``:
    the chief), and checked only when there is a checkpoint to resume; a run from before this
    record is taken as it is.

    Raises:
        RunDirError: the recorded identity differs from ``identity``.
    """
    path = Path(run_dir) / DATA_IDENTITY_FILE
    if path.exists() and has_checkpoint(run_dir):
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and old.get("identity") != jsonio.to_jsonable(identity):
            changed = sorted(k for k in set(old.get("identity", {})) | set(identity)
                             if old.get("identity", {}).get(k) != identity.get(k))
            raise RunDirError(
                f"{run_dir} was trained on another build of dataset {dataset!r} (it differs in "
                f"{', '.join(changed)}): the data was rebuilt since. Use another --run-dir, or "
                "delete that folder to start over")
        return
    if write:
        jsonio.write_json(path, {"dataset": dataset, "identity": identity}, sort_keys=True)


def resolve_init_checkpoint(source: str | Path) -> str:
    """The checkpoint prefix that ``[train] init_from`` names.

    * a finished run directory: the checkpoint it exported, so the guard's best
      (``RUN_DIR/best/ckpt-N``, as ``best/best.json`` records) when it chose one, else its
      newest checkpoint;
    * a run directory still training, or its ``checkpoints/`` folder: the newest checkpoint;
    * a checkpoint prefix itself (``RUN_DIR/checkpoints/ckpt-1000``, ``RUN_DIR/best/ckpt-750``).

    A relative path is relative to the working directory (not to a pipeline file).

    Raises:
        TrainingError: nothing there is a checkpoint.
    """
    from tfrecap.training.guard import BEST_DIR, read_best_json

    path = Path(source).expanduser()
    guard = read_best_json(path / BEST_DIR) or {}
    best = guard.get("best")
    if best and guard.get("exported_step") == best.get("step"):
        prefix = path / BEST_DIR / best["checkpoint"]
        if Path(f"{prefix}.index").is_file():
            return str(prefix)
    for folder in (path / "checkpoints", path):
        if folder.is_dir() and (latest := tf.train.latest_checkpoint(str(folder))):
            return latest
    if Path(f"{path}.index").is_file():
        return str(path)
    raise TrainingError(
        f"[train] init_from = {str(source)!r} is not a run directory with checkpoints, a "
        "checkpoints folder or a checkpoint prefix (such as RUN_DIR/checkpoints/ckpt-1000 or "
        "RUN_DIR/best/ckpt-750)")


# The step counter's key: a LossScaleOptimizer (mixed precision) counts in its inner optimizer.
_STEP_KEYS = ("optimizer/inner_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE",
              "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")


def warm_start(model, source: str | Path) -> tuple[str, int]:
    """Copy the detector weights (and BatchNorm statistics) of ``source``'s checkpoint into
    ``model`` by Keras path: a warm start, for example adversarial fine-tuning of a clean run.

    Only the detector's variables are copied; the optimizer, the step counter and the
    model's own random stream (its seed) stay fresh, so the run is a new run that starts
    from those weights. Any defence can start from any method's run with the same [model],
    in any precision (variables are stored in float32 either way).

    Returns:
        The checkpoint prefix read (:func:`resolve_init_checkpoint`), and its step (the
        source's optimizer step counter).

    Raises:
        TrainingError: ``source`` holds no checkpoint, one of an older layout, or one whose
            detector variables are not this model's (names or shapes).
    """
    prefix = resolve_init_checkpoint(source)
    reader = tf.train.load_checkpoint(prefix)
    keys = reader.get_variable_to_shape_map()
    if _PATHS_KEY not in keys:
        raise TrainingError(f"[train] init_from: {prefix} has the checkpoint layout of an older "
                            "tfrecap (without the variable-path list); it cannot start a run")
    saved = {path: i for i, path in enumerate(json.loads(reader.get_tensor(_PATHS_KEY)))}
    wanted = model.detector.variables
    missing = [v.path for v in wanted if v.path not in saved
               or _value_key(saved[v.path]) not in keys]
    if missing:
        raise TrainingError(
            f"[train] init_from: {prefix} lacks {len(missing)} of this model's {len(wanted)} "
            f"detector variables (first: {missing[0]!r}); it was trained with another [model] "
            "config")
    values = [reader.get_tensor(_value_key(saved[v.path])) for v in wanted]
    for variable, value in zip(wanted, values, strict=True):
        if tuple(value.shape) != tuple(variable.shape):
            raise TrainingError(
                f"[train] init_from: {variable.path} is {tuple(value.shape)} in {prefix} but "
                f"{tuple(variable.shape)} in this model; it was trained with another [model] "
                "config")
    # Every shape checked first: an error leaves the model as it was, nothing half-copied.
    for variable, value in zip(wanted, values, strict=True):
        variable.assign(value)
    step = next((int(reader.get_tensor(k)) for k in _STEP_KEYS if k in keys), 0)
    return prefix, step


def _value_key(index: int) -> str:
    return f"{MODEL_VARIABLES}/{index}/.ATTRIBUTES/VARIABLE_VALUE"
