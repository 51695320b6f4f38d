"""The statistics of a report: Wilson intervals, ROC AUC and an operating point.

Every accuracy carries its n and a 95% Wilson interval, so a reader can tell a difference from
noise; ROC AUC and the threshold at a fixed false-positive rate are there because forensic users
pick operating points (DESIGN.md, "Evaluation and honesty"). NumPy only, no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (Wilson 1927)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n correct the exact bound is 0 or 1; in floating point centre - half comes out a
    # rounding error away (4e-19 measured), which put the interval beside its own estimate.
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """`correct` of `n` images; the value is NaN (null in JSON) when n is 0."""

    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict:
        return {"accuracy": self.value, "ci": list(self.ci), "n": self.n}


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties count 1/2.

    NaN when ``labels`` hold a single class: the area is then undefined.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties (Mann-Whitney U).
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def threshold_at_fpr(scores, labels, fpr: float = 0.01) -> dict:
    """The lowest threshold whose false-positive rate on originals is <= ``fpr``.

    An image is called recaptured when its score is strictly above the threshold.
    """
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    negatives = np.sort(scores[~labels])[::-1]
    if len(negatives) == 0:
        nan = float("nan")
        return {"fpr_target": fpr, "threshold": nan, "fpr": nan, "tpr": nan}
    allowed = int(math.floor(fpr * len(negatives)))
    threshold = float(negatives[allowed]) if allowed < len(negatives) else float(negatives[-1])
    return {
        "fpr_target": fpr,
        "threshold": threshold,
        "fpr": float(np.mean(negatives > threshold)),
        "tpr": float(np.mean(scores[labels] > threshold)) if labels.any() else float("nan"),
    }
