"""Whole-image evaluation of an exported detector on two labelled folders of photos.

This is how a user checks a detector on their own photos (``tfrecap evaluate MODEL --originals
DIR --recaptured DIR``): every image file under each folder, found and read as ``data import``
finds and reads them, is judged by the export's ``classify_images`` signature through
:func:`tfrecap.export.classify_files`, the very path ``tfrecap predict`` takes. The report holds
per-class accuracy with Wilson intervals, balanced accuracy, ROC AUC of
``recaptured_probability`` and the operating point: the threshold stored in the export (0.5 for
older exports, which store none). For information only, it also holds the threshold that would
have maximised balanced accuracy on these very photos, which is optimistic by construction.

Files that cannot be judged (unreadable, corrupt, smaller than the patch, not an image) are
skipped and reported with their reason, never a crash. TensorFlow is imported only to judge, so
the folder checks answer at once.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tfrecap import LABEL_NAMES
from tfrecap.data.decode import BadImageError
from tfrecap.data.folder import (  # private helpers: one rule for which files count as images
    IMAGE_EXTENSIONS,
    FolderImportError,
    _candidate_files,
    _check_folder,
    read_rgb,
)
from tfrecap.evaluation.stats import Accuracy, roc_auc

SCHEMA_VERSION = 1
KIND = "whole_image"

DEFAULT_THRESHOLD = 0.5
"""The operating point of an export whose ``classify_images`` returns no ``threshold``: its
``label`` is ``recaptured_probability > 0.5``."""

ROLES = ("originals", "recaptured")
"""The folder flags' names, by label (``data import`` uses the same)."""

BEST_THRESHOLD_NOTE = (
    "chosen on the evaluated photos themselves to maximise their balanced accuracy, so "
    "optimistic: for information, not an operating point"
)

# Reason text of classify_files → the category counted in the summary, for the errors the
# decoder's own category does not cover (see `_skip_category`).
_CATEGORIES = (
    ("smaller than", "too small"),
    ("file not found", "unreadable"),
    ("cannot read", "unreadable"),
    ("truncated", "truncated"),
    ("corrupt", "corrupt"),
    ("not an image", "not an image"),
)


def error_category(reason: str) -> str:
    """The short category of a skip reason ("too small", "corrupt", ...), from its text."""
    for needle, category in _CATEGORIES:
        if needle in reason:
            return category
    return "undecodable"


def _skip_category(path: Path, reason: str) -> str:
    """The decoder's own category ("corrupt", "truncated", ...) for a file it refuses.

    ``classify_files`` keeps only the decoder's message, so a refused file is read once more
    (failures only) to count it as ``data import`` would.
    """
    if "smaller than" not in reason:
        try:
            read_rgb(path)
        except BadImageError as err:
            return err.category
    return error_category(reason)


@dataclasses.dataclass(frozen=True)
class PhotoFolder:
    """The files found under one class folder.

    Attributes:
        root: the folder, resolved.
        label: 0 original, 1 recaptured.
        images: image-extension files in sorted order (after ``limit``).
        others: files without an image extension, skipped as import skips them.
    """

    root: Path
    label: int
    images: list[Path]
    others: list[Path]


def collect_folder(folder: str | os.PathLike, label: int, limit: int | None = None) -> PhotoFolder:
    """The image files under ``folder`` at any depth, found as ``data import`` finds them.

    Args:
        folder: the class folder.
        label: 0 for ``--originals``, 1 for ``--recaptured``.
        limit: keep only the first ``limit`` image files in sorted order.

    Raises:
        FolderImportError: naming the folder, when it is missing, is not a directory or holds
            no image file.
    """
    root = _check_folder(folder, ROLES[label])
    images, others = _candidate_files(root)
    if not images:
        found = f" (only {len(others)} other files)" if others else ""
        raise FolderImportError(
            f"No image file ({', '.join(IMAGE_EXTENSIONS)}) in the {ROLES[label]} folder "
            f"{root}{found}"
        )
    return PhotoFolder(root, label, images[:limit] if limit else images, others)


def best_threshold(scores, labels, reference: float = DEFAULT_THRESHOLD) -> dict | None:
    """The threshold that maximises balanced accuracy on ``scores`` (recaptured iff ≥ it).

    The rule of :func:`tfrecap.verdict.best_threshold` (the one calibration uses): midpoints
    between adjacent distinct scores; among equally good ones the one nearest ``reference``
    wins, so the answer moves the operating point as little as it can.

    Args:
        scores: recaptured probabilities.
        labels: 1 recaptured, 0 original.
        reference: the threshold in use.

    Returns:
        ``{"threshold", "balanced_accuracy", "original_accuracy", "recaptured_accuracy",
        "note"}``, or None when a class has no score.
    """
    from tfrecap.verdict import best_threshold as best_cut

    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    return {**best_cut(scores, labels, reference), "note": BEST_THRESHOLD_NOTE}


