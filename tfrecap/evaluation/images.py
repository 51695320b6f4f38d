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

Under attack (``--attack pgd --eps 2,4``, :func:`evaluate_folders_under_attack`): the first
``attack_limit`` judged photos of each class are attacked whole, one perturbation on the
decoded photo, through the export's scaling, tiling and stored verdict
(:class:`tfrecap.attacks.whole_image.WholeImageModel`), and each adversarial photo is judged as
a user gets it: PNG-encoded (lossless) and run through ``classify_images``. A photo is robust
when that verdict is still its class; a photo called wrong when clean is not attacked and
counts as not robust. Tiles that flip while the verdict holds are counted, never a success.
Synthetic full images: ``scripts/experiments/synthetic_photo_folders.py OUT`` writes folders of
simulated photos for the same command.
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
    attack: AttackOutcome | None = None

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
            **(self.attack.to_json_dict() if self.attack is not None else {}),
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
        if self.attack is not None:
            lines.append("")
            lines.append(self.attack.format_table())
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


DEFAULT_ATTACK_LIMIT = 50
"""Photos attacked per class by default: a photo costs seconds (all its tiles, every step)."""


@dataclasses.dataclass
class AttackOutcome:
    """Whole-image robust accuracy of the attacked photos, per attack and ε.

    Attributes:
        attack_limit: photos attacked per class (the first judged ones, in sorted order).
        attacked: per attacked photo ``{path, class, clean_label, patch_count}``.
        results: per attack ``{"attack", "params", "results": [per ε {"eps", "images": [per
            attacked photo {"label", "probability", "robust", "tiles_flipped",
            "zero_gradient", "linf"}]}]}``, in the order of ``attacked``.
        skipped: ``{path, class, reason}`` per judged photo the attack could not follow.
    """

    attack_limit: int | None
    attacked: list[dict]
    results: list[dict]
    skipped: list[dict] = dataclasses.field(default_factory=list)

    def _accuracy(self, robust: Sequence[bool], label: int | None = None) -> Accuracy:
        keep = [r for r, p in zip(robust, self.attacked, strict=True)
                if label is None or p["class"] == LABEL_NAMES[label]]
        return Accuracy(sum(keep), len(keep))

    def _clean(self) -> list[bool]:
        return [p["clean_label"] == p["class"] for p in self.attacked]

    def _summary(self, robust: Sequence[bool]) -> dict:
        classes = {name: {**self._accuracy(robust, c).to_dict(),
                          "correct": self._accuracy(robust, c).correct}
                   for c, name in enumerate(LABEL_NAMES)}
        values = [classes[name]["accuracy"] for name in LABEL_NAMES]
        balanced = None if any(v != v for v in values) else float(np.mean(values))
        return {**self._accuracy(robust).to_dict(), "classes": classes,
                "balanced_accuracy": balanced}

    def to_json_dict(self) -> dict:
        """The keys added to the whole-image report (``attack_limit``, ``attacked``, ...)."""
        attacks = []
        for attack in self.results:
            rows = []
            for row in attack["results"]:
                robust = [r["robust"] for r in row["images"]]
                held = sum(r["robust"] and r["tiles_flipped"] > 0 for r in row["images"])
                blind = [r["zero_gradient"] for r in row["images"]
                         if r["zero_gradient"] is not None]
                rows.append({
                    "eps": row["eps"], **self._summary(robust),
                    "tiles_flipped_verdict_held": held,
                    "zero_gradient_fraction": float(np.mean(blind)) if blind else None,
                    "images": [{"path": p["path"], **r}
                               for p, r in zip(self.attacked, row["images"], strict=True)],
                })
            attacks.append({"attack": attack["attack"], "params": attack["params"],
                            "results": rows})
        return {"attack_limit": self.attack_limit,
                "attacked": {**self._summary(self._clean()), "files": self.attacked},
                "attacks": attacks,
                "attack_skipped": self.skipped}

    def format_table(self) -> str:
        """Per attack and ε: robust accuracy per class with Wilson 95 % intervals, balanced."""
        clean = self._summary(self._clean())
        counts = ", ".join(f"{c['n']} {name}" for name, c in clean["classes"].items())
        lines = [f"Whole-image attacks on {counts} photos (at most {self.attack_limit} per "
                 f"class), judged by classify_images on the PNG of each adversarial photo"]
        header = f"{'attack':<10}{'eps':>6}"
        for name in LABEL_NAMES:
            header += f"  {name + ' [95% CI]':<26}"
        lines.append(header + f"{'balanced':>9}  tile flips, verdict held")

        def cells(summary):
            text = ""
            for name in LABEL_NAMES:
                a = summary["classes"][name]
                cell = ("-" if a["accuracy"] is None else
                        f"{a['accuracy']:.1%} [{a['ci'][0]:.1%}, {a['ci'][1]:.1%}]")
                text += f"  {cell:<26}"
            balanced = summary["balanced_accuracy"]
            return text + f"{'-' if balanced is None else f'{balanced:.1%}':>9}"

        lines.append(f"{'clean':<10}{'':>6}" + cells(clean))
        for attack in self.to_json_dict()["attacks"]:
            for row in attack["results"]:
                lines.append(f"{attack['attack']:<10}{row['eps']:>6g}" + cells(row)
                             + f"  {row['tiles_flipped_verdict_held']}")
        if self.skipped:
            lines.append(f"not attacked: {len(self.skipped)} photos (see attack_skipped)")
        return "\n".join(lines)


