"""Synchronized BatchNorm: the secure step under MirroredStrategy equals one device's.

Runs in a subprocess: two logical CPU devices must be configured before
TensorFlow initialises its devices. With ``synchronized_batchnorm`` BatchNorm
normalises with the statistics of the global batch, so one secure step over two
replicas gives the single-device loss and weights (moving statistics included);
with per-replica BatchNorm it does not (DESIGN.md, "Distribution"). eps is fixed.
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

    def one_step(strategy, order, synchronized):
        with strategy.scope():
            detector = tiny_detector(16, seed=0, bn_momentum=0.9,
                                     synchronized_batchnorm=synchronized)
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
            "synchronized": [n.synchronized for n in detector.norms],
        }

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.get_strategy()
    # Each replica fuses its own first k/2 images: images 0, 1 (replica 0) and
    # 4, 5 (replica 1). On one device, put those first.
    out = {"replicas": mirrored.num_replicas_in_sync}
    for synchronized in (True, False):
        out[str(synchronized)] = {
            "mirrored": one_step(mirrored, list(range(8)), synchronized),
            "single": one_step(single, [0, 1, 4, 5, 2, 3, 6, 7], synchronized),
        }
    json.dump(out, sys.stdout)
    """
)


# Synchronized statistics are E[x^2] - E[x]^2 over sums in another order: about 1e-6
# relative in the loss and 1e-5 in the weights. Per-replica BatchNorm is off by ~1e-1.
RTOL, ATOL = 1e-4, 1e-5


def _weights_close(got, want):
    return all(
        np.allclose(g, w, rtol=RTOL, atol=ATOL) for g, w in zip(got, want, strict=True)
    )


@pytest.fixture(scope="module")
def steps():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    return out


def test_synchronized_batchnorm_step_equals_single_device(steps):
    mirrored, single = steps["True"]["mirrored"], steps["True"]["single"]
    assert mirrored["synchronized"] == [True] * 5
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=RTOL)
    assert mirrored["penalty"] == pytest.approx(single["penalty"], rel=RTOL)
    for got, want in zip(mirrored["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_per_replica_batchnorm_step_differs(steps):
    """The control: without synchronization the same comparison fails."""
    mirrored, single = steps["False"]["mirrored"], steps["False"]["single"]
    assert mirrored["synchronized"] == [False] * 5
    assert mirrored["loss"] != pytest.approx(single["loss"], rel=RTOL)
    assert not _weights_close(mirrored["weights"], single["weights"])
