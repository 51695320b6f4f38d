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
        elif name in ("demosaics", "layouts"):
            assert set(value) < set(committed)
        elif isinstance(committed, tuple):
            # A range narrowed to a point (or a sub-range) of the committed one.
            assert committed[0] <= value[0] <= value[1] <= committed[1], (name, value)
        else:
            assert 0 <= value <= committed, (name, value)


def test_the_weaves_arm_adds_only_weaves():
    assert ablation.ADDED_ARMS <= set(ablation.ARMS)
    assert _changed(ablation.arm_params("with_weaves")) == {"dead_leaves_weave_prob": 0.5}


def test_the_burst_arm_adds_only_a_merged_burst():
    assert _changed(ablation.arm_params("burst_merge")) == {"burst_frames": (2, 8)}


def test_the_content_upscaled_arm_adds_only_upscaled_content():
    assert _changed(ablation.arm_params("content_upscaled")) == {"content_upscale_prob": 1.0}


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


def test_another_patch_size_has_its_own_datasets_and_command():
    assert ablation.dataset_name(ablation.CONTROL, 128) == "synthetic_v2_128"
    assert ablation.dataset_name("no_messaging", 128) == "v2abl_no_messaging_128"
    assert ablation.dataset_name("no_messaging") == "v2abl_no_messaging"  # 64 keeps its names
    words = ablation.synth_command("no_messaging", 3000, 128).split()
    assert words[words.index("--size") + 1] == "128"
    assert words[words.index("--dataset") + 1] == "v2abl_no_messaging_128"
    assert "--size" not in ablation.synth_command("no_messaging", 3000).split()
    assert ablation.record_size({"rows": []}) == 64  # records before --size
    assert ablation.record_size({"rows": [], "patch_size": 128}) == 128


def test_one_out_dir_holds_one_patch_size(tmp_path, capsys):
    (tmp_path / "v2_ablation.json").write_text('{"rows": [], "patch_size": 128}')
    with pytest.raises(SystemExit):
        ablation.main(["--out", str(tmp_path), "--data-dir", str(tmp_path), "--arms",
                       "control"])
    assert "holds 128-px arms" in capsys.readouterr().err


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


def _docs_record(name: str) -> tuple[dict, str]:
    """A committed JSON record under docs/real_photos/ and the page its tables are in; the
    record must name no photo file (measurement only)."""
    import json
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    record = json.loads((docs / "real_photos" / name).read_text())
    text = json.dumps(record)
    assert "realdev" not in text and ".jp" not in text.lower()
    return record, (docs / "real_photos.md").read_text()


def test_the_docs_table_is_the_committed_record():
    record, page = _docs_record("v2_ablation.json")
    for line in ablation.arm_table(record).splitlines():
        assert line in page, line


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _mean_range(values, percent: bool = False) -> str:
    """The docs' "mean [min–max]" over seeds: "72.0 % [71.5–72.8]" or "0.652 [0.590–0.704]"."""
    import numpy as np

    if percent:
        values = [100 * v for v in values]
    fmt = "{:.1f}" if percent else "{:.3f}"
    return (f"{fmt.format(np.mean(values))}{' %' if percent else ''} "
            f"[{fmt.format(min(values))}–{fmt.format(max(values))}]")