def evaluate_folders_under_attack(
    loaded,
    originals: str | os.PathLike,
    recaptured: str | os.PathLike,
    attacks: Sequence,
    eps: Sequence[float],
    *,
    verdict=None,
    max_tiles: int | None = None,
    limit: int | None = None,
    attack_limit: int | None = DEFAULT_ATTACK_LIMIT,
    meta: dict | None = None,
    progress: Callable[[int], None] | None = None,
    attack_progress: Callable[[int], None] | None = None,
    warn: Callable[[str], None] | None = None,
    folders: tuple[PhotoFolder, PhotoFolder] | None = None,
) -> WholeImageReport:
    """:func:`evaluate_folders`, then whole-image attacks on the first photos of each class.

    Args:
        loaded: the loaded export (its ``classify_images`` and ``logits`` signatures).
        originals: folder of original photos.
        recaptured: folder of recaptured photos.
        attacks: :class:`tfrecap.evaluation.AttackSpec` (registry name and parameters), each
            an attack of the contract ``attack(model, x, y, *, eps, ...)``.
        eps: budgets in pixel levels, on the decoded photo.
        verdict: the export's :class:`tfrecap.verdict.Verdict`
            (:func:`tfrecap.export.load_verdict`); None is the default one.
        max_tiles: the export's tile cap (None: :data:`tfrecap.export.MAX_TILES`). A photo on
            which the attack's tile count differs from ``classify_images``' is not attacked
            and is listed in ``attack_skipped``.
        limit: at most this many image files per class, judged clean.
        attack_limit: at most this many judged photos per class are attacked (None: all).
        meta: copied into the JSON.
        progress: called with 1 per file judged clean.
        attack_progress: called with 1 per photo, attack and ε done.
        warn: called with one line per skipped or converted file.
        folders: :func:`collect_folder` of both, when the caller has it.

    Returns:
        The report, its ``attack`` filled in.

    Raises:
        RuntimeError: an attack broke the contract (a photo outside the ε-ball or not 8-bit).
    """
    import tensorflow as tf

    from tfrecap.attacks import make_attack_fn
    from tfrecap.attacks.whole_image import WholeImageModel, classify_photo
    from tfrecap.data.decode import decode_rgb
    from tfrecap.evaluation.run import logits_fn_of
    from tfrecap.export import MAX_TILES

    classify = loaded.signatures["classify_images"]
    report = evaluate_folders(classify, originals, recaptured, limit=limit, meta=meta,
                              progress=progress, warn=warn, folders=folders)
    size = loaded.signatures["logits"].structured_input_signature[1]["images"].shape[1]
    model = WholeImageModel(logits_fn_of(loaded), size,
                            MAX_TILES if max_tiles is None else max_tiles, verdict)

    attacked, pixels, skipped = [], [], []
    for label, name in enumerate(LABEL_NAMES):
        for record in report._judged(label):
            if attack_limit is not None and sum(p["class"] == name for p in attacked) \
                    >= attack_limit:
                break
            photo = decode_rgb(Path(record["path"]).read_bytes()).pixels
            x = tf.constant(photo[None], tf.float32)
            count = int(tf.shape(model.tile_logits(x))[1])
            if count != record["patch_count"]:
                reason = (f"classify_images judges {record['patch_count']} tiles, the attack "
                          f"model {count}: the export's tile cap is not {model.max_tiles}")
                skipped.append({"path": record["path"], "class": name, "reason": reason})
                if warn:
                    warn(f"not attacked: {record['path']}: {reason}")
                continue
            attacked.append({"path": record["path"], "class": name,
                             "clean_label": record["label"], "patch_count": count})
            pixels.append(photo)

    results = []
    for spec in attacks:
        attack_fn = make_attack_fn(model, spec.name, **spec.params)
        rows = [{"eps": float(e), "images": []} for e in eps]
        for index, (record, photo) in enumerate(zip(attacked, pixels, strict=True)):
            y = LABEL_NAMES.index(record["class"])
            x = tf.constant(photo[None], tf.float32)
            clean_tiles = tf.argmax(model.tile_logits(x)[0], axis=-1)
            for row in rows:
                if record["clean_label"] != record["class"]:
                    # Already wrong: not attacked, and not robust (AutoAttack's rule).
                    row["images"].append({"label": record["clean_label"], "probability": None,
                                          "robust": False, "tiles_flipped": 0,
                                          "zero_gradient": None, "linf": 0.0})
                else:
                    row["images"].append(_attack_one(
                        attack_fn, model, classify, x, y, row["eps"], index, clean_tiles,
                        record["path"], classify_photo))
                if attack_progress:
                    attack_progress(1)
        results.append({"attack": spec.name, "params": dict(spec.params), "results": rows})
    report.attack = AttackOutcome(attack_limit, attacked, results, skipped)
    return report


