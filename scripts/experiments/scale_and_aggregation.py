"""Ablation of the scale rule and of the aggregation over tiles, on labelled photo folders.

For an exported detector, every photo is tiled twice: at its native resolution (the rule before
issue 13) and after the scale rule (long side above 1024 px → antialiased downscale to 1024,
`tfrecap.data.tiling.normalize_scale`). The tile probabilities of the export's `logits`
endpoint are then aggregated every way `tfrecap.verdict` knows, and each (scale, aggregation)
gets its ROC AUC and its per-class accuracy at the export's stored threshold. The stored
threshold was chosen on synthetic validation photos for the rule the export serves (the 1024
rule, mean or chosen aggregation), so only that row is the deployed verdict; the others show
what the choices buy. Nothing is tuned here: the figures only check a choice made on synthetic
data.

Run (the folders are real photos you hold; never commit them)::

    python scripts/experiments/scale_and_aggregation.py saved_models/default_64 \\
        --originals DIR --recaptured DIR --json docs/real_photos/default_64.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np


def _tiles(pixels: np.ndarray, size: int, rule: str) -> np.ndarray:
    from tfrecap.data.tiling import normalize_scale, tile_positions

    if rule == "reference-1024":
        pixels = normalize_scale(pixels)
    positions = tile_positions(pixels.shape[0], pixels.shape[1], size)
    return np.stack([pixels[r:r + size, c:c + size] for r, c in positions]).astype(np.float32)


def tile_probabilities(model: Path, folders: dict[int, Path], rules: tuple[str, ...]):
    """Per rule, the list of per-photo tile probabilities and the labels; skipped files."""
    import tensorflow as tf

    from tfrecap.data.decode import BadImageError, decode_rgb
    from tfrecap.data.folder import _candidate_files
    from tfrecap.export import latest_version_dir

    logits_fn = tf.saved_model.load(str(latest_version_dir(model))).signatures["logits"]
    size = int(logits_fn.structured_input_signature[1]["images"].shape[1])
    out = {rule: ([], []) for rule in rules}
    skipped = []
    for label, folder in folders.items():
        files, _ = _candidate_files(Path(folder))
        for path in files:
            try:
                pixels = decode_rgb(path.read_bytes(), min_size=size).pixels
            except (BadImageError, OSError) as err:
                skipped.append({"path": str(path), "error": str(err)})
                continue
            for rule in rules:
                logits = logits_fn(images=tf.constant(_tiles(pixels, size, rule)))["logits"]
                probabilities = tf.nn.softmax(logits)[:, 1].numpy().astype(np.float64)
                out[rule][0].append(probabilities)
                out[rule][1].append(label)
    return out, skipped


def summarise(per_rule: dict, stored) -> list[dict]:
    """One row per (rule, aggregation): AUC, accuracies at the stored threshold."""
    from tfrecap.evaluation.stats import roc_auc
    from tfrecap.verdict import AGGREGATIONS, aggregate_np

    rows = []
    for rule, (per_image, labels) in per_rule.items():
        labels = np.asarray(labels)
        for aggregation in AGGREGATIONS:
            verdict = dataclasses.replace(stored, aggregation=aggregation)
            scores = np.array([aggregate_np(p, verdict) for p in per_image])
            called = scores >= stored.threshold
            originals = float(np.mean(~called[labels == 0]))
            recaptures = float(np.mean(called[labels == 1]))
            rows.append({
                "rule": rule, "aggregation": aggregation,
                "deployed": rule == "reference-1024" and aggregation == stored.aggregation,
                "auc": float(roc_auc(scores, labels)),
                "originals_correct": originals, "recaptures_correct": recaptures,
                "balanced_accuracy": (originals + recaptures) / 2,
            })
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--originals", type=Path, required=True)
    parser.add_argument("--recaptured", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from tfrecap.export import latest_version_dir, load_verdict
    from tfrecap.jsonio import write_json

    stored = load_verdict(latest_version_dir(args.model))
    per_rule, skipped = tile_probabilities(
        args.model, {0: args.originals, 1: args.recaptured}, ("native", "reference-1024"))
    rows = summarise(per_rule, stored)
    print(f"{args.model}: stored verdict {stored.aggregation} >= {stored.threshold:.4f}; "
          f"{len(skipped)} files skipped")
    print(f"{'rule':<16}{'aggregation':<18}{'AUC':>7}{'orig':>8}{'recap':>8}{'bal':>8}")
    for r in rows:
        mark = "  <- deployed" if r["deployed"] else ""
        print(f"{r['rule']:<16}{r['aggregation']:<18}{r['auc']:>7.3f}"
              f"{r['originals_correct']:>8.1%}{r['recaptures_correct']:>8.1%}"
              f"{r['balanced_accuracy']:>8.1%}{mark}")
    if args.json:
        write_json(args.json, {"model": str(args.model), "stored_verdict": stored.to_dict(),
                               "photos": {"originals": int(sum(1 for x in per_rule["native"][1]
                                                               if x == 0)),
                                          "recaptured": int(sum(per_rule["native"][1]))},
                               "skipped": len(skipped), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
