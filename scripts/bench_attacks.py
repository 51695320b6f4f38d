"""Benchmark: tfrecap's FGSM and PGD against ART's, on the same model and images, in one run.

Reports images/s of each and the ratio ours/ART (target ≥ 1.5× on CPU), and, for
FGSM, the sign agreement of the two perturbations on images whose margin is not
saturated (target ≥ 99.9%): ART uses the ordinary softmax cross-entropy, whose
gradient points the wrong way once the true class leads by more than about 17
(DESIGN.md), so saturated images are reported apart.

Run (needs the `bench` extra, adversarial-robustness-toolbox):

    python scripts/bench_attacks.py --n 256 --batch-size 64 --json bench_attacks.json

Absolute figures on shared CPUs mean little; the ratios are measured side by side.
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrecap.attacks import make_attack_fn  # noqa: E402

SATURATION_MARGIN = 15.0  # below the ~17 where float32 p_y - 1 rounds to 0


def build_model(size, widths):
    """The package's Laplacian CNN, with BatchNorm statistics taken from one random batch.

    Fresh BatchNorm layers normalise with mean 0 and variance 1, which is far from
    the real statistics; one training-mode pass with momentum 0 sets them, so
    margins look like those of a model in use rather than of a blank one.
    """
    from tfrecap.models.laplacian_cnn import build_detector

    model = build_detector(size, widths)
    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(random_images(64, size, seed=99), training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model


def random_images(n, size, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.float32)


def timed(fn, repeats=1):
    """Best of `repeats` wall times of fn() (after a warm-up done by the caller), and its result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def ours(attack_fn, x, y, eps, batch_size):
    def run():
        return np.concatenate([
            attack_fn(x[i:i + batch_size], y[i:i + batch_size], eps).numpy()
            for i in range(0, len(x), batch_size)
        ])
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="number of images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="patch side")
    parser.add_argument("--widths", default="32,64,128,256,512", help="5 comma-separated widths")
    parser.add_argument("--eps", type=float, default=5.0, help="pixel levels")
    parser.add_argument("--steps", type=int, default=10, help="PGD iterations")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many timed runs")
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args(argv)

    import art
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import TensorFlowV2Classifier

    widths = tuple(int(w) for w in args.widths.split(","))
    model = build_model(args.size, widths)
    x = random_images(args.n, args.size, seed=0)
    y = np.random.default_rng(1).integers(0, 2, args.n).astype(np.int32)
    step_size = 2.5 * args.eps / args.steps

    classifier = TensorFlowV2Classifier(
        model, nb_classes=2, input_shape=x.shape[1:], clip_values=(0.0, 255.0),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    art_attacks = {
        "fgsm": FastGradientMethod(classifier, eps=args.eps, batch_size=args.batch_size,
                                   num_random_init=0),
        "pgd": ProjectedGradientDescent(classifier, eps=args.eps, eps_step=step_size,
                                        max_iter=args.steps, num_random_init=0,
                                        batch_size=args.batch_size, verbose=False),
    }
    our_attacks = {
        "fgsm": make_attack_fn(model, "fgsm", image_size=args.size),
        "pgd": make_attack_fn(model, "pgd", image_size=args.size, steps=args.steps,
                              step_size=step_size, random_start=False),
    }
    onehot = np.eye(2, dtype=np.float32)[y]
    results, outputs = {}, {}
    for name in ("fgsm", "pgd"):
        warm = slice(0, min(args.batch_size, args.n))
        our_attacks[name](x[warm], y[warm], args.eps)
        art_attacks[name].generate(x[warm], onehot[warm])
        t_ours, outputs[name] = timed(ours(our_attacks[name], x, y, args.eps, args.batch_size),
                                      args.repeats)
        t_art, outputs[name + "_art"] = timed(
            lambda name=name: art_attacks[name].generate(x, onehot), args.repeats)
        results[name] = {"ours_images_per_s": args.n / t_ours, "art_images_per_s": args.n / t_art,
                         "ratio": t_art / t_ours}

    logits = np.concatenate([model(x[i:i + 256]).numpy() for i in range(0, args.n, 256)])
    margin = logits[np.arange(args.n), y] - logits[np.arange(args.n), 1 - y]
    fresh = margin < SATURATION_MARGIN
    same = np.sign(outputs["fgsm"] - x) == np.sign(outputs["fgsm_art"] - x)
    results["fgsm_sign_agreement"] = {
        "unsaturated_images": int(fresh.sum()),
        "unsaturated": float(same[fresh].mean()) if fresh.any() else None,
        "saturated": float(same[~fresh].mean()) if (~fresh).any() else None,
    }
    accuracy = {k: float(np.mean(np.argmax(model(v), -1) == y)) for k, v in outputs.items()}
    report = {
        "schema_version": 1, "n": args.n, "batch_size": args.batch_size, "size": args.size,
        "widths": list(widths), "eps": args.eps, "steps": args.steps, "step_size": step_size,
        "art_version": art.__version__, "tensorflow_version": tf.__version__,
        "devices": [d.device_type for d in tf.config.list_logical_devices()],
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "results": results, "accuracy_after_attack": accuracy,
        "clean_accuracy": float(np.mean(np.argmax(logits, -1) == y)),
    }
    print(f"\n{args.n} images {args.size}x{args.size}, widths {args.widths}, batch "
          f"{args.batch_size}, eps {args.eps:g}, ART {art.__version__}\n")
    print("| attack | ours (img/s) | ART (img/s) | ours/ART |\n|---|---|---|---|")
    for name, label in (("fgsm", "FGSM"), ("pgd", f"PGD-{args.steps}")):
        r = results[name]
        print(f"| {label} | {r['ours_images_per_s']:.1f} | {r['art_images_per_s']:.1f} | "
              f"{r['ratio']:.2f}x |")
    agreement = results["fgsm_sign_agreement"]
    if agreement["unsaturated"] is not None:
        print(f"\nFGSM sign agreement with ART on {agreement['unsaturated_images']} unsaturated "
              f"images (margin < {SATURATION_MARGIN:g}): {100 * agreement['unsaturated']:.3f}%")
    print("accuracy after attack:", {k: round(v, 3) for k, v in accuracy.items()})
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
