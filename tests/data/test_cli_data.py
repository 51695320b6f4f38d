"""`tfrecap data` through click's CliRunner: synth, import, info, preview."""

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from tests.data.conftest import TINY_COUNT, save_image
from tfrecap.cli.data import data


def invoke(*args):
    return CliRunner().invoke(data, [str(a) for a in args], catch_exceptions=False)


def test_help_explains_every_command():
    for command in ("synth", "import", "info", "preview"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "--data-dir" in result.output


def test_synth_builds_then_reuses(tmp_path):
    args = ("synth", "--size", 64, "--count", 10, "--seed", 1, "--data-dir", tmp_path)
    args += ("--workers", 1)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "synthetic_64: built" in first.output
    assert "Simulating synthetic_64" in first.output  # the progress bar
    again = invoke(*args)
    assert again.exit_code == 0 and "already built" in again.output


def test_synth_refuses_256(tmp_path):
    result = invoke("synth", "--size", 256, "--data-dir", tmp_path)
    assert result.exit_code != 0 and "256" in result.output


def test_info_text_and_json(synthetic_dir):
    text = invoke("info", "--data-dir", synthetic_dir, "--dataset", "synthetic_64")
    assert text.exit_code == 0, text.output
    for word in ("count_per_class:", f"{TINY_COUNT}", "seed:", "train", "recaptured", "total"):
        assert word in text.output
    as_json = invoke("info", "--data-dir", synthetic_dir, "--dataset", "synthetic_64", "--json")
    out = json.loads(as_json.output)
    assert out["schema_version"] == 1
    assert sum(row["total"] for row in out["examples"].values()) == 2 * TINY_COUNT


def test_info_on_missing_dataset_says_how_to_build(tmp_path):
    result = invoke("info", "--data-dir", tmp_path, "--dataset", "synthetic_128")
    assert result.exit_code == 1 and "tfrecap data synth --size 128" in result.output


def test_info_names_a_corrupt_shard(synthetic_copy):
    from tfrecap.data import catalog

    shard = catalog.shard_paths(catalog.load_builder(synthetic_copy, "synthetic_64"), "test")[0]
    data_bytes = bytearray(open(shard, "rb").read())
    data_bytes[len(data_bytes) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data_bytes))
    result = invoke("info", "--data-dir", synthetic_copy, "--dataset", "synthetic_64")
    assert result.exit_code == 1 and shard in result.output


def test_preview_writes_a_picture(synthetic_dir, tmp_path):
    out = tmp_path / "grid.png"
    result = invoke(
        "preview", "--data-dir", synthetic_dir, "--dataset", "synthetic_64",
        "--output", out, "--n", 3,
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.width > image.height > 100


def test_import_warns_counts_and_builds(photo_folders, tmp_path):
    originals, recaptured = photo_folders(5, size=(64, 64))
    (originals / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    save_image(recaptured / "grey.png", size=(64, 64), mode="L")
    args = (
        "import", "--originals", originals, "--recaptured", recaptured, "--size", 64,
        "--data-dir", tmp_path / "data", "--dataset", "mine", "--seed", 3,
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count("broken.jpg") == 1
    assert "1 skipped (corrupt 1); 1 converted (grey 1)" in result.output  # a JPEG header
    assert "mine: built" in result.output
    again = invoke(*args)  # unchanged folders: no second decode of every photo
    assert "mine: already built" in again.output and "warning" not in again.output
    info = invoke("info", "--data-dir", tmp_path / "data", "--dataset", "mine")
    assert "originals:" in info.output and "1 converted" in info.output


@pytest.mark.parametrize("which", ["missing", "empty", "unusable"])
def test_import_fails_naming_the_folder(photo_folders, tmp_path, which):
    originals, recaptured = photo_folders(2)
    if which == "missing":
        originals = tmp_path / "no_such_folder"
    else:
        for f in originals.rglob("*.png"):
            f.unlink()
        if which == "unusable":
            (originals / "junk.png").write_bytes(b"not a png")
    result = invoke(
        "import", "--originals", originals, "--recaptured", recaptured,
        "--data-dir", tmp_path / "data", "--dataset", "mine",
    )
    assert result.exit_code == 1
    assert str(originals.resolve() if which != "missing" else originals) in result.output
    assert not (tmp_path / "data" / "recapture" / "mine").exists()


def test_import_needs_a_name(photo_folders, tmp_path):
    originals, recaptured = photo_folders(1)
    result = invoke("import", "--originals", originals, "--recaptured", recaptured)
    assert result.exit_code == 2 and "--dataset" in result.output


def test_import_sizes_are_the_training_sizes(photo_folders, tmp_path):
    from tfrecap.names import PATCH_SIZES

    originals, recaptured = photo_folders(1)
    result = invoke("import", "--originals", originals, "--recaptured", recaptured,
                    "--data-dir", tmp_path / "data", "--dataset", "mine", "--size", 32)
    assert result.exit_code == 2
    assert "'32' is not one of " + ", ".join(f"'{s}'" for s in PATCH_SIZES) in result.output
    help_text = invoke("import", "--help").output
    assert "[64|128|256|512]" in help_text


def test_import_of_too_few_photos_fails_naming_the_minimum(photo_folders, tmp_path):
    from tfrecap.data import folder

    originals, recaptured = photo_folders(2, size=(64, 64))
    result = invoke("import", "--originals", originals, "--recaptured", recaptured,
                    "--data-dir", tmp_path / "data", "--dataset", "mine")
    assert result.exit_code == 1, result.output
    assert f"at least {folder.MIN_PHOTOS_PER_CLASS} photos of each class" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "data" / "recapture" / "mine").exists()
    assert f"at least {folder.MIN_PHOTOS_PER_CLASS} photos per class" in " ".join(
        invoke("import", "--help").output.split())


def test_import_of_nine_photos_per_class_makes_three_splits(photo_folders, tmp_path):
    # The new user's folder: 9 photos per class once built no validation split.
    from tfrecap.data import catalog

    originals, recaptured = photo_folders(9, size=(64, 64))
    result = invoke("import", "--originals", originals, "--recaptured", recaptured,
                    "--data-dir", tmp_path / "data", "--dataset", "mine")
    assert result.exit_code == 0, result.output
    splits = catalog.load_builder(tmp_path / "data", "mine").info.splits
    assert set(splits) == {"train", "validation", "test"}
