"""How large is the recapture signal, in pixel levels, against the attack budget ε?

An L∞ attacker may move every pixel by ε levels. If what tells a recapture from an original is a
fine pattern only a few levels high, then at that ε the attacker can erase it from a recapture
(subtract it, clipped to ±ε) or draw one on an original, and a detector can be robust there only
if it tells the pattern from the same pattern clipped to ±ε on top of the other class. This
script measures that pattern's size without any model: per patch and colour channel, the
high-pass residual ``x - Gaussian(x, sigma)`` (the fine detail, mosaic and noise included),
summarised per class as

* its RMS (median over patches), and
* the fraction of residual values within ±ε, for each ε (median over patches): how much of the
  fine detail an ε-budget covers outright.

With ``--model``, two attacks that need no model and no gradient test the same thing on exported
detectors, within the same L∞ budget (8-bit, clipped to [0, 255]):

* **erase**, on recaptures: ``x - clip(residual(x), -ε, ε)``, their fine detail shaved by ε;
* **transplant**, on originals: ``x + clip(residual(r), -ε, ε)``, the fine detail of a recapture
  ``r`` of the same split (the recaptures in turn), clipped to ε.

A model that keeps its accuracy under FGSM but loses it under these edits is not robust at that
ε: its FGSM figure measures the attack, not the model.

    python scripts/experiments/signal_amplitude.py --data-dir D [--dataset synthetic_64] \
        [--limit 3000]
        [--model saved_models/demo_baseline --model saved_models/demo]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from tfrecap import jsonio

EPS = (1.0, 2.0, 3.0, 4.0, 5.0)
SIGMA = 1.0  # sensor px: the residual keeps what lies above about a third of the Nyquist band


def high_pass(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Per-channel residual of a Gaussian low-pass, float32, same shape, in levels."""
    x = image.astype(np.float32)
    return x - ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0))


def patch_statistics(image: np.ndarray, eps=EPS) -> dict[str, float]:
    residual = np.abs(high_pass(image))
    stats = {"rms": float(np.sqrt(np.mean(residual ** 2)))}
    stats.update({f"within_eps{e:g}": float(np.mean(residual <= e)) for e in eps})
    return stats


def class_statistics(images_and_labels, eps=EPS) -> dict[str, dict[str, float]]:
    """Median over patches of `patch_statistics`, per class name."""
    from tfrecap import LABEL_NAMES

    per_class: dict[int, list[dict]] = {}
    for image, label in images_and_labels:
        per_class.setdefault(int(label), []).append(patch_statistics(image, eps))
    return {
        LABEL_NAMES[label]: {key: round(float(np.median([s[key] for s in rows])), 3)
                             for key in rows[0]} | {"n": len(rows)}
        for label, rows in sorted(per_class.items())
    }


def table(stats: dict[str, dict[str, float]], eps=EPS) -> str:
    head = "| class | n | fine-detail RMS (levels) | " + " | ".join(
        f"within ±{e:g}" for e in eps) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, s in stats.items():
        cells = [name, str(s["n"]), f"{s['rms']:.2f}"]
        cells += [f"{s[f'within_eps{e:g}']:.0%}" for e in eps]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _edit(image: np.ndarray, change: np.ndarray, eps: float) -> np.ndarray:
    # Rounded first, then bounded by the whole levels inside eps: the result is 8-bit and
    # within the L-inf ball for any eps, fractional ones included.
    # float(): a NumPy float64 bound would promote the result to float64, which the exported
    # signatures (float32) refuse.
    bound = float(np.floor(eps))
    edited = image.astype(np.float32) + np.clip(np.round(change), -bound, bound)
    return np.clip(edited, 0, 255).astype(np.float32)


def erase(image: np.ndarray, eps: float) -> np.ndarray:
    """The recapture edit: fine detail shaved by up to ``eps`` levels per pixel, 8-bit."""
    return _edit(image, -high_pass(image), eps)


