"""Fast Gradient Sign Method (FGSM).

Reference:
    Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial
    Examples", ICLR 2015; as used in Zhao et al., "Security Consideration for
    Deep Learning-Based Image Forensics", IEICE Trans. 2018, Section 3.1, eq. 2:
    ``x_adv = clip(x + ε·sign(∇x J(x, y)), 0, 255)``.

The paper prints sign() with its cases swapped; the standard sign, which
increases the loss, is used (DESIGN.md). J is the direction-stable
cross-entropy, so the step keeps the right direction at large logit margins.
"""

import tensorflow as tf

from tfrecap.attacks._gradients import check_eps, input_gradient, is_zero_gradient
from tfrecap.ops.steps import broadcast_eps, signed_gradient_step, to_valid_image


def fast_gradient_step(model, x, labels, *, eps, direction, quantize=True):
    """One signed-gradient step of size ε on the cross-entropy: the core of FGSM and LLCM.

    Args:
        model: callable mapping float32 images to logits.
        x: float32 images `[N, H, W, 3]` in [0, 255].
        labels: int `[N]`, None, or a callable on the logits (see `_gradients`).
        eps: scalar or `[N]` step size in pixel levels.
        direction: +1.0 to raise the loss of `labels`, -1.0 to lower it.
        quantize: round toward x to valid 8-bit values; if False, only clip.

    Returns:
        `(x_adv, zero_gradient)`, the second a bool `[N]`.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    gradient, _, _ = input_gradient(model, x, labels, loss="ce")
    eps = broadcast_eps(eps, x)
    x_adv = signed_gradient_step(x, gradient, eps, direction)
    if quantize:
        x_adv = to_valid_image(x_adv, x, eps)
    return x_adv, is_zero_gradient(gradient)


def fgsm(model, x, y=None, *, eps, quantize=True, return_diagnostics=False):
    """Fast Gradient Sign Method with the true label (paper eq. 2).

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the model's prediction.
        eps: nonnegative scalar or `[N]` tensor, in pixel levels.
        quantize: return valid 8-bit images (rounded toward x, then clipped).
            False gives the paper's unrounded `clip(x + ε·sign(g))`, e.g. for
            FGSM fusion during training.
        return_diagnostics: also return a bool `[N]`, True where the input
            gradient was exactly zero (the image could not move).

    Returns:
        `x_adv`, or `(x_adv, zero_gradient)`.
    """
    check_eps(eps)
    x_adv, zero = fast_gradient_step(model, x, y, eps=eps, direction=1.0, quantize=quantize)
    return (x_adv, zero) if return_diagnostics else x_adv