def test_the_docs_held_out_family_table_is_the_committed_record():
    record, page = _docs_record("v2_heldout_layouts.json")
    lines = page.splitlines()
    assert {(row["arm"], row["seed"]) for row in record["rows"]} == {
        (arm, seed) for arm in (ablation.CONTROL, "no_oled_layouts") for seed in (0, 1)}
    for row in record["rows"]:
        label = "control (" if row["arm"] == ablation.CONTROL else "`no_oled_layouts`"
        line = next(x for x in lines if x.startswith(f"| {row['seed']} | {label}"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        real = row["real_photos"]
        assert cells[2:] == [
            _percent(row["own_test"]["originals"]),
            _percent(row["v2_test"]["recaptured"]),
            _percent(row["own_test"]["recaptured"])
            + ("" if row["arm"] == ablation.CONTROL else " (stripes)"),
            _percent(row["cross"]["oled_layouts_only"]["recaptured"]),
            f"{real['native/mean_probability']['auc']:.3f} / "
            f"{real['reference-1024/mean_probability']['auc']:.3f}",
        ]
        # Layouts change only the screens: the originals are the same pixels in every set.
        assert row["own_test"]["originals"] == row["v2_test"]["originals"] \
            == row["cross"]["oled_layouts_only"]["originals"]


def test_the_docs_big_budget_rows_are_the_committed_record():
    record, page = _docs_record("default_64_big_budget.json")
    assert [run["seed"] for run in record["runs"]] == [0, 1]
    for run in record["runs"]:
        rules = {(r["rule"], r["aggregation"]): r["auc"] for r in run["real_photos_rules"]}
        clean = run["synthetic_test"]["clean"]
        deployed = run["real_photos_deployed"]
        row = (f"| 12,000 pairs, 9,000 steps, seed {run['seed']} | "
               f"{_percent(run['history'][-1]['val_accuracy'])} | "
               f"{_percent(clean['accuracy'])} (originals "
               f"{_percent(clean['by_class']['original']['accuracy'])}, screens "
               f"{_percent(clean['by_class']['recaptured']['accuracy'])}; patch AUC "
               f"{run['synthetic_test']['patch_auc']:.3f}) | "
               f"{rules['native', 'mean_probability']:.3f} / "
               f"{rules['native', 'mean_logit']:.3f} | "
               f"{rules['reference-2048', 'mean_logit']:.3f} | "
               f"{rules['reference-1024', 'mean_logit']:.3f} | "
               f"balanced {_percent(deployed['balanced_accuracy'])} (AUC {deployed['auc']:.3f}): "
               f"originals {_percent(deployed['classes']['original']['accuracy'])}, screens "
               f"{_percent(deployed['classes']['recaptured']['accuracy'])} |")
        assert row in page, row


def test_the_docs_probe_table_is_the_committed_record():
    probes, page = _docs_record("spectral_probe_big_budget.json")
    runs, _ = _docs_record("default_64_big_budget.json")
    for run in runs["runs"]:
        probe = probes["runs"][f"seed_{run['seed']}"]
        native = next(r["auc"] for r in run["real_photos_rules"]
                      if (r["rule"], r["aggregation"]) == ("native", "mean_logit"))
        # The probe's detector score is the served mean logit: the same AUC as the ablation's.
        assert probe["detector_auc"] == pytest.approx(native, abs=1e-9)
        row = (f"| 9,000 steps, seed {run['seed']} | {probe['probe_auc']:.3f} | "
               f"{probe['detector_auc']:.3f} | "
               f"**{probe['screens_periodic']['detector_auc']:.3f}** | "
               f"{probe['screens_not_periodic']['detector_auc']:.3f} |")
        assert row in page, row
        assert probe["screens_periodic"]["screens"] + probe["screens_not_periodic"]["screens"] \
            == probe["photos"]["recaptured"]
        synthetic = probes["synthetic_v2_test"][f"seed_{run['seed']}"]
        row = (f"| 9,000 steps, seed {run['seed']} | {synthetic['probe_auc']:.3f} | "
               f"{synthetic['detector_auc']:.3f} | "
               f"{synthetic['screens_periodic']['detector_auc']:.3f} | "
               f"{synthetic['screens_not_periodic']['detector_auc']:.3f} |")
        assert row in page, row


def test_test_only_arms_are_not_trained_by_default_and_the_control_is_no_cross_set(tmp_path):
    assert ablation.TEST_ONLY_ARMS <= set(ablation.ARMS)
    assert "oled_layouts_only" not in ablation.DEFAULT_ARMS
    assert {ablation.CONTROL, "no_oled_layouts"} <= set(ablation.DEFAULT_ARMS)
    with pytest.raises(SystemExit):
        ablation.main(["--out", str(tmp_path), "--data-dir", str(tmp_path), "--cross",
                       ablation.CONTROL])
    assert not (tmp_path / "v2_ablation.json").exists()


def test_the_docs_screen_tone_table_is_the_committed_record():
    record, page = _docs_record("v2_paired_arms.json")
    spread = _mean_range

    for arm, label in ((ablation.CONTROL, "control (retrained)"),
                       ("screen_tone_kept", "`screen_tone_kept`")):
        rows = [r for r in record["rows"] if r["arm"] == arm]
        assert sorted(r["seed"] for r in rows) == [0, 1, 2]
        photos = [r["real_photos"] for r in rows]
        cells = [spread([r["own_test"]["accuracy"] for r in rows], True),
                 spread([r["cross"]["screen_tone_kept"]["accuracy"] for r in rows], True),
                 spread([r["v2_test"]["accuracy"] for r in rows], True),
                 spread([p["native/mean_probability"]["auc"] for p in photos], False),
                 spread([p["reference-1024/mean_probability"]["auc"] for p in photos], False),
                 spread([p["reference-1024/mean_probability"]["balanced_accuracy"]
                         for p in photos], True)]
        line = f"| {label} | " + " | ".join(cells) + " |"
        assert line in page, line


def test_the_docs_softness_table_is_the_committed_record():
    record, page = _docs_record("softness_probe.json")
    labels = {"real_photos_native": "real photos, native tiles",
              "real_photos_reference_1024": "real photos, tiles under the served 1024 rule",
              "synthetic_v2_64": "v2, 64-px test patches (2,000)",
              "synthetic_v2_128": "v2, 128-px test patches (2,000)",
              "v2abl_screen_tone_kept": "`screen_tone_kept`, 64-px test patches",
              "v2abl_burst_merge": "`burst_merge`, 64-px test patches"}
    assert set(record["sets"]) == set(labels)
    for key, label in labels.items():
        row = record["sets"][key]
        cells = [f"{row['detector_auc']:.3f}",
                 f"{row['screens_periodic']['detector_auc']:.3f}",
                 f"{row['screens_not_periodic']['detector_auc']:.3f}"]
        line = f"| {label} | " + " | ".join(cells) + " |"
        # The table bolds the synthetic less-periodic halves.
        assert line in page or line.replace(f"| {cells[2]} |", f"| **{cells[2]}** |") in page, \
            line
        assert "--softness" in row["command"]
        # Photos: 64-px tiles under a rule; a dataset's patches are measured whole.
        expected = ({"tile": "the patch"} if "--data-dir" in row["command"] else
                    {"tile": 64, "rule": "reference-1024" if "reference-1024" in row["command"]
                     else "native"})
        assert row["settings"]["softness"] == expected


def test_the_docs_128_px_table_is_the_committed_record():
    record, page = _docs_record("v2_patch_128.json")
    assert ablation.record_size(record) == 128
    assert {row["patch_size"] for row in record["rows"]} == {128}
    for line in ablation.arm_table(record).splitlines():
        assert line in page, line


def test_the_docs_softness_by_variant_table_is_the_committed_record():
    record, page = _docs_record("softness_by_variant.json")
    assert record["variants"]["v2"]["params"] == []
    stand_ins = {"no_screen": "the recapture a second capture of the scene, `--components`",
                 "no_subpixel_mosaic": "the screen without its sub-pixel mosaic, "
                                       "`--components`"}
    for name, row in record["variants"].items():
        assignments = "`" + " ".join(row["params"][0].split()[1:]) + "`" if row["params"] else ""
        if name in stand_ins:
            assert row["screen_replaced_by"] == name and row["params"] == []
            params = stand_ins[name]
        elif "+" in name:  # a variant's own null: NAME+STAND_IN
            stand_in = row["screen_replaced_by"]
            assert name == row["params"][0].split()[0] + "+" + stand_in
            assert row["fingerprint"] == record["variants"][name.split("+")[0]]["fingerprint"]
            params = f"{assignments}, {stand_ins[stand_in]}"
        else:
            params = "v2 itself" if name == "v2" else assignments
        line = (f"  | {name}: {params} | {row['all']:.3f} | {row['periodic_half']:.3f} | "
                f"{row['other_half']:.3f} |")
        assert line in page, line
        if name != "v2" and name not in stand_ins:
            assert any(f'--variant "{row["params"][0]}"' in c for c in record["commands"])


def test_the_docs_probe_halves_table_is_the_committed_record():
    record, page = _docs_record("v2_paired_arms.json")
    labels = {"control": "control (retrained)", "screen_tone_kept": "`screen_tone_kept`",
              "no_sensor_downscale": "`no_sensor_downscale`"}
    arms = record["probe_halves"]["arms"]
    assert set(arms) == set(labels)
    spread = _mean_range

    for arm, seeds in arms.items():
        assert sorted(seeds) == ["0", "1", "2"]
        assert {s["screens_periodic"]["screens"] for s in seeds.values()} == {50}
        cells = [spread([s["detector_auc"] for s in seeds.values()]),
                 spread([s["screens_periodic"]["detector_auc"] for s in seeds.values()]),
                 spread([s["screens_not_periodic"]["detector_auc"] for s in seeds.values()])]
        line = f"| {labels[arm]} | " + " | ".join(cells) + " |"
        assert line in page, line


def test_the_docs_128_px_probe_halves_are_the_committed_record():
    record, page = _docs_record("v2_patch_128.json")
    page = " ".join(page.split())
    seeds = record["probe_halves"]["arms"]["control"]
    assert sorted(seeds) == ["0", "1", "2"]

    def spread(key):
        return _mean_range([s[key]["detector_auc"] for s in seeds.values()])

    assert (f"the 128-px detectors score {spread('screens_periodic')} on the 50 most periodic "
            f"screen photos and {spread('screens_not_periodic')} on the other 49") in page


@pytest.mark.parametrize("name, tested", [("v2_burst_arm.json", "burst_merge"),
                                          ("v2_content_upscale_arm.json", "content_upscaled")])
def test_the_docs_2026_12_06_arm_tables_are_the_committed_record(name, tested):
    # The two arms of 2026-12-06, each beside the same retrained control.
    record, page = _docs_record(name)
    spread = _mean_range
    for arm, label in ((ablation.CONTROL, "control (retrained)"), (tested, f"`{tested}`")):
        rows = [r for r in record["rows"] if r["arm"] == arm]
        assert sorted(r["seed"] for r in rows) == [0, 1, 2]
        photos = [r["real_photos"] for r in rows]
        cells = [spread([r["own_test"]["accuracy"] for r in rows], True),
                 spread([r["cross"][tested]["accuracy"] for r in rows], True),
                 spread([r["v2_test"]["accuracy"] for r in rows], True),
                 spread([p["native/mean_probability"]["auc"] for p in photos], False),
                 spread([p["reference-1024/mean_probability"]["auc"] for p in photos], False),
                 spread([p["reference-1024/mean_probability"]["balanced_accuracy"]
                         for p in photos], True)]
        assert f"| {label} | " + " | ".join(cells) + " |" in page
        seeds = record["probe_halves"]["arms"][arm].values()
        cells = [spread([s[key]["detector_auc"] if key else s["detector_auc"] for s in seeds])
                 for key in (None, "screens_periodic", "screens_not_periodic")]
        assert f"| {label} | " + " | ".join(cells) + " |" in page
    # The page says the retrained control reproduces 2026-12-04's to the last digit.
    earlier, _ = _docs_record("v2_paired_arms.json")
    for seed in (0, 1, 2):
        now = next(r for r in record["rows"] if r["arm"] == "control" and r["seed"] == seed)
        then = next(r for r in earlier["rows"] if r["arm"] == "control" and r["seed"] == seed)
        for key in ("own_test", "v2_test", "real_photos"):
            assert now[key] == then[key], (seed, key)
        assert (record["probe_halves"]["arms"]["control"][str(seed)]
                == earlier["probe_halves"]["arms"]["control"][str(seed)])


def _signed(value: float) -> str:
    """The docs' signed difference, with a true minus sign: "+0.113", "−0.084"."""
    return f"{value:+.3f}".replace("-", "−")


def test_the_docs_own_null_table_is_the_committed_record():
    record, page = _docs_record("softness_by_variant.json")
    variants = record["variants"]
    labels = {"v2": "v2", "no_downscale": "`no_downscale` (d = 1)",
              "largest_downscale": "`largest_downscale` (d = 4)"}
    names = [n.split("+")[0] for n in variants if n.endswith("+no_screen")]
    assert {"burst_2_8", "no_downscale", "largest_downscale"} <= set(names)
    for name in ["v2", *names]:
        row = variants[name]
        null = variants["no_screen" if name == "v2" else f"{name}+no_screen"]

        def excess(half, row=row, null=null):
            return _signed(row[half] - null[half])

        line = (f"| {labels.get(name, f'`{name}`')} | {row['other_half']:.3f} | "
                f"{null['other_half']:.3f} | {excess('other_half')} | "
                f"{excess('periodic_half')} |")
        assert line in page, line


def test_the_docs_burst_excess_table_is_the_committed_record():
    record, page = _docs_record("softness_by_variant.json")
    variants = record["variants"]
    for name, null in (("v2", "no_screen"), ("burst_2_8", "burst_2_8+no_screen")):
        label = name if name == "v2" else f"`{name}`"
        cells = [_signed(variants[name][h] - variants[null][h])
                 for h in ("all", "periodic_half", "other_half")]
        assert f"| {label} | " + " | ".join(cells) + " |" in page
