"""Multi-device training: strategy construction, mirrored train() with resume, two workers.

Each TF test runs in a subprocess that configures 2 logical CPUs (or sets
TF_CONFIG) before TensorFlow initialises its devices. The two-worker test is slow
(two TensorFlow processes, then a reference run): `python -m pytest --runslow`.
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

    pipeline, data_dir, run_dir, export_dir, steps, *weights_out = sys.argv[1:]
    config = cfg.override(cfg.load_pipeline(pipeline), **{"train.steps": int(steps)})
    export_dir = None if export_dir == "none" else export_dir
    result = train(config, data_dir=data_dir, run_dir=run_dir, export_dir=export_dir, verbose=0)
    print("STEPS", result.steps_done)
    if weights_out:
        import numpy as np

        np.savez(weights_out[0], *result.model.detector.get_weights())
    """
)

# One worker of a multi-worker run: the whole `train()` under the pipeline's strategy.
WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np

    from tfrecap import config as cfg
    from tfrecap.training import train

    pipeline, data_dir, run_dir, export_dir, steps, out = sys.argv[1:]
    config = cfg.override(cfg.load_pipeline(pipeline), **{"train.steps": int(steps)})
    result = train(config, data_dir=data_dir, run_dir=run_dir, export_dir=export_dir, verbose=0)
    np.savez(out + ".npz", *result.model.detector.get_weights())
    export = None if result.export_path is None else str(result.export_path)
    with open(out + ".json", "w") as f:
        json.dump({"steps": result.steps_done, "export": export, "history": result.history}, f)
    """
)

# The Keras-facing part of tfrecap.distribute.MultiWorkerMirroredStrategy, in local mode.
REDUCE_SCRIPT = textwrap.dedent(
    """
    import json
    import tensorflow as tf
    from tfrecap.distribute import MultiWorkerMirroredStrategy

    strategy = MultiWorkerMirroredStrategy()
    scalar = strategy.run(lambda: tf.constant(3.0))
    vector = strategy.run(lambda: tf.constant([1.0, 2.0, 6.0]))
    pair = strategy.reduce("MEAN", (scalar, vector), axis=None)
    out = {
        "scalar_axis0": float(strategy.reduce("MEAN", scalar, axis=0)),
        "vector_axis0": float(strategy.reduce("MEAN", vector, axis=0)),
        "pair": [float(pair[0]), pair[1].numpy().tolist()],
    }
    try:
        tf.distribute.MultiWorkerMirroredStrategy().reduce("MEAN", scalar, axis=0)
        out["stock"] = "ok"
    except ValueError as err:
        out["stock"] = str(err)
    print(json.dumps(out))
    """
)


# A warm start into a model built under MirroredStrategy: every replica's copy of every
# detector variable holds the source's value (a copy that reached only replica 0 would make
# the replicas train apart).
WARM_START_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from tfrecap import config as cfg
    from tfrecap.training import build_model, make_checkpoint
    from tfrecap.training.checkpoint import warm_start

    pipeline, run_dir = sys.argv[1:]
    config = cfg.load_pipeline(pipeline)
    source = build_model(config)
    rng = np.random.default_rng(0)
    for v in source.detector.variables:
        v.assign(rng.normal(size=v.shape).astype(v.dtype))
    source.optimizer.build(source.trainable_variables)
    source.optimizer.iterations.assign(5)
    make_checkpoint(source).write(run_dir + "/checkpoints/ckpt-5")
    expected = {v.path: v.numpy() for v in source.detector.variables}

    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        target = build_model(cfg.override(config, **{"defence.method": "pgd_at",
                                                     "defence.penalty_weight": 0.0,
                                                     "defence.fusion_count": 0}))
    # After the scope, as tfrecap.training.loop calls it.
    _, step = warm_start(target, run_dir + "/checkpoints/ckpt-5")
    copies = 0
    for v in target.detector.variables:
        # A Keras variable wraps the tf.Variable, a MirroredVariable under the scope.
        for replica_value in strategy.experimental_local_results(v.value):
            np.testing.assert_array_equal(replica_value.numpy(), expected[v.path], v.path)
            copies += 1
    print("REPLICAS", strategy.num_replicas_in_sync, "COPIES", copies,
          "VARIABLES", len(target.detector.variables), "STEP", step)
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


@pytest.mark.slow  # ~65 s; the mirrored step itself is tested in tests/models/test_distributed.py
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


def test_multi_worker_strategy_reduces_scalars_and_structures():
    """What Keras 3 `fit` needs from `Strategy.reduce` (tfrecap.distribute docstring)."""
    env = {k: v for k, v in ENV.items() if k != "TF_CONFIG"}
    proc = subprocess.run([sys.executable, "-c", REDUCE_SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["scalar_axis0"] == 3.0  # the stock strategy raises here:
    assert "Invalid reduction dimension 0 for input with 0 dimensions" in out["stock"]
    assert out["vector_axis0"] == 3.0  # a real axis 0 is reduced as before
    assert out["pair"] == [3.0, [1.0, 2.0, 6.0]]


def _free_ports(count):
    """``count`` distinct loopback ports that were free a moment ago (bound to port 0)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _run_workers(argv, *, run_dirs, env=None, timeout=300):
    """Run ``WORKER_SCRIPT`` as two workers on localhost; ``[(returncode, stdout, stderr)]``.

    ``argv(index, run_dir)`` gives worker ``index``'s arguments. A launch that loses a
    port to another process between picking and binding it is retried with new ports.
    """
    for _attempt in range(3):
        workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
        procs = []
        try:
            for index in range(2):
                tf_config = {"cluster": {"worker": workers},
                             "task": {"type": "worker", "index": index}}
                worker_env = {**ENV, **(env or {}).get(index, {}),
                              "TF_CONFIG": json.dumps(tf_config)}
                procs.append(subprocess.Popen(
                    [sys.executable, "-c", WORKER_SCRIPT, *map(str, argv(index, run_dirs[index]))],
                    cwd=REPO, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True,
                ))
            results = []
            for proc in procs:
                out, err = proc.communicate(timeout=timeout)
                results.append((proc.returncode, out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        if not any("ddress already in use" in err for _, _, err in results):
            return results
    return results


@pytest.mark.slow
def test_two_workers_train_like_two_replicas_and_only_the_chief_writes(synthetic_dir, tmp_path):
    """Two MultiWorkerMirroredStrategy processes on localhost run `train()` for 4 steps.

    Each has its own TF_CONFIG and loopback ports, and they share one run dir (a shared
    file system). They must end with the same weights and history, and with exactly
    those of MirroredStrategy over two local devices: the same global batches split
    the same way (DATA auto-sharding: worker i keeps replica i's slice of every global
    batch; FILE sharding gives other batches and fails this), the same fusion, penalty
    and synchronized BatchNorm. Only the chief writes to the run and export dirs; the
    other worker's checkpoints go to a temporary dir that is gone at the end. Then a
    worker that cannot see the chief's checkpoints makes both refuse to resume.
    """
    pipeline = tmp_path / "mw.toml"
    pipeline.write_text(
        TINY_TRAINING_PIPELINE.replace("[defence]", "synchronized_batchnorm = true\n[defence]")
        + 'strategy = "multi_worker"\n'
    )
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    worker_tmp = tmp_path / "worker1_tmp"
    worker_tmp.mkdir()

    results = _run_workers(
        lambda i, rd: [pipeline, synthetic_dir, rd, export_dir, 4, tmp_path / f"w{i}"],
        run_dirs=[run_dir, run_dir], env={1: {"TMPDIR": str(worker_tmp)}},
    )
    for returncode, out, err in results:
        assert returncode == 0, out + err[-3000:]
        assert "strategy=multi_worker (2 replicas)" in out
    (_, chief_out, _), (_, worker_out, _) = results
    assert "Not the chief" not in chief_out
    assert f"checkpoints go to the temporary {worker_tmp}" in worker_out
    assert not any(worker_tmp.iterdir())  # the worker's checkpoints were deleted

    chief = json.loads((tmp_path / "w0.json").read_text())
    worker = json.loads((tmp_path / "w1.json").read_text())
    assert chief["steps"] == worker["steps"] == 4
    assert chief["export"] == str(export_dir / "1") and worker["export"] is None
    assert sorted(p.name for p in export_dir.iterdir()) == ["1"]
    assert (export_dir / "1" / "saved_model.pb").exists()
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints", "config.json", "history.json", "logs"
    ]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index",
        "ckpt-4.data-00000-of-00001", "ckpt-4.index",
    ]
    history = json.loads((run_dir / "history.json").read_text())["epochs"]
    assert [h["step"] for h in history] == [2, 4]
    for got, want in zip(worker["history"], chief["history"], strict=True):
        assert {k: v for k, v in got.items() if k != "time"} == pytest.approx(
            {k: v for k, v in want.items() if k != "time"}, rel=1e-6
        )
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for name in w0.files:
        np.testing.assert_allclose(w1[name], w0[name], rtol=1e-6, atol=1e-7)

    # The same run under MirroredStrategy over two logical CPUs of one process.
    mirrored = tmp_path / "mirrored.toml"
    mirrored.write_text(pipeline.read_text().replace('"multi_worker"', '"mirrored"'))
    args = [sys.executable, "-c", MIRRORED_SCRIPT, mirrored, synthetic_dir, tmp_path / "m_run",
            "none", 4, tmp_path / "mirrored.npz"]
    proc = subprocess.run(list(map(str, args)), cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "strategy=mirrored (2 replicas)" in proc.stdout
    reference = np.load(tmp_path / "mirrored.npz")
    for name in w0.files:
        np.testing.assert_allclose(w0[name], reference[name], rtol=1e-5, atol=1e-6)
    m_history = json.loads((tmp_path / "m_run" / "history.json").read_text())["epochs"]
    assert [h["loss"] for h in history] == pytest.approx([h["loss"] for h in m_history], rel=1e-5)

    # Worker 1 on another file system (its own, empty run dir): both refuse to resume.
    results = _run_workers(
        lambda i, rd: [pipeline, synthetic_dir, rd, export_dir, 6, tmp_path / f"r{i}"],
        run_dirs=[run_dir, tmp_path / "other_run"],
    )
    for returncode, out, err in results:
        assert returncode != 0, out
        assert "the workers would resume from different steps [4, 0]" in err, err[-3000:]


def test_a_warm_start_reaches_every_replica_of_a_mirrored_model(tiny_pipeline, tmp_path):
    args = [sys.executable, "-c", WARM_START_SCRIPT, tiny_pipeline, tmp_path / "source"]
    proc = subprocess.run(list(map(str, args)), cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPLICAS"))
    words = line.split()
    found = dict(zip(words[::2], map(int, words[1::2]), strict=True))
    assert found["REPLICAS"] == 2 and found["STEP"] == 5
    assert found["COPIES"] == 2 * found["VARIABLES"] > 0
