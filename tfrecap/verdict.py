"""The whole-image verdict: how tile probabilities become one probability, and where it is cut.

A photo is judged on up to 64 tiles (:mod:`tfrecap.data.tiling`). :class:`Verdict` says how
their recaptured probabilities (``softmax(logits)[:, 1]``, what ``serving_default`` gives each
tile) are aggregated into the photo's ``recaptured_probability``, and the threshold at which
``label`` turns to recaptured (``probability >= threshold``). Every aggregation is a function of
the tile probabilities alone, with a value in [0, 1]:

* ``mean_probability``: the mean of p (the verdict before calibration existed);
* ``mean_logit``: sigmoid of the mean tile logit margin ``l1 − l0``, recovered from p as
  ``log p − log(1 − p)`` with p clipped to ``[PROBABILITY_CLIP, 1 − PROBABILITY_CLIP]``. So
  it is the same number whether computed from logits in the graph or from probabilities at
  calibration, and a tile whose float32 probability saturated at 0 or 1 counts as a margin of
  about ±13.8 instead of ±inf;
* ``trimmed_mean``: the mean of p after dropping ``floor(trim_fraction·T)`` tiles at each end
  (at least one tile is kept), robust to a few odd tiles;
* ``top_k``: the mean of the ``ceil(top_k_fraction·T)`` largest p (at least one), which suits a
  screen that fills only part of the frame.

The aggregation and the threshold are chosen on synthetic *validation* whole images by
:func:`choose_verdict` (never on real test photos) and stored in the export
(:mod:`tfrecap.export`). :func:`aggregate_np` (NumPy, calibration and tests) and
:func:`aggregate_tf` (inside the exported graph) compute the same formula in float64 on the
same float32 probabilities. TensorFlow is imported only inside :func:`aggregate_tf`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from tfrecap.evaluation.stats import roc_auc

AGGREGATIONS = ("mean_probability", "mean_logit", "trimmed_mean", "top_k")
"""The aggregations over tiles, in the order :func:`choose_verdict` breaks ties."""

PROBABILITY_CLIP = 1e-6
"""``mean_logit`` clips p to ``[PROBABILITY_CLIP, 1 − PROBABILITY_CLIP]`` (margins ±13.8)."""

# floor/ceil of fraction·T computed in float64 may land just beside an integer (0.07·100 is
# 7.000000000000001); this slack makes them count what a reader would count, on both sides.
_SLACK = 1e-9


@dataclasses.dataclass(frozen=True)
class Verdict:
    """How tile probabilities become a whole-image verdict (see the module doc).

    Attributes:
        aggregation: one of :data:`AGGREGATIONS`.
        threshold: ``label`` is recaptured when the aggregate is ``>= threshold``; in [0, 1].
        top_k_fraction: share of tiles ``top_k`` averages, in (0, 1].
        trim_fraction: share of tiles ``trimmed_mean`` drops at each end, in [0, 0.5).

    Raises:
        ValueError: a field is out of range or of the wrong type; the message names it.
    """

    aggregation: str = "mean_probability"
    threshold: float = 0.5
    top_k_fraction: float = 0.25
    trim_fraction: float = 0.2

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"Verdict.aggregation must be one of {', '.join(AGGREGATIONS)}; "
                f"got {self.aggregation!r}"
            )
        for name in ("threshold", "top_k_fraction", "trim_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"Verdict.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Verdict.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"Verdict.threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 < self.top_k_fraction <= 1.0:
            raise ValueError(
                f"Verdict.top_k_fraction must be in (0, 1], got {self.top_k_fraction}"
            )
        if not 0.0 <= self.trim_fraction < 0.5:
            raise ValueError(
                f"Verdict.trim_fraction must be in [0, 0.5), got {self.trim_fraction}"
            )

    def to_dict(self) -> dict:
        """The fields as a plain dict (what the export's verdict asset holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        """A Verdict from :meth:`to_dict`'s form; missing fields take their defaults.

        Raises:
            ValueError: ``data`` is not a mapping, has an unknown key (a typo is never
                ignored) or a bad value.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a verdict must be a JSON object, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"unknown verdict key {unknown[0]!r}; known keys: {', '.join(known)}"
            )
        return cls(**data)


