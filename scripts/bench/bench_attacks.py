"""Benchmark: tfrecap's FGSM, PGD, APGD and Square against ART's, on the same model and images.

Reports images/s of each and the ratio ours/ART (target ≥ 1.5× on CPU; aim ≥ 3× for
APGD and Square), and, for FGSM, the sign agreement of the two perturbations on images
whose margin is not saturated (target ≥ 99.9%): ART uses the ordinary softmax
cross-entropy, whose gradient points the wrong way once the true class leads by more
than about 17 (DESIGN.md), so saturated images are reported apart.

APGD and Square attack the model's own predictions (ART's skip images misclassified at
x, which would leave it less work). APGD is compared at equal iterations: ART's spends one
extra forward pass per iteration on the loss, ours takes it from the gradient's pass.
Square is compared at equal queries (candidates evaluated per image; ART's `max_iter` is
the queries less its stripe initialisation, and it re-evaluates the current point and
every image's prediction in each iteration) and timed at `square_eps`, an ε too small
to fool any image, so that neither stops early; `square_sanity` reruns both at the real ε
on a few images and counts the images fooled, so that a broken attack cannot look fast.

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


def art_strong_attacks(classifier, eps, batch_size, apgd_steps, square_queries, square_eps):
    """ART's APGD and Square as the issue compares them, plus one-batch warm-up instances.

    "square_art" is timed at `square_eps`; "square_art_sanity" runs at the real `eps`. ART's
    `max_iter` counts the iterations after its stripe initialisation, ours `queries` counts
    both, so `max_iter = queries - 1` evaluates the same number of candidates per image.
    """
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    def apgd(max_iter):
        return AutoProjectedGradientDescent(
            classifier, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=max_iter, targeted=False,
            nb_random_init=1, batch_size=batch_size, loss_type="cross_entropy", verbose=False)

    def square(eps_, max_iter):
        return SquareAttack(classifier, norm=np.inf, eps=eps_, max_iter=max_iter, p_init=0.8,
                            nb_restarts=1, batch_size=batch_size, verbose=False)

    return {
        "apgd_art": apgd(apgd_steps), "apgd_art_warmup": apgd(2),
        "square_art": square(square_eps, max(square_queries - 1, 1)),
        "square_art_warmup": square(square_eps, 2),
        "square_art_sanity": square(eps, max(square_queries - 1, 1)),
    }


def fooled_count(model, x_adv, labels):
    """How many images of `x_adv` the model does not give `labels`."""
    predicted = np.concatenate([np.argmax(model(x_adv[i:i + 256]).numpy(), -1)
                                for i in range(0, len(x_adv), 256)])
    return int(np.sum(predicted != labels))


def square_sanity(model, art_attack, x, labels, eps, queries, size):
    """Square, ours and ART's (None without ART), at the real ε: images fooled, max |δ|."""
    attack_fn = make_attack_fn(model, "square", image_size=size, queries=queries)
    x_ours = attack_fn(x, labels, eps).numpy()
    report = {"n": len(x), "eps": eps, "queries": queries,
              "ours_fooled": fooled_count(model, x_ours, labels),
              "ours_max_abs_delta": float(np.max(np.abs(x_ours - x))),
              "art_fooled": None, "art_max_abs_delta": None}
    if art_attack is not None:
        x_art = art_attack.generate(x, np.eye(2)[labels])
        report.update(art_fooled=fooled_count(model, x_art, labels),
                      art_max_abs_delta=float(np.max(np.abs(x_art - x))))
    return report


