"""Benchmark: tfrecap's FGSM and PGD against ART's, on the same model and images, in one run.

Reports images/s of each and the ratio ours/ART (target ≥ 1.5× on CPU), and, for
FGSM, the sign agreement of the two perturbations on images whose margin is not
saturated (target ≥ 99.9%): ART uses the ordinary softmax cross-entropy, whose
gradient points the wrong way once the true class leads by more than about 17
(DESIGN.md), so saturated images are reported apart.

Run (needs the `bench` extra, adversarial-robustness-toolbox):

    python scripts/bench/bench_attacks.py --n 256 --batch-size 64 --json bench_attacks.json

Absolute figures on shared CPUs mean little; the ratios are measured side by side:
with `--repeats` above 1, ours and ART take turns and the best time of each counts.
`measure()` is the same measurement as a function (used by scripts/benchmark.py).
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrecap import jsonio  # noqa: E402
from tfrecap.attacks import make_attack_fn  # noqa: E402

SATURATION_MARGIN = 15.0  # below the ~17 where float32 p_y - 1 rounds to 0
SCHEMA_VERSION = 1


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


def timed_in_turns(fns, repeats=1):
    """Best of `repeats` wall times of each fn() (warm-up done by the caller), taking turns.

    Returns:
        `({name: best seconds}, {name: last result})`.
    """
    best = {name: float("inf") for name in fns}
    out = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            out[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, out


def ours(attack_fn, x, y, eps, batch_size):
    def run():
        return np.concatenate([
            attack_fn(x[i:i + batch_size], y[i:i + batch_size], eps).numpy()
            for i in range(0, len(x), batch_size)
        ])
    return run


def art_unavailable_reason():
    """None when ART can be imported, else why not (one line)."""
    try:
        import art  # noqa: F401
        from art.attacks.evasion import FastGradientMethod  # noqa: F401
    except ImportError as err:  # the `bench` extra is not installed
        return f"adversarial-robustness-toolbox not importable ({err}); pip install -e .[bench]"
    return None


def measure(n=256, batch_size=64, size=64, widths=(32, 64, 128, 256, 512), eps=5.0, steps=10,
            repeats=1):
    """FGSM and PGD-`steps`, ours and ART's, on the same model and images.

    Without ART, ours are still timed and ART's figures, the ratios and the sign
    agreement are None, with the reason in `art_unavailable`.

    Returns:
        The report: settings, `results` (`{"fgsm"|"pgd": {"ours_images_per_s",
        "art_images_per_s", "ratio"}, "fgsm_sign_agreement": {...}}`, the ratio being
        ours/ART images/s), `accuracy_after_attack`, `clean_accuracy`, host.
    """
    widths = tuple(widths)
    reason = art_unavailable_reason()
    model = build_model(size, widths)
    x = random_images(n, size, seed=0)
    y = np.random.default_rng(1).integers(0, 2, n).astype(np.int32)
    onehot = np.eye(2, dtype=np.float32)[y]
    step_size = 2.5 * eps / steps

    our_attacks = {
        "fgsm": make_attack_fn(model, "fgsm", image_size=size),
        "pgd": make_attack_fn(model, "pgd", image_size=size, steps=steps,
                              step_size=step_size),  # one restart: it starts at x, as ART's
    }
    art_attacks, art_version = {}, None
    if reason is None:
        import art
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier

        art_version = art.__version__
        classifier = TensorFlowV2Classifier(
            model, nb_classes=2, input_shape=x.shape[1:], clip_values=(0.0, 255.0),
            loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
        art_attacks = {
            "fgsm": FastGradientMethod(classifier, eps=eps, batch_size=batch_size,
                                       num_random_init=0),
            "pgd": ProjectedGradientDescent(classifier, eps=eps, eps_step=step_size,
                                            max_iter=steps, num_random_init=0,
                                            batch_size=batch_size, verbose=False),
        }

    results, outputs = {}, {}
    warm = slice(0, min(batch_size, n))
    for name in ("fgsm", "pgd"):
        fns = {name: ours(our_attacks[name], x, y, eps, batch_size)}
        our_attacks[name](x[warm], y[warm], eps)
        if name in art_attacks:
            art_attacks[name].generate(x[warm], onehot[warm])
            fns[name + "_art"] = lambda name=name: art_attacks[name].generate(x, onehot)
        best, out = timed_in_turns(fns, repeats)
        outputs.update(out)
        t_art = best.get(name + "_art")
        results[name] = {
            "ours_images_per_s": n / best[name],
            "art_images_per_s": None if t_art is None else n / t_art,
            "ratio": None if t_art is None else t_art / best[name],
        }

    logits = np.concatenate([model(x[i:i + 256]).numpy() for i in range(0, n, 256)])
    margin = logits[np.arange(n), y] - logits[np.arange(n), 1 - y]
    fresh = margin < SATURATION_MARGIN
    agreement = {"unsaturated_images": int(fresh.sum()), "unsaturated": None, "saturated": None}
    if "fgsm_art" in outputs:
        same = np.sign(outputs["fgsm"] - x) == np.sign(outputs["fgsm_art"] - x)
        agreement["unsaturated"] = float(same[fresh].mean()) if fresh.any() else None
        agreement["saturated"] = float(same[~fresh].mean()) if (~fresh).any() else None
    results["fgsm_sign_agreement"] = agreement
    accuracy = {k: float(np.mean(np.argmax(model(v), -1) == y)) for k, v in outputs.items()}
    return {
        "schema_version": SCHEMA_VERSION, "n": n, "batch_size": batch_size, "size": size,
        "widths": list(widths), "eps": eps, "steps": steps, "step_size": step_size,
        "repeats": repeats, "art_version": art_version, "art_unavailable": reason,
        "tensorflow_version": tf.__version__,
        "devices": [d.device_type for d in tf.config.list_logical_devices()],
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "results": results, "accuracy_after_attack": accuracy,
        "clean_accuracy": float(np.mean(np.argmax(logits, -1) == y)),
    }


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

    reason = art_unavailable_reason()
    if reason is not None:
        parser.exit(2, f"bench_attacks.py: {reason}\n")
    widths = tuple(int(w) for w in args.widths.split(","))
    report = measure(args.n, args.batch_size, args.size, widths, args.eps, args.steps,
                     args.repeats)
    results, accuracy = report["results"], report["accuracy_after_attack"]
    print(f"\n{args.n} images {args.size}x{args.size}, widths {args.widths}, batch "
          f"{args.batch_size}, eps {args.eps:g}, ART {report['art_version']}\n")
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
        jsonio.write_json(args.json_out, report)
    return report


if __name__ == "__main__":
    main()