def transplant(image: np.ndarray, donor: np.ndarray, eps: float) -> np.ndarray:
    """The original edit: ``donor``'s fine detail added, clipped to ``eps`` levels, 8-bit."""
    return _edit(image, high_pass(donor), eps)


def model_free_attacks(predict, originals, recaptured, eps=EPS) -> dict[str, list[float]]:
    """Accuracy of ``predict`` (float32 [N, S, S, 3] -> labels) per ε: clean, then edited.

    Returns ``{"original": [clean, transplant at each ε], "recaptured": [clean, erase ...]}``.
    """
    from tfrecap import LABEL_NAMES

    donors = [recaptured[i % len(recaptured)] for i in range(len(originals))]
    result = {}
    for label, images, edit in ((0, originals, lambda x, i, e: transplant(x, donors[i], e)),
                                (1, recaptured, lambda x, i, e: erase(x, e))):
        batches = [np.stack(images).astype(np.float32)]
        batches += [np.stack([edit(x, i, e) for i, x in enumerate(images)]) for e in eps]
        result[LABEL_NAMES[label]] = [float(np.mean(predict(b) == label)) for b in batches]
    return result


def _predict_fn(model_path: str):
    import tensorflow as tf

    from tfrecap.evaluation import logits_fn_of
    from tfrecap.export import latest_version_dir

    logits = logits_fn_of(tf.saved_model.load(str(latest_version_dir(model_path))))

    def predict(images: np.ndarray) -> np.ndarray:
        out = [np.argmax(logits(tf.constant(images[i:i + 256], tf.float32)).numpy(), -1)
               for i in range(0, len(images), 256)]
        return np.concatenate(out)

    return predict


def attack_table(results: dict[str, dict[str, list[float]]], eps=EPS) -> str:
    head = ("| model | class, edit | clean | " + " | ".join(f"ε = {e:g}" for e in eps) + " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for model, by_class in results.items():
        for name, edit in (("original", "transplant"), ("recaptured", "erase")):
            cells = [Path(model).name, f"{name}, {edit}"] + [f"{a:.1%}" for a in by_class[name]]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(record_path: str) -> str:
    """The two tables of docs/signal_amplitude.md, from a JSON this script wrote."""
    record = json.loads(Path(record_path).read_text())
    return table(record["classes"]) + "\n\n" + attack_table(record["model_free_attacks"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="synthetic_64")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="at most N patches")
    parser.add_argument("--model", action="append", default=[],
                        help="an exported detector to attack with erase/transplant (repeatable)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    import tensorflow_datasets as tfds

    data = tfds.load(f"recapture/{args.dataset}", split=args.split, data_dir=args.data_dir,
                     as_supervised=True)
    if args.limit:
        data = data.take(args.limit)
    pairs = list(tfds.as_numpy(data))
    stats = class_statistics(pairs)
    print(f"{args.dataset}, {args.split} split; high-pass residual x - Gaussian(x, {SIGMA:g}) "
          "per channel, medians over patches")
    print(table(stats))
    attacks = {}
    if args.model:
        originals = [image for image, label in pairs if label == 0]
        recaptured = [image for image, label in pairs if label == 1]
        for model in args.model:
            attacks[model] = model_free_attacks(_predict_fn(model), originals, recaptured)
        print("\nAccuracy under the model-free edits (n = "
              f"{len(originals)} originals / {len(recaptured)} recaptures):")
        print(attack_table(attacks))
    if args.json:
        command = "python scripts/experiments/signal_amplitude.py " + " ".join(
            sys.argv[1:] if argv is None else argv)
        jsonio.write_json(args.json, {
            "schema_version": 1, "command": command, "dataset": args.dataset,
            "split": args.split, "sigma": SIGMA, "eps": list(EPS), "classes": stats,
            "model_free_attacks": attacks})


if __name__ == "__main__":
    main()
