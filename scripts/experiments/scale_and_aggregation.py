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


def rule_long_side(rule: str) -> int | None:
    """The long side ``rule`` scales a photo to: None for "native" (no scaling), L for
    "reference-L" (long side at most L, antialiased, never upsampled)."""
    if rule == "native":
        return None
    if not rule.startswith("reference-") or not rule[len("reference-"):].isdigit():
        raise ValueError(f"unknown scale rule {rule!r}: use native or reference-L")
    return int(rule[len("reference-"):])


def tiles_under_rule(pixels: np.ndarray, size: int, rule: str, max_tiles: int) -> np.ndarray:
    """Tiles under ``rule`` (see `rule_long_side`), float32 [T, size, size, 3]."""
    from tfrecap.data.tiling import cut_tiles, served_tiles

    long_side = rule_long_side(rule)
    if long_side is None:
        return cut_tiles(pixels, size, max_tiles)[1].astype(np.float32)
    return served_tiles(pixels, size, max_tiles, long_side)[1].astype(np.float32)


def tile_probabilities(model: Path, folders: dict[int, Path], rules: tuple[str, ...]):
    """Per rule, the list of per-photo tile probabilities and the labels; skipped files."""
    import tensorflow as tf

    from tfrecap.data.decode import BadImageError, decode_rgb
    from tfrecap.data.folder import _candidate_files, _check_folder
    from tfrecap.data.tiling import DEFAULT_MAX_TILES
    from tfrecap.export import latest_version_dir

    logits_fn = tf.saved_model.load(str(latest_version_dir(model))).signatures["logits"]
    size = int(logits_fn.structured_input_signature[1]["images"].shape[1])
    # Synthetic-trained exports serve the default cap (a folder-trained one may differ).
    max_tiles = DEFAULT_MAX_TILES
    out = {rule: ([], []) for rule in rules}
    skipped = []
    for label, folder in folders.items():
        files, _ = _candidate_files(_check_folder(folder, "photos"))
        for path in files:
            try:
                pixels = decode_rgb(path.read_bytes(), min_size=size).pixels
            except (BadImageError, OSError) as err:
                skipped.append({"path": str(path), "error": str(err)})
                continue
            tiles = {rule: tiles_under_rule(pixels, size, rule, max_tiles) for rule in rules}
            if not all(len(t) for t in tiles.values()):
                skipped.append({"path": str(path), "error": "too small after scaling"})
                continue
            for rule in rules:
                logits = logits_fn(images=tf.constant(tiles[rule]))["logits"]
                probabilities = tf.nn.softmax(logits)[:, 1].numpy().astype(np.float64)
                out[rule][0].append(probabilities)
                out[rule][1].append(label)
    return out, skipped


def summarise(per_rule: dict, stored) -> list[dict]:
    """One row per (rule, aggregation): AUC, accuracies at the stored threshold."""
    from tfrecap.data.tiling import REFERENCE_LONG_SIDE
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
                "deployed": (rule == f"reference-{REFERENCE_LONG_SIDE}"
                             and aggregation == stored.aggregation),
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
    parser.add_argument("--rules", default="native,reference-1024",
                        help="comma-separated: native, reference-L (long side at most L px)")
    args = parser.parse_args(argv)

    from tfrecap.export import latest_version_dir, load_verdict
    from tfrecap.jsonio import write_json

    stored = load_verdict(latest_version_dir(args.model))
    per_rule, skipped = tile_probabilities(
        args.model, {0: args.originals, 1: args.recaptured}, tuple(args.rules.split(",")))
    rows = summarise(per_rule, stored)
    labels = next(iter(per_rule.values()))[1]
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
                               "photos": {"originals": int(sum(1 for x in labels if x == 0)),
                                          "recaptured": int(sum(labels))},
                               "skipped": len(skipped), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
