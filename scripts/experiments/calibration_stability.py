"""How stable is the calibrated whole-image verdict? The same choice on disjoint photo sets.

`tfrecap train` chooses an export's verdict (aggregation over tiles, then threshold) on
``[verdict] calibration_photos`` synthetic validation photos per class (16 in ``default_64``),
by :func:`tfrecap.verdict.choose_verdict`. This script makes ``--photos-per-class`` such photos
once (``tfrecap.data.generate.photos``: photo ``i`` is seeded by the seed and its index, and
training seeds its calibration photos with the *dataset's* seed, ``data synth --seed``, 0 by
default, not with ``[train] seed``; so at ``--seed`` equal to the dataset's, the first
``2 × subset`` photos are the ones training saw), judges them with each export's ``logits``
endpoint under the served tiling, and repeats the choice on each disjoint set of ``--subset``
photos per class and on all of them. If the threshold moves a lot between equally valid sets,
the calibration set is too small. The photos are the committed v2's at ``--height`` ×
``--width`` (default_64's 384 × 512): for an export trained on a variant or with other photo
sizes, set 0 is not its training's set.

Run::

    python scripts/experiments/calibration_stability.py EXPORT [EXPORT ...] \\
        --photos-per-class 64 --subset 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def subsets(count_per_class: int, subset: int) -> list[range]:
    """Disjoint index ranges of ``subset`` photos per class (photo ``i`` has label ``i % 2``,
    so each range of ``2 × subset`` consecutive photos holds ``subset`` of each class)."""
    if subset < 1 or count_per_class < subset:
        raise ValueError(f"subset must lie in [1, photos per class = {count_per_class}], "
                         f"got {subset}")
    return [range(2 * subset * k, 2 * subset * (k + 1))
            for k in range(count_per_class // subset)]


def choices(per_image: list[np.ndarray], labels: list[int], ranges: list[range]) -> list[dict]:
    """The verdict chosen on each range of photos and on all of them, with its AUC."""
    from tfrecap.verdict import choose_verdict

    rows = []
    for name, picked in [*((f"set {k}", list(r)) for k, r in enumerate(ranges)),
                         ("all", list(range(len(per_image))))]:
        verdict, table = choose_verdict([per_image[i] for i in picked],
                                        [labels[i] for i in picked])
        chosen = next(t for t in table if t["aggregation"] == verdict.aggregation)
        rows.append({"photos": name, "per_class": len(picked) // 2,
                     "aggregation": verdict.aggregation, "threshold": verdict.threshold,
                     "auc": chosen["auc"], "balanced_accuracy": chosen["balanced_accuracy"]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", type=Path, nargs="+")
    parser.add_argument("--photos-per-class", type=int, default=64)
    parser.add_argument("--subset", type=int, default=16,
                        help="photos per class in each disjoint set (default_64's 16)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the photos' seed: the dataset's (data synth --seed), 0 by default")
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        ranges = subsets(args.photos_per_class, args.subset)
    except ValueError as err:
        parser.error(str(err))
    for export in args.exports:
        if not export.exists():
            parser.error(f"{export} does not exist")

    import tensorflow as tf

    from tfrecap.data import generate
    from tfrecap.export import latest_version_dir, load_config_asset
    from tfrecap.training.calibration import tile_probabilities

    photos = list(generate.photos("validation", args.photos_per_class, args.seed, None,
                                  workers=None, height=args.height, width=args.width))
    labels = [int(label) for _, label in photos]
    out = {"photos_per_class": args.photos_per_class, "subset": args.subset,
           "seed": args.seed, "size": [args.height, args.width], "exports": []}
    for export in args.exports:
        logits_fn = tf.saved_model.load(str(latest_version_dir(export))).signatures["logits"]
        size = int(logits_fn.structured_input_signature[1]["images"].shape[1])

        def probabilities(tiles, logits_fn=logits_fn):
            logits = logits_fn(images=tf.constant(tiles))["logits"]
            return tf.nn.softmax(logits)[:, 1].numpy()

        per_image = [tile_probabilities(probabilities, photo, size) for photo, _ in photos]
        rows = choices(per_image, labels, ranges)
        train_seed = load_config_asset(latest_version_dir(export)).get("train", {}).get("seed")
        out["exports"].append({"export": export.name, "train_seed": train_seed, "choices": rows})
        for row in rows:
            print(f"{export}  {row['photos']:>6} ({row['per_class']}/class)  "
                  f"{row['aggregation']:<16} >= {row['threshold']:.3f}  AUC {row['auc']:.3f}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
