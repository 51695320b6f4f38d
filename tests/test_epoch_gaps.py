"""scripts/experiments/epoch_gaps.py: the clock notes wall and CPU time at an epoch's
landmarks, and a wait shows as wall time with no CPU time."""

import time

import keras

from tests.script_loader import load_script

script = load_script("experiments/epoch_gaps")


def test_the_clock_marks_each_landmark_and_tells_waiting_from_computing():
    lines = []
    clock = script.make_clock(keras, log=lines.append)
    clock.set_params({"steps": 2})
    clock.on_epoch_begin(0)
    clock.on_train_batch_end(0)  # not the last step: no mark
    sum(i * i for i in range(2_000_000))  # computing
    clock.on_train_batch_end(1)
    time.sleep(0.3)  # waiting
    clock.on_test_begin()
    clock.on_test_end()
    assert [r["what"] for r in clock.records] == ["begins", "training steps done",
                                                  "validation begins", "validation done"]
    assert all(r["epoch"] == 1 for r in clock.records)
    computing, waiting = clock.records[1], clock.records[2]
    assert computing["cpu_s"] > 0.5 * computing["wall_s"] > 0
    assert waiting["wall_s"] >= 0.29 and waiting["cpu_s"] < 0.1
    assert lines[2].startswith("epoch 1 validation begins: 0.3 s wall")
