"""scripts/experiments/fgsm_colour_split.py: the three single steps, on a known model."""

import numpy as np
import pytest
import tensorflow as tf

from tests.script_loader import load_script

split = load_script("experiments/fgsm_colour_split")


def test_grey_step_is_one_sign_per_pixel_and_colour_step_has_no_grey():
    gradient = tf.random.stateless_normal([2, 4, 4, 3], seed=[1, 2])
    grey = split.step_direction(gradient, "grey").numpy()
    assert np.all(grey == grey[..., :1]) and np.all(np.abs(grey) == 1)
    colour = split.step_direction(gradient, "colour").numpy()
    # Every pixel's colour step points both ways across its channels (no common sign).
    assert np.all(colour.max(-1) == 1) and np.all(colour.min(-1) == -1)
    np.testing.assert_array_equal(split.step_direction(gradient, "rgb"), np.sign(gradient))
    with pytest.raises(ValueError, match="mode must be one of"):
        split.step_direction(gradient, "hue")


def test_a_grey_gradient_has_no_colour_step():
    """Equal channels: their float32 mean can round (about a third of values), which must not
    turn into a ±1 colour step."""
    values = tf.random.stateless_normal([1000], seed=[3, 4]) * 1e-3
    gradient = tf.reshape(tf.stack([values] * 3, axis=-1), [10, 10, 10, 3])
    rounded = gradient - tf.reduce_mean(gradient, -1, keepdims=True)
    assert np.count_nonzero(rounded.numpy()) > 100  # the rounding this guards against
    assert np.count_nonzero(split.step_direction(gradient, "colour").numpy()) == 0


def test_a_brightness_detector_falls_to_grey_steps_but_not_to_colour_ones():
    """Logit of 'recaptured' = mean level − 127.5: grey and rgb steps of ε = 2 flip patches
    1.5 levels from the threshold; the colour step has no grey part and moves nothing."""
    def logits(x):
        s = tf.reduce_mean(x, axis=[1, 2, 3]) - 127.5
        return tf.stack([-s, s], axis=-1)

    x = np.concatenate([np.full((3, 8, 8, 3), 126.0), np.full((3, 8, 8, 3), 129.0)])
    y = np.array([0, 0, 0, 1, 1, 1])
    result = split.attack_accuracy(logits, [(x.astype("float32"), y)], eps=(1.0, 2.0))
    assert result["rgb"]["1"] == result["grey"]["1"] == {"original": 1.0, "recaptured": 1.0}
    assert result["rgb"]["2"] == result["grey"]["2"] == {"original": 0.0, "recaptured": 0.0}
    assert result["colour"]["2"] == {"original": 1.0, "recaptured": 1.0}
    assert "| m | grey | 100% / 100% | 0% / 0% |" in split.table({"m": result}, eps=(1.0, 2.0))


def test_docs_table_is_the_recorded_run():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    table = split.summary(str(root / "docs" / "fgsm_colour_split.json"))
    assert table.count("\n") == 1 + 2 * len(split.MODES)  # two models, every mode
    assert table in (root / "docs" / "fgsm_colour_split.md").read_text()
