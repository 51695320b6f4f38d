"""Fixtures for the data tests: one tiny synthetic dataset per session, photo folders."""

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY_COUNT, TINY_SEED  # noqa: F401  (used by the data tests)


@pytest.fixture
def synthetic_copy(synthetic_dir, tmp_path):
    """A private copy of the session dataset's data dir, free to modify."""
    target = tmp_path / "data"
    shutil.copytree(synthetic_dir, target)
    return target


def save_image(path, array=None, *, size=(80, 96), mode="RGB", seed=0, **save_kwargs):
    """Write a random (or given) image file; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array is None:
        rng = np.random.default_rng(seed)
        h, w = size
        array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, **save_kwargs)
    return path


@pytest.fixture
def photo_folders(tmp_path):
    """A factory: `make(n_per_class, size=(h, w))` → `(originals, recaptured)` folders.

    Originals are PNG in a subfolder, recaptures JPEG at the top level, with
    distinct names, so every photo is its own split group.
    """

    def make(n_per_class=4, size=(80, 96)):
        originals, recaptured = tmp_path / "originals", tmp_path / "recaptured"
        for i in range(n_per_class):
            save_image(originals / "sub" / f"o{i}.png", size=size, seed=i)
            save_image(recaptured / f"R{i}.JPG", size=size, seed=100 + i, quality=95)
        return originals, recaptured

    return make
