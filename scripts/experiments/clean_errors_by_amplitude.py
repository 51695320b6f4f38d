"""Which recaptures does a detector miss, clean? Accuracy per quintile of fine-detail amplitude.

An adversarially trained detector at ε = 2 keeps nearly every original and loses recaptures
(docs/defences.md). If the ones it loses are those whose fine detail (the residual ``x −
Gaussian(x)`` of :func:`tfrecap.attacks.model_free.high_pass`, the cue an L∞ attacker can
shave by ε) is as faint as an original's, the clean gap is the robustness–accuracy conflict
on those patches, not a lack of capacity or of training. This script sorts the test
recaptures by the RMS of that residual into five equal groups and prints each model's clean
accuracy per group (and on the originals, for reference):

    python scripts/experiments/clean_errors_by_amplitude.py --data-dir D \
        --dataset synthetic_64 OUT/saved_models/demo_baseline OUT/saved_models/demo_pgd_at
"""

import argparse

import numpy as np
import tensorflow as tf

from tfrecap.attacks.model_free import high_pass
from tfrecap.data.pipeline import make_dataset
from tfrecap.evaluation.run import logits_fn_of
from tfrecap.export import latest_version_dir

GROUPS = 5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="SavedModel export dirs (latest version used)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="synthetic_64")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)

    batches = list(make_dataset(args.data_dir, args.dataset, args.split, 256, training=False))
    images = np.concatenate([x.numpy() for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    rms = np.array([np.sqrt(np.mean(high_pass(image) ** 2)) for image in images])
    recaptured = labels == 1
    edges = np.quantile(rms[recaptured], np.linspace(0, 1, GROUPS + 1))
    group = np.clip(np.searchsorted(edges, rms, side="right") - 1, 0, GROUPS - 1)
    print(f"{args.dataset} {args.split}: {recaptured.sum()} recaptures, {(~recaptured).sum()} "
          f"originals; fine-detail RMS median {np.median(rms[recaptured]):.2f} levels "
          f"(recaptures), {np.median(rms[~recaptured]):.2f} (originals)")
    header = " | ".join(f"RMS {edges[g]:.2f}–{edges[g + 1]:.2f}" for g in range(GROUPS))
    print(f"| model | originals | recaptures by fine-detail RMS: {header} |")
    for path in args.models:
        version_dir = latest_version_dir(path)
        logits = logits_fn_of(tf.saved_model.load(str(version_dir)))
        predicted = np.concatenate([np.argmax(logits(tf.constant(images[i:i + 256])).numpy(), -1)
                                    for i in range(0, len(images), 256)])
        correct = predicted == labels
        cells = [f"{correct[recaptured & (group == g)].mean():.1%}" for g in range(GROUPS)]
        print(f"| {version_dir} | {correct[~recaptured].mean():.1%} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
