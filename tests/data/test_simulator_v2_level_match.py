"""How much of the screen's tone the pair's level matching erases (`level_match_strength`):
1 in the committed v2, whose identity and pixels are unchanged; 0 keeps the screen's tone
curve and matches only each channel's mean."""

import dataclasses

import numpy as np
import pytest

from tests.data.v2_golden import FAST, GOLDEN_PAIRS, pairs_digest, screens_changed_originals_kept
from tfrecap.data.simulator import V2_PARAMS
from tfrecap.data.simulator.overrides import with_overrides
from tfrecap.data.simulator.v2.pair import match_levels, match_means, match_recapture_levels


def _light(seed, shape=(48, 40, 3)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, shape).astype(np.float32) ** 2


def test_committed_v2_matches_quantiles_and_keeps_its_identity_and_pixels():
    assert V2_PARAMS.level_match_strength == 1.0
    assert V2_PARAMS.fingerprint() == "c614e5082a86ba02"
    assert pairs_digest() == GOLDEN_PAIRS


def test_another_strength_is_another_simulator():
    kept = dataclasses.replace(V2_PARAMS, level_match_strength=0.0)
    half = dataclasses.replace(V2_PARAMS, level_match_strength=0.5)
    assert len({V2_PARAMS.fingerprint(), kept.fingerprint(), half.fingerprint()}) == 3
    assert with_overrides(V2_PARAMS, {"level_match_strength": "0"}) == kept


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_a_strength_outside_0_1_names_the_field(value):
    with pytest.raises(ValueError, match="level_match_strength"):
        dataclasses.replace(V2_PARAMS, level_match_strength=value)


def test_strength_1_is_the_quantile_match_bit_for_bit():
    image, reference = _light(0), _light(1)
    assert np.array_equal(match_recapture_levels(image, reference, 1.0),
                          match_levels(image, reference))


def test_mean_match_is_a_gain_that_keeps_the_screens_tone_curve():
    reference = _light(1)
    scene = _light(2)
    # A screen with a steeper gamma and a glare that lifts the shadows: its light is not a
    # gain of the scene's, so a gain cannot undo its tone curve.
    screen = 0.7 * scene ** 1.3 + 0.05
    matched = match_means(screen, reference)
    for c in range(3):
        np.testing.assert_allclose(matched[::3, ::3, c].mean(), reference[::3, ::3, c].mean(),
                                   rtol=1e-5)
        gain = matched[..., c] / screen[..., c]
        np.testing.assert_allclose(gain, gain.flat[0], rtol=1e-5)  # one gain per channel
    # Its darkest level stays lifted above the reference's darkest (glare survives), which
    # the quantile match erases.
    assert matched.min() > 2 * reference.min() + 0.01
    quantiles = match_levels(screen, reference)
    assert quantiles.min() < reference.min() + 0.01
    assert np.array_equal(match_recapture_levels(screen, reference, 0.0), matched)


def test_a_blend_lies_between_the_two_maps_and_keeps_the_order_of_levels():
    screen, reference = _light(3) + 0.05, _light(4)
    blend = match_recapture_levels(screen, reference, 0.25)
    np.testing.assert_allclose(
        blend, 0.25 * match_levels(screen, reference) + 0.75 * match_means(screen, reference),
        rtol=1e-6)
    for c in range(3):
        order = np.argsort(screen[..., c], axis=None)
        assert np.all(np.diff(blend[..., c].ravel()[order]) >= 0)


def test_a_black_channel_stays_black():
    screen = _light(5)
    screen[..., 2] = 0.0
    assert np.all(match_means(screen, _light(6))[..., 2] == 0.0)


def test_the_strength_moves_no_draw_and_leaves_the_originals_alone():
    kept = dataclasses.replace(FAST, level_match_strength=0.0)
    assert all(screens_changed_originals_kept(kept))
