"""Folder import: bad files are named once and counted, odd formats converted, splits by photo."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.data.conftest import save_image
from tfrecap.data import builder, catalog, folder, tiling
from tfrecap.names import SPLITS

SIZE = 32


def _png_bytes(seed=0, size=(64, 64)):
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(buf, "PNG")
    return bytearray(buf.getvalue())


def _corrupt(path):
    data = _png_bytes()
    data[data.find(b"IDAT") + 100] ^= 0xFF  # a bit flip in the compressed pixels
    path.write_bytes(bytes(data))


def _truncated(path):
    data = _png_bytes()
    path.write_bytes(bytes(data[: len(data) // 2]))


def _non_image(path):
    path.write_text("these are my notes, not a photo\n")


def _grey(path):
    save_image(path, size=(64, 64), mode="L")


def _rgba(path):
    save_image(path, size=(64, 64), mode="RGBA")


def _cmyk(path):
    save_image(path, size=(64, 64), mode="CMYK", quality=95)


def _sixteen_bit(path):
    Image.fromarray(np.full((64, 64), 32896, np.uint16)).save(path)


def _sixteen_bit_rgb(path):
    # Pillow reads a 48-bit PNG as plain mode RGB (the high bytes): a silent conversion.
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(np.full((64, 64, 3), 40000, np.uint16)).numpy())


def _webp_named_jpg(path):
    save_image(path, size=(64, 64), format="WEBP", quality=80)


def _too_small(path):
    save_image(path, size=(SIZE - 1, 200))


# name, writer, skipped?, category in the summary
CASES = [
    ("corrupt.png", _corrupt, True, "corrupt"),
    ("truncated.png", _truncated, True, "truncated"),
    ("notes.jpg", _non_image, True, "not an image"),
    ("grey.png", _grey, False, "grey"),
    ("rgba.png", _rgba, False, "RGBA"),
    ("cmyk.jpg", _cmyk, False, "CMYK"),
    ("deep.png", _sixteen_bit, False, "16-bit"),
    ("deep_rgb.png", _sixteen_bit_rgb, False, "16-bit RGB"),
    ("small.bmp", _too_small, True, "too small"),
]


@pytest.mark.parametrize("name, write, skipped, category", CASES, ids=[c[3] for c in CASES])
def test_bad_file_is_named_once_and_counted(photo_folders, name, write, skipped, category):
    originals, recaptured = photo_folders(2)
    bad = originals / name
    write(bad)
    lines = []
    report = folder.scan_folders(originals, recaptured, SIZE, workers=2, warn=lines.append)

    assert len(lines) == 1 and str(bad) in lines[0]
    assert lines[0].startswith("skipped" if skipped else "converted")
    kind = "skipped" if skipped else "converted"
    assert report.counts()[kind] == {category: 1}
    assert f"1 {kind} ({category} 1)" in report.summary()
    usable = [r.path for r in report.records]
    assert (str(bad) in usable) != skipped
    assert len(usable) == 4 + (not skipped)


def test_odd_formats_become_8bit_rgb(tmp_path):
    for name, write, skipped, _ in CASES:
        if skipped:
            continue
        write(tmp_path / name)
        pixels, conversion = folder.read_rgb(tmp_path / name)
        assert pixels.dtype == np.uint8 and pixels.shape == (64, 64, 3), name
        assert conversion, name
    deep, _ = folder.read_rgb(tmp_path / "deep.png")
    assert np.all(deep == 128)  # 32896 / 257 = 128: scaled, not clipped at 255


def test_stray_non_image_file_is_named(photo_folders):
    originals, recaptured = photo_folders(2)
    (recaptured / "README.txt").write_text("hi")
    (recaptured / ".DS_Store").write_bytes(b"\0")  # hidden: ignored silently
    lines = []
    report = folder.scan_folders(originals, recaptured, SIZE, warn=lines.append)
    assert len(lines) == 1 and "README.txt" in lines[0]
    assert report.counts()["skipped"] == {"not an image": 1}


def test_extensions_any_case_and_depth(tmp_path):
    originals, recaptured = tmp_path / "o", tmp_path / "r"
    for i, ext in enumerate([".jpg", ".JPEG", ".Png", ".tif", ".TIFF", ".bmp", ".webp"]):
        save_image(originals / "a" / "b" / f"x{i}{ext}", size=(40, 40), seed=i)
    save_image(recaptured / "y.png", size=(40, 40))
    _webp_named_jpg(recaptured / "dev_photo.jpg")  # the format comes from the bytes
    report = folder.scan_folders(originals, recaptured, SIZE)
    assert sum(r.label == 0 for r in report.records) == 7
    assert sum(r.label == 1 for r in report.records) == 2
    assert not report.problems


@pytest.mark.parametrize("which", ["missing", "empty", "unusable"])
def test_fatal_folder_problems_name_the_folder(photo_folders, which):
    originals, recaptured = photo_folders(2)
    if which == "missing":
        recaptured = recaptured.parent / "nowhere"
    else:
        for f in recaptured.iterdir():
            f.unlink()
        if which == "unusable":
            _truncated(recaptured / "only.png")
    with pytest.raises(folder.FolderImportError, match=str(recaptured)):
        folder.scan_folders(originals, recaptured, SIZE, warn=lambda _: None)


def test_import_tiles_by_the_one_rule():
    assert folder.cut_tiles is tiling.cut_tiles
    pixels = np.arange(100 * 200 * 3, dtype=np.uint32).reshape(100, 200, 3).astype(np.uint8)
    corners, tiles = folder.cut_tiles(pixels, 32, max_tiles=64)
    assert corners == tiling.tile_positions(100, 200, 32, max_tiles=64)
    assert corners[0] == (0, 0) and len(corners) == 3 * 6  # top-left 3x6 grid
    y, x = corners[7]
    np.testing.assert_array_equal(tiles[7], pixels[y:y + 32, x:x + 32])


def _records(paired, only, seed_offset=0):
    """`paired` pairs plus `only` unpaired photos per class, as ImageRecords."""
    records = []
    for label, c in enumerate("or"):
        names = [f"p{i}" for i in range(paired)] + [f"{c}{i}" for i in range(only)]
        records += [folder.ImageRecord(f"/x/{c}/{n}.png", f"{n}.png", label, 64, 64)
                    for n in names]
    return records


@pytest.mark.parametrize("per_class", [folder.MIN_PHOTOS_PER_CLASS, 9, 10])
def test_enough_photos_fill_every_split_with_both_classes(per_class):
    # 9 unpaired photos per class once left the validation split empty (round(4.5) == 4),
    # and `train` then failed with a KeyError. Every mix of paired and unpaired photos
    # from the minimum up must give every split both classes.
    for paired in range(per_class + 1):
        for seed in range(3):
            splits = folder.assign_splits(_records(paired, per_class - paired), seed)
            for split in SPLITS:
                assert {r.label for r in splits[split]} == {0, 1}, (paired, seed, split)


def test_too_few_photos_fail_naming_the_minimum():
    # 2 pairs and 2 unpaired photos per class: three strata of 2, none reaches validation.
    assert folder.MIN_PHOTOS_PER_CLASS == 5
    with pytest.raises(folder.FolderImportError) as err:
        folder.assign_splits(_records(2, 2), seed=0)
    message = str(err.value)
    assert f"at least {folder.MIN_PHOTOS_PER_CLASS} photos of each class" in message
    assert "Found 4 original, 4 recaptured" in message and "split would have no" in message


def test_split_is_by_photo_and_keeps_pairs_together():
    records = [
        folder.ImageRecord(f"/x/{c}/p{i}.png", f"p{i}.png", label, 64, 64)
        for i in range(20)
        for label, c in enumerate("or")
    ]
    splits = folder.assign_splits(records, seed=3)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [16, 4, 20]
    for members in splits.values():
        assert {r.group for r in members if r.label == 0} == {
            r.group for r in members if r.label == 1
        }
    assert folder.assign_splits(records, seed=3) == splits
    assert folder.assign_splits(records, seed=4) != splits


def test_import_builds_dataset_with_tiles_never_crossing_splits(photo_folders, tmp_path):
    import tensorflow_datasets as tfds

    originals, recaptured = photo_folders(10, size=(70, 100))  # 2x3 tiles of 32 px each
    _grey(originals / "grey.png")
    _corrupt(recaptured / "corrupt.png")
    config = builder.folder_config("mine", SIZE, originals, recaptured, seed=1)
    result = catalog.build_dataset(config, tmp_path / "data", warn=lambda _: None)
    assert result.status == "built"
    assert "1 skipped (corrupt 1); 1 converted (grey 1)" in result.scan.summary()

    tfds_builder = catalog.load_builder(tmp_path / "data", "mine")
    sources = {}
    for split in tfds_builder.info.splits:
        ds = tfds_builder.as_dataset(split=split)
        sources[split] = {ex["source"].decode() for ex in tfds.as_numpy(ds)}
    assert sum(len(s) for s in sources.values()) == 21
    assert not sources["train"] & sources["test"]
    assert not sources["train"] & sources["validation"]
    assert not sources["validation"] & sources["test"]
    assert "original/grey.png" in set().union(*sources.values())

    again = catalog.build_dataset(config, tmp_path / "data", warn=lambda _: None)
    assert again.status == "already built"
    save_image(originals / "new.png", size=(70, 100), seed=99)  # the folder changed
    changed = catalog.build_dataset(config, tmp_path / "data", warn=lambda _: None)
    assert changed.status == "rebuilt" and "fingerprint" in changed.message


def test_import_is_the_same_with_any_number_of_workers(photo_folders):
    # Import decodes photos on all cores by default; the records and tiles, and their order,
    # must not depend on how many threads did the work.
    originals, recaptured = photo_folders(6, size=(70, 100))
    _grey(originals / "grey.png")
    _corrupt(recaptured / "corrupt.png")
    results = []
    for workers in (1, 3):
        report = folder.scan_folders(
            originals, recaptured, SIZE, workers=workers, warn=lambda _: None
        )
        tiles = [
            (record.path, y, x, tile.tobytes())
            for record, y, x, tile in folder.iter_tiles(report.records, SIZE, workers=workers)
        ]
        results.append(([r.path for r in report.records], report.summary(), tiles))
    assert len(results[0][0]) == 13  # 6 + 6 photos and the grey one; the corrupt one skipped
    assert len(results[0][2]) == 12 * 6 + 4  # 2 x 3 tiles of 32 px per 70 x 100 photo, 2 x 2
    # in the 64 x 64 grey one
    assert results[0] == results[1]


# Photos above the 1024-px reference long side, in odd sizes and both orientations.
LARGE = [("wide.png", (701, 1100), {}), ("tall_420.jpg", (1100, 701), {"quality": 90}),
         ("square_444.jpg", (1025, 1025), {"quality": 85, "subsampling": 0})]


def test_import_scales_large_photos_exactly_as_the_graph_does(tmp_path):
    # Import runs the scale rule's TF op eagerly in its decoding threads; the exported graph
    # runs it on the bytes. Both must give the same pixels, hence the same tiles, bit for bit.
    import tensorflow as tf

    from tfrecap.data.decode import decode_in_graph

    originals, recaptured = tmp_path / "originals", tmp_path / "recaptured"
    for i, (name, size, options) in enumerate(LARGE):
        save_image(originals / name, size=size, seed=i, **options)
    save_image(recaptured / "r.png", size=(70, 100))
    # 2000 x 60 is big enough as it is, but 1024 x 31 (below S = 32) after the scale rule.
    save_image(originals / "strip.png", size=(2000, 60))
    lines = []
    report = folder.scan_folders(originals, recaptured, SIZE, workers=2, warn=lines.append)
    assert len(lines) == 1 and lines[0] == (
        f"skipped: {originals / 'strip.png'}: too small after scaling to the 1024-pixel "
        "reference long side (60x2000 pixels become 31x1024, need at least 32x32)")
    assert report.counts()["skipped"] == {"too small": 1}
    shapes = {r.relpath: (r.height, r.width) for r in report.records if r.label == 0}
    assert shapes == {name: tiling.reference_shape(*size) for name, size, _ in LARGE}

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
    def graph_tiles(data):
        return tiling.cut_tiles_tf(tiling.normalize_scale_tf(decode_in_graph(data)), SIZE)

    imported = {}
    for record, _, _, tile in folder.iter_tiles(report.records, SIZE, workers=2):
        imported.setdefault(record.path, []).append(tile)
    for record in report.records:
        served = graph_tiles(tf.constant(open(record.path, "rb").read())).numpy()
        assert len(imported[record.path]) == len(served) == len(
            tiling.tile_positions(record.height, record.width, SIZE)), record.relpath
        np.testing.assert_array_equal(np.stack(imported[record.path]), served,
                                      err_msg=record.relpath)
        pixels = folder.read_reference_rgb(record.path)
        assert pixels.shape[:2] == (record.height, record.width)
