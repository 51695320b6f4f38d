"""Display layouts as a v2 field (`layouts`): every layout in the committed v2, whose identity
and pixels are unchanged; a subset holds a display family out of a variant's data."""

import dataclasses

import numpy as np
import pytest

from tests.data.v2_golden import FAST, GOLDEN_PAIRS, pairs_digest, screens_changed_originals_kept
from tfrecap.data.simulator import V2_PARAMS
from tfrecap.data.simulator.overrides import ParamOverrideError, with_overrides
from tfrecap.data.simulator.v2.draws import draw_display
from tfrecap.data.simulator.v2.params import LAYOUTS

STRIPES = ("rgb_stripe", "bgr_stripe")


def test_committed_v2_draws_every_layout_and_keeps_its_identity_and_pixels():
    assert V2_PARAMS.layouts == LAYOUTS
    assert V2_PARAMS.fingerprint() == "c614e5082a86ba02"
    assert pairs_digest() == GOLDEN_PAIRS


def test_a_subset_is_a_different_simulator():
    stripes = dataclasses.replace(V2_PARAMS, layouts=STRIPES)
    assert stripes.fingerprint() != V2_PARAMS.fingerprint()
    # Order is part of the draw (the index picks the layout), so it is part of the identity.
    assert dataclasses.replace(V2_PARAMS, layouts=STRIPES[::-1]).fingerprint() \
        != stripes.fingerprint()


def test_displays_draw_only_the_given_layouts():
    for layouts in (STRIPES, ("pentile", "diamond"), ("diamond",)):
        params = dataclasses.replace(V2_PARAMS, layouts=layouts)
        rng = np.random.default_rng(3)
        drawn = {draw_display(rng, params).layout for _ in range(200)}
        assert drawn == set(layouts)


@pytest.mark.parametrize("layouts", [("diamond",), STRIPES, ("pentile", "diamond", "rgb_stripe")])
def test_a_subset_moves_no_other_draw(layouts):
    # Its layout takes the same one 32-bit draw as all four do, so the rest of the display,
    # and every draw after it, comes from the same positions of the stream.
    params = dataclasses.replace(V2_PARAMS, layouts=layouts)
    for seed in range(20):
        rng_all, rng_subset = np.random.default_rng(seed), np.random.default_rng(seed)
        everything, subset = draw_display(rng_all, V2_PARAMS), draw_display(rng_subset, params)
        assert subset.layout in layouts
        assert dataclasses.replace(subset, layout=everything.layout) == everything
        assert rng_subset.bit_generator.state == rng_all.bit_generator.state


def test_a_subset_leaves_the_originals_pixels_alone():
    # Layouts are drawn for recaptures only; with the stream unmoved, originals are the same.
    changed = screens_changed_originals_kept(dataclasses.replace(FAST, layouts=STRIPES))
    assert any(changed)  # the subset did change the screens


def test_layouts_from_the_command_line():
    assert with_overrides(V2_PARAMS, {"layouts": "pentile,diamond"}).layouts == \
        ("pentile", "diamond")
    with pytest.raises(ParamOverrideError, match="layouts"):
        with_overrides(V2_PARAMS, {"layouts": "pentile,oled"})


@pytest.mark.parametrize("value", [(), ("oled",), ("rgb_stripe", "crt"),
                                   ("diamond", "diamond")])
def test_bad_layouts_name_the_field(value):
    with pytest.raises(ValueError, match="layouts"):
        dataclasses.replace(V2_PARAMS, layouts=value)
