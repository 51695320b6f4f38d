"""scripts/experiments/softness_by_variant.py: variants parse like `data synth --param`, pairs
are the same seeds for every variant, and the table is the probe's summary of them."""

import json

import numpy as np
import pytest

from tests.script_loader import load_script
from tfrecap.data.simulator import V2_PARAMS

script = load_script("experiments/softness_by_variant")


def test_a_variant_is_a_name_and_param_assignments():
    name, assignments = script.parse_variant("resolved pitch=3,6 sharpen_prob=0")
    assert name == "resolved" and set(assignments) == {"pitch", "sharpen_prob"}
    for bad in ("", "pitch=3,6"):
        with pytest.raises(ValueError, match="NAME KEY=VALUE"):
            script.parse_variant(bad)


def test_rows_are_deterministic_and_a_display_change_moves_only_the_screens():
    import dataclasses

    first = script.variant_rows(V2_PARAMS, 2, 7)
    assert first == script.variant_rows(V2_PARAMS, 2, 7)
    assert [r["label"] for r in first] == [0, 1, 0, 1]
    # The same seeds for every variant: a display-only change leaves the originals' scores
    # exactly as they were and moves the recaptures'.
    fill = script.variant_rows(dataclasses.replace(V2_PARAMS, subpixel_fill=(0.95, 0.95)), 2, 7)
    assert [r for r in fill if r["label"] == 0] == [r for r in first if r["label"] == 0]
    assert [r for r in fill if r["label"] == 1] != [r for r in first if r["label"] == 1]


def test_the_table_and_json_hold_every_variant(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert script.main(["--pairs", "2", "--variant", "no_sharpen sharpen_prob=0",
                        "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert list(record["variants"]) == ["v2", "no_sharpen"]
    assert record["variants"]["v2"]["fingerprint"] == V2_PARAMS.fingerprint()
    assert record["variants"]["no_sharpen"]["params"] == ["no_sharpen sharpen_prob=0"]
    table = capsys.readouterr().out
    for name, row in record["variants"].items():
        assert (f"| {name} | {row['all']:.3f} | {row['periodic_half']:.3f} | "
                f"{row['other_half']:.3f} |") in table


@pytest.mark.parametrize(("variants", "message"), [
    (["x no_such_field=1"], "no_such_field"),
    (["v2 glare_prob=0"], "taken"),
    (["a glare_prob=0", "a glare_prob=1"], "taken"),
    (["a+b glare_prob=0"], "holds a '+'")])
def test_a_bad_variant_is_a_clear_error(capsys, variants, message):
    argv = ["--pairs", "2"]
    for text in variants:
        argv += ["--variant", text]
    with pytest.raises(SystemExit):
        script.main(argv)
    assert message in capsys.readouterr().err


def test_the_stand_in_screens_replace_v2s_and_are_put_back():
    from tfrecap.data.simulator.v2 import display

    real = display.recapture_light
    v2 = script.variant_rows(V2_PARAMS, 3, 11)
    screens = {}
    for component in script.COMPONENTS:
        with script.screen_replaced(component):
            assert display.recapture_light is not real
            screens[component] = script.variant_rows(V2_PARAMS, 3, 11)
        assert display.recapture_light is real
        # The originals are the same pairs; only the recaptures change.
        assert [r for r in screens[component] if r["label"] == 0] == \
            [r for r in v2 if r["label"] == 0]
    # Without its sub-pixel mosaic the screen leaves softer recaptures than v2's own.
    def mean_softness(rows):
        return np.mean([r["detector"] for r in rows if r["label"] == 1])

    assert mean_softness(screens["no_subpixel_mosaic"]) > mean_softness(v2)
    with pytest.raises(ValueError, match="unknown component"):
        with script.screen_replaced("no_display"):
            pass
    assert display.recapture_light is real


def test_components_give_every_variant_its_own_null(tmp_path):
    out = tmp_path / "out.json"
    assert script.main(["--pairs", "2", "--variant", "no_glare glare_prob=0", "--components",
                        "--json", str(out)]) == 0
    variants = json.loads(out.read_text())["variants"]
    assert list(variants) == ["v2", "no_glare", *script.COMPONENTS,
                              *(f"no_glare+{c}" for c in script.COMPONENTS)]
    for component in script.COMPONENTS:
        assert variants[component]["params"] == []
        assert variants[component]["fingerprint"] == V2_PARAMS.fingerprint()
        own = variants[f"no_glare+{component}"]
        assert own["screen_replaced_by"] == component
        assert own["params"] == ["no_glare glare_prob=0"]
        assert own["fingerprint"] == variants["no_glare"]["fingerprint"]


def test_stand_ins_pick_which_nulls(tmp_path):
    out = tmp_path / "out.json"
    assert script.main(["--pairs", "2", "--variant", "no_glare glare_prob=0", "--components",
                        "--stand-ins", "no_screen", "--json", str(out)]) == 0
    assert list(json.loads(out.read_text())["variants"]) == ["v2", "no_glare", "no_screen",
                                                             "no_glare+no_screen"]


def test_an_unknown_stand_in_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        script.main(["--pairs", "2", "--components", "--stand-ins", "no_display"])
    assert "--stand-ins must name some of no_screen" in capsys.readouterr().err
