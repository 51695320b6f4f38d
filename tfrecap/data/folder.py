"""Read a user's folders of photos robustly and cut them into tiles for the TFDS builder.

A folder import must survive the files real folders hold: corrupt or truncated
images, stray non-image files, and odd but usable formats. Usable odd formats
(grey, palette, RGBA, CMYK, 16-bit, float) are converted to 8-bit RGB rather
than dropped; everything else is skipped with exactly one warning line naming
the file and the reason, and `ScanReport.summary()` counts both kinds.

Decisions, written down here because the paper is silent:

* **Pixels and tiles.** Photos are decoded by `tfrecap.data.decode`, scaled and cut by
  `tfrecap.data.tiling`, the very rule and decoder the exported `classify_images`
  signature uses, so a served model judges the tiles it was trained on: a photo whose long
  side exceeds 1024 px is first downscaled (antialiased) to a long side of 1024 by the same
  TF op the graph runs, called eagerly in the decoding threads (a photo whose short side
  then falls below S is skipped as too small); then a grid of
  non-overlapping S×S tiles from the top-left pixel, at most `max_tiles` (default 64)
  evenly spaced over it, so one 24-megapixel photo (about 5,800 tiles of 64 px) cannot
  outweigh a hundred small ones. The format is read from the bytes: a WebP named `.jpg`
  is read as the WebP it is.
* **Splits by source photo.** Tiles of one photo never cross splits. Photos are
  grouped by their path relative to their class folder, without extension and
  case-folded, so `originals/a/b.jpg` and `recaptured/a/b.png` (the usual naming of
  a paired recapture database) land in the same split. Groups are permuted with
  the seed and cut 40/10/50, separately for paired and unpaired groups so that
  both classes are spread over all splits. Every split must hold both classes (else
  training would fail later): `MIN_PHOTOS_PER_CLASS` (5) photos per class always do,
  and an import with too few fails with a message naming that minimum.
* **No EXIF rotation.** Pixels stay in sensor order: the CFA and moiré traces are
  tied to the sensor grid, and a 90° turn does not matter to a tile classifier.
* Flat or dark tiles are kept: in a real database they are part of the data.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from tfrecap import LABEL_NAMES
from tfrecap.data.decode import BadImageError, decode_rgb
from tfrecap.data.tiling import (
    DEFAULT_MAX_TILES,
    REFERENCE_LONG_SIDE,
    cut_tiles,
    normalize_scale,
    reference_shape,
)
from tfrecap.names import SPLIT_FRACTIONS, SPLITS

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")

# Photos per class (distinct names) that always fill every split with both classes
# (see `assign_splits`).
MIN_PHOTOS_PER_CLASS = 5

# Files an OS or a camera leaves behind; warning about them would only be noise.
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


class FolderImportError(ValueError):
    """A folder is missing, empty, or holds no usable image; the message names it."""


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One usable source photo.

    Attributes:
        path: absolute path of the file.
        relpath: POSIX path relative to its class folder.
        label: 0 original, 1 recaptured.
        height: height in pixels after the scale rule (`tiling.reference_shape`): the
            pixels its tiles are cut from.
        width: width in pixels after the scale rule.
        conversion: what was converted to reach 8-bit RGB ("grey", "CMYK", ...), or None.
    """

    path: str
    relpath: str
    label: int
    height: int
    width: int
    conversion: str | None = None

    @property
    def source(self) -> str:
        """The `source` feature: class name and relative path, unique in a dataset."""
        return f"{LABEL_NAMES[self.label]}/{self.relpath}"

    @property
    def group(self) -> str:
        """Split group: the relative path without extension, case-folded (pairs share it)."""
        return os.path.splitext(self.relpath)[0].casefold()


@dataclasses.dataclass(frozen=True)
class Problem:
    """A file that was skipped or converted, with the reason."""

    path: str
    category: str
    reason: str
    skipped: bool

    def line(self) -> str:
        """One warning line naming the file and the reason."""
        verb = "skipped" if self.skipped else "converted"
        return f"{verb}: {self.path}: {self.reason}"


