"""Training a detector from a pipeline config: ``tfrecap train`` and ``tfrecap reproduce``.

* :mod:`.factory`: a PipelineConfig → the compiled model (``tfrecap.models`` reads no config);
* :mod:`.checkpoint`: the run directory's checkpoint format, and whether a run resumes;
* :mod:`.guard`: the robustness guard, which keeps (and has exported) the checkpoint with the
  best validation PGD accuracy above a clean floor;
* :mod:`.loop`: :func:`train`, the resumable fit → checkpoints → export loop.
"""

from tfrecap.training.checkpoint import (
    MODEL_VARIABLES,
    VARIABLE_PATHS,
    RunDirError,
    TrainingError,
    VariablePaths,
    check_resumable,
    has_checkpoint,
    make_checkpoint,
    restore_checkpoint,
)
from tfrecap.training.factory import (
    build_model,
    build_optimizer,
    describe,
    detector_kwargs,
    resolve_jit_compile,
    resolve_precision,
    secure_model_kwargs,
)
from tfrecap.training.guard import RobustnessGuard
from tfrecap.training.loop import HISTORY_SCHEMA_VERSION, TrainResult, shard_by_data, train

__all__ = [
    "HISTORY_SCHEMA_VERSION",
    "MODEL_VARIABLES",
    "VARIABLE_PATHS",
    "RobustnessGuard",
    "RunDirError",
    "TrainResult",
    "TrainingError",
    "VariablePaths",
    "build_model",
    "build_optimizer",
    "check_resumable",
    "describe",
    "detector_kwargs",
    "has_checkpoint",
    "make_checkpoint",
    "resolve_jit_compile",
    "resolve_precision",
    "restore_checkpoint",
    "secure_model_kwargs",
    "shard_by_data",
    "train",
]
