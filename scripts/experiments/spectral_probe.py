"""A model-free yardstick for whole-photo recapture detection: how periodic is the fine detail?

A screen's pixel matrix is a 2-D grid; photographed, it leaves sharp peaks in the spectrum of
the photo's fine detail (resolved sub-pixels, or their moiré with the sensor's mosaic). This
probe scores each photo by that alone, with no training: per tile (default 128 px, cut at
native resolution, the tiles of ``tfrecap.data.tiling.cut_tiles``), the luma's Hann-windowed
spectrum above ``--low`` cycles/px, and the log of its peak over its median; the photo's score
is the mean over its tiles. Every setting but one was fixed before it was run on any photo;
the noise floor under the median (``NOISE_FLOOR``) was added after the first run, when a unit
test showed smooth tiles scoring as peaked as a grid (docs/real_photos.md gives both runs).
None is tuned here.

It answers two questions about a learned detector on labelled photos:

* is the detector better than a hand-made periodicity score (its AUC beside the probe's)?
* where does it fail? With ``--model``, the photos of screens are split at their median probe
  score, into the half the probe scores most periodic (a score equal to the median goes to
  that half, so with ties or an odd count it is the larger one) and the rest, and the
  detector's AUC against all originals is given for each half (tiles at native resolution,
  mean logit).

With ``--data-dir`` it scores a built dataset's test patches instead (each patch one tile), so
the same split can be made on synthetic data: does the detector fail there too where the
probe sees no periodic trace?

With ``--softness`` a second model-free score takes the detector's place: how soft the photo
is at the finest scale (minus :func:`fine_detail_ratios`, averaged over 64-px tiles cut under
``--softness-rule``, the detector's own view; with ``--data-dir``, of each patch whole). Its
AUC says whether photos of screens are softer (above 0.5) or sharper (below) than direct
photos, overall and on each half of the split, on real photos and on a simulator's patches
alike: a cue the simulator has the wrong way round
is one a detector trained on it cannot learn.

Run (the folders are real photos you hold; never commit them)::

    python scripts/experiments/spectral_probe.py --originals DIR --recaptured DIR \\
        [--model saved_models/NAME] [--json out.json]
    python scripts/experiments/spectral_probe.py --data-dir D --dataset synthetic_v2_64 \\
        --model saved_models/NAME
    python scripts/experiments/spectral_probe.py --originals DIR --recaptured DIR --softness \\
        --softness-rule reference-1024
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# The sibling scripts (scale_and_aggregation.py) import by name, as scripts/benchmark.py does
# with scripts/bench/; they are imported where used.
sys.path.insert(0, str(Path(__file__).resolve().parent))

LUMA = np.array([0.299, 0.587, 0.114])
# Luma levels (of 255) of noise below which the high band counts as empty.
NOISE_FLOOR = 1.0


def periodicity_scores(tiles: np.ndarray, low: float = 0.2) -> np.ndarray:
    """Per tile of ``tiles`` ``[T, S, S, 3]``: log(peak / median) of the luma's spectral
    magnitude at radial frequencies of at least ``low`` cycles/px (the DC term and the scene's
    coarse structure are below it), the median floored at a noise level of `NOISE_FLOOR`.
    A flat, smooth or noise-like tile scores about 0 to 2; a tile crossed by a fine grating
    far more."""
    tiles = np.asarray(tiles, np.float64)
    size = tiles.shape[1]
    if tiles.ndim != 4 or tiles.shape[2] != size or tiles.shape[3] < 3:
        raise ValueError(f"tiles must be [T, S, S, 3+], got shape {tiles.shape}")
    if not 0.0 < low < 0.5:
        raise ValueError(f"low must lie in (0, 0.5) cycles/px, got {low!r}")
    luma = tiles[..., :3] @ LUMA
    luma -= luma.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(size), np.hanning(size))
    magnitude = np.abs(np.fft.fft2(luma * window))
    frequency = np.fft.fftfreq(size)
    band = np.hypot(frequency[:, None], frequency[None, :]) >= low
    values = magnitude[:, band]
    # The median is floored at what white noise of NOISE_FLOOR levels gives through the window
    # (mean |F| of complex Gaussian noise: sqrt(pi)/2 * sigma * ||window||), so that a smooth
    # tile, whose high band is all but empty, does not score as peaked as a grid.
    floor = np.sqrt(np.pi) / 2 * NOISE_FLOOR * np.sqrt(np.sum(window**2))
    return np.log(np.maximum(values.max(axis=1), floor)
                  / np.maximum(np.median(values, axis=1), floor))


def _laplacian_energy(luma: np.ndarray) -> np.ndarray:
    """Mean |4-neighbour Laplacian| of each image of ``luma`` ``[T, H, W]`` (interior)."""
    centre = luma[:, 1:-1, 1:-1]
    return np.abs(4 * centre - luma[:, :-2, 1:-1] - luma[:, 2:, 1:-1] - luma[:, 1:-1, :-2]
                  - luma[:, 1:-1, 2:]).mean(axis=(1, 2))


def fine_detail_ratios(tiles: np.ndarray) -> np.ndarray:
    """Per tile of ``tiles`` ``[T, S, S, 3+]``: the luma's Laplacian energy at full resolution
    over that of its 2 x 2 box downscale. Independent of the level and the contrast: about
    0.25 for a smooth tile (a Laplacian grows 4x when the pixel spacing doubles), 0.35 for
    noise blurred by 1.5 px, about 2 for white noise, more for a fine grid (detail at the
    pixel scale: noise, a sub-pixel grid, sharpening halos); 0 for a flat tile."""
    tiles = np.asarray(tiles, np.float64)
    if tiles.ndim != 4 or tiles.shape[1] < 8 or tiles.shape[2] < 8 or tiles.shape[3] < 3:
        raise ValueError(f"tiles must be [T, H, W, 3+] with H, W >= 8, got {tiles.shape}")
    luma = tiles[..., :3] @ LUMA
    h, w = luma.shape[1] // 2 * 2, luma.shape[2] // 2 * 2
    half = luma[:, :h, :w].reshape(len(luma), h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    # A flat tile has no structure at either scale: floor the coarse energy (0.01 levels).
    return _laplacian_energy(luma) / np.maximum(_laplacian_energy(half), 1e-2)


def softness_of_photo(rule: str, size: int = 64):
    """The photo softness score: minus the mean fine-detail ratio of its ``size``-px tiles,
    cut at native resolution (``rule`` "native") or under the served scale rule
    ("reference-L": long side at most L, antialiased, never upsampled). A bad rule is an
    error here, before any photo is read."""
    from scale_and_aggregation import rule_long_side, tiles_under_rule

    from tfrecap.data.tiling import DEFAULT_MAX_TILES

    rule_long_side(rule)
    return lambda pixels: -float(np.mean(fine_detail_ratios(
        tiles_under_rule(pixels, size, rule, DEFAULT_MAX_TILES))))


def score_photos(folders: dict[int, Path], tile: int, low: float, model: Path | None,
                 softness_rule: str | None = None):
    """Per photo: its label, its probe score and (with ``model``) its mean-logit detector
    score at native resolution, or (with ``softness_rule``) its softness score instead.
    Unreadable or too-small files are skipped and listed."""
    from tfrecap.data.decode import BadImageError, decode_rgb
    from tfrecap.data.folder import _candidate_files, _check_folder
    from tfrecap.data.tiling import DEFAULT_MAX_TILES, cut_tiles

    detector = None
    if softness_rule is not None:
        detector = softness_of_photo(softness_rule)
    elif model is not None:
        import tensorflow as tf
        from scale_and_aggregation import tiles_under_rule

        from tfrecap.export import latest_version_dir
        from tfrecap.verdict import Verdict, aggregate_np

        mean_logit = Verdict(aggregation="mean_logit")
        logits_fn = tf.saved_model.load(str(latest_version_dir(model))).signatures["logits"]
        size = int(logits_fn.structured_input_signature[1]["images"].shape[1])
        def detector(pixels):
            tiles = tiles_under_rule(pixels, size, "native", DEFAULT_MAX_TILES)
            logits = logits_fn(images=tf.constant(tiles))["logits"]
            # The served mean-logit aggregation (clipped), as scale_and_aggregation.py has it.
            return aggregate_np(tf.nn.softmax(logits)[:, 1].numpy().astype(np.float64),
                                mean_logit)

    rows, skipped = [], []
    for label, folder in folders.items():
        files, _ = _candidate_files(_check_folder(folder, "photos"))
        for path in files:
            try:
                pixels = decode_rgb(path.read_bytes(), min_size=tile).pixels
            except (BadImageError, OSError) as err:
                skipped.append({"file": path.name, "error": str(err)})
                continue
            tiles = cut_tiles(pixels, tile, DEFAULT_MAX_TILES)[1]
            row = {"label": label, "probe": float(np.mean(periodicity_scores(tiles, low)))}
            if detector is not None:
                row["detector"] = detector(pixels)
            rows.append(row)
    return rows, skipped


def score_patches(data_dir: str, dataset: str, limit: int, low: float, model: Path | None,
                  softness: bool = False):
    """The same rows for the first ``limit`` test patches of a built dataset, each patch one
    tile of its own size (the detector's score: its recapture logit margin; with
    ``softness``, minus the patch's fine-detail ratio instead)."""
    from tfrecap.data.pipeline import make_dataset

    logits_fn = None
    if model is not None:
        import tensorflow as tf

        from tfrecap.export import latest_version_dir

        logits_fn = tf.saved_model.load(str(latest_version_dir(model))).signatures["logits"]
    rows = []
    for images, labels in make_dataset(data_dir, dataset, "test", 256, training=False):
        images = images.numpy().astype(np.float32)
        scores = periodicity_scores(images, low)
        margins = None
        if softness:
            margins = -fine_detail_ratios(images)
        elif logits_fn is not None:
            logits = logits_fn(images=tf.constant(images))["logits"].numpy()
            margins = logits[:, 1] - logits[:, 0]
        for k, label in enumerate(labels.numpy().tolist()):
            row = {"label": int(label), "probe": float(scores[k])}
            if margins is not None:
                row["detector"] = float(margins[k])
            rows.append(row)
        if len(rows) >= limit:
            break
    return rows[:limit]


def summarise(rows: list[dict]) -> dict:
    """The probe's AUC; with detector scores, the detector's AUC overall and on each half of
    the screens split at their median probe score (each half against all originals)."""
    from tfrecap.evaluation.stats import roc_auc

    labels = np.array([r["label"] for r in rows])
    probe = np.array([r["probe"] for r in rows])
    if not (np.any(labels == 0) and np.any(labels == 1)):
        raise ValueError(f"the probe needs photos of both classes, got "
                         f"{int(np.sum(labels == 0))} originals and "
                         f"{int(np.sum(labels == 1))} of screens")
    out = {"photos": {"originals": int(np.sum(labels == 0)),
                      "recaptured": int(np.sum(labels == 1))},
           "probe_auc": float(roc_auc(probe, labels)),
           "probe_mean": {"originals": float(probe[labels == 0].mean()),
                          "recaptured": float(probe[labels == 1].mean())}}
    if rows and "detector" in rows[0]:
        detector = np.array([r["detector"] for r in rows])
        out["detector_auc"] = float(roc_auc(detector, labels))
        median = float(np.median(probe[labels == 1]))
        halves = {"screens_periodic": probe >= median, "screens_not_periodic": probe < median}
        for name, half in halves.items():
            keep = (labels == 0) | ((labels == 1) & half)
            # (The probe's own AUC on a half it selected would be biased by construction.)
            out[name] = {"screens": int(np.sum((labels == 1) & half)),
                         "detector_auc": float(roc_auc(detector[keep], labels[keep]))}
        out["split_at_probe"] = median
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=Path, default=None)
    parser.add_argument("--recaptured", type=Path, default=None)
    parser.add_argument("--data-dir", default=None,
                        help="instead of folders: the test patches of --dataset built here")
    parser.add_argument("--dataset", default="synthetic_v2_64")
    parser.add_argument("--limit", type=int, default=2000, help="test patches scored")
    parser.add_argument("--model", type=Path, default=None,
                        help="an export whose detector is compared with the probe")
    parser.add_argument("--tile", type=int, default=128, help="probe tile side, px")
    parser.add_argument("--low", type=float, default=0.2,
                        help="lowest radial frequency the probe looks at, cycles/px")
    parser.add_argument("--softness", action="store_true",
                        help="instead of --model, score each photo's softness (model-free)")
    parser.add_argument("--softness-rule", default=None,
                        help="with --softness on photo folders: the 64-px tiles softness is "
                             "measured on, native (the default) or reference-L (the served "
                             "rule is reference-1024)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.softness and args.model is not None:
        parser.error("--softness replaces --model: give one of them")
    if args.softness_rule is not None and (not args.softness or args.data_dir is not None):
        parser.error("--softness-rule is for --softness on photo folders (a dataset's patches "
                     "are measured whole)")
    softness_rule = args.softness_rule or "native"

    if args.data_dir is not None:
        rows, skipped = score_patches(args.data_dir, args.dataset, args.limit, args.low,
                                      args.model, args.softness), []
        settings = {"dataset": args.dataset, "split": "test", "low": args.low,
                    "tile": "the patch"}
    elif args.originals is not None and args.recaptured is not None:
        try:
            rows, skipped = score_photos({0: args.originals, 1: args.recaptured}, args.tile,
                                         args.low, args.model,
                                         softness_rule if args.softness else None)
        except ValueError as err:
            parser.error(str(err))
        settings = {"tile": args.tile, "low": args.low, "aggregation": "mean over tiles"}
    else:
        parser.error("give --originals and --recaptured, or --data-dir")
    if not rows:
        parser.error("no photo could be read")
    out = summarise(rows)
    if args.softness:
        # The "detector" here is the model-free softness score, not a model.
        settings["softness"] = ({"tile": "the patch"} if args.data_dir is not None
                                else {"tile": 64, "rule": softness_rule})
    out["skipped"] = len(skipped)
    out["settings"] = settings
    print(json.dumps(out, indent=1))
    for item in skipped:
        print(f"skipped {item['file']}: {item['error']}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
