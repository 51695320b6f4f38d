"""Least-Likely Class Method (LLCM; the paper's tables call it TGSM).

Reference:
    Kurakin, Goodfellow, Bengio, "Adversarial Examples in the Physical World",
    ICLR workshop 2017, and "Adversarial Machine Learning at Scale", ICLR 2017
    (one-step least-likely class); as used in Zhao et al., "Security
    Consideration for Deep Learning-Based Image Forensics", IEICE Trans. 2018,
    Section 3.1, eqs. 3-4:
    ``y_ll = argmin p(y|x)``, ``x_adv = clip(x - ε·sign(∇x J(x, y_ll)), 0, 255)``.

With 2 classes and exact gradients this equals FGSM computed with the
*predicted* label, so ``|acc_LLCM - acc_FGSM| <= clean error`` (DESIGN.md).
"""

from tfrecap.attacks._gradients import check_eps, least_likely_labels
from tfrecap.attacks.fgsm import fast_gradient_step


def llcm(model, x, y=None, *, eps, quantize=True, return_diagnostics=False):
    """Single-step least-likely-class attack: a step *toward* the least likely class.

    The target is the argmin of the logits over the classes other than the
    predicted one (so a tie still gives a different class; with 2 classes it
    is ``1 - y_pred``). It is taken from the same forward pass as the gradient.

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: ignored: the target comes from the model. Accepted so that every
            attack has the same signature.
        eps: nonnegative scalar or `[N]` tensor, in pixel levels.
        quantize: return valid 8-bit images (rounded toward x, then clipped).
        return_diagnostics: also return a bool `[N]`, True where the input
            gradient was exactly zero.

    Returns:
        `x_adv`, or `(x_adv, zero_gradient)`.
    """
    del y
    check_eps(eps)
    x_adv, zero = fast_gradient_step(
        model, x, least_likely_labels, eps=eps, direction=-1.0, quantize=quantize
    )
    return (x_adv, zero) if return_diagnostics else x_adv