@dataclasses.dataclass
class WholeImageReport:
    """Whole-image verdicts on two labelled folders, and their statistics.

    Attributes:
        images: one record per judged or skipped file: ``path``, ``class`` (the folder's),
            ``probability``, ``label`` (the verdict), ``patch_count``, ``error`` (None when
            judged), and ``warning`` when its pixels were converted to 8-bit RGB.
        skipped: ``{path, class, category, reason}`` per file that could not be judged,
            including files without an image extension.
        threshold: the operating point the verdicts used, or None when no image was judged.
        threshold_source: "export" (returned by ``classify_images``) or "default" (an older
            export without one, whose label is probability > 0.5).
        meta: model, folders, limit, ... copied into the JSON.
    """

    images: list[dict]
    skipped: list[dict]
    threshold: float | None
    threshold_source: str | None
    meta: dict = dataclasses.field(default_factory=dict)

    def _judged(self, label: int | None = None) -> list[dict]:
        return [r for r in self.images if r["error"] is None
                and (label is None or r["class"] == LABEL_NAMES[label])]

    def accuracy(self, label: int) -> Accuracy:
        """Whole-image accuracy on one class's judged photos."""
        judged = self._judged(label)
        return Accuracy(sum(r["label"] == r["class"] for r in judged), len(judged))

    @property
    def balanced_accuracy(self) -> float | None:
        """Mean of the two class accuracies; None when a class has no judged photo."""
        accuracies = [self.accuracy(c) for c in range(len(LABEL_NAMES))]
        if any(a.n == 0 for a in accuracies):
            return None
        return float(np.mean([a.value for a in accuracies]))

    def _scores(self) -> tuple[np.ndarray, np.ndarray]:
        judged = self._judged()
        return (np.array([r["probability"] for r in judged], np.float64),
                np.array([LABEL_NAMES.index(r["class"]) for r in judged], np.int64))

    @property
    def auc(self) -> float | None:
        """ROC AUC of the recaptured probability (ties count half); None for a missing class."""
        scores, labels = self._scores()
        value = roc_auc(scores, labels) if len(scores) else float("nan")
        return None if np.isnan(value) else value

    def best_threshold(self) -> dict | None:
        """See :func:`best_threshold`: optimistic, chosen on these photos."""
        scores, labels = self._scores()
        reference = DEFAULT_THRESHOLD if self.threshold is None else self.threshold
        return best_threshold(scores, labels, reference)

    def skipped_counts(self) -> dict[str, int]:
        """Skipped files by category."""
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[s["category"]] = counts.get(s["category"], 0) + 1
        return dict(sorted(counts.items()))

    def to_json_dict(self) -> dict:
        """The report as JSON-ready data (write it with :func:`tfrecap.jsonio.write_json`)."""
        classes = {}
        for label, name in enumerate(LABEL_NAMES):
            accuracy = self.accuracy(label)
            classes[name] = {**accuracy.to_dict(), "correct": accuracy.correct,
                             "files": sum(r["class"] == name for r in self.images)}
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            **self.meta,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "classes": classes,
            "balanced_accuracy": self.balanced_accuracy,
            "auc": self.auc,
            "best_threshold_on_these_photos": self.best_threshold(),
            "skipped": {"count": len(self.skipped), "by_category": self.skipped_counts(),
                        "files": self.skipped},
            "images": self.images,
        }

    def format_table(self) -> str:
        """A compact plain-text summary: per class n, correct, accuracy [Wilson 95 %]."""
        lines = [f"{'class':<12}{'photos':>8}{'correct':>9}{'accuracy':>10}  95% CI"]
        for label, name in enumerate(LABEL_NAMES):
            a = self.accuracy(label)
            if a.n:
                low, high = a.ci
                figure = f"{a.value:>10.1%}  [{low:.1%}, {high:.1%}]"
            else:
                figure = f"{'-':>10}  (no judged photo)"
            lines.append(f"{name:<12}{a.n:>8}{a.correct:>9}{figure}")
        balanced, auc = self.balanced_accuracy, self.auc
        lines.append(f"balanced accuracy: {'-' if balanced is None else f'{balanced:.1%}'}")
        lines.append(f"ROC AUC: {'-' if auc is None else f'{auc:.3f}'}")
        if self.threshold is None:
            lines.append("threshold: - (no image judged)")
        else:
            source = ("stored in the export; recaptured at or above it"
                      if self.threshold_source == "export"
                      else "the export stores none; recaptured above it")
            lines.append(f"threshold: {self.threshold:.4g} ({source})")
        best = self.best_threshold()
        if best:
            lines.append(
                f"best threshold on these photos (optimistic, chosen on them): "
                f"{best['threshold']:.4g} -> balanced {best['balanced_accuracy']:.1%} "
                f"(original {best['original_accuracy']:.1%}, "
                f"recaptured {best['recaptured_accuracy']:.1%})"
            )
        detail = ", ".join(f"{k} {v}" for k, v in self.skipped_counts().items())
        files = "file" if len(self.skipped) == 1 else "files"
        lines.append(f"skipped: {len(self.skipped)} {files}" + (f" ({detail})" if detail else ""))
        return "\n".join(lines)


