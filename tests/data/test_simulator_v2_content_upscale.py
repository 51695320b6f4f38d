"""A screen showing an image coarser than its panel (`content_upscale_prob`,
`content_upscale`): 0 in the committed v2, whose identity and pixels are unchanged; drawn,
it softens the recapture's content and leaves the originals alone."""

import dataclasses

import numpy as np
import pytest

from tests.data.v2_golden import FAST, GOLDEN_PAIRS, pairs_digest, screens_changed_originals_kept
from tfrecap.data.simulator import V2_PARAMS
from tfrecap.data.simulator.overrides import with_overrides
from tfrecap.data.simulator.v2.draws import draw_display


def test_committed_v2_shows_content_at_the_panels_resolution_and_keeps_its_pixels():
    assert V2_PARAMS.content_upscale_prob == 0.0
    assert V2_PARAMS.fingerprint() == "c614e5082a86ba02"
    # The range is unused while nothing is drawn: neither identity nor pixels move.
    still = dataclasses.replace(FAST, content_upscale=(1.5, 1.5))
    assert still.fingerprint() == FAST.fingerprint()
    assert pairs_digest(still) == GOLDEN_PAIRS


def test_upscaled_content_is_another_simulator():
    some = dataclasses.replace(V2_PARAMS, content_upscale_prob=0.5)
    double = dataclasses.replace(some, content_upscale=(2.0, 2.0))
    assert len({V2_PARAMS.fingerprint(), some.fingerprint(), double.fingerprint()}) == 3
    assert with_overrides(V2_PARAMS, {"content_upscale_prob": "0.5"}) == some


@pytest.mark.parametrize("field, value", [("content_upscale", (0.5, 1.0)),
                                          ("content_upscale_prob", 1.5)])
def test_a_bad_upscale_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(V2_PARAMS, **{field: value})


def test_the_upscale_moves_no_other_draw_and_follows_its_probability():
    always = dataclasses.replace(V2_PARAMS, content_upscale_prob=1.0)
    drawn = []
    for seed in range(40):
        reference, rng = np.random.default_rng(seed), np.random.default_rng(seed)
        plain, upscaled = draw_display(reference, V2_PARAMS), draw_display(rng, always)
        assert dataclasses.replace(upscaled, content_upscale=1.0) == plain
        assert rng.uniform() == reference.uniform()  # the pair's stream is where v2 left it
        drawn.append(upscaled.content_upscale)
    assert all(1.0 <= u <= 2.0 for u in drawn) and len(set(drawn)) == len(drawn)
    half = dataclasses.replace(V2_PARAMS, content_upscale_prob=0.5)
    shown = [draw_display(np.random.default_rng(s), half).content_upscale > 1 for s in range(200)]
    assert 0.35 < np.mean(shown) < 0.65


def test_upscaled_content_changes_only_the_screens():
    variant = dataclasses.replace(FAST, content_upscale_prob=1.0, content_upscale=(2.0, 2.0))
    assert all(screens_changed_originals_kept(variant))