def measure(n=256, batch_size=64, size=64, widths=(32, 64, 128, 256, 512), eps=5.0, steps=10,
            repeats=1, apgd_steps=20, square_queries=100, square_eps=1.0, sanity_n=64):
    """FGSM, PGD-`steps`, APGD-`apgd_steps` and Square-`square_queries`, ours and ART's.

    All on the same model and images. Without ART, ours are still timed and ART's
    figures, the ratios and the sign agreement are None, with the reason in
    `art_unavailable`.

    Returns:
        The report: settings, `results` (`{"fgsm"|"pgd"|"apgd"|"square": {"ours_images_per_s",
        "art_images_per_s", "ratio"}, "fgsm_sign_agreement": {...}, "fooled": {...},
        "square_sanity": {...}}`, the ratio being ours/ART images/s; `fooled` counts the
        images whose prediction each APGD and Square output flipped), `accuracy_after_attack`
        (FGSM and PGD, against random labels), `clean_accuracy`, host.
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
            **art_strong_attacks(classifier, eps, batch_size, apgd_steps, square_queries,
                                 square_eps),
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

    # APGD and Square attack the predictions; Square is timed where nothing can be fooled.
    predicted = np.argmax(logits, -1).astype(np.int32)
    our_strong = {
        "apgd": (make_attack_fn(model, "apgd", image_size=size, steps=apgd_steps, loss="ce"),
                 eps),
        "square": (make_attack_fn(model, "square", image_size=size, queries=square_queries),
                   square_eps),
    }
    fooled = {}
    for name, (attack_fn, eps_timed) in our_strong.items():
        art_name = name + "_art"
        fns = {name: ours(attack_fn, x, predicted, eps_timed, batch_size)}
        attack_fn(x[warm], predicted[warm], eps_timed)
        if art_name in art_attacks:
            art_attacks[art_name + "_warmup"].generate(x[warm], np.eye(2)[predicted[warm]])
            fns[art_name] = lambda a=art_attacks[art_name]: a.generate(x, np.eye(2)[predicted])
        best, out = timed_in_turns(fns, repeats)
        t_art = best.get(art_name)
        results[name] = {
            "ours_images_per_s": n / best[name],
            "art_images_per_s": None if t_art is None else n / t_art,
            "ratio": None if t_art is None else t_art / best[name],
            "eps": eps_timed,
        }
        for key, x_adv in out.items():
            fooled[key] = fooled_count(model, x_adv, predicted)
    results["fooled"] = fooled
    results["square_sanity"] = square_sanity(
        model, art_attacks.get("square_art_sanity"), x[:sanity_n], predicted[:sanity_n], eps,
        square_queries, size)
    return {
        "schema_version": SCHEMA_VERSION, "n": n, "batch_size": batch_size, "size": size,
        "widths": list(widths), "eps": eps, "steps": steps, "step_size": step_size,
        "apgd_steps": apgd_steps, "square_queries": square_queries, "square_eps": square_eps,
        "sanity_n": min(sanity_n, n),
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
    parser.add_argument("--apgd-steps", type=int, default=20, help="APGD iterations")
    parser.add_argument("--square-queries", type=int, default=100, help="Square queries")
    parser.add_argument("--square-eps", type=float, default=1.0,
                        help="pixel levels at which Square is timed: too small to fool any image")
    parser.add_argument("--sanity-n", type=int, default=64,
                        help="images of the Square sanity run at --eps")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many timed runs")
    parser.add_argument("--json", dest="json_out", help="also write the results here")
    args = parser.parse_args(argv)

    reason = art_unavailable_reason()
    if reason is not None:
        parser.exit(2, f"bench_attacks.py: {reason}\n")
    widths = tuple(int(w) for w in args.widths.split(","))
    report = measure(args.n, args.batch_size, args.size, widths, args.eps, args.steps,
                     args.repeats, args.apgd_steps, args.square_queries, args.square_eps,
                     args.sanity_n)
    results, accuracy = report["results"], report["accuracy_after_attack"]
    print(f"\n{args.n} images {args.size}x{args.size}, widths {args.widths}, batch "
          f"{args.batch_size}, eps {args.eps:g}, ART {report['art_version']}\n")
    print("| attack | ours (img/s) | ART (img/s) | ours/ART |\n|---|---|---|---|")
    for name, label in (("fgsm", "FGSM"), ("pgd", f"PGD-{args.steps}"),
                        ("apgd", f"APGD-{args.apgd_steps} (CE)"),
                        ("square", f"Square-{args.square_queries} (ε = {args.square_eps:g})")):
        r = results[name]
        print(f"| {label} | {r['ours_images_per_s']:.1f} | {r['art_images_per_s']:.1f} | "
              f"{r['ratio']:.2f}x |")
    agreement = results["fgsm_sign_agreement"]
    if agreement["unsaturated"] is not None:
        print(f"\nFGSM sign agreement with ART on {agreement['unsaturated_images']} unsaturated "
              f"images (margin < {SATURATION_MARGIN:g}): {100 * agreement['unsaturated']:.3f}%")
    print("accuracy after attack:", {k: round(v, 3) for k, v in accuracy.items()})
    print(f"images fooled of {args.n} (APGD at eps {args.eps:g}, Square at eps "
          f"{args.square_eps:g}):", results["fooled"])
    sanity = results["square_sanity"]
    print(f"Square sanity at eps {sanity['eps']:g}, {sanity['queries']} queries: fooled ours "
          f"{sanity['ours_fooled']}/{sanity['n']}, ART {sanity['art_fooled']}/{sanity['n']}; "
          f"max |delta| ours {sanity['ours_max_abs_delta']:g}, ART {sanity['art_max_abs_delta']:g}")
    if args.json_out:
        jsonio.write_json(args.json_out, report)
    return report


if __name__ == "__main__":
    main()
