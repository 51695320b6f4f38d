"""Two labelled folders of photos as a dataset of S×S tiles, for ``tfrecap audit``.

Every photo under ``originals/`` (label 0) and ``recaptured/`` (label 1), found as ``data
import`` finds them (:func:`tfrecap.evaluation.images.collect_folder`), is read with the one
decoder (:func:`tfrecap.data.folder.read_rgb`, i.e. :mod:`tfrecap.data.decode`) and cut into
tiles with the one tiling rule (:func:`tfrecap.data.tiling.served_tiles`: the tiles
``classify_images`` judges). Each tile is labelled by its folder. Files that cannot be read
(corrupt, truncated, not an image, smaller than S×S) are skipped and listed, never a crash.

Tiles come class by class in turn (an original tile, a recaptured one, ...; the rest of the
larger class at the end), so the first N tiles that ``--limit N`` keeps hold both classes.
Photos are read lazily, as the evaluation asks for tiles: with ``--limit`` only the photos
needed (and those a batch reads ahead) are read, and only those appear in the counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfrecap import LABEL_NAMES
from tfrecap.data.decode import BadImageError
from tfrecap.data.folder import read_rgb
from tfrecap.data.tiling import RULE, served_tiles
from tfrecap.evaluation.images import PhotoFolder, collect_folder


@dataclasses.dataclass
class FolderTiles:
    """The tiles of two labelled folders, and what happened to each file read.

    Attributes:
        folders: the originals and recaptured folders, as found.
        size: the tile side S.
        photos: photos cut into at least one tile, per class name.
        tiles: tiles handed to the evaluation, per class name.
        skipped: ``{path, class, category, reason}`` per file that gave no tile.
        converted: ``{path, class, conversion}`` per photo converted to 8-bit RGB.
    """

    folders: tuple[PhotoFolder, PhotoFolder]
    size: int
    photos: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(LABEL_NAMES, 0))
    tiles: dict = dataclasses.field(default_factory=lambda: dict.fromkeys(LABEL_NAMES, 0))
    skipped: list = dataclasses.field(default_factory=list)
    converted: list = dataclasses.field(default_factory=list)

    @classmethod
    def collect(cls, originals, recaptured, size: int) -> FolderTiles:
        """Find the image files of both folders (no photo is read yet).

        Raises:
            FolderImportError: a folder is missing, not a directory or holds no image file.
        """
        tiles = cls((collect_folder(originals, 0), collect_folder(recaptured, 1)), size)
        for folder in tiles.folders:
            for path in folder.others:
                tiles._skip(path, folder.label, "not an image",
                            f"not an image file ({path.suffix or 'no extension'})")
        return tiles

    def _skip(self, path: Path, label: int, category: str, reason: str) -> None:
        self.skipped.append({"path": str(path), "class": LABEL_NAMES[label],
                             "category": category, "reason": reason})

    def _tiles_of(self, folder: PhotoFolder):
        name = LABEL_NAMES[folder.label]
        for path in folder.images:
            try:
                pixels, conversion = read_rgb(path, min_size=self.size)
            except BadImageError as err:
                self._skip(path, folder.label, err.category, str(err))
                continue
            _, tiles = served_tiles(pixels, self.size)
            if not len(tiles):
                self._skip(path, folder.label, "too small",
                           f"smaller than {self.size}x{self.size} after the scale rule")
                continue
            if conversion:
                self.converted.append({"path": str(path), "class": name,
                                       "conversion": conversion})
            self.photos[name] += 1
            for tile in tiles:
                self.tiles[name] += 1
                yield tile

    def examples(self):
        """``(uint8 tile [S, S, 3], label)`` pairs, the classes in turn (module doc)."""
        streams = [(folder.label, self._tiles_of(folder)) for folder in self.folders]
        while streams:
            for stream in list(streams):
                tile = next(stream[1], None)
                if tile is None:
                    streams.remove(stream)
                else:
                    yield tile, np.int32(stream[0])

    def dataset(self, batch_size: int):
        """Batches of ``(float32 [B, S, S, 3] in [0, 255], int32 [B])``, as ``make_dataset``."""
        import tensorflow as tf

        s = self.size
        data = tf.data.Dataset.from_generator(
            self.examples,
            output_signature=(tf.TensorSpec([s, s, 3], tf.uint8), tf.TensorSpec([], tf.int32)),
        )
        return data.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y))

    def summary(self) -> dict:
        """The report's account of the data: folders, rule, photos, tiles, skipped files."""
        return {
            "source": "folders",
            "originals": str(self.folders[0].root),
            "recaptured": str(self.folders[1].root),
            "tiling_rule": RULE,
            "image_files": {LABEL_NAMES[f.label]: len(f.images) for f in self.folders},
            "photos_read": dict(self.photos),
            "tiles_read": dict(self.tiles),
            "skipped": self.skipped,
            "converted": self.converted,
        }
