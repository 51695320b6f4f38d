"""Simulator variants from text (`tfrecap data synth --param KEY=VALUE --dataset NAME`)."""

import dataclasses

import pytest

from tests.data.test_cli_data import invoke
from tfrecap.data import builder
from tfrecap.data.simulator import DEFAULT_PARAMS, V2_PARAMS
from tfrecap.data.simulator.overrides import (
    ParamOverrideError,
    changed_fields,
    parse_assignments,
    with_overrides,
)


def test_values_are_parsed_by_the_type_of_the_committed_value():
    variant = with_overrides(V2_PARAMS, parse_assignments([
        "glare_prob=0", "messaging_jpeg_quality=80,95", "demosaics=bilinear",
        "dead_leaves_max_disks=200"]))
    assert variant.glare_prob == 0.0
    assert variant.messaging_jpeg_quality == (80, 95)
    assert variant.demosaics == ("bilinear",)
    assert variant.dead_leaves_max_disks == 200
    assert variant.fingerprint() != V2_PARAMS.fingerprint()
    # Everything else is the committed value.
    same = {f.name for f in dataclasses.fields(V2_PARAMS)} - {
        "glare_prob", "messaging_jpeg_quality", "demosaics", "dead_leaves_max_disks"}
    assert all(getattr(variant, n) == getattr(V2_PARAMS, n) for n in same)
    assert set(changed_fields(variant.to_dict(), V2_PARAMS)) == {
        "glare_prob", "messaging_jpeg_quality", "demosaics", "dead_leaves_max_disks"}
    assert changed_fields(V2_PARAMS.to_dict(), V2_PARAMS) == {}


def test_an_optional_v1_effect_is_switched_on_with_a_range_and_off_with_none():
    on = with_overrides(DEFAULT_PARAMS, {"diffuser_sigma": "0.3,0.8"})
    assert on.diffuser_sigma == (0.3, 0.8)
    assert with_overrides(on, {"diffuser_sigma": "none"}).diffuser_sigma is None


@pytest.mark.parametrize("items, message", [
    (["glare=0"], "did you mean glare_prob"),
    (["glare_prob=2"], "glare_prob must lie in [0, 1]"),
    (["glare_prob=lots"], "glare_prob=lots"),
    (["glare_prob=none"], "not an optional effect"),
    (["messaging_jpeg_quality=95,80"], "low <= high"),
    (["version=3"], "--simulator"),
    (["glare_prob"], "expected KEY=VALUE"),
    (["glare_prob=0", "glare_prob=1"], "given twice"),
])
def test_a_bad_override_names_the_key_and_what_is_wrong(items, message):
    with pytest.raises(ParamOverrideError, match="glare|messaging|version") as err:
        with_overrides(V2_PARAMS, parse_assignments(items))
    assert message in str(err.value)


def test_a_variant_never_takes_a_built_in_name():
    with pytest.raises(ValueError, match="reserved"):
        builder.synthetic_config(64, 10, 0, V2_PARAMS, name="synthetic_64")
    assert builder.synthetic_config(64, 10, 0, V2_PARAMS).name == "synthetic_v2_64"
    assert builder.synthetic_config(64, 10, 0, V2_PARAMS, name="v2_x").name == "v2_x"


def test_synth_builds_a_named_variant_and_info_says_what_changed(tmp_path):
    for args in ((), ("--dataset", "synthetic_64")):
        refused = invoke("synth", "--param", "keystone=0", *args, "--data-dir", tmp_path)
        assert refused.exit_code != 0 and "a name of your own" in refused.output
    bad = invoke("synth", "--param", "keystone=lots", "--dataset", "v1_flat",
                 "--data-dir", tmp_path)
    assert bad.exit_code != 0 and "keystone=lots" in bad.output
    args = ("synth", "--count", 10, "--workers", 1, "--param", "keystone=0",
            "--param", "rotation_deg=0,0", "--dataset", "v1_flat", "--data-dir", tmp_path)
    built = invoke(*args)
    assert built.exit_code == 0, built.output
    assert "v1_flat: built" in built.output
    assert not (tmp_path / "recapture" / "synthetic_64").exists()  # the built-in is untouched
    info = invoke("info", "--dataset", "v1_flat", "--data-dir", tmp_path)
    assert "v1 variant: keystone=0.0, rotation_deg=[0.0, 0.0]" in info.output, info.output
    assert "already built" in invoke(*args).output


def test_a_variant_never_replaces_an_import_of_the_same_name_unless_forced(photo_folders,
                                                                           tmp_path):
    originals, recaptured = photo_folders(5, size=(64, 64))
    data = tmp_path / "data"
    imported = invoke("import", "--originals", originals, "--recaptured", recaptured,
                      "--size", 64, "--data-dir", data, "--dataset", "mine")
    assert imported.exit_code == 0, imported.output
    synth = ("synth", "--count", 10, "--workers", 1, "--param", "keystone=0",
             "--dataset", "mine", "--data-dir", data)
    refused = invoke(*synth)
    assert refused.exit_code != 0 and "holds folder data" in refused.output
    assert "originals:" in invoke("info", "--data-dir", data, "--dataset", "mine").output
    forced = invoke(*synth, "--force")
    assert forced.exit_code == 0 and "mine: rebuilt" in forced.output, forced.output


def test_info_tells_committed_parameters_from_stale_ones(tmp_path):
    import json

    built = invoke("synth", "--count", 10, "--workers", 1, "--data-dir", tmp_path)
    assert built.exit_code == 0, built.output
    info = invoke("info", "--dataset", "synthetic_64", "--data-dir", tmp_path)
    assert "v1, committed parameters" in info.output
    # Made by an older simulator (same recorded fields, another hash): stale, not committed.
    (path,) = (tmp_path / "recapture" / "synthetic_64").rglob("tfrecap.json")
    meta = json.loads(path.read_text())
    meta["identity"]["simulator_fingerprint"] = "0123456789abcdef"
    path.write_text(json.dumps(meta))
    info = invoke("info", "--dataset", "synthetic_64", "--data-dir", tmp_path)
    assert "v1, stale: made by parameters 0123456789abcdef" in info.output, info.output
