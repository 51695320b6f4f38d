"""How strong is FGSM made with BatchNorm batch statistics, against FGSM on the deployed model?

The secure train step fuses FGSM images into each batch. DESIGN.md made that FGSM pass with
BatchNorm in training mode (the batch's statistics); the deployed model uses the moving
statistics. This script takes a trained run (its latest checkpoint), makes FGSM images for the
first half of each batch both ways, and reports the accuracy on those adversarial images, with
the classifying forward pass in inference mode (deployed) and in training mode (as the
``adv_accuracy`` training metric sees them):

    python scripts/experiments/attack_batchnorm_gap.py --run-dir runs/demo --pipeline demo \
        --data-dir D

A large gap between the two gradient modes means the batch-statistics attack is weaker than
the one an attacker of the deployed model computes (it is what made tfrecap switch the fusion
pass to inference mode, ``[defence] attack_batchnorm``).
"""

import argparse

import numpy as np
import tensorflow as tf

from tfrecap.config import load_pipeline
from tfrecap.data.pipeline import make_dataset
from tfrecap.models.adversarial_training import fgsm_fusion
from tfrecap.training import build_model, make_checkpoint, restore_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="a training run dir with checkpoints/")
    parser.add_argument("--pipeline", required=True, help="the run's pipeline (name or file)")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batches", type=int, default=10, help="batches of the pipeline's size")
    parser.add_argument("--eps", default="1,3,5")
    args = parser.parse_args(argv)

    config = load_pipeline(args.pipeline)
    model = build_model(config)
    latest = tf.train.latest_checkpoint(f"{args.run_dir}/checkpoints")
    if latest is None:
        raise SystemExit(f"no checkpoint under {args.run_dir}/checkpoints")
    # Through training's own restore: a plain Checkpoint(model=...) misses the BatchNorm
    # statistics (see tfrecap.training.make_checkpoint), which this comparison is all about.
    restore_checkpoint(model, make_checkpoint(model), latest)  # refuses an older layout
    detector = model.detector
    trainable = [v.value for v in detector.trainable_variables]
    non_trainable = [v.value for v in detector.non_trainable_variables]

    def forward(z, batch_statistics):
        # Batch statistics through stateless_call: a plain call with training=True would also
        # move the moving statistics toward the attacked test batches, and so change the
        # deployed model this script compares against.
        if batch_statistics:
            return detector.stateless_call(trainable, non_trainable, z, training=True)[0]
        return detector(z, training=False)

    dataset = make_dataset(
        args.data_dir, config.data.dataset, args.split, config.train.batch_size, training=False
    )

    correct = {}
    for x, y in dataset.take(args.batches):
        x = tf.cast(x, tf.float32)
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        half = int(x.shape[0]) // 2
        for eps in (float(e) for e in args.eps.split(",")):
            for gradient_mode in ("inference", "batch"):
                batch = gradient_mode == "batch"
                fused = fgsm_fusion(lambda z, b=batch: forward(z, b), x, y, half, eps)
                for forward_mode in ("inference", "batch"):
                    logits = forward(fused, forward_mode == "batch")
                    hits = tf.argmax(logits[:half], -1, output_type=tf.int32) == y[:half]
                    correct.setdefault((eps, gradient_mode, forward_mode), []).append(
                        hits.numpy()
                    )

    print(f"{latest}, {args.split} split, first half of {args.batches} batches attacked")
    print("| ε | FGSM gradient BatchNorm | classified with | accuracy on FGSM images | n |")
    print("|---|---|---|---|---|")
    for (eps, gradient_mode, forward_mode), hits in sorted(correct.items()):
        hits = np.concatenate(hits)
        print(f"| {eps:g} | {gradient_mode} | {forward_mode} | {hits.mean():.1%} | {hits.size} |")


if __name__ == "__main__":
    main()
