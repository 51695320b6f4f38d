"""[train] init_from: a fresh run starts from another run's detector weights (a warm start)."""

import numpy as np
import pytest

from tests.test_training import TINY_PIPELINE
from tfrecap import config as cfg
from tfrecap.training import TrainingError, build_model, make_checkpoint
from tfrecap.training.checkpoint import resolve_init_checkpoint, warm_start


def _config(tmp_path, **overrides):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PIPELINE)
    return cfg.override(cfg.load_pipeline(path), **overrides)


def _pgd_at(tmp_path, **overrides):
    return _config(tmp_path, **{"defence.method": "pgd_at", "defence.penalty_weight": 0.0,
                                "defence.fusion_count": 0, **overrides})


def _saved_run(model, run_dir, step=7):
    """``model``'s checkpoint in ``run_dir/checkpoints`` at ``step``, weights scrambled so
    that they differ from any fresh model's."""
    rng = np.random.default_rng(1)
    for variable in model.detector.variables:
        variable.assign(rng.normal(size=variable.shape).astype(variable.dtype))
    for variable in model.variables:
        if "seed_generator" in variable.path:  # not the detector's: must not be copied
            variable.assign(variable + 12345)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(step)
    checkpoint = make_checkpoint(model)
    checkpoint.write(str(run_dir / "checkpoints" / f"ckpt-{step}"))
    # A checkpoint index file, as CheckpointManager writes it.
    (run_dir / "checkpoints" / "checkpoint").write_text(
        f'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n')
    return {v.path: v.numpy() for v in model.detector.variables}


def test_a_defence_starts_from_another_methods_weights_with_a_fresh_optimizer(tmp_path):
    source = build_model(_config(tmp_path))  # the paper's defence
    expected = _saved_run(source, tmp_path / "run")
    target = build_model(_pgd_at(tmp_path))
    seed_before = [v.numpy() for v in target.variables if "seed_generator" in v.path]
    prefix, step = warm_start(target, tmp_path / "run")
    assert prefix.endswith("ckpt-7") and step == 7
    for variable in target.detector.variables:
        np.testing.assert_array_equal(variable.numpy(), expected[variable.path], variable.path)
    # The run keeps its own random stream and starts at step 0.
    seed_after = [v.numpy() for v in target.variables if "seed_generator" in v.path]
    assert seed_after and all(map(np.array_equal, seed_after, seed_before))
    assert int(target.optimizer.iterations.numpy()) == 0


def test_a_mixed_precision_source_reports_its_step(tmp_path):
    """Regression: a LossScaleOptimizer counts steps in its inner optimizer, so a source
    trained in mixed precision (the GPU default) was reported as step 0."""
    source = build_model(_config(tmp_path), precision="mixed_float16")
    expected = _saved_run(source, tmp_path / "run", step=9)
    target = build_model(_pgd_at(tmp_path))  # float32
    _, step = warm_start(target, tmp_path / "run")
    assert step == 9
    for variable in target.detector.variables:
        np.testing.assert_array_equal(variable.numpy(), expected[variable.path], variable.path)


def test_init_from_accepts_the_checkpoints_folder_and_a_prefix(tmp_path):
    _saved_run(build_model(_config(tmp_path)), tmp_path / "run", step=3)
    by_run = resolve_init_checkpoint(tmp_path / "run")
    assert by_run.endswith("ckpt-3")
    assert resolve_init_checkpoint(tmp_path / "run" / "checkpoints") == by_run
    assert resolve_init_checkpoint(by_run) == by_run


def test_a_guarded_run_starts_others_from_the_checkpoint_it_exported(tmp_path):
    from tfrecap import jsonio

    model = build_model(_config(tmp_path))
    _saved_run(model, tmp_path / "run", step=6)
    best = make_checkpoint(model).write(str(tmp_path / "run" / "best" / "ckpt-4"))
    record = {"schema_version": 1, "best": {"step": 4, "checkpoint": "ckpt-4"}, "step": 4,
              "exported_step": 4}
    jsonio.write_json(tmp_path / "run" / "best" / "best.json", record)
    assert resolve_init_checkpoint(tmp_path / "run") == best
    # A run still training (no exported_step yet) starts others from its newest checkpoint.
    del record["exported_step"]
    jsonio.write_json(tmp_path / "run" / "best" / "best.json", record)
    assert resolve_init_checkpoint(tmp_path / "run").endswith("checkpoints/ckpt-6")


def test_a_missing_source_is_an_error_naming_it(tmp_path):
    with pytest.raises(TrainingError, match=r"init_from = '.*nowhere' is not a run directory"):
        warm_start(build_model(_config(tmp_path)), tmp_path / "nowhere")


def test_weights_of_another_model_config_are_refused_with_shapes(tmp_path):
    _saved_run(build_model(_config(tmp_path, **{"model.widths": (4, 4, 8, 8, 16)})),
               tmp_path / "run")
    target = build_model(_config(tmp_path))
    before = [v.numpy() for v in target.detector.variables]
    with pytest.raises(TrainingError, match=r"is \(.*\) in .* but \(.*\) in this model"):
        warm_start(target, tmp_path / "run")
    # Nothing was half-copied.
    for variable, value in zip(target.detector.variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_train_warm_starts_a_fresh_run_and_a_resume_ignores_it(tmp_path, synthetic_dir):
    from tfrecap.training import train

    base = train(_config(tmp_path), data_dir=synthetic_dir, run_dir=tmp_path / "base",
                 verbose=0, log=lambda m: None)
    trained = {v.path: v.numpy() for v in base.model.detector.variables}
    # A learning rate so small that two Adam steps (each at most ~lr) leave the kernels
    # where the warm start put them.
    config = _pgd_at(tmp_path, **{"train.steps": 2, "train.init_from": str(tmp_path / "base"),
                                  "train.learning_rate": 1e-9})
    lines = []
    tuned = train(config, data_dir=synthetic_dir, run_dir=tmp_path / "tuned", verbose=0,
                  log=lines.append)
    assert tuned.resumed_from_step == 0 and tuned.steps_done == 2
    assert any(line.startswith("Warm start:") and "(step 6)" in line for line in lines), lines
    kernels = [v for v in tuned.model.detector.variables if v.path.endswith("kernel")]
    assert kernels
    for variable in kernels:
        np.testing.assert_allclose(variable.numpy(), trained[variable.path], atol=1e-6,
                                   err_msg=variable.path)

    lines.clear()
    longer = cfg.override(config, **{"train.steps": 4})
    again = train(longer, data_dir=synthetic_dir, run_dir=tmp_path / "tuned", verbose=0,
                  log=lines.append)
    assert again.resumed_from_step == 2 and again.steps_done == 4
    assert not any(line.startswith("Warm start:") for line in lines)
    assert any("init_from" in line and "is ignored" in line for line in lines), lines


def test_a_bad_init_from_fails_before_any_data_is_read(tmp_path):
    from tfrecap.training import train

    config = _pgd_at(tmp_path, **{"train.init_from": str(tmp_path / "nowhere")})
    with pytest.raises(TrainingError, match="nowhere' is not a run directory"):
        # No dataset in this data dir: the init_from error must come first.
        train(config, data_dir=tmp_path / "no_data", run_dir=tmp_path / "run", verbose=0,
              log=lambda m: None)
    assert not (tmp_path / "run").exists()
