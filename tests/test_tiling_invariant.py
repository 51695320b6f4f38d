"""The serving invariant: `classify_images` judges exactly the tiles `data import` stores.

A tiny untrained detector (S = 64) is exported, a folder of photos whose sides are not
multiples of S is imported with the same tile cap, and every photo's verdict from the
export must be the mean of `serving_default` over that photo's imported tiles: equal to
float tolerance for one-tile photos, with the same tile count for the others (a cap that
binds included). Two photos are above the 1024-px reference long side, so both paths scale
them first (`tiling.normalize_scale`) and must still agree. Raw JPEG and PNG bytes go to
`classify_images` as a serving client sends them; WebP and TIFF go through `predict`'s path
(`classify_files`).

Marked slow (an import and an export, about 15 s on 2 cores). Its parts run by default:
`tests/data/test_tiling.py` (NumPy and graph tiling agree), `tests/data/test_decode.py`
(identical pixels) and `tests/test_serving.py` (the export against the NumPy rule).
"""

import collections
import io
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecap.data import builder, catalog, tiling
from tfrecap.export import classify_files, export_detector
from tfrecap.models import build_detector

pytestmark = pytest.mark.slow

S = 64
CAP = 5  # binds on the 3 x 4 grid below, at import and in the export alike


def _textured(h, w, seed):
    # A different texture in every S x S cell, so that another choice of tiles, or pixels
    # off by a few levels, changes the verdict.
    rng = np.random.default_rng(seed)
    scale = np.kron(rng.uniform(2, 90, (h // 16 + 1, w // 16 + 1, 1)), np.ones((16, 16, 1)))
    pixels = rng.uniform(40, 215, (1, 1, 3)) + scale[:h, :w] * rng.standard_normal((h, w, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _save(path, pixels, fmt, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **kwargs)
    path.write_bytes(buf.getvalue())


# name, size, format, save options, expected tiles
PHOTOS = [
    ("originals/one.png", (101, 77), "PNG", {}, 1),
    ("originals/one_420.jpg", (97, 120), "JPEG", {"quality": 90, "subsampling": 2}, 1),
    ("originals/one_444.jpg", (70, 127), "JPEG", {"quality": 80, "subsampling": 0}, 1),
    ("originals/four.png", (150, 140), "PNG", {}, 4),
    ("originals/capped.jpg", (200, 300), "JPEG", {"quality": 85}, 4),  # 12 cells, cap 5
    ("recaptured/webp_named.jpg", (130, 100), "WEBP", {"quality": 80}, 2),
    ("recaptured/scan.tif", (70, 140), "TIFF", {}, 2),
    ("recaptured/r1.jpg", (90, 90), "JPEG", {"quality": 75}, 1),
    ("recaptured/r2.png", (65, 200), "PNG", {}, 3),
    ("recaptured/r3.jpg", (129, 66), "JPEG", {"quality": 95}, 2),
    ("originals/big.jpg", (1300, 1100), "JPEG", {"quality": 85}, 4),  # 1024 x 866, capped
    ("recaptured/big.png", (1100, 2000), "PNG", {}, 5),  # 563 x 1024, capped
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("invariant")
    for i, (name, (h, w), fmt, options, _) in enumerate(PHOTOS):
        _save(root / name, _textured(h, w, seed=i), fmt, **options)
    config = builder.folder_config("invariant", S, root / "originals", root / "recaptured",
                                   seed=0, max_tiles_per_image=CAP)
    catalog.build_dataset(config, root / "data", warn=lambda _: None)
    tiles = collections.defaultdict(list)
    dataset = catalog.load_builder(root / "data", "invariant")
    for split in dataset.info.splits:
        for ex in dataset.as_dataset(split=split).as_numpy_iterator():
            y, x = map(int, re.search(r"#y(\d+)x(\d+)$", ex["region"].decode()).groups())
            tiles[ex["source"].decode()].append(((y, x), ex["image"]))

    tf.keras.utils.set_random_seed(3)
    detector = build_detector(input_shape=(S, S, 3), widths=(4, 4, 4, 4, 4))
    version_dir = export_detector(detector, root / "saved_models" / "tiny", max_tiles=CAP)
    loaded = tf.saved_model.load(str(version_dir))
    return root, tiles, loaded


def _served_mean(loaded, imported):
    """Mean recaptured probability of `serving_default` over imported tiles, row-major."""
    batch = np.stack([tile for _, tile in sorted(imported, key=lambda t: t[0])])
    out = loaded.signatures["serving_default"](images=tf.constant(batch, tf.float32))
    return float(np.mean(out["probabilities"].numpy()[:, 1]))


def test_classify_images_judges_the_imported_tiles(setup):
    root, tiles, loaded = setup
    classify = loaded.signatures["classify_images"]
    checked = 0
    for name, (h, w), fmt, _, count in PHOTOS:
        if fmt not in ("PNG", "JPEG"):
            continue
        source = name.replace("originals/", "original/").replace("recaptured/", "recaptured/")
        imported = tiles[source]
        scaled = tiling.reference_shape(h, w)
        assert len(imported) == count == len(tiling.tile_positions(*scaled, S, CAP)), name
        assert h % S and w % S  # never a multiple of S
        out = classify(image_bytes=tf.constant([(root / name).read_bytes()]))
        assert int(out["patch_count"][0]) == count, name
        np.testing.assert_allclose(float(out["recaptured_probability"][0]),
                                   _served_mean(loaded, imported), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
        checked += 1
    assert checked == 10


def test_predict_judges_the_imported_tiles_for_every_format(setup):
    root, tiles, loaded = setup
    results = classify_files(loaded.signatures["classify_images"],
                             [root / name for name, *_ in PHOTOS])
    for (name, *_, count), result in zip(PHOTOS, results, strict=True):
        imported = tiles[name.replace("originals/", "original/")]
        assert result["patch_count"] == len(imported) == count, (name, result)
        np.testing.assert_allclose(result["recaptured_probability"],
                                   _served_mean(loaded, imported), rtol=1e-6, atol=1e-7,
                                   err_msg=name)
    spread = [r["recaptured_probability"] for r in results]
    assert np.std(spread) > 1e-5  # the photos are told apart, so a mix-up would show