def summarize(results: Sequence[dict], classes: Sequence[int], *,
              not_images: Sequence[tuple[Path, int]] = (), meta: dict | None = None
              ) -> WholeImageReport:
    """Build the report from :func:`tfrecap.export.classify_files` results.

    Args:
        results: one ``classify_files`` dict per file (``error`` when it was not judged, with
            an optional ``category``; ``threshold`` when the export stores one).
        classes: the true label of each result, 0 original, 1 recaptured.
        not_images: files without an image extension and their label, reported as skipped.
        meta: copied into the JSON.

    Raises:
        ValueError: the export returned different thresholds for different images.
    """
    images, skipped, thresholds = [], [], set()
    for path, label in not_images:
        suffix = path.suffix or "no extension"
        skipped.append({"path": str(path), "class": LABEL_NAMES[label],
                        "category": "not an image", "reason": f"not an image file ({suffix})"})
    for result, label in zip(results, classes, strict=True):
        error = result.get("error")
        images.append({
            "path": result["path"], "class": LABEL_NAMES[label],
            "probability": None if error else result["recaptured_probability"],
            "label": None if error else result["label"],
            "patch_count": None if error else result["patch_count"], "error": error,
            **({"warning": result["warning"]} if "warning" in result else {}),
        })
        if error:
            skipped.append({"path": result["path"], "class": LABEL_NAMES[label],
                            "category": result.get("category") or error_category(error),
                            "reason": error})
        elif "threshold" in result:
            thresholds.add(float(result["threshold"]))
        else:
            thresholds.add(None)
    if len(thresholds) > 1:
        raise ValueError(
            f"classify_images returned different thresholds: {sorted(thresholds, key=str)}"
        )
    stored = next(iter(thresholds), None)
    if not thresholds:
        threshold, source = None, None
    elif stored is None:
        threshold, source = DEFAULT_THRESHOLD, "default"
    else:
        threshold, source = stored, "export"
    return WholeImageReport(images, skipped, threshold, source, dict(meta or {}))


def evaluate_folders(
    classify,
    originals: str | os.PathLike,
    recaptured: str | os.PathLike,
    *,
    limit: int | None = None,
    meta: dict | None = None,
    progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
    folders: tuple[PhotoFolder, PhotoFolder] | None = None,
) -> WholeImageReport:
    """Judge every image under two labelled folders with an export's ``classify_images``.

    Args:
        classify: the loaded signature, ``tf.saved_model.load(dir).signatures["classify_images"]``.
        originals: folder of original photos, searched at any depth.
        recaptured: folder of recaptured photos.
        limit: at most this many image files per class, the first in sorted order.
        meta: copied into the JSON (model, version, ...); the folders and limit are added.
        progress: called with 1 after each file is judged or skipped.
        warn: called with one line per skipped or converted file.
        folders: the result of :func:`collect_folder` for both, when the caller already has it.

    Returns:
        The report.

    Raises:
        FolderImportError: a folder is missing, not a directory, or holds no image file.
    """
    import tensorflow as tf

    from tfrecap.export import classify_files

    folders = folders or (collect_folder(originals, 0, limit), collect_folder(recaptured, 1, limit))
    results, classes = [], []
    for folder in folders:
        for path in folder.images:
            try:
                result = classify_files(classify, [path], warn=warn)[0]
            except tf.errors.OpError as err:  # e.g. out of memory on a huge photo
                result = {"path": str(path), "error": f"could not be judged: {err.message}"}
            if "error" in result:
                result["category"] = _skip_category(path, result["error"])
                if warn:
                    warn(f"skipped: {result['path']}: {result['error']}")
            results.append(result)
            classes.append(folder.label)
            if progress:
                progress(1)
    not_images = [(p, f.label) for f in folders for p in f.others]
    if warn:
        for path, _ in not_images:
            warn(f"skipped: {path}: not an image file ({path.suffix or 'no extension'})")
    meta = {**(meta or {}),
            "folders": {LABEL_NAMES[f.label]: str(f.root) for f in folders}, "limit": limit}
    return summarize(results, classes, not_images=not_images, meta=meta)
