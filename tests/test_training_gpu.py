"""The GPU default path: ``precision = "auto"`` and ``jit_compile = "auto"`` on a GPU.

There they mean mixed_float16 + XLA + the nested tape under loss scaling, with float16
overflow steps skipped (DESIGN.md, "Mixed precision"). The ``gpu`` tests build the secure
model through the real factory with the defaults; they are skipped by default, and skipped
on a machine without a GPU even with ``--runslow``. The same step checks also run on CPU
under an explicit ``mixed_float16`` policy without XLA (``slow``), so the checks themselves
are exercised where no GPU is.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrecap import config as cfg
from tfrecap.training import build_model, resolve_jit_compile, resolve_precision

HAS_GPU = bool(tf.config.list_physical_devices("GPU"))
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="no GPU on this machine")

# The training tests' tiny secure pipeline with the [train] defaults: precision and
# jit_compile "auto".
PIPELINE = {
    "name": "tiny_gpu",
    "data": {"dataset": "synthetic_64", "patch_size": 64},
    "model": {"widths": [4, 4, 8, 8, 8], "bn_momentum": 0.9},
    "defence": {"penalty_weight": 0.1, "fusion_count": 4},
    "train": {"batch_size": 8, "steps": 4, "checkpoint_every": 2, "learning_rate": 1e-3},
}


def _batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 64, 64, 3)).astype("float32")
    return x, np.array([0, 1] * 4, "int32")


def _check_secure_steps_under_loss_scaling(model):
    """A secure step (penalty + fusion) applies with a finite loss, and an overflow is skipped."""
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.dtype_policy.name == "mixed_float16"
    assert model.detector.dtype_policy.name == "mixed_float16"
    assert model.uses_penalty and model.uses_fusion
    x, y = _batch()

    # The initial scale (2**15) may overflow float16 and skip a step or two; then it applies.
    for _ in range(20):
        logs = model.train_on_batch(x, y, return_dict=True)
        if int(optimizer.iterations.numpy()) > 0:
            break
    assert int(optimizer.iterations.numpy()) == 1, "no secure step was ever applied"
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0, logs
    assert np.isfinite(logs["penalty"]) and logs["penalty"] > 0, logs
    assert 0.0 <= logs["adv_accuracy"] <= 1.0, logs

    # An overflow: at a scale of 2**100 every scaled gradient is inf in float16.
    before = [v.numpy() for v in model.trainable_variables]
    optimizer.dynamic_scale.assign(2.0**100)
    model.train_on_batch(x, y, return_dict=True)
    assert int(optimizer.iterations.numpy()) == 1, "the overflow step was counted"
    assert float(optimizer.dynamic_scale.numpy()) == 2.0**99, "the loss scale was not halved"
    for variable, old in zip(model.trainable_variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), old, err_msg=variable.path)


@pytest.mark.gpu
@needs_gpu
def test_auto_precision_and_xla_on_a_gpu_run_the_secure_step_and_skip_overflows():
    config = cfg.pipeline_from_dict(PIPELINE)
    assert (config.train.precision, config.train.jit_compile) == ("auto", "auto")
    precision = resolve_precision(config.train.precision)
    jit = resolve_jit_compile(config.train.jit_compile, config.train.strategy)
    assert precision == "mixed_float16" and jit is True
    model = build_model(config, precision=precision, jit_compile=jit)
    assert model.jit_compile is True
    _check_secure_steps_under_loss_scaling(model)


@pytest.mark.gpu
@needs_gpu
def test_auto_defaults_train_and_resume_on_a_gpu(synthetic_dir, tmp_path):
    """The whole `train()` under the GPU defaults: finite history, and a resume restores the
    loss-scale optimizer's state."""
    from tfrecap.training import make_checkpoint, restore_checkpoint, train

    config = cfg.pipeline_from_dict(PIPELINE)
    lines = []
    first = train(config, data_dir=synthetic_dir, run_dir=tmp_path / "run", verbose=0,
                  log=lines.append)
    assert any("precision=mixed_float16, jit_compile=True" in line for line in lines), lines
    assert first.steps_done == 4
    scale = float(first.model.optimizer.dynamic_scale.numpy())
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    # Early float16 steps may overflow and be skipped (they do not count), so the epochs may
    # end at other steps; the run still ends at exactly the requested step.
    steps = [h["step"] for h in history]
    assert steps[-1] == 4 and steps == sorted(set(steps)), steps
    assert all(np.isfinite(h["loss"]) for h in history), history

    fresh = build_model(config, precision="mixed_float16", jit_compile=True)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    restore_checkpoint(fresh, make_checkpoint(fresh), latest)
    assert float(fresh.optimizer.dynamic_scale.numpy()) == scale
    for got, want in zip(fresh.optimizer.variables, first.model.optimizer.variables,
                         strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=want.path)

    longer = cfg.override(config, **{"train.steps": 6})
    again = train(longer, data_dir=synthetic_dir, run_dir=tmp_path / "run", verbose=0,
                  log=lambda line: None)
    assert again.resumed_from_step == 4 and again.steps_done == 6


@pytest.mark.slow
def test_mixed_float16_secure_step_on_cpu_skips_overflows():
    """The same checks without a GPU: an explicit mixed_float16 policy, XLA off."""
    config = cfg.override(cfg.pipeline_from_dict(PIPELINE), **{"train.precision": "mixed_float16",
                                                                 "train.jit_compile": "off"})
    precision = resolve_precision(config.train.precision)
    model = build_model(config, precision=precision,
                        jit_compile=resolve_jit_compile(config.train.jit_compile))
    assert model.jit_compile is False
    _check_secure_steps_under_loss_scaling(model)