def trimmed_count(count: int, trim_fraction: float) -> int:
    """Tiles ``trimmed_mean`` drops at each end of ``count``: ``floor(trim·T)``, keeping one."""
    drop = math.floor(trim_fraction * count + _SLACK)
    return max(0, min(drop, (count - 1) // 2))


def top_count(count: int, top_k_fraction: float) -> int:
    """Tiles ``top_k`` averages out of ``count``: ``ceil(fraction·T)``, in ``[1, T]``."""
    return max(1, min(count, math.ceil(top_k_fraction * count - _SLACK)))


def aggregate_np(tile_probabilities, verdict: Verdict = Verdict()) -> float:
    """One image's recaptured probability from its tiles' probabilities (NumPy).

    Args:
        tile_probabilities: the recaptured probability of each tile, ``[T]``, T ≥ 1.
        verdict: the aggregation and its fractions (its threshold is not used here).

    Returns:
        The aggregate, in [0, 1].

    Raises:
        ValueError: no tiles, or a probability outside [0, 1] or not finite.
    """
    p = np.asarray(tile_probabilities, dtype=np.float64).reshape(-1)
    if p.size == 0:
        raise ValueError("aggregate_np needs at least one tile probability, got none")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(
            f"tile probabilities must be finite and in [0, 1], got range [{p.min()}, {p.max()}]"
        )
    count = p.size
    if verdict.aggregation == "mean_probability":
        return float(np.mean(p))
    if verdict.aggregation == "mean_logit":
        clipped = np.clip(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
        margin = np.mean(np.log(clipped) - np.log1p(-clipped))
        return float(1.0 / (1.0 + np.exp(-margin)))
    if verdict.aggregation == "trimmed_mean":
        drop = trimmed_count(count, verdict.trim_fraction)
        return float(np.mean(np.sort(p)[drop : count - drop]))
    return float(np.mean(np.sort(p)[count - top_count(count, verdict.top_k_fraction) :]))


def aggregate_tf(tile_logits, verdict: Verdict = Verdict()):
    """One image's recaptured probability from its tiles' logits, in TF ops (exported graph).

    The tile probabilities are ``softmax(logits)[:, 1]`` in float32, as ``serving_default``
    gives them; then :func:`aggregate_np`'s formula in float64.

    Args:
        tile_logits: float ``[T, 2]`` logits (original, recaptured), T ≥ 1.
        verdict: the aggregation and its fractions.

    Returns:
        A float32 scalar in [0, 1].
    """
    import tensorflow as tf

    probabilities = tf.nn.softmax(tf.cast(tile_logits, tf.float32))[:, 1]
    p = tf.cast(probabilities, tf.float64)
    count = tf.shape(p)[0]
    if verdict.aggregation == "mean_probability":
        value = tf.reduce_mean(p)
    elif verdict.aggregation == "mean_logit":
        clipped = tf.clip_by_value(p, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
        margin = tf.reduce_mean(tf.math.log(clipped) - tf.math.log1p(-clipped))
        value = tf.sigmoid(margin)
    else:
        count_f = tf.cast(count, tf.float64)
        if verdict.aggregation == "trimmed_mean":
            drop = tf.cast(tf.floor(verdict.trim_fraction * count_f + _SLACK), tf.int32)
            drop = tf.maximum(0, tf.minimum(drop, (count - 1) // 2))
            value = tf.reduce_mean(tf.sort(p)[drop : count - drop])
        else:
            keep = tf.cast(tf.math.ceil(verdict.top_k_fraction * count_f - _SLACK), tf.int32)
            keep = tf.maximum(1, tf.minimum(count, keep))
            value = tf.reduce_mean(tf.math.top_k(p, k=keep, sorted=False).values)
    return tf.cast(value, tf.float32)


def best_threshold(scores, labels, reference: float = 0.5) -> dict:
    """The threshold ``t`` that maximises the balanced accuracy of ``score >= t``.

    Candidates are the midpoints between adjacent distinct scores; ties go to the one closest
    to ``reference`` (0.5 at calibration, the threshold in use in a report). With a single
    distinct score there is no cut: ``reference``, balanced accuracy 0.5. The one rule, used by
    :func:`choose_verdict` and by ``tfrecap evaluate --originals/--recaptured``.

    Returns:
        ``{"threshold", "balanced_accuracy", "original_accuracy", "recaptured_accuracy"}``.

    Raises:
        ValueError: a class has no score.
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        raise ValueError("a best threshold needs scores of both classes")
    distinct = np.unique(scores)
    best = None
    for t in (distinct[:-1] + distinct[1:]) / 2 if distinct.size > 1 else [reference]:
        called = scores >= t
        tp, tn = int(np.sum(called & labels)), int(np.sum(~called & ~labels))
        if distinct.size == 1:
            tp, tn = positives, 0  # no cut separates anything: count it as chance
        # Balanced accuracy times 2·n1·n0, an integer: ties compare exactly.
        key = (tp * negatives + tn * positives, -abs(float(t) - reference))
        if best is None or key > best[0]:
            best = (key, float(t), tp, tn)
    key, t, tp, tn = best
    return {"threshold": t, "balanced_accuracy": key[0] / (2 * positives * negatives),
            "original_accuracy": tn / negatives, "recaptured_accuracy": tp / positives}


def _best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    best = best_threshold(scores, labels)
    return best["threshold"], best["balanced_accuracy"]


def choose_verdict(
    tile_probabilities_per_image: Sequence, labels: Sequence[int]
) -> tuple[Verdict, list[dict]]:
    """Choose the aggregation and threshold on labelled whole images (synthetic validation).

    For each aggregation in :data:`AGGREGATIONS` (with the default fractions) the images are
    scored; the aggregation with the highest ROC AUC wins (ties: the earlier in
    :data:`AGGREGATIONS`), then the threshold maximising balanced accuracy (see
    :func:`_best_threshold`). Run it on synthetic validation images, never on the photos
    the detector is then reported on.

    Args:
        tile_probabilities_per_image: per image, its tiles' recaptured probabilities.
        labels: per image, 0 original or 1 recaptured; both classes must be present.

    Returns:
        ``(verdict, table)``: the chosen :class:`Verdict`, and per aggregation a dict
        ``{"aggregation", "auc", "balanced_accuracy", "threshold"}`` (for the docs).

    Raises:
        ValueError: no images, lengths differ, a label other than 0 or 1, or one class only.
    """
    images = list(tile_probabilities_per_image)
    labels = np.asarray(labels)
    if not images:
        raise ValueError("choose_verdict needs at least one image, got none")
    if len(images) != labels.size:
        raise ValueError(f"{len(images)} images but {labels.size} labels")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(labels.tolist()))}")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("choose_verdict needs images of both classes (original and recaptured)")
    defaults = Verdict()
    table, best = [], None
    for name in AGGREGATIONS:
        verdict = dataclasses.replace(defaults, aggregation=name)
        scores = np.array([aggregate_np(p, verdict) for p in images])
        auc = roc_auc(scores, labels)
        threshold, balanced = _best_threshold(scores, labels)
        table.append({"aggregation": name, "auc": auc, "balanced_accuracy": balanced,
                      "threshold": threshold})
        if best is None or auc > best[0]:
            best = (auc, dataclasses.replace(verdict, threshold=threshold))
    return best[1], table
