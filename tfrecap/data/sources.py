"""Bundled source photographs and their split into disjoint scene regions.

The photos are the real colour photographs that ship inside the scikit-image wheel, plus
matplotlib's ``grace_hopper.jpg``. All are public domain or CC0 and need no network.

Every photo is cut into three disjoint rectangles ("bands") holding 40/10/50 % of its area, one
per split (train/validation/test). A region is a square tile inside one band, far enough from the
band edge that every source pixel the simulator may read (the "window") stays inside that band.
So no source pixel reaches two splits, and an original and its recapture of a region, which are
simulated from the same window, always land in the same split.

Flat or dark tiles are dropped before anything is simulated, so both classes lose them alike.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tfrecap.names import SPLITS

SCENES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "grace_hopper",
)

# Region filter, on the source tile before simulation (sRGB levels / 255, Rec. 601 luma).
# Dark: the hubble sky and the retina's black surround would otherwise dominate the set.
MIN_MEAN_LUMA = 0.10
# Flat: sky, walls, out-of-focus background carry no texture for either class.
MIN_STD_LUMA = 0.025
# Mean |gradient| (forward differences), rejects smooth ramps that pass the std test.
MIN_GRADIENT = 0.004

# Rectified stereo pairs: the disparity is horizontal only, so their bands are cut along rows,
# which keeps content seen in the other eye inside the same band.
_ROW_CUT_SCENES = frozenset({"motorcycle"})


@dataclasses.dataclass(frozen=True)
class Region:
    """A square source region reserved for one split.

    Attributes:
        scene: scene name, one of `SCENES`.
        photo: index of the photo within the scene (the motorcycle scene has two).
        region: id unique per spatial region, e.g. ``"astronaut/0/b2/r17"``.
        split: one of `SPLITS`.
        center: (row, col) of the tile centre in the photo, in pixels.
    """

    scene: str
    photo: int
    region: str
    split: str
    center: tuple[int, int]


def _read_grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def _read_scene(name: str) -> list[np.ndarray]:
    import skimage.data

    if name == "motorcycle":
        left, right, _ = skimage.data.stereo_motorcycle()
        return [left, right]
    if name == "grace_hopper":
        return [_read_grace_hopper()]
    return [getattr(skimage.data, name)()]


@functools.lru_cache(maxsize=None)
def load_scene(name: str) -> tuple[np.ndarray, ...]:
    """Loads the photos of one scene, cached per process.

    Args:
        name: one of `SCENES`.

    Returns:
        The scene's photos as read-only uint8 arrays of shape [H, W, 3].

    Raises:
        ValueError: if the scene is unknown.
    """
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; known scenes: {', '.join(SCENES)}")
    photos = []
    for photo in _read_scene(name):
        photo = np.ascontiguousarray(photo[..., :3], dtype=np.uint8)
        photo.setflags(write=False)
        photos.append(photo)
    return tuple(photos)


def band_boxes(height: int, width: int, row_cuts_only: bool = False) -> dict[str, tuple]:
    """Cuts a photo into three disjoint rectangles of 40/10/50 % of its area.

    The test band is one half of the photo. The other half is split 4:1 into train and
    validation, along whichever axis leaves the thicker validation band, because only a band at
    least one window thick yields any region. With ``row_cuts_only`` every cut runs along rows.

    Args:
        height: photo height in pixels.
        width: photo width in pixels.
        row_cuts_only: cut along rows only (rectified stereo scenes).

    Returns:
        ``{split: (row0, row1, col0, col1)}``, half-open boxes.
    """
    if row_cuts_only:
        a, b = round(0.4 * height), round(0.5 * height)
        return {
            "train": (0, a, 0, width),
            "validation": (a, b, 0, width),
            "test": (b, height, 0, width),
        }
    # The test half is cut off across the longer axis, leaving a squarer rest.
    if width >= height:
        half = width // 2
        rest = (0, height, half, width)
        test = (0, height, 0, half)
    else:
        half = height // 2
        rest = (half, height, 0, width)
        test = (0, half, 0, width)
    r0, r1, c0, c1 = rest
    if r1 - r0 >= c1 - c0:  # cut the rest across its longer side: thicker validation band
        cut = r0 + round(0.8 * (r1 - r0))
        train, validation = (r0, cut, c0, c1), (cut, r1, c0, c1)
    else:
        cut = c0 + round(0.8 * (c1 - c0))
        train, validation = (r0, r1, c0, cut), (r0, r1, cut, c1)
    return {"train": train, "validation": validation, "test": test}


def _tile_centers(box: tuple, tile: int, radius: int) -> list[tuple[int, int]]:
    """Centres of disjoint `tile`-px tiles whose `radius` window fits inside `box`."""
    r0, r1, c0, c1 = box
    # The window reaches `radius` from the centre; a tile only tile/2.
    inset = radius - tile // 2
    rows = (r1 - r0 - 2 * inset) // tile
    cols = (c1 - c0 - 2 * inset) // tile
    if rows < 1 or cols < 1:
        return []
    # Centre the grid in the band interior so the leftover is split evenly.
    top = r0 + inset + (r1 - r0 - 2 * inset - rows * tile) // 2
    left = c0 + inset + (c1 - c0 - 2 * inset - cols * tile) // 2
    return [
        (top + i * tile + tile // 2, left + j * tile + tile // 2)
        for i in range(rows)
        for j in range(cols)
    ]


def is_textured(tile: np.ndarray) -> bool:
    """Whether a source tile is bright and textured enough to keep (see the MIN_* thresholds).

    Args:
        tile: uint8 [H, W, 3] source pixels.

    Returns:
        True if the tile passes the darkness, flatness and gradient thresholds.
    """
    luma = tile.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    gradient = 0.5 * (np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean())
    return bool(
        luma.mean() >= MIN_MEAN_LUMA and luma.std() >= MIN_STD_LUMA and gradient >= MIN_GRADIENT
    )


@functools.lru_cache(maxsize=None)
def split_regions(tile: int, radius: int, split: str) -> tuple[Region, ...]:
    """All usable regions of one split, in a fixed order.

    Args:
        tile: side of a region in source pixels (the patch size at unit magnification).
        radius: half-side of the source window the simulator reads around a region centre.
        split: one of `SPLITS`.

    Returns:
        The regions, scene by scene, photo by photo, row-major.

    Raises:
        ValueError: if the split is unknown.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    band = SPLITS.index(split)
    regions = []
    for scene in SCENES:
        for index, photo in enumerate(load_scene(scene)):
            box = band_boxes(*photo.shape[:2], row_cuts_only=scene in _ROW_CUT_SCENES)[split]
            number = 0
            for row, col in _tile_centers(box, tile, radius):
                half = tile // 2
                if not is_textured(photo[row - half : row + half, col - half : col + half]):
                    continue
                region_id = f"{scene}/{index}/b{band}/r{number}"
                regions.append(Region(scene, index, region_id, split, (row, col)))
                number += 1
    return tuple(regions)


def window(region: Region, radius: int) -> np.ndarray:
    """The source pixels within `radius` of a region centre, all inside the region's band.

    Args:
        region: a region from `split_regions`.
        radius: half-side of the window in pixels.

    Returns:
        A read-only uint8 view of shape [2 * radius, 2 * radius, 3].
    """
    photo = load_scene(region.scene)[region.photo]
    row, col = region.center
    return photo[row - radius : row + radius, col - radius : col + radius]