@dataclasses.dataclass
class ScanReport:
    """What a scan of the two class folders found.

    Attributes:
        folders: the class folders, by label.
        records: usable photos in sorted order, originals first.
        problems: skipped and converted files, in the same order.
        fingerprint: hash of every candidate file's relative path, size and mtime,
            so that a changed folder changes the dataset's identity.
    """

    folders: tuple[str, str]
    records: list[ImageRecord]
    problems: list[Problem]
    fingerprint: str

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts of skipped and converted files, by category."""
        out: dict[str, dict[str, int]] = {"skipped": {}, "converted": {}}
        for p in self.problems:
            bucket = out["skipped" if p.skipped else "converted"]
            bucket[p.category] = bucket.get(p.category, 0) + 1
        return out

    def summary(self) -> str:
        """One line: usable photos per class, then skipped and converted counts."""
        per_class = collections.Counter(r.label for r in self.records)
        parts = [f"{per_class[i]} usable {name}" for i, name in enumerate(LABEL_NAMES)]
        counts = self.counts()
        for kind in ("skipped", "converted"):
            total = sum(counts[kind].values())
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts[kind].items()))
            parts.append(f"{total} {kind}" + (f" ({detail})" if detail else ""))
        return "; ".join(parts)


def read_rgb(path: str | os.PathLike, min_size: int = 1) -> tuple[np.ndarray, str | None]:
    """Read an image file as 8-bit RGB with the one decoder (:func:`decode.decode_rgb`).

    The format is read from the file's content, not its extension.

    Args:
        path: the image file.
        min_size: smallest acceptable height and width; smaller images are rejected
            before they are decoded.

    Returns:
        `(pixels, conversion)`: uint8 `[H, W, 3]` and a short description of what was
        converted (for example "CMYK"), or None for plain 8-bit RGB.

    Raises:
        BadImageError: the file is corrupt, truncated, not an image, unreadable or
            too small; `category` says which.
    """
    try:
        data = Path(path).read_bytes()
    except PermissionError as err:
        raise BadImageError("unreadable", f"cannot be read ({err.strerror})") from err
    except OSError as err:
        raise BadImageError("unreadable", f"cannot be read ({err.strerror or err})") from err
    decoded = decode_rgb(data, min_size=min_size)
    return decoded.pixels, decoded.conversion


def _candidate_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Sorted image-extension files and sorted other files under `root`, at any depth."""
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.casefold() in _IGNORED_NAMES:
                continue
            path = Path(dirpath, name)
            is_image = path.suffix.casefold() in IMAGE_EXTENSIONS
            (images if is_image else others).append(path)
    return sorted(images), sorted(others)


def _check_folder(folder: str | os.PathLike, role: str) -> Path:
    root = Path(folder).expanduser()
    if not root.exists():
        raise FolderImportError(f"The {role} folder does not exist: {root}")
    if not root.is_dir():
        raise FolderImportError(f"The {role} folder is not a directory: {root}")
    return root.resolve()


