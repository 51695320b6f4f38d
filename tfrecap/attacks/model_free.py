"""Two edits that need no model and no gradient, inside the 8-bit L∞ ball: a yardstick.

What tells a recapture from an original is, in large part, fine detail a few levels high
(mosaic, moiré, the camera's second pass). An attacker with budget ε can shave it off a
recapture, or draw it onto an original, without ever querying the detector:

* **erase**, on recaptures: ``x - clip(residual(x), -ε, ε)``, their fine detail shaved by ε;
* **transplant**, on originals: ``x + clip(residual(r), -ε, ε)``, a recapture ``r``'s fine
  detail clipped to ε.

``residual(x) = x - Gaussian(x, σ = 1 px)`` per colour channel. Both edits change each pixel by
whole levels, at most ⌊ε⌋, and clip to [0, 255]: on 8-bit images (whole levels, as every
dataset and photo here) the result is 8-bit and inside the ball at every ε.

They bound what a gradient attack must reach: a detector that keeps more accuracy under
PGD or ``auto`` than under these blind edits at the same ε is beating its attacker, not the
attack budget (gradient masking, or an attack too weak for it). See
``docs/signal_amplitude.md``, ``scripts/experiments/signal_amplitude.py`` and the zoo report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

SIGMA = 1.0  # sensor px: the residual keeps what lies above about a third of the Nyquist band


def high_pass(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Per-channel residual of a Gaussian low-pass, float32, same shape, in levels."""
    x = image.astype(np.float32)
    return x - ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0))


def _edit(image: np.ndarray, change: np.ndarray, eps: float) -> np.ndarray:
    # Rounded first, then bounded by the whole levels inside eps: the result is 8-bit and
    # within the L-inf ball for any eps, fractional ones included. float(): a NumPy float64
    # bound would promote the result to float64, which the exported signatures refuse.
    bound = float(np.floor(eps))
    edited = image.astype(np.float32) + np.clip(np.round(change), -bound, bound)
    return np.clip(edited, 0, 255).astype(np.float32)


def erase(image: np.ndarray, eps: float) -> np.ndarray:
    """The recapture edit: fine detail shaved by up to ``eps`` levels per pixel, 8-bit."""
    return _edit(image, -high_pass(image), eps)


def transplant(image: np.ndarray, donor: np.ndarray, eps: float) -> np.ndarray:
    """The original edit: ``donor``'s fine detail added, clipped to ``eps`` levels, 8-bit."""
    return _edit(image, high_pass(donor), eps)


def model_free_attacks(predict: Callable[[np.ndarray], np.ndarray], originals: Sequence,
                       recaptured: Sequence, eps: Sequence[float]) -> dict[str, list[float]]:
    """Accuracy of ``predict`` (float32 [N, S, S, 3] -> labels) per ε: clean, then edited.

    The originals are transplanted with the recaptures' fine detail (the recaptures in turn as
    donors), the recaptures erased. An empty class has None for every accuracy, and so do the
    originals when there are no recaptures to take fine detail from.

    Returns:
        ``{"original": [clean, transplant at each ε], "recaptured": [clean, erase ...]}``.
    """
    from tfrecap import LABEL_NAMES

    result = {}
    donors = ([recaptured[i % len(recaptured)] for i in range(len(originals))]
              if len(recaptured) else [])
    for label, images, edit in ((0, originals, lambda x, i, e: transplant(x, donors[i], e)),
                                (1, recaptured, lambda x, i, e: erase(x, e))):
        if not len(images) or (label == 0 and not donors):
            result[LABEL_NAMES[label]] = [None] * (1 + len(eps))
            continue
        batches = [np.stack(images).astype(np.float32)]
        batches += [np.stack([edit(x, i, e) for i, x in enumerate(images)]) for e in eps]
        result[LABEL_NAMES[label]] = [float(np.mean(predict(b) == label)) for b in batches]
    return result


def pooled_accuracy(by_class: dict[str, list], counts: dict[str, int]) -> list[float | None]:
    """The accuracy over both classes, per column of :func:`model_free_attacks`: every patch
    under its own class's edit, weighted by the class counts."""
    columns = zip(*(by_class[name] for name in counts), strict=True)
    out = []
    for column in columns:
        pairs = [(a, counts[name]) for a, name in zip(column, counts, strict=True)
                 if a is not None and counts[name]]
        total = sum(n for _, n in pairs)
        out.append(sum(a * n for a, n in pairs) / total if total else None)
    return out
