"""The secure step under MirroredStrategy equals the single-device step on the same global batch,
for the paper's defence and for PGD-AT, TRADES and fast FGSM.

Runs in a subprocess: two logical CPU devices must be configured before
TensorFlow initialises its devices. eps is fixed, so that only the reductions
can differ (DESIGN.md, "Distribution"):

* without BatchNorm, only the loss reduction can differ: this is what catches a
  penalty divided by the replica count zero times or twice;
* with synchronized BatchNorm, BatchNorm normalises with the statistics of the
  global batch, so the step (moving statistics included) equals one device's;
* with per-replica BatchNorm it does not: the control that shows the
  comparison can fail.
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
    NORMS = {  # name: tiny_detector arguments
        "none": {"batchnorm": False},
        "synchronized": {"bn_momentum": 0.9, "synchronized_batchnorm": True},
        "per_replica": {"bn_momentum": 0.9, "synchronized_batchnorm": False},
    }

    ZHAO = dict(penalty_weight=0.5, fusion_count=4, fusion_weight=0.2, eps_min=3.0, eps_max=3.0)
    # Their random starts and noise are drawn per (step, example in the global batch).
    METHODS = {
        "pgd_at": dict(method="pgd_at", attack_eps=3.0, attack_steps=2),
        "trades": dict(method="trades", attack_eps=3.0, attack_steps=2, trades_beta=2.0),
        "fast_fgsm": dict(method="fast_fgsm", attack_eps=3.0, grad_align_weight=0.5),
    }

    METHOD_NORMS = [("pgd_at", "none"), ("trades", "none"), ("trades", "synchronized"),
                    ("fast_fgsm", "none")]

    def one_step(strategy, order, norm, defence=ZHAO):
        with strategy.scope():
            detector = tiny_detector(16, seed=0, **NORMS[norm])
            model = SecureForensicModel(detector, seed=1, **defence)
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        data = tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(8)
        logs = model.fit(data, epochs=1, verbose=0, shuffle=False).history
        return {
            "loss": logs["loss"][0],
            "penalty": logs.get("penalty", [None])[0],
            "weights": [w.tolist() for w in detector.get_weights()],
            "synchronized": [n.synchronized for n in detector.norms],
        }

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.get_strategy()
    # Each replica fuses its own first k/2 images: images 0, 1 (replica 0) and
    # 4, 5 (replica 1). On one device, put those first.
    out = {"replicas": mirrored.num_replicas_in_sync}
    part = sys.argv[1]  # "norms" or "methods": two processes, side by side (the suite's time)
    for norm in NORMS if part == "norms" else ():
        out[norm] = {
            "mirrored": one_step(mirrored, list(range(8)), norm),
            "single": one_step(single, [0, 1, 4, 5, 2, 3, 6, 7], norm),
        }
    # Synchronized BatchNorm for TRADES, whose one training pass normalises clean and
    # adversarial images together; the others without BatchNorm (the suite's time).
    for method, norm in METHOD_NORMS if part == "methods" else ():
        out[f"{method}/{norm}"] = {
            "mirrored": one_step(mirrored, list(range(8)), norm, METHODS[method]),
            "single": one_step(single, list(range(8)), norm, METHODS[method]),
        }
    json.dump(out, sys.stdout)
    """
)

# Without BatchNorm the two steps agree to float32 rounding. Synchronized statistics are
# E[x^2] - E[x]^2 over sums in another order: about 1e-6 relative in the loss and 1e-5 in
# the weights. Per-replica BatchNorm is off by ~1e-1.
TOLERANCE = {"none": (1e-5, 1e-7), "synchronized": (1e-4, 1e-5)}


@pytest.fixture(scope="module")
def steps():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The BatchNorm variants and the methods in two processes at once: most of the time is
    # tracing, one core each.
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, part], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for part in ("norms", "methods")]
    out = {}
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        part = json.loads(stdout.strip().splitlines()[-1])
        assert part.pop("replicas") == 2
        out.update(part)
    assert {"none", "synchronized", "per_replica", "pgd_at/none", "trades/none",
            "trades/synchronized", "fast_fgsm/none"} <= set(out)
    return out


@pytest.mark.parametrize("norm", ["none", "synchronized"])
def test_mirrored_step_equals_single_device(steps, norm):
    mirrored, single = steps[norm]["mirrored"], steps[norm]["single"]
    rtol, atol = TOLERANCE[norm]
    assert mirrored["synchronized"] == [norm == "synchronized"] * len(mirrored["synchronized"])
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=rtol)
    assert mirrored["penalty"] == pytest.approx(single["penalty"], rel=rtol)
    for got, want in zip(mirrored["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("method,norm", [("pgd_at", "none"), ("trades", "none"),
                                         ("trades", "synchronized"), ("fast_fgsm", "none")])
def test_mirrored_adversarial_training_step_equals_single_device(steps, method, norm):
    """PGD-AT, TRADES and fast FGSM (with GradAlign): their random starts are keyed by
    (step, example in the global batch), so two replicas draw what one device draws."""
    mirrored, single = steps[f"{method}/{norm}"]["mirrored"], steps[f"{method}/{norm}"]["single"]
    rtol, atol = TOLERANCE[norm]
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=rtol)
    for got, want in zip(mirrored["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_per_replica_batchnorm_step_differs(steps):
    """The control: without synchronization the same comparison fails."""
    mirrored, single = steps["per_replica"]["mirrored"], steps["per_replica"]["single"]
    rtol, atol = TOLERANCE["synchronized"]
    assert mirrored["synchronized"] == [False] * 5
    assert mirrored["loss"] != pytest.approx(single["loss"], rel=rtol)
    assert not all(
        np.allclose(g, w, rtol=rtol, atol=atol)
        for g, w in zip(mirrored["weights"], single["weights"], strict=True)
    )