def fingerprint(originals: str | os.PathLike, recaptured: str | os.PathLike) -> str:
    """A hash of every image file's class, relative path, size and mtime (no decoding).

    It changes when a photo is added, removed, renamed or rewritten, so that a
    re-import of changed folders is never mistaken for the dataset already built.

    Raises:
        FolderImportError: a folder is missing or empty.
    """
    digest = hashlib.sha256()
    for label, (folder, role) in enumerate(((originals, "originals"), (recaptured, "recaptured"))):
        root = _check_folder(folder, role)
        images, others = _candidate_files(root)
        if not images and not others:
            raise FolderImportError(f"The {LABEL_NAMES[label]} folder is empty: {root}")
        for path in images:
            stat = path.stat()
            rel = path.relative_to(root).as_posix()
            digest.update(f"{label}\0{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _inspect(path: Path, min_size: int) -> tuple[int, int, str | None] | BadImageError:
    """Reference height and width (after the scale rule) and conversion, or the problem."""
    try:
        pixels, conversion = read_rgb(path, min_size=min_size)
    except BadImageError as err:
        return err
    height, width = pixels.shape[:2]
    ref_h, ref_w = reference_shape(height, width)
    if min(ref_h, ref_w) < min_size:
        return BadImageError(
            "too small",
            f"too small after scaling to the {REFERENCE_LONG_SIDE}-pixel reference long side "
            f"({width}x{height} pixels become {ref_w}x{ref_h}, need at least "
            f"{min_size}x{min_size})",
        )
    return ref_h, ref_w, conversion


def read_reference_rgb(path: str | os.PathLike, min_size: int = 1) -> np.ndarray:
    """:func:`read_rgb`, then the scale rule (`tiling.normalize_scale`): the pixels tiled.

    Raises:
        BadImageError: as :func:`read_rgb`.
    """
    pixels, _ = read_rgb(path, min_size=min_size)
    return normalize_scale(pixels)


def scan_folders(
    originals: str | os.PathLike,
    recaptured: str | os.PathLike,
    size: int,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> ScanReport:
    """Find and check every image under the two class folders.

    Every candidate is decoded once, in a thread pool (Pillow releases the GIL while
    decoding), and the results are gathered in sorted order, so the report does not
    depend on `workers`.

    Args:
        originals: folder of original photos (label 0), searched at any depth.
        recaptured: folder of recaptured photos (label 1).
        size: tile size S; smaller images, also after the scale rule, are skipped as
            too small.
        workers: decoding threads (default: the number of CPUs).
        progress: called with the number of files newly checked.
        warn: called once per skipped or converted file with one line naming it and
            the reason (default: `logging.warning`).

    Returns:
        The scan report.

    Raises:
        FolderImportError: a folder is missing or empty, or holds no usable image.
    """
    warn = warn or logger.warning
    roots = (_check_folder(originals, "originals"), _check_folder(recaptured, "recaptured"))
    digest = fingerprint(*roots)
    candidates = []
    problems: list[Problem] = []
    for label, root in enumerate(roots):
        images, others = _candidate_files(root)
        for path in others:
            problems.append(
                Problem(
                    str(path),
                    "not an image",
                    f"not an image file ({path.suffix or 'no extension'})",
                    True,
                )
            )
        candidates.extend((label, root, path) for path in images)
    for p in problems:
        warn(p.line())

    workers = workers or os.cpu_count() or 1
    records: list[ImageRecord] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(lambda c: _inspect(c[2], size), candidates)
        for (label, root, path), result in zip(candidates, results, strict=True):
            if isinstance(result, BadImageError):
                problem = Problem(str(path), result.category, str(result), True)
            else:
                h, w, conversion = result
                rel = path.relative_to(root).as_posix()
                records.append(ImageRecord(str(path), rel, label, h, w, conversion))
                problem = conversion and Problem(
                    str(path), conversion.split(" (")[0], conversion, False
                )
            if problem:
                problems.append(problem)
                warn(problem.line())
            if progress:
                progress(1)

    for label, root in enumerate(roots):
        if not any(r.label == label for r in records):
            raise FolderImportError(
                f"No usable {LABEL_NAMES[label]} image (at least {size}x{size} pixels) in {root}"
            )
    return ScanReport(tuple(map(str, roots)), records, problems, digest)


def _split_counts(n: int) -> list[int]:
    """Groups per split for a stratum of `n`: 40/10/50 by cumulative rounding, but at least
    one in every split once there are three groups, so that no split is left empty."""
    bounds, acc = [], 0.0
    for fraction in SPLIT_FRACTIONS:
        acc += fraction
        bounds.append(round(acc * n))
    bounds[-1] = n
    counts = [b - a for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]
    if n >= len(SPLITS):
        for i, count in enumerate(counts):
            if count == 0:
                counts[counts.index(max(counts))] -= 1
                counts[i] = 1
    return counts


def assign_splits(records: Sequence[ImageRecord], seed: int) -> dict[str, list[ImageRecord]]:
    """Split photos 40/10/50 by source photo, deterministically for a seed.

    Groups (see `ImageRecord.group`) are cut per stratum (paired groups, originals only,
    recaptures only), each stratum 40/10/50 but with at least one group in every split once it
    has three. So `MIN_PHOTOS_PER_CLASS` photos per class always give every split photos of
    both classes: a class's groups lie in two strata, and one of them then has three or more.

    Args:
        records: usable photos.
        seed: permutation seed.

    Returns:
        Split name → records, each list in the input order; every split holds both classes.

    Raises:
        FolderImportError: too few photos to give every split both classes; the message
            names the minimum.
    """
    by_group: dict[str, set[int]] = collections.defaultdict(set)
    for r in records:
        by_group[r.group].add(r.label)
    # Paired groups and single-class groups are cut separately, so that a folder
    # with few pairs still spreads both classes over every split.
    strata: dict[tuple[int, ...], list[str]] = collections.defaultdict(list)
    for group, labels in sorted(by_group.items()):
        strata[tuple(sorted(labels))].append(group)
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for key in sorted(strata):
        groups = strata[key]
        order = rng.permutation(len(groups)).tolist()
        start = 0
        for split, count in zip(SPLITS, _split_counts(len(groups)), strict=True):
            for index in order[start : start + count]:
                split_of[groups[index]] = split
            start += count
    out: dict[str, list[ImageRecord]] = {name: [] for name in SPLITS}
    for r in records:
        out[split_of[r.group]].append(r)
    for split, members in out.items():
        missing = [LABEL_NAMES[c] for c in range(len(LABEL_NAMES))
                   if not any(r.label == c for r in members)]
        if missing:
            per_class = collections.Counter(
                label for labels in by_group.values() for label in labels
            )
            have = ", ".join(f"{per_class[c]} {n}" for c, n in enumerate(LABEL_NAMES))
            raise FolderImportError(
                f"Too few photos to fill the train, validation and test splits with both "
                f"classes: the {split} split would have no {' and no '.join(missing)} photo. "
                f"Found {have} (photos named alike apart from the extension count once). "
                f"Import at least {MIN_PHOTOS_PER_CLASS} photos of each class."
            )
    return out


def iter_tiles(
    records: Sequence[ImageRecord],
    size: int,
    max_tiles: int = DEFAULT_MAX_TILES,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[ImageRecord, int, int, np.ndarray]]:
    """Yield `(record, y, x, tile)` for every kept tile, in record order.

    Photos are decoded and scaled (:func:`read_reference_rgb`) a few at a time ahead of the
    consumer in a thread pool (Pillow and TF ops both release the GIL), so memory stays
    bounded by a handful of decoded photos. Tile corners are in the scaled photo.

    Args:
        records: photos from `scan_folders`.
        size: tile size S.
        max_tiles: cap on tiles per photo.
        workers: decoding threads (default: the number of CPUs).
        progress: called with 1 after each photo is tiled.
    """
    workers = workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        window: collections.deque = collections.deque()
        it = iter(records)
        for record in it:
            window.append((record, pool.submit(read_reference_rgb, record.path, size)))
            if len(window) >= 2 * workers:
                break
        while window:
            record, future = window.popleft()
            nxt = next(it, None)
            if nxt is not None:
                window.append((nxt, pool.submit(read_reference_rgb, nxt.path, size)))
            positions, tiles = cut_tiles(future.result(), size, max_tiles)
            for (y, x), tile in zip(positions, tiles, strict=True):
                yield record, y, x, tile
            if progress:
                progress(1)
