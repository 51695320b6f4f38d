"""Leaf maths shared by the attacks and the secure train step: losses and pixel-space steps.

`tfrecap.attacks` and `tfrecap.models` both import from here, so each rule (a loss, the
pixel range, the signed-gradient step, the ε-ball projection, the 8-bit rounding) has one
definition. This package imports nothing from tfrecap but the TF-free ``tfrecap.names``.
"""

from tfrecap.ops.losses import (
    LOSSES,
    cross_entropy,
    direction_stable_cross_entropy,
    get_loss,
    margin_loss,
)
from tfrecap.ops.steps import (
    PIXEL_MAX,
    PIXEL_MIN,
    broadcast_eps,
    clip_pixels,
    project,
    signed_gradient_step,
    to_valid_image,
)

__all__ = [
    "LOSSES",
    "PIXEL_MAX",
    "PIXEL_MIN",
    "broadcast_eps",
    "clip_pixels",
    "cross_entropy",
    "direction_stable_cross_entropy",
    "get_loss",
    "margin_loss",
    "project",
    "signed_gradient_step",
    "to_valid_image",
]
