"""Where does a training epoch's wall time go outside its steps? A diagnostic, no results.

Trains a built-in pipeline with a callback that notes, at each epoch's last training batch
and at the start of its validation, the wall clock and the process's CPU time (all threads).
A gap in wall time with no CPU time spent means the process was waiting, not computing
(docs/demo_history.md#timing: the demo's secure model lost about half a minute at some epoch
ends on 2026-12-06, with no CPU used).

    python scripts/experiments/epoch_gaps.py --pipeline demo --steps 1250 --data-dir D --out OUT
    python scripts/experiments/epoch_gaps.py ... --no-tensorboard   # the same without it
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def make_clock(keras, log=print):
    """A Keras callback that logs wall and CPU seconds between an epoch's landmarks."""

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.records: list[dict] = []
            self._wall, self._cpu = time.perf_counter(), _cpu_seconds()
            self._epoch = 0
            self._steps = None

        def mark(self, what: str) -> dict:
            wall, cpu = time.perf_counter(), _cpu_seconds()
            record = {"epoch": self._epoch, "what": what, "wall_s": round(wall - self._wall, 2),
                      "cpu_s": round(cpu - self._cpu, 2)}
            self._wall, self._cpu = wall, cpu
            self.records.append(record)
            log(f"epoch {record['epoch']} {what}: {record['wall_s']:.1f} s wall, "
                f"{record['cpu_s']:.1f} s CPU")
            return record

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch + 1
            self._steps = (self.params or {}).get("steps")
            self.mark("begins")

        def on_train_batch_end(self, batch, logs=None):
            if self._steps is not None and batch == self._steps - 1:
                self.mark("training steps done")

        def on_test_begin(self, logs=None):
            self.mark("validation begins")

        def on_test_end(self, logs=None):
            self.mark("validation done")

    return EpochClock()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="demo")
    parser.add_argument("--steps", type=int, default=1250)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-tensorboard", action="store_true",
                        help="replace the TensorBoard callback by one that does nothing")
    args = parser.parse_args(argv)

    import keras

    if args.no_tensorboard:
        keras.callbacks.TensorBoard = lambda *a, **k: keras.callbacks.Callback()

    from tfrecap import config as cfg
    from tfrecap.training import train

    config = cfg.override(cfg.load_pipeline(args.pipeline), **{"train.steps": args.steps})
    train(config, data_dir=args.data_dir, run_dir=args.out / "run",
          export_dir=args.out / "saved_model", verbose=0, extra_callbacks=[make_clock(keras)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
