"""Can a decision threshold chosen on validation patches close an adversarially trained model's
clean gap?

A PGD-AT detector keeps nearly every original and loses recaptures (docs/defences.md), so it
looks biased toward "original". Adding a constant δ to the recapture logit moves its
threshold on p(recaptured) from 0.5 to sigmoid(−δ). This script measures what that buys, for
each SavedModel export given:

1. the logit margin ``m = z_recaptured − z_original`` of every patch, clean and after
   PGD-margin at ε (the attack that minimises the true class's margin; its steps follow the
   sign of the margin's gradient, which δ does not change, so one attack serves every δ);
2. clean and PGD accuracy for every δ of a grid, on validation and on test patches;
3. two rules that choose δ on validation only: the best clean accuracy, and the best
   clean + PGD accuracy, and what each gives on test.

    python scripts/experiments/logit_bias_sweep.py --data-dir D --dataset synthetic_64 \
        OUT/saved_models/demo_pgd_at OUT/seed_1/saved_models/demo_pgd_at ...

PGD here is a quick stand-in for ``auto``: the δ that matters is then checked with the full
ensemble (docs/defences.md, "A threshold chosen on validation data").
"""

import argparse

import numpy as np
import tensorflow as tf

from tfrecap.attacks import make_attack_fn
from tfrecap.data.pipeline import make_dataset
from tfrecap.evaluation.run import logits_fn_of
from tfrecap.export import latest_version_dir


def patch_margins(logits, atk, data_dir, dataset, split, limit, eps):
    """Clean and adversarial margins z₁ − z₀, and the labels, of the first `limit` patches."""
    clean, adv, labels = [], [], []
    n = 0
    for x, y in make_dataset(data_dir, dataset, split, 128, training=False):
        z = logits(x).numpy()
        index = tf.range(n, n + tf.shape(x)[0], dtype=tf.int64)
        za = logits(atk(x, y, tf.constant(eps, tf.float32), index)).numpy()
        clean.append(z[:, 1] - z[:, 0])
        adv.append(za[:, 1] - za[:, 0])
        labels.append(y.numpy())
        n += len(y)
        if n >= limit:
            break
    return (np.concatenate(clean)[:limit], np.concatenate(adv)[:limit],
            np.concatenate(labels)[:limit])


def accuracy_per_delta(margins, labels, deltas):
    """Accuracy of the verdict ``m + δ > 0`` ("recaptured") for each δ."""
    recaptured = labels == 1
    return np.array([np.mean((margins + d > 0) == recaptured) for d in deltas])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="SavedModel export dirs (latest version used)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="synthetic_64")
    parser.add_argument("--limit", type=int, default=1024, help="patches per split")
    parser.add_argument("--eps", type=float, default=2.0)
    parser.add_argument("--pgd-steps", type=int, default=20)
    args = parser.parse_args(argv)

    deltas = np.round(np.arange(-4.0, 8.0 + 1e-9, 0.25), 2)
    zero = int(np.argmin(np.abs(deltas)))
    for path in args.models:
        version_dir = latest_version_dir(path)
        logits = logits_fn_of(tf.saved_model.load(str(version_dir)))
        atk = make_attack_fn(logits, "pgd", steps=args.pgd_steps, loss="margin")
        curves = {}
        for split in ("validation", "test"):
            clean, adv, y = patch_margins(logits, atk, args.data_dir, args.dataset, split,
                                          args.limit, args.eps)
            curves[split] = (accuracy_per_delta(clean, y, deltas),
                             accuracy_per_delta(adv, y, deltas))
        val_clean, val_pgd = curves["validation"]
        rules = {"δ = 0": zero, "best clean (val)": int(np.argmax(val_clean)),
                 "best clean + PGD (val)": int(np.argmax(val_clean + val_pgd))}
        print(f"{version_dir}  (PGD-margin ε = {args.eps:g}, {args.pgd_steps} steps, "
              f"{args.limit} patches per split)")
        for rule, i in rules.items():
            print(f"  {rule:24s} δ = {deltas[i]:+.2f}  validation clean {val_clean[i]:.3f} "
                  f"PGD {val_pgd[i]:.3f} | test clean {curves['test'][0][i]:.3f} "
                  f"PGD {curves['test'][1][i]:.3f}")


if __name__ == "__main__":
    main()
