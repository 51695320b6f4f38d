"""The secure step under MirroredStrategy equals the single-device step on the same global batch.

Runs in a subprocess: two logical CPU devices must be configured before
TensorFlow initialises its devices. No BatchNorm and a fixed eps, so that only
the loss reduction can differ (DESIGN.md, "Distribution").
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from tests.models.helpers import batch, tiny_detector
    from tfrecap.models import SecureForensicModel

    x, y = batch(8, 16, seed=5)

    def one_step(strategy, order):
        with strategy.scope():
            detector = tiny_detector(16, batchnorm=False, seed=0)
            model = SecureForensicModel(
                detector, penalty_weight=0.5, fusion_count=4, fusion_weight=0.2,
                eps_min=3.0, eps_max=3.0,
            )
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        data = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(8)
        logs = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        return {
            "loss": logs["loss"][0],
            "penalty": logs["penalty"][0],
            "weights": [w.tolist() for w in detector.get_weights()],
        }

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # Each replica fuses its own first k/2 images: images 0, 1 (replica 0) and
    # 4, 5 (replica 1). On one device, put those first.
    out = {
        "mirrored": one_step(mirrored, list(range(8))),
        "single": one_step(tf.distribute.get_strategy(), [0, 1, 4, 5, 2, 3, 6, 7]),
        "replicas": mirrored.num_replicas_in_sync,
    }
    json.dump(out, sys.stdout)
    """
)


def test_mirrored_step_equals_single_device():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    mirrored, single = out["mirrored"], out["single"]
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=1e-5)
    assert mirrored["penalty"] == pytest.approx(single["penalty"], rel=1e-5)
    for got, want in zip(mirrored["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
