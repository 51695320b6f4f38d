"""Is FGSM's colour noise what keeps recaptures "recaptured"? FGSM split into grey and colour.

Standard FGSM takes one sign per pixel *and channel*, so its ±ε pattern is mostly colour
(chroma) noise, and camera JPEGs, with their 4:2:0 chroma subsampling, carry almost no
fine colour detail, while a screen's R/G/B sub-pixel stripes do. This script attacks exported
detectors with three single steps of the same size ε, from the same input gradient g (of the
direction-stable cross-entropy, as FGSM uses):

* ``rgb``: FGSM itself, ``ε·sign(g)``;
* ``grey``: one sign per pixel for all three channels, ``ε·sign(Σ_c g_c)``: no colour noise;
* ``colour``: the sign of the gradient's colour part, ``ε·sign(g − mean_c g)``.

and prints the accuracy on originals and on recaptures for each (8-bit images, clipped).

    python scripts/experiments/fgsm_colour_split.py --data-dir D \
        --model saved_models/demo_baseline --model saved_models/demo [--limit 600] [--json F]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfrecap import jsonio
from tfrecap.attacks._gradients import input_gradient
from tfrecap.ops.steps import broadcast_eps, to_valid_image

EPS = (1.0, 2.0, 3.0, 5.0)
MODES = ("rgb", "grey", "colour")


def step_direction(gradient: tf.Tensor, mode: str) -> tf.Tensor:
    """The ±1 (or 0) pattern of one mode, [N, H, W, 3]."""
    if mode == "rgb":
        return tf.sign(gradient)
    if mode == "grey":
        return tf.sign(tf.reduce_sum(gradient, -1, keepdims=True)) * tf.ones_like(gradient)
    if mode == "colour":
        colour = gradient - tf.reduce_mean(gradient, -1, keepdims=True)
        # The mean of three equal floats can round away from them: a colour part within float32
        # resolution of the pixel's gradient is rounding, not colour, and must not get a sign.
        resolution = 4 * np.finfo(np.float32).eps * tf.reduce_max(tf.abs(gradient), -1,
                                                                   keepdims=True)
        return tf.sign(tf.where(tf.abs(colour) <= resolution, 0.0, colour))
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def attack_accuracy(logits_fn, batches, eps=EPS) -> dict:
    """``{mode: {eps: {"original": acc, "recaptured": acc}}}`` over ``(x, y)`` batches."""
    from tfrecap import LABEL_NAMES

    hits: dict = {}
    for x, y in batches:
        x, y = tf.cast(x, tf.float32), tf.cast(tf.reshape(y, [-1]), tf.int32)
        gradient, _, _ = input_gradient(logits_fn, x, y, loss="ce")
        for mode in MODES:
            direction = step_direction(gradient, mode)
            for e in eps:
                x_adv = to_valid_image(x + e * direction, x, broadcast_eps(e, x))
                correct = tf.argmax(logits_fn(x_adv), -1, output_type=tf.int32) == y
                for label, name in enumerate(LABEL_NAMES):
                    hits.setdefault((mode, e, name), []).append(
                        tf.boolean_mask(correct, y == label).numpy())
    return {mode: {f"{e:g}": {name: float(np.concatenate(hits[(mode, e, name)]).mean())
                              for name in LABEL_NAMES}
                   for e in eps}
            for mode in MODES}


def table(results: dict, eps=EPS) -> str:
    head = "| model | step | " + " | ".join(f"ε = {e:g}" for e in eps) + " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1),
             *("| " + " | ".join([Path(model).name, mode] + [
                 "{original:.0%} / {recaptured:.0%}".format(**by_eps[f"{e:g}"]) for e in eps])
               + " |" for model, by_mode in results.items() for mode, by_eps in by_mode.items())]
    return "\n".join(lines)


def summary(record_path: str) -> str:
    """The table of docs/fgsm_colour_split.md, from a JSON this script wrote."""
    return table(json.loads(Path(record_path).read_text())["results"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="synthetic_64")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=600, help="test patches attacked")
    parser.add_argument("--model", action="append", required=True,
                        help="an exported detector (repeatable)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    import tensorflow_datasets as tfds

    from tfrecap.evaluation import logits_fn_of
    from tfrecap.export import latest_version_dir

    data = tfds.load(f"recapture/{args.dataset}", split=args.split, data_dir=args.data_dir,
                     as_supervised=True).take(args.limit).batch(100)
    results = {}
    for model in args.model:
        loaded = tf.saved_model.load(str(latest_version_dir(model)))  # kept alive: its variables
        results[model] = attack_accuracy(logits_fn_of(loaded), data)
    print(f"Accuracy on originals / recaptures, {args.dataset} {args.split}, first {args.limit}:")
    print(table(results))
    if args.json:
        jsonio.write_json(args.json, {
            "schema_version": 1,
            "command": "python scripts/experiments/fgsm_colour_split.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "limit": args.limit, "results": results})


if __name__ == "__main__":
    main()
