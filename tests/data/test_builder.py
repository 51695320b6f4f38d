"""TFDS builder: determinism, count/seed identity, atomic rebuilds, clear errors."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from tests.data.conftest import TINY_COUNT, TINY_SEED
from tfrecap.data import builder, catalog, generate, pipeline
from tfrecap.data.simulator import DEFAULT_PARAMS


def _shard_digests(data_dir, dataset="synthetic_64"):
    path = catalog.dataset_dir(data_dir, dataset)
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.glob("*.tfrecord*"))
    }


def test_layout_splits_and_identity(synthetic_dir):
    b = catalog.load_builder(synthetic_dir, "synthetic_64")
    assert set(b.info.splits) == {"train", "validation", "test"}
    assert b.info.features["image"].shape == (64, 64, 3)
    assert b.info.features["image"].encoding_format == "png"
    assert b.info.features["label"].names == ["original", "recaptured"]
    assert b.info.splits["train"].num_shards > 1  # something to interleave and auto-shard
    meta = catalog.read_metadata(synthetic_dir, "synthetic_64")
    assert meta["identity"] == {
        "kind": "synthetic", "size": 64, "count_per_class": TINY_COUNT, "seed": TINY_SEED,
        "simulator_version": DEFAULT_PARAMS.version,
        "simulator_fingerprint": DEFAULT_PARAMS.fingerprint(),
    }
    assert meta["simulator"] == DEFAULT_PARAMS.to_dict()  # what the fingerprint stands for
    assert sum(meta["examples"].values()) == 2 * TINY_COUNT
    counts = pipeline.count_examples(synthetic_dir, "synthetic_64")
    assert counts["train"]["original"] == counts["train"]["recaptured"] > 0


def test_parse_spec_matches_the_builder(synthetic_dir):
    serialized = catalog.load_builder(synthetic_dir, "synthetic_64").info.features
    spec = serialized.get_serialized_info()
    for name, feature in pipeline.FEATURE_SPEC.items():
        assert spec[name].dtype == feature.dtype and tuple(spec[name].shape) == ()


def test_same_seed_gives_byte_identical_shards(synthetic_dir, tmp_path):
    config = builder.synthetic_config(64, TINY_COUNT, TINY_SEED)
    catalog.build_dataset(config, tmp_path, workers=2)
    assert _shard_digests(tmp_path) == _shard_digests(synthetic_dir)


def test_other_count_rebuilds_same_count_reuses(synthetic_copy):
    config = builder.synthetic_config(64, TINY_COUNT + 4, TINY_SEED)
    result = catalog.build_dataset(config, synthetic_copy, workers=1)
    assert result.status == "rebuilt"
    assert f"count_per_class {TINY_COUNT} -> {TINY_COUNT + 4}" in result.message
    b = catalog.load_builder(synthetic_copy, "synthetic_64")
    assert sum(s.num_examples for s in b.info.splits.values()) == 2 * (TINY_COUNT + 4)
    assert catalog.build_dataset(config, synthetic_copy).status == "already built"
    assert not list(synthetic_copy.glob(".building-*"))
    assert not list((synthetic_copy / "recapture" / "synthetic_64").glob(".*"))


def _stored(data_dir, split="validation"):
    import tensorflow_datasets as tfds

    ds = catalog.load_builder(data_dir, "synthetic_64").as_dataset(split=split)
    return {ex["capture_id"].decode(): ex["image"] for ex in tfds.as_numpy(ds)}


def test_other_simulator_params_rebuild_instead_of_reusing(synthetic_copy):
    """Data made by another simulator is never reused: the params are in the identity."""
    before = _shard_digests(synthetic_copy)
    params = dataclasses.replace(DEFAULT_PARAMS, jpeg_quality=(60, 70))
    config = builder.synthetic_config(64, TINY_COUNT, TINY_SEED, params=params)
    result = catalog.build_dataset(config, synthetic_copy, workers=1)
    assert result.status == "rebuilt"
    assert (f"simulator_fingerprint {DEFAULT_PARAMS.fingerprint()!r} -> "
            f"{params.fingerprint()!r}") in result.message
    identity = catalog.read_metadata(synthetic_copy, "synthetic_64")["identity"]
    assert identity["simulator_fingerprint"] == params.fingerprint()
    assert catalog.is_built(config, synthetic_copy)
    assert not catalog.is_built(builder.synthetic_config(64, TINY_COUNT, TINY_SEED),
                                synthetic_copy)
    # New pixels, and they are the changed simulator's.
    assert _shard_digests(synthetic_copy) != before
    expected = {ex.capture_id: ex.image for ex in generate.generate_split(
        64, TINY_COUNT, TINY_SEED, "validation", workers=1, params=params)}
    default = {ex.capture_id: ex.image for ex in generate.generate_split(
        64, TINY_COUNT, TINY_SEED, "validation", workers=1)}
    stored = _stored(synthetic_copy)
    assert stored.keys() == expected.keys()
    for key, image in stored.items():
        np.testing.assert_array_equal(image, expected[key])
        assert not np.array_equal(image, default[key])
    assert catalog.build_dataset(config, synthetic_copy).status == "already built"


def test_other_simulator_version_changes_the_identity():
    bumped = dataclasses.replace(DEFAULT_PARAMS, version=DEFAULT_PARAMS.version + 1)
    old = catalog.identity_of(builder.synthetic_config(64, 20, 0))
    new = catalog.identity_of(builder.synthetic_config(64, 20, 0, params=bumped))
    assert (old["simulator_version"], new["simulator_version"]) == (1, 2)
    assert old["simulator_fingerprint"] != new["simulator_fingerprint"]
    with pytest.raises(TypeError, match="SimulatorParams"):
        builder.synthetic_config(64, 20, 0, params={"version": 1})


def test_dataset_without_identity_record_is_rebuilt(synthetic_copy):
    (catalog.dataset_dir(synthetic_copy, "synthetic_64") / catalog.IDENTITY_FILE).unlink()
    config = builder.synthetic_config(64, TINY_COUNT, TINY_SEED)
    result = catalog.build_dataset(config, synthetic_copy, workers=1)
    assert result.status == "rebuilt" and "no identity record" in result.message


@pytest.mark.parametrize("error", [RuntimeError("simulator crashed"), KeyboardInterrupt()])
def test_failed_build_keeps_the_old_dataset(synthetic_copy, monkeypatch, error):
    before = _shard_digests(synthetic_copy)
    identity = catalog.read_metadata(synthetic_copy, "synthetic_64")["identity"]

    def half_then_fail(self, split):
        yield "k", {"image": __import__("numpy").zeros((64, 64, 3), "uint8"), "label": 0,
                    "source": "s", "region": "r", "capture_id": "c"}
        raise error

    monkeypatch.setattr(builder.Recapture, "_generate_synthetic", half_then_fail)
    config = builder.synthetic_config(64, TINY_COUNT + 2, seed=5)
    with pytest.raises(type(error)):
        catalog.build_dataset(config, synthetic_copy, workers=1)

    assert _shard_digests(synthetic_copy) == before
    assert catalog.read_metadata(synthetic_copy, "synthetic_64")["identity"] == identity
    assert catalog.load_builder(synthetic_copy, "synthetic_64").info.splits["train"].num_examples
    assert not list(synthetic_copy.glob(".building-*"))


def test_missing_dataset_names_the_command(tmp_path):
    with pytest.raises(catalog.DatasetNotFoundError, match="tfrecap data synth --size 128"):
        catalog.load_builder(tmp_path, "synthetic_128")
    with pytest.raises(catalog.DatasetNotFoundError, match="tfrecap data import"):
        catalog.load_builder(tmp_path, "my_photos")


def test_no_synthetic_256():
    with pytest.raises(ValueError, match="upsampling"):
        builder.synthetic_config(256)
    with pytest.raises(ValueError, match="reserved"):
        builder.folder_config("synthetic_64", 64, "a", "b")


def test_manual_dir_instructions_name_the_databases():
    text = builder.Recapture.MANUAL_DOWNLOAD_INSTRUCTIONS
    for name in ("ICL-COMMSP", "NTU-ROSE", "BJTU-IIS", "originals/", "recaptured/"):
        assert name in text


def test_identity_file_is_json_with_schema_version(synthetic_dir):
    path = catalog.dataset_dir(synthetic_dir, "synthetic_64") / catalog.IDENTITY_FILE
    assert json.loads(path.read_text())["schema_version"] == catalog.SCHEMA_VERSION


def test_stored_patches_are_the_simulator_output_exactly(synthetic_dir):
    import numpy as np
    import tensorflow_datasets as tfds

    from tfrecap.data import generate

    expected = {
        ex.capture_id: ex.image
        for ex in generate.generate_split(64, TINY_COUNT, TINY_SEED, "validation", workers=1)
    }
    ds = catalog.load_builder(synthetic_dir, "synthetic_64").as_dataset(split="validation")
    stored = {ex["capture_id"].decode(): ex["image"] for ex in tfds.as_numpy(ds)}
    assert stored.keys() == expected.keys()
    for key, image in stored.items():
        np.testing.assert_array_equal(image, expected[key])  # lossless PNG


def test_making_a_builder_for_an_unbuilt_dataset_leaves_no_temp_dir(tmp_path, monkeypatch):
    # TFDS's GCS lookup for pre-computed info makes a temp dir it never removes.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for _ in range(3):
        with pytest.raises(catalog.DatasetNotFoundError):
            catalog.load_builder(tmp_path / "data", "synthetic_64")
        builder.Recapture(config=builder.synthetic_config(64, 20, 0), data_dir=tmp_path / "d")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_folder_identity_names_the_tiling_rule(monkeypatch):
    """A dataset imported under another tiling rule or decoder is another dataset (rebuilt)."""
    from tfrecap.data import tiling

    before = builder.folder_config("mine", 64, "a", "b").identity()
    assert before["tiling"] == tiling.RULE
    monkeypatch.setattr(tiling, "RULE", "other-rule/9")
    assert builder.folder_config("mine", 64, "a", "b").identity() != before
