"""The pixel range and the steps that move images inside it: the one home of each rule.

Images at the model boundary are float32 RGB pixels in [PIXEL_MIN, PIXEL_MAX] = [0, 255], and
the attack budget ε is in those pixel levels (DESIGN.md, "Data"). FGSM, LLCM, PGD and the FGSM
batch fusion of the secure train step all take the same signed-gradient step (paper eq. 2),
PGD projects onto the ε-ball, and a final adversarial image is a valid 8-bit image (DESIGN.md,
"Valid images"). Each is written once, here.
"""

import tensorflow as tf

PIXEL_MIN = 0.0
PIXEL_MAX = 255.0


def clip_pixels(x):
    """Clips to the pixel range [0, 255]."""
    return tf.clip_by_value(x, PIXEL_MIN, PIXEL_MAX)


def broadcast_eps(eps, x):
    """ε as float32, shaped to broadcast against `x`: a scalar, or one value per image."""
    eps = tf.cast(eps, tf.float32)
    if eps.shape.rank == 1:
        eps = tf.reshape(eps, [-1] + [1] * (x.shape.rank - 1))
    return eps


def signed_gradient_step(x, gradient, step_size, direction=1.0):
    """``clip(x + direction · step · sign(g), 0, 255)``: the step of paper eq. 2.

    The standard sign, which raises the loss for ``direction=+1``; the paper prints sign()
    with its cases swapped (DESIGN.md). LLCM (eqs. 3-4) is ``direction=-1`` toward its target.

    Args:
        x: float32 images `[N, H, W, C]` in [0, 255].
        gradient: the loss's gradient with respect to `x`, same shape.
        step_size: pixel levels, a scalar or anything that broadcasts against `x`
            (see `broadcast_eps`).
        direction: +1.0 to raise the loss, -1.0 to lower it.

    Returns:
        float32 images in [0, 255], not rounded.
    """
    return clip_pixels(x + direction * step_size * tf.sign(gradient))


def project(x_adv, x, eps):
    """Projection onto the L∞ ball of radius ε around x, intersected with [0, 255]."""
    return clip_pixels(tf.clip_by_value(x_adv, x - eps, x + eps))


def to_valid_image(x_adv, x, eps):
    """Rounds to integer pixel values *toward x*, then clips to [0, 255].

    Rounding to nearest could add half a level and break ``|x_adv - x| <= eps``
    for non-integer ε; rounding toward x never does when x is integral. For a
    non-integral x (not met in practice) the result is also kept inside the
    ball, and left unrounded where the ball holds no integer at all.
    """
    rounded = tf.where(x_adv >= x, tf.floor(x_adv), tf.math.ceil(x_adv))
    low, high = tf.math.ceil(x - eps), tf.floor(x + eps)
    inside = tf.clip_by_value(rounded, tf.minimum(low, high), high)
    return clip_pixels(tf.where(low <= high, inside, x_adv))
