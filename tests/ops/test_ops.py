"""tfrecap.ops: a leaf package with one definition of each loss and pixel-space step."""

import ast
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrecap import ops
from tfrecap.names import ATTACK_LOSSES

PACKAGE = Path(__file__).resolve().parents[2] / "tfrecap"


def _tfrecap_imports(folder):
    """(file, module) for every ``tfrecap...`` module that a file under `folder` imports."""
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [(path.name, n) for n in names if n.split(".")[0] == "tfrecap"]
    return found


def test_ops_imports_nothing_from_tfrecap_but_names():
    outside = [(f, m) for f, m in _tfrecap_imports("ops")
               if m != "tfrecap.names" and not m.startswith("tfrecap.ops")]
    assert outside == []


@pytest.mark.parametrize("folder", ["attacks", "models"])
def test_attacks_and_models_use_ops_not_config_or_old_homes(folder):
    imported = {m for _, m in _tfrecap_imports(folder)}
    assert "tfrecap.ops.losses" in imported or "tfrecap.ops" in imported
    assert "tfrecap.ops.steps" in imported
    assert not imported & {"tfrecap.config", "tfrecap.losses"}
    assert not (PACKAGE / "losses.py").exists()


def test_one_definition_of_each_rule():
    """No module under tfrecap/ but ops defines a pixel bound, a step or a loss again."""
    rules = {"PIXEL_MIN", "PIXEL_MAX", "clip_pixels", "project", "to_valid_image",
             "signed_gradient_step", "broadcast_eps", "cross_entropy",
             "direction_stable_cross_entropy", "naive_cross_entropy", "margin_loss"}
    defined = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "ops":
            continue
        for node in ast.parse(path.read_text(), str(path)).body:
            names = [node.name] if isinstance(node, ast.FunctionDef) else [
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            defined += [(path.relative_to(PACKAGE).as_posix(), n) for n in names if n in rules]
    assert defined == []


def test_cross_entropies_agree_in_value_and_with_keras():
    logits = tf.constant([[2.0, -1.0], [-3.0, 0.5], [40.0, 0.0], [0.0, 0.0]])
    labels = tf.constant([0, 0, 1, 1])
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    np.testing.assert_array_equal(ops.cross_entropy(labels, logits),
                                  keras_ce(labels, logits).numpy())
    np.testing.assert_allclose(ops.direction_stable_cross_entropy(labels, logits),
                               ops.cross_entropy(labels, logits), rtol=1e-6)
    np.testing.assert_array_equal(ops.margin_loss(labels, logits), [-3.0, 3.5, 40.0, 0.0])


def test_attack_losses_are_looked_up_by_the_names_table():
    assert tuple(ops.LOSSES) == ATTACK_LOSSES
    assert ops.get_loss("margin") is ops.margin_loss
    assert ops.get_loss("ce") is ops.direction_stable_cross_entropy
    with pytest.raises(ValueError, match=r"`loss` has to be one of \('ce', 'margin'\), got 'dlr'"):
        ops.get_loss("dlr")


def test_signed_gradient_step_is_eq2_with_the_standard_sign_and_clip():
    x = tf.constant([[0.0, 10.0, 254.0, 100.0], [5.0, 5.0, 5.0, 5.0]])
    g = tf.constant([[-1.0, 2.0, 0.5, 0.0], [1e-30, -3.0, 0.0, 7.0]])
    eps = ops.broadcast_eps(tf.constant([3.0, 1.5]), x)
    np.testing.assert_array_equal(ops.signed_gradient_step(x, g, eps),
                                  [[0.0, 13.0, 255.0, 100.0], [6.5, 3.5, 5.0, 6.5]])
    np.testing.assert_array_equal(ops.signed_gradient_step(x, g, 2.0, direction=-1.0),
                                  [[2.0, 8.0, 252.0, 100.0], [3.0, 7.0, 5.0, 3.0]])


def test_project_is_the_ball_intersected_with_the_pixel_range():
    x = tf.constant([1.0, 100.0, 254.0])
    out = ops.project(tf.constant([-5.0, 110.0, 260.0]), x, 3.0)
    np.testing.assert_array_equal(out, [0.0, 103.0, 255.0])
    assert (ops.PIXEL_MIN, ops.PIXEL_MAX) == (0.0, 255.0)
