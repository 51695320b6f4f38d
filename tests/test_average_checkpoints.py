"""scripts/experiments/average_checkpoints.py: the element-wise mean of a run's checkpoints."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.script_loader import load_script
from tests.test_training import TINY_PIPELINE
from tfrecap import config as cfg
from tfrecap.evaluation import logits_fn_of
from tfrecap.training import build_model, make_checkpoint


@pytest.fixture(scope="module")
def script():
    return load_script("experiments/average_checkpoints")


def _write_run(tmp_path, steps_in_rotation, best_step, best_name=None, state_file=True):
    """A run directory whose checkpoint at step s holds every detector variable filled with s
    (so any mean is known by hand): a rotation as CheckpointManager writes it, a best/ folder
    as the guard writes it (its ckpt and best.json), and config.json."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "tiny.toml").write_text(TINY_PIPELINE)
    config = cfg.load_pipeline(tmp_path / "tiny.toml")
    model = build_model(config)
    run = tmp_path / "run"
    best_name = best_name or f"ckpt-{best_step}"
    for path, step in [*((f"checkpoints/ckpt-{s}", s) for s in steps_in_rotation),
                       (f"best/{best_name}", best_step)]:
        for variable in model.detector.variables:
            variable.assign(np.full(variable.shape, float(step), variable.dtype))
        model.optimizer.iterations.assign(step)
        make_checkpoint(model).write(str(run / path))
    if state_file:
        (run / "checkpoints" / "checkpoint").write_text(
            f'model_checkpoint_path: "ckpt-{steps_in_rotation[-1]}"\n'
            + "".join(f'all_model_checkpoint_paths: "ckpt-{s}"\n' for s in steps_in_rotation))
    (run / "best" / "best.json").write_text(json.dumps({"step": best_step,
                                                         "checkpoint": best_name}))
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    return run, config


def _steps(prefixes):
    return [int(p.rsplit("/", 1)[1].split("-")[1]) for p in prefixes]


def test_the_average_of_the_kept_checkpoints_and_the_best_is_their_mean(tmp_path, script):
    run, config = _write_run(tmp_path, steps_in_rotation=[200, 300], best_step=100)
    prefixes = script.run_checkpoints(run)
    assert _steps(prefixes) == [100, 200, 300]
    model = build_model(config)
    assert script.average_detector_weights(model, prefixes) == [100, 200, 300]
    for variable in model.detector.variables:
        np.testing.assert_allclose(variable.numpy(), 200.0, err_msg=variable.path)
    # Without best/: the rotation only.
    assert script.average_detector_weights(model, script.run_checkpoints(run, False)) == [200, 300]
    np.testing.assert_allclose(model.detector.variables[0].numpy(), 250.0)


def test_a_best_at_a_kept_step_counts_once_and_a_rerun_suffix_is_read(tmp_path, script):
    run, _ = _write_run(tmp_path, steps_in_rotation=[200, 300], best_step=300)
    assert _steps(script.run_checkpoints(run)) == [200, 300]
    # The guard names a second best at the same step ckpt-STEP-1: still step 150, first.
    run, _ = _write_run(tmp_path / "b", steps_in_rotation=[200, 300], best_step=150,
                        best_name="ckpt-150-1")
    prefixes = script.run_checkpoints(run)
    assert _steps(prefixes) == [150, 200, 300] and prefixes[0].endswith("ckpt-150-1")


def test_a_rotation_without_its_state_file_leaves_the_best_only(tmp_path, script):
    run, _ = _write_run(tmp_path, steps_in_rotation=[200], best_step=100, state_file=False)
    assert _steps(script.run_checkpoints(run)) == [100]


def test_main_exports_the_average_and_says_so(tmp_path, script, capsys):
    run, _ = _write_run(tmp_path, steps_in_rotation=[200, 300], best_step=100)
    assert script.main([str(run), str(tmp_path / "export"), "--last", "2"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == [200, 300]
    version = tmp_path / "export" / "1"
    assert json.loads((version / script.AVERAGED_FROM).read_text())["steps"] == [200, 300]
    logits = logits_fn_of(tf.saved_model.load(str(version)))
    # Every weight is 250 in the export: its logits are the averaged model's, not a step's.
    model = build_model(cfg.load_pipeline(tmp_path / "tiny.toml"))
    for variable in model.detector.variables:
        variable.assign(np.full(variable.shape, 250.0, variable.dtype))
    images = np.full((1, *model.detector.input_shape[1:]), 100.0, np.float32)
    np.testing.assert_allclose(logits(images), model.detector(images, training=False),
                               rtol=1e-5)


def test_main_refuses_what_it_cannot_average(tmp_path, script, capsys):
    assert script.main([str(tmp_path), str(tmp_path / "export")]) == 2
    assert "not a tfrecap run directory" in capsys.readouterr().err
    run, _ = _write_run(tmp_path, steps_in_rotation=[200], best_step=100)
    with pytest.raises(SystemExit):
        script.main([str(run), str(tmp_path / "export"), "--last", "-1"])
    assert "--last must be 0" in capsys.readouterr().err
