"""After the phone, both classes: phone JPEG, messaging-app resize and JPEG, normalisation.

The detector sees photos normalised to the reference resolution (long side at most 1024, by an
antialiased downscale, never upsampled), so a capture rendered at sensor resolution is brought
down by its total factor d: in one antialiased resize, or, when a messaging app passed it on,
in two with the app's JPEG (60-95, 4:2:0 or 4:4:4) between them. Each resize draws its
resampling filter (Pillow's bilinear, bicubic and Lanczos widen their support when reducing,
so they antialias; "box" is an area average).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tfrecap.data.simulator.camera import jpeg
from tfrecap.data.simulator.v2.draws import Post

FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
           "box": Image.BOX}


def resize(image: np.ndarray, height: int, width: int, name: str) -> np.ndarray:
    """Antialiased resize of a uint8 image to height x width with the named filter."""
    if image.shape[:2] == (height, width):
        return image
    out = Image.fromarray(image).resize((width, height), FILTERS[name], reducing_gap=None)
    return np.asarray(out)


def deliver(image: np.ndarray, height: int, width: int, phone_quality: int, post: Post):
    """Phone JPEG, optional messaging resize + JPEG, resize to height x width: uint8."""
    image = jpeg(image, phone_quality, "4:2:0")
    if post.messaging is not None:
        factor, quality, subsampling = post.messaging
        mid_h = max(height, round(image.shape[0] / factor))
        mid_w = max(width, round(image.shape[1] / factor))
        image = jpeg(resize(image, mid_h, mid_w, post.filters[0]), quality, subsampling)
    return resize(image, height, width, post.filters[1])
