"""Export the average of a run's last checkpoints' weights (stochastic weight averaging, post hoc).

Weight averaging is one of the cheap levers reported to raise both the clean and the robust
accuracy of adversarially trained models (Izmailov et al. 2018, SWA; Chen et al. 2021 and
Rebuffi et al. 2021 for adversarial training). A tfrecap run keeps its last few checkpoints
(``RUN_DIR/checkpoints``) and its guard's best one (``RUN_DIR/best``), so the average of
those can be measured without training anything: this script builds the run's detector from
its ``config.json``, reads each checkpoint's detector variables by Keras path
(:func:`tfrecap.training.checkpoint.warm_start`), averages them element-wise, BatchNorm
moving statistics included (an approximation: SWA proper recomputes them on training data),
and exports the result to ``EXPORT_DIR/N`` with ``averaged_from.json`` (the checkpoints and
steps) beside it. Unlike ``tfrecap train``'s export it has the default verdict (mean tile
probability at 0.5), the default tile cap and float32 precision, and no guard asset: it is
for measuring patches, not for serving.

Measure it as any export, for example::

    python scripts/experiments/average_checkpoints.py RUN_DIR EXPORT_DIR
    tfrecap evaluate EXPORT_DIR --data-dir D --dataset synthetic_64 --attack auto --eps 2 \
        --limit 256 --apgd-steps 10 --square-queries 50 --seed 0 --no-unbounded-check
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrecap.config import pipeline_from_dict, with_defaults
from tfrecap.export import export_detector
from tfrecap.training.checkpoint import TrainingError, warm_start
from tfrecap.training.factory import build_model

AVERAGED_FROM = "averaged_from.json"


_STEP_SUFFIX = re.compile(r"ckpt-(\d+)(?:-\d+)?$")


def _step_of(prefix: str) -> int:
    """The step in a checkpoint prefix: ``ckpt-750``, or the guard's ``ckpt-750-1`` (a rerun
    that reached the same step, :func:`tfrecap.training.guard._free_prefix`)."""
    match = _STEP_SUFFIX.search(prefix)
    if match is None:
        raise ValueError(f"{prefix} is not a tfrecap checkpoint prefix (ckpt-STEP)")
    return int(match.group(1))


def run_checkpoints(run_dir: Path, include_best: bool = True) -> list[str]:
    """The checkpoint prefixes of ``run_dir``: its kept rotation, then (optionally) the
    guard's best, oldest step first. A best checkpoint at a step the rotation still holds is
    the same weights (the guard saves the step's state) and is counted once."""
    state = (tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
             if (run_dir / "checkpoints").exists() else None)
    steps = {_step_of(p): p for p in (state.all_model_checkpoint_paths if state else [])}
    best_json = run_dir / "best" / "best.json"
    if include_best and best_json.exists():
        best = json.loads(best_json.read_text())
        steps.setdefault(int(best["step"]), str(run_dir / "best" / best["checkpoint"]))
    elif include_best:
        # best/ without best.json (an older run): its one ckpt-STEP[-k] file.
        for index in sorted((run_dir / "best").glob("ckpt-*.index")):
            prefix = str(index.with_suffix(""))
            steps.setdefault(_step_of(prefix), prefix)
    return [steps[s] for s in sorted(steps)]


def average_detector_weights(model, prefixes: list[str]) -> list[int]:
    """Assign to ``model.detector`` the element-wise mean of its variables over ``prefixes``.

    Every detector variable is a float today (convolutions, BatchNorm, the dense layer); a
    non-float one (a counter, a seed) cannot be averaged and is refused rather than
    truncated.

    Returns:
        Each checkpoint's step (its optimizer counter), in the order given.
    """
    if not prefixes:
        raise ValueError("no checkpoint to average")
    odd = [v.path for v in model.detector.variables if not tf.as_dtype(v.dtype).is_floating]
    if odd:
        raise ValueError(f"cannot average non-float detector variables: {odd}")
    total, steps = None, []
    for prefix in prefixes:
        _, step = warm_start(model, prefix)
        steps.append(step)
        values = [np.asarray(v.numpy(), np.float64) for v in model.detector.variables]
        total = values if total is None else [t + v for t, v in zip(total, values, strict=True)]
    for variable, value in zip(model.detector.variables, total, strict=True):
        variable.assign(tf.cast(value / len(prefixes), variable.dtype))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path,
                        help="a tfrecap run directory (config.json, checkpoints/)")
    parser.add_argument("export_dir", type=Path,
                        help="where the averaged model is exported (a version folder is added)")
    parser.add_argument("--last", type=int, default=0,
                        help="average only the last N checkpoints by step (0: all of them)")
    parser.add_argument("--no-best", action="store_true", help="leave out RUN_DIR/best")
    args = parser.parse_args(argv)
    if args.last < 0:
        parser.error(f"--last must be 0 (all) or a positive count, got {args.last}")

    config_path = args.run_dir / "config.json"
    if not config_path.exists():
        print(f"error: {config_path} does not exist: {args.run_dir} is not a tfrecap run directory",
              file=sys.stderr)
        return 2
    raw = with_defaults(json.loads(config_path.read_text()))
    config = pipeline_from_dict(raw, str(config_path))
    prefixes = run_checkpoints(args.run_dir, include_best=not args.no_best)
    if args.last:
        prefixes = prefixes[-args.last:]
    if not prefixes:
        print(f"error: {args.run_dir} holds no checkpoint", file=sys.stderr)
        return 2
    model = build_model(config)
    try:
        steps = average_detector_weights(model, prefixes)
    except (TrainingError, ValueError) as err:
        print(f"error: {args.run_dir}: {err}", file=sys.stderr)
        return 2
    path = export_detector(model.detector, args.export_dir, config)
    record = {"run_dir": str(args.run_dir), "checkpoints": prefixes, "steps": steps,
              "export": str(path)}
    # Said beside the export: its config asset alone reads like a plain training export.
    (path / AVERAGED_FROM).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
