"""scripts/experiments/v2_ablation.py: each arm switches off exactly the randomizations it names,
at values inside the committed ranges, and its recorded command builds the same data (no
training here)."""

import dataclasses

import pytest

from tests.script_loader import load_script
from tfrecap.data.simulator import V2_PARAMS
from tfrecap.data.simulator.overrides import parse_assignments, with_overrides

ablation = load_script("experiments/v2_ablation")


def _changed(params) -> dict:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
            if getattr(params, f.name) != getattr(V2_PARAMS, f.name)}


def test_the_control_is_the_committed_v2_and_every_arm_is_its_own_data():
    assert ablation.arm_params(ablation.CONTROL) == V2_PARAMS
    assert ablation.dataset_name(ablation.CONTROL) == "synthetic_v2_64"
    fingerprints = {ablation.arm_params(arm).fingerprint() for arm in ablation.ARMS}
    names = {ablation.dataset_name(arm) for arm in ablation.ARMS}
    assert len(fingerprints) == len(names) == len(ablation.ARMS)


@pytest.mark.parametrize("arm", [a for a in ablation.ARMS
                                 if a != ablation.CONTROL and a not in ablation.ADDED_ARMS])
def test_an_arm_fixes_its_fields_inside_the_committed_ranges(arm):
    changed = _changed(ablation.arm_params(arm))
    named = {item.split("=")[0] for item in ablation.ARMS[arm][1]}
    assert set(changed) == named  # nothing else moves
    for name, value in changed.items():
        committed = getattr(V2_PARAMS, name)
        if name.endswith("_prob"):
            assert value == 0.0  # an effect switched off
        elif name in ("demosaics",):
            assert set(value) < set(committed)
        elif isinstance(committed, tuple):
            # A range narrowed to a point (or a sub-range) of the committed one.
            assert committed[0] <= value[0] <= value[1] <= committed[1], (name, value)
        else:
            assert 0 <= value <= committed, (name, value)


def test_the_weaves_arm_adds_only_weaves():
    assert ablation.ADDED_ARMS <= set(ablation.ARMS)
    assert _changed(ablation.arm_params("with_weaves")) == {"dead_leaves_weave_prob": 0.5}


@pytest.mark.parametrize("arm", list(ablation.ARMS))
def test_the_recorded_command_builds_the_arms_data(arm):
    words = ablation.synth_command(arm, 3000).split()
    params = [words[i + 1] for i, w in enumerate(words) if w == "--param"]
    assert with_overrides(V2_PARAMS, parse_assignments(params)) == ablation.arm_params(arm)
    if arm == ablation.CONTROL:
        assert "--dataset" not in words
    else:
        assert words[words.index("--dataset") + 1] == ablation.dataset_name(arm)
    assert words[words.index("--count") + 1] == "3000"


def test_an_unknown_arm_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown arm 'no_glare'.*no_dead_leaves"):
        ablation.arm_params("no_glare")


def test_the_summary_table_reads_every_figure_from_the_record():
    photos = {"native/mean_probability": {"auc": 0.612, "balanced_accuracy": 0.55,
                                          "originals_correct": 0.9, "recaptures_correct": 0.2},
              "reference-1024/mean_probability": {"auc": 0.534, "balanced_accuracy": 0.525,
                                                  "originals_correct": 0.85,
                                                  "recaptures_correct": 0.2}}
    record = {"rows": [
        {"arm": "control", "seed": 1, "own_test": {"accuracy": 0.701},
         "v2_test": {"accuracy": 0.701}, "real_photos": photos},
        {"arm": "no_messaging", "seed": 0, "own_test": {"accuracy": 0.8},
         "v2_test": {"accuracy": 0.65}},
    ]}
    lines = ablation.summary_table(record).splitlines()
    assert len(lines) == 4
    assert lines[2] == ("| `control` | 1 | 70.1% | 70.1% | 0.612 | 0.534 "
                        "| 52.5% (85.0% / 20.0%) |")
    assert lines[3] == "| `no_messaging` | 0 | 80.0% | 65.0% | — | — | — |"


def test_the_arm_table_gives_each_arm_its_mean_and_range_over_seeds():
    def row(arm, seed, acc, auc):
        photo = {"auc": auc, "balanced_accuracy": 0.5, "originals_correct": 0.5,
                 "recaptures_correct": 0.5}
        return {"arm": arm, "seed": seed, "own_test": {"accuracy": acc},
                "v2_test": {"accuracy": acc},
                "real_photos": {"native/mean_probability": photo,
                                "reference-1024/mean_probability": photo}}

    record = {"rows": [row("no_messaging", 0, 0.8, 0.6), row("control", 0, 0.7, 0.5),
                       row("control", 1, 0.72, 0.7)]}
    lines = ablation.arm_table(record).splitlines()
    assert lines[2].startswith("| `control` | 0, 1 | 71.0% [70.0%–72.0%] |")
    assert "| 0.600 [0.500–0.700] |" in lines[2]
    assert lines[3].startswith("| `no_messaging` | 0 | 80.0% | 80.0% | 0.600 |")


def test_the_docs_table_is_the_committed_record():
    import json
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    record = json.loads((docs / "real_photos" / "v2_ablation.json").read_text())
    page = (docs / "real_photos.md").read_text()
    for line in ablation.arm_table(record).splitlines():
        assert line in page, line
    # Measurement only: the record names no photo file.
    assert "realdev" not in json.dumps(record) and ".jp" not in json.dumps(record).lower()
