"""Export the average of a run's last checkpoints' weights (stochastic weight averaging, post hoc).

Weight averaging is one of the cheap levers reported to raise both the clean and the robust
accuracy of adversarially trained models (Izmailov et al. 2018, SWA; Chen et al. 2021 and
Rebuffi et al. 2021 for adversarial training). A tfrecap run keeps its last few checkpoints
(``RUN_DIR/checkpoints``) and its guard's best one (``RUN_DIR/best``), so the average of
those can be measured without training anything: this script builds the run's detector from
its ``config.json``, reads each checkpoint's detector variables by Keras path
(:func:`tfrecap.training.checkpoint.warm_start`), averages them element-wise, BatchNorm
moving statistics included (an approximation: SWA proper recomputes them on training data),
and exports the result to ``EXPORT_DIR/N`` like ``tfrecap train`` does, with the default
verdict (mean tile probability at 0.5) and no guard asset.

Measure it as any export, for example::

    python scripts/experiments/average_checkpoints.py RUN_DIR EXPORT_DIR
    tfrecap evaluate EXPORT_DIR --data-dir D --dataset synthetic_64 --attack auto --eps 2 \
        --limit 256 --apgd-steps 10 --square-queries 50 --seed 0 --no-unbounded-check
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrecap.config import pipeline_from_dict, with_defaults
from tfrecap.export import export_detector
from tfrecap.training.checkpoint import warm_start
from tfrecap.training.factory import build_model


def run_checkpoints(run_dir: Path, include_best: bool = True) -> list[str]:
    """The checkpoint prefixes of ``run_dir``: its kept rotation, then (optionally) its best,
    each once, oldest step first."""
    prefixes = list(tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
                    .all_model_checkpoint_paths) if (run_dir / "checkpoints").exists() else []
    # best/ holds one ckpt-STEP without a checkpoint-state file.
    best = sorted((run_dir / "best").glob("ckpt-*.index")) if include_best else []
    steps = {int(p.rsplit("-", 1)[1]): p for p in prefixes}
    for index in best:
        prefix = str(index.with_suffix(""))
        steps.setdefault(int(prefix.rsplit("-", 1)[1]), prefix)
    return [steps[s] for s in sorted(steps)]


def average_detector_weights(model, prefixes: list[str]) -> list[int]:
    """Assign to ``model.detector`` the element-wise mean of its variables over ``prefixes``.

    Returns each checkpoint's step, in order.
    """
    if not prefixes:
        raise ValueError("no checkpoint to average")
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
                        help="average only the last N checkpoints by step (0: all, best included)")
    parser.add_argument("--no-best", action="store_true", help="leave out RUN_DIR/best")
    args = parser.parse_args(argv)

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
    steps = average_detector_weights(model, prefixes)
    path = export_detector(model.detector, args.export_dir, config)
    print(json.dumps({"run_dir": str(args.run_dir), "steps": steps, "export": str(path)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
