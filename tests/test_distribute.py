"""Multi-device training: strategy construction, mirrored train() with resume, two workers.

Each TF test runs in a subprocess that configures 2 logical CPUs (or sets
TF_CONFIG) before TensorFlow initialises its devices.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.test_training import TINY_PIPELINE as TINY_TRAINING_PIPELINE

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}

# The training tests' tiny pipeline ([train] is its last table), run under MirroredStrategy.
TINY_PIPELINE = TINY_TRAINING_PIPELINE + 'strategy = "mirrored"\n'

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from tfrecap import config as cfg
    from tfrecap.training import train

    pipeline, data_dir, run_dir, export_dir, steps = sys.argv[1:]
    config = cfg.override(cfg.load_pipeline(pipeline), **{"train.steps": int(steps)})
    result = train(config, data_dir=data_dir, run_dir=run_dir, export_dir=export_dir, verbose=0)
    print("STEPS", result.steps_done)
    """
)

WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    import keras

    from tfrecap.distribute import is_chief, make_strategy, skip_symbolic_build

    strategy = make_strategy("multi_worker")
    from tests.models.helpers import batch, tiny_detector
    from tfrecap.models import SecureForensicModel

    with strategy.scope():
        detector = tiny_detector(16, batchnorm=False, seed=0)
        model = SecureForensicModel(
            detector, penalty_weight=0.5, fusion_count=2, fusion_weight=0.2,
            eps_min=3.0, eps_max=3.0,
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        model(tf.zeros((1, 16, 16, 3)))
        model.optimizer.build(model.trainable_variables)
    skip_symbolic_build(model)
    x, y = batch(16, 16, seed=5)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    model.fit(data.with_options(options), epochs=1, verbose=0, shuffle=False)
    np.savez(sys.argv[1], *detector.get_weights())
    print("REPLICAS", strategy.num_replicas_in_sync, "CHIEF", is_chief(strategy))
    """
)


@pytest.fixture
def tiny_pipeline(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PIPELINE)
    return path


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    from tfrecap.distribute import StrategyError, make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StrategyError, match="TF_CONFIG"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(StrategyError, match="TF_CONFIG is malformed"):
        make_strategy("multi_worker")


def test_mirrored_train_over_two_cpus_exports_and_resumes(tiny_pipeline, synthetic_dir, tmp_path):
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"

    def run(steps):
        args = [sys.executable, "-c", MIRRORED_SCRIPT, tiny_pipeline, synthetic_dir, run_dir,
                export_dir, steps]
        proc = subprocess.run(list(map(str, args)), cwd=REPO, env=ENV, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        return proc.stdout

    first = run(4)
    assert "strategy=mirrored (2 replicas)" in first
    assert "STEPS 4" in first
    assert (export_dir / "1" / "saved_model.pb").exists()
    second = run(6)
    assert "Resumed from step 4" in second
    assert "STEPS 6" in second
    history = json.loads((run_dir / "history.json").read_text())["epochs"]
    assert [h["step"] for h in history] == [2, 4, 6]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.xfail(
    reason="Keras 3.15 fit under MultiWorkerMirroredStrategy with one local replica per "
    "worker fails: the symbolic build (worked around by skip_symbolic_build) and then "
    "'Invalid reduction dimension 0 for input with 0 dimensions' in a reduction; "
    "not yet diagnosed",
    strict=False,
)
def test_two_workers_end_with_the_same_weights(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**ENV, "TF_CONFIG": json.dumps(tf_config)}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(tmp_path / f"w{index}.npz")],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert "REPLICAS 2 CHIEF True" in outs[0]
    assert "REPLICAS 2 CHIEF False" in outs[1]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for name in w0.files:
        np.testing.assert_allclose(w0[name], w1[name], rtol=1e-6, atol=1e-7)
