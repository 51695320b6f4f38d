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

from tfrecap import jsonio
from tfrecap.attacks.model_free import SIGMA, erase, high_pass, transplant  # noqa: F401
from tfrecap.attacks.model_free import model_free_attacks as _model_free_attacks

EPS = (1.0, 2.0, 3.0, 4.0, 5.0)


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


def model_free_attacks(predict, originals, recaptured, eps=EPS) -> dict[str, list[float]]:
    """:func:`tfrecap.attacks.model_free.model_free_attacks` at this script's ε."""
    return _model_free_attacks(predict, originals, recaptured, eps)


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
            cells = [Path(model).name, f"{name}, {edit}"] + [
                "—" if a is None else f"{a:.1%}" for a in by_class[name]]
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