def _attack_one(attack_fn, model, classify, x, y, eps, index, clean_tiles, path, classify_photo):
    """One photo at one ε: attack, check the contract, judge the PNG with classify_images."""
    import tensorflow as tf

    x_adv, blind = attack_fn.run(x, tf.constant([y], tf.int32), eps,
                                 index=tf.constant([index], tf.int64))
    adv = x_adv.numpy()[0]
    linf = float(np.max(np.abs(adv - x.numpy()[0])))
    if linf > eps or np.any(adv != np.round(adv)) or adv.min() < 0 or adv.max() > 255:
        raise RuntimeError(f"{path}: the attack returned a photo outside the ε = {eps:g} ball "
                           f"(L∞ {linf:g}) or not a valid 8-bit image")
    judged = classify_photo(classify, adv)
    adv_tiles = tf.argmax(model.tile_logits(x_adv)[0], axis=-1)
    flipped = int(tf.reduce_sum(tf.cast(tf.not_equal(adv_tiles, clean_tiles), tf.int32)))
    label = LABEL_NAMES[judged["label"]]
    return {"label": label, "probability": judged["recaptured_probability"],
            "robust": label == LABEL_NAMES[y], "tiles_flipped": flipped,
            "zero_gradient": bool(blind.numpy()[0]), "linf": linf}
