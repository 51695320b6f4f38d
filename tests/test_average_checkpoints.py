"""scripts/experiments/average_checkpoints.py: the element-wise mean of a run's checkpoints."""

import json

import numpy as np

from tests.script_loader import load_script
from tests.test_warm_start import _config
from tfrecap.training import build_model, make_checkpoint


def _write_run(tmp_path, steps_in_rotation, best_step):
    """A run directory whose checkpoint at step s holds every detector variable filled with s
    (so any mean is known by hand), a rotation file as CheckpointManager writes it, a best/
    folder as the guard writes it (no state file), and config.json."""
    config = _config(tmp_path)
    model = build_model(config)
    run = tmp_path / "run"
    for folder, step in [*(("checkpoints", s) for s in steps_in_rotation), ("best", best_step)]:
        for variable in model.detector.variables:
            variable.assign(np.full(variable.shape, float(step), variable.dtype))
        model.optimizer.iterations.assign(step)
        make_checkpoint(model).write(str(run / folder / f"ckpt-{step}"))
    (run / "checkpoints" / "checkpoint").write_text(
        f'model_checkpoint_path: "ckpt-{steps_in_rotation[-1]}"\n'
        + "".join(f'all_model_checkpoint_paths: "ckpt-{s}"\n' for s in steps_in_rotation))
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    return run, config


def test_the_average_of_the_kept_checkpoints_and_the_best_is_their_mean(tmp_path):
    script = load_script("experiments/average_checkpoints")
    run, config = _write_run(tmp_path, steps_in_rotation=[200, 300], best_step=100)
    prefixes = script.run_checkpoints(run)
    assert [int(p.rsplit("-", 1)[1]) for p in prefixes] == [100, 200, 300]
    model = build_model(config)
    assert script.average_detector_weights(model, prefixes) == [100, 200, 300]
    for variable in model.detector.variables:
        np.testing.assert_allclose(variable.numpy(), 200.0, err_msg=variable.path)
    # Without best/: the rotation only.
    assert script.average_detector_weights(model, script.run_checkpoints(run, False)) == [200, 300]
    np.testing.assert_allclose(model.detector.variables[0].numpy(), 250.0)


def test_main_exports_the_average_and_refuses_a_folder_that_is_no_run(tmp_path, capsys):
    script = load_script("experiments/average_checkpoints")
    run, _ = _write_run(tmp_path, steps_in_rotation=[200, 300], best_step=300)
    assert script.main([str(run), str(tmp_path / "export"), "--last", "1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["steps"] == [300] and (tmp_path / "export" / "1" / "saved_model.pb").exists()
    assert script.main([str(tmp_path), str(tmp_path / "export")]) == 2
    assert "not a tfrecap run directory" in capsys.readouterr().err
