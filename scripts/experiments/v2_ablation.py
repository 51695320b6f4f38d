"""Ablation of simulator v2's randomizations: what each one buys (issue 13, item 6).

Each arm switches one group of v2's randomizations off, each field fixed at a typical value
inside its committed range (`ARMS`), builds that variant's data under its own name (as
``tfrecap data synth --simulator v2 --param KEY=VALUE ... --dataset v2abl_ARM`` does), trains
the same network on it (the ``demo_baseline`` pipeline: Yang's L-CNN 16-32-32-64-64, with
``--steps`` and the training seed), and measures three things:

* ``own_test``: accuracy on the arm's own test patches (how hard its own task is);
* ``v2_test``: accuracy on the committed v2's test patches, every randomization on (the
  synthetic stand-in for "a world the arm did not see": what switching a randomization off
  costs in generalization);
* on labelled real photos, when given: whole-image ROC AUC, and per-class and balanced
  accuracy at 0.5, for the mean of the tile probabilities and the mean logit, with the tiles
  cut at native resolution and under the served 1024 scale rule (the functions of
  ``scale_and_aggregation.py``).

The real photos only check: nothing here is chosen on them. Run every arm with several
training seeds (``--seed``), so that a difference smaller than the control's spread over its
seeds is read as none.

Run (about 8 minutes per arm and seed on 2 cores at the defaults; a second seed reuses the
data, about 4; `burst_merge` renders 2-8 frames per capture, so its data takes about five
times the control's)::

    python scripts/experiments/v2_ablation.py --out runs/v2_ablation --data-dir /tmp/abl_tfds \\
        --originals DIR --recaptured DIR
    python scripts/experiments/v2_ablation.py --out runs/v2_ablation --arms control --seed 1 ...
    python scripts/experiments/v2_ablation.py --summary runs/v2_ablation/v2_ablation.json

``--size 128`` runs the same arms on 128-px patches (the control is then ``synthetic_v2_128``,
every other arm ``v2abl_ARM_128``): more context per patch. One ``--out`` holds one size.

Every arm's row goes into ``OUT/v2_ablation.json`` as soon as it is done; a rerun skips the
arms (and seeds) already there, so an interrupted run goes on where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# The sibling scale_and_aggregation.py imports by name, as scripts/benchmark.py does with
# scripts/bench/; it is imported where used.
sys.path.insert(0, str(Path(__file__).resolve().parent))

CONTROL = "control"
PATCH_SIZE = 64  # the default; --size 128 runs the same arms on v2's 128-px patches
SCALE_RULES = ("native", "reference-1024")
PHOTO_AGGREGATIONS = ("mean_probability", "mean_logit")

# arm -> (what it switches off, in the words; the --param assignments that do it).
ARMS: dict[str, tuple[str, tuple[str, ...]]] = {
    CONTROL: ("nothing: the committed v2", ()),
    "no_dead_leaves": ("procedural scenes: bundled photos only", ("dead_leaves_fraction=0",)),
    "fixed_display_tone": (
        "display brightness, gamma, colour temperature and gamut",
        ("display_gamma=2.2,2.2", "brightness=1,1", "white_point=1,1",
         "display_saturation=1,1"),
    ),
    "no_display_nuisances": (
        "refresh bands, glare, anti-glare diffusers, JPEG content on screen",
        ("refresh_band_prob=0", "glare_prob=0", "diffuser_prob=0", "content_jpeg_prob=0"),
    ),
    "fixed_geometry": (
        "framing rotation, screen rotation (moiré angle), tilt, distortion, zoom, defocus range",
        ("rotation_deg=0,0", "screen_rotation_deg=0,0", "keystone=0", "aspect=1,1", "zoom=1,1",
         "lens_sigma=0.8,0.8"),
    ),
    "no_screen_rotation": (
        "part of fixed_geometry: the screen's pixel grid stays aligned with the sensor's",
        ("screen_rotation_deg=0,0",),
    ),
    "fixed_lens": ("part of fixed_geometry: defocus fixed at the middle of its range",
                   ("lens_sigma=0.8,0.8",)),
    "fixed_camera": (
        "ISP: demosaicing, denoising, sharpening, tone curve, sensor noise level",
        ("demosaics=bilinear", "denoise_prob=0", "sharpen_prob=0", "tone_gamma=2.2,2.2",
         "tone_s_curve=0,0", "full_well=5000,5000", "read_noise=0.002,0.002"),
    ),
    "no_messaging": ("messaging-app resize and JPEG chains", ("messaging_prob=0",)),
    "fixed_exposure_wb": ("exposure and white balance, both classes",
                          ("exposure=1,1", "white_balance=1,1")),
    "no_aliased_pitch": (
        "held-out display regime: pitches below 1.5 sensor px (aliased, moiré only) are never "
        "seen in training; the v2 test patches hold them",
        ("pitch=1.5,6",),
    ),
    # A held-out display family: trained on stripe LCDs only, measured (with ``--cross
    # oled_layouts_only``) on OLED screens only, against the control, which saw both.
    "no_oled_layouts": (
        "held-out display family: PenTile and diamond OLED layouts are never seen in "
        "training; oled_layouts_only's test patches hold nothing else",
        ("layouts=rgb_stripe,bgr_stripe",),
    ),
    "oled_layouts_only": (
        "stripe LCDs, so every screen is a PenTile or diamond OLED (the held-out family's "
        "test set, for --cross; not trained by default)",
        ("layouts=pentile,diamond",),
    ),
    # The level match erases the screen's tone reproduction (a v2 design choice against a
    # brightness shortcut); this arm keeps it, matching only each channel's mean, so a
    # screen's gamma, gamut and glare's lift of the shadows stay in the recapture: a
    # non-grid cue that survives where the pixel grid is not resolved.
    "screen_tone_kept": (
        "the quantile level match: only each channel's mean is matched, so recaptures keep "
        "their screen's tone curve, gamut and glare's lift of the shadows",
        ("level_match_strength=0",),
    ),
    # v2's recaptures carry more pixel-scale detail than its originals, the more so the larger
    # the sensor-to-reference downscale d (softness_by_variant.py); real screen photos without
    # a grid do not. This arm captures everything at the reference resolution (d = 1), which
    # reduces that excess: does a detector trained with less of it transfer better?
    "no_sensor_downscale": (
        "the sensor-resolution chain: every capture is made at the reference resolution "
        "(d = 1), with no downscale before the detector",
        ("downscale=1,1",),
    ),
    # An added stage of the camera, not a switched-off one: every capture, both classes, a
    # burst of 2-8 frames (HDR+'s range) merged on the scene. v2's recaptures keep more of the
    # screen's mosaic as pixel-scale detail than real screen photos without a grid do
    # (softness_by_variant.py); a phone's merge averages the mosaic's aliasing down.
    "burst_merge": (
        "nothing; adds a merged burst of 2-8 hand-shaken frames to every capture, both classes",
        ("burst_frames=2,8",),
    ),
    # An added randomization of the display: the screen shows an image coarser than its panel
    # (video, web and messaging images are, on most screens), resampled by the viewer, so a
    # recapture's content stops short of the display pixel: a photo of a screen is softer
    # than the screen's pixels allow, where v2's shows the scene at the panel's resolution.
    "content_upscaled": (
        "nothing; adds content upscaled by 1-2x on the screen (recaptures only)",
        ("content_upscale_prob=1",),
    ),
    # An added randomization, not a switched-off one: 2-D weaves (crossed gratings: fabric,
    # mesh, grilles) on half the textured dead-leaves disks, in both classes, so that a fine
    # periodic grid alone stops meaning "screen".
    "with_weaves": (
        "nothing; adds 2-D woven textures to the dead-leaves scenes of both classes",
        ("dead_leaves_weave_prob=0.5",),
    ),
}

# Arms that add a randomization the committed v2 does not have, instead of switching one off.
ADDED_ARMS = frozenset({"with_weaves", "burst_merge", "content_upscaled"})
# Arms that are test sets for --cross, left out of the default --arms.
TEST_ONLY_ARMS = frozenset({"oled_layouts_only"})
DEFAULT_ARMS = tuple(a for a in ARMS if a not in TEST_ONLY_ARMS)
DEFAULT_COUNT = 3000


def arm_params(arm: str):
    """The v2 parameters of ``arm``: the committed ones with the arm's fields replaced."""
    from tfrecap.data.simulator import V2_PARAMS
    from tfrecap.data.simulator.overrides import parse_assignments, with_overrides

    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: use one of {', '.join(ARMS)}")
    return with_overrides(V2_PARAMS, parse_assignments(ARMS[arm][1]))


def dataset_name(arm: str, size: int = PATCH_SIZE) -> str:
    """The control is the built-in v2 dataset; every other arm has its own name (with the
    patch size in it when that is not 64, so the two sizes never share a name)."""
    from tfrecap.data.builder import synthetic_name

    if arm == CONTROL:
        return synthetic_name(size, 2)
    return f"v2abl_{arm}" if size == PATCH_SIZE else f"v2abl_{arm}_{size}"


def build_arm_data(arm: str, data_dir: str, count: int, workers: int | None = None,
                   size: int = PATCH_SIZE):
    """Builds ``arm``'s data (``count`` patches per class), or reuses data of its identity."""
    from tfrecap.data import builder, catalog

    config = builder.synthetic_config(size, count, 0, arm_params(arm),
                                      name=dataset_name(arm, size))
    return catalog.build_dataset(config, data_dir, workers=workers)


def synth_command(arm: str, count: int, size: int = PATCH_SIZE) -> str:
    """The CLI command that builds ``arm``'s data, for the record."""
    words = ["tfrecap data synth --simulator v2", f"--count {count}"]
    if size != PATCH_SIZE:
        words.append(f"--size {size}")
    words += [f"--param {p}" for p in ARMS[arm][1]]
    if arm != CONTROL:
        words.append(f"--dataset {dataset_name(arm, size)}")
    return " ".join(words)


def patch_accuracy(model, data_dir: str, dataset: str, limit: int) -> dict:
    """Accuracy of ``model`` (logits) on the first ``limit`` test patches, and per class."""
    from tfrecap.data.pipeline import make_dataset

    data = make_dataset(data_dir, dataset, "test", 256, training=False)
    correct, labels = [], []
    for images, batch_labels in data:
        predicted = np.argmax(model(images, training=False).numpy(), axis=-1)
        correct.extend((predicted == batch_labels.numpy()).tolist())
        labels.extend(batch_labels.numpy().tolist())
        if len(correct) >= limit:
            break
    correct, labels = np.asarray(correct[:limit]), np.asarray(labels[:limit])
    return {"accuracy": float(correct.mean()), "n": int(len(correct)),
            "originals": float(correct[labels == 0].mean()),
            "recaptured": float(correct[labels == 1].mean())}


def photo_rows(export: Path, originals: Path, recaptured: Path) -> dict:
    """Whole-image AUC and accuracies at 0.5 on the photo folders, per rule and aggregation."""
    import scale_and_aggregation as scale

    from tfrecap.export import latest_version_dir, load_verdict

    per_rule, skipped = scale.tile_probabilities(export, {0: originals, 1: recaptured},
                                                 SCALE_RULES)
    rows = scale.summarise(per_rule, load_verdict(latest_version_dir(export)))
    labels = next(iter(per_rule.values()))[1]
    out = {"photos": {"originals": int(labels.count(0)), "recaptured": int(labels.count(1))},
           "skipped": len(skipped)}
    for row in rows:
        if row["aggregation"] in PHOTO_AGGREGATIONS:
            out[f"{row['rule']}/{row['aggregation']}"] = {
                key: round(row[key], 4) for key in
                ("auc", "originals_correct", "recaptures_correct", "balanced_accuracy")}
    return out


def run_arm(arm: str, *, out: Path, data_dir: str, count: int, steps: int, seed: int,
            limit: int, photos: tuple[Path, Path] | None, workers: int | None = None,
            size: int = PATCH_SIZE) -> dict:
    """Builds (or reuses) the arm's data, trains, measures; returns one JSON-able row."""
    from tfrecap import config as cfg
    from tfrecap.training import train

    started = time.perf_counter()
    params = arm_params(arm)
    name = dataset_name(arm, size)
    build_arm_data(arm, data_dir, count, workers, size)
    generated = time.perf_counter()
    config = cfg.override(cfg.load_pipeline("demo_baseline"), **{
        "data.dataset": name, "data.patch_size": size, "train.steps": steps,
        "train.seed": seed})
    where = out / arm / f"seed_{seed}"
    result = train(config, data_dir=data_dir, run_dir=where / "run",
                   export_dir=where / "saved_model", verbose=0, log=_print_warnings)
    trained = time.perf_counter()
    row = {
        "arm": arm, "seed": seed, "patch_size": size, "switched_off": ARMS[arm][0],
        "params": list(ARMS[arm][1]),
        "simulator_fingerprint": params.fingerprint(), "count": count, "steps": steps,
        "command": synth_command(arm, count, size),
        "own_test": patch_accuracy(result.model, data_dir, name, limit),
        "v2_test": patch_accuracy(result.model, data_dir, dataset_name(CONTROL, size), limit),
    }
    if photos is not None:
        row["real_photos"] = photo_rows(where / "saved_model", *photos)
    row["seconds"] = {"data": round(generated - started), "train": round(trained - generated),
                      "measure": round(time.perf_counter() - trained)}
    return row


def cross_test(record: dict, *, out: Path, data_dir: str, arm: str, limit: int,
               count: int = DEFAULT_COUNT, workers: int | None = None) -> None:
    """Measures every row's export on ``arm``'s test patches, into ``row["cross"][arm]``.

    The cross matrix says what a model trained without a randomization does on data that has
    it (the control on ``with_weaves``' originals: does a woven texture alone read as a
    screen? ``no_oled_layouts`` on ``oled_layouts_only``: does a held-out display family
    read as a screen?). ``arm``'s data is built first (``count`` patches per class) unless
    data of the same identity is there; rows whose export is gone are skipped. Not the
    control: its data is the built-in v2 dataset, which a build at another count would replace.
    """
    import tensorflow as tf

    from tfrecap.export import latest_version_dir

    if arm == CONTROL:
        raise ValueError("--cross control: every row is measured on the control's test patches "
                         "already (v2_test)")
    size = record_size(record)
    build_arm_data(arm, data_dir, count, workers, size)

    for row in record["rows"]:
        export = out / row["arm"] / f"seed_{row['seed']}" / "saved_model"
        if not export.exists() or arm in row.get("cross", {}):
            continue
        logits = tf.saved_model.load(str(latest_version_dir(export))).signatures["logits"]

        def model(images, training=False, logits=logits):
            return logits(images=tf.cast(images, tf.float32))["logits"]

        row.setdefault("cross", {})[arm] = patch_accuracy(model, data_dir,
                                                          dataset_name(arm, size), limit)
        print(f"{row['arm']} seed {row['seed']} on {arm}: "
              f"{row['cross'][arm]['accuracy']:.1%} (originals "
              f"{row['cross'][arm]['originals']:.1%}, screens "
              f"{row['cross'][arm]['recaptured']:.1%})", flush=True)


def record_size(record: dict) -> int:
    """The patch size of a v2_ablation.json (records before ``--size`` existed are at 64)."""
    return int(record.get("patch_size", PATCH_SIZE))


def _print_warnings(line: str) -> None:
    if line.startswith("Warning"):
        print(line, flush=True)


def summary_table(record: dict) -> str:
    """The markdown table of a record: one line per arm and seed."""
    head = ("| arm (switched off) | seed | own test | v2 test | real AUC native (mean p) "
            "| real AUC 1024 (mean p) | real balanced 1024 at 0.5 (orig / screens) |")
    lines = [head, "|" + "---|" * 7]
    for row in record["rows"]:
        photos = row.get("real_photos")
        if photos:
            native = f"{photos['native/mean_probability']['auc']:.3f}"
            ref = photos["reference-1024/mean_probability"]
            at_1024 = f"{ref['auc']:.3f}"
            balanced = (f"{ref['balanced_accuracy']:.1%} ({ref['originals_correct']:.1%} / "
                        f"{ref['recaptures_correct']:.1%})")
        else:
            native = at_1024 = balanced = "—"
        lines.append(f"| `{row['arm']}` | {row['seed']} | {row['own_test']['accuracy']:.1%} "
                     f"| {row['v2_test']['accuracy']:.1%} | {native} | {at_1024} | {balanced} |")
    return "\n".join(lines)


def _spread(values: list[float], percent: bool) -> str:
    """``mean [min–max]`` (one value alone), as a percentage or to 3 decimals."""
    def fmt(v):
        return f"{v:.1%}" if percent else f"{v:.3f}"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(float(np.mean(values)))} [{fmt(min(values))}–{fmt(max(values))}]"


def arm_table(record: dict) -> str:
    """One line per arm, over its seeds: mean [min–max] of each figure, in `ARMS` order."""
    by_arm: dict[str, list[dict]] = {}
    for row in record["rows"]:
        by_arm.setdefault(row["arm"], []).append(row)
    lines = ["| arm (switched off) | seeds | own test | v2 test | real AUC native (mean p) "
             "| real AUC 1024 (mean p) | real balanced 1024 at 0.5 |", "|" + "---|" * 7]
    for arm in sorted(by_arm, key=lambda a: list(ARMS).index(a) if a in ARMS else len(ARMS)):
        rows = by_arm[arm]
        cells = [_spread([r["own_test"]["accuracy"] for r in rows], True),
                 _spread([r["v2_test"]["accuracy"] for r in rows], True)]
        with_photos = [r["real_photos"] for r in rows if r.get("real_photos")]
        if with_photos:
            cells += [_spread([p["native/mean_probability"]["auc"] for p in with_photos], False),
                      _spread([p["reference-1024/mean_probability"]["auc"]
                               for p in with_photos], False),
                      _spread([p["reference-1024/mean_probability"]["balanced_accuracy"]
                               for p in with_photos], True)]
        else:
            cells += ["—"] * 3
        seeds = ", ".join(str(r["seed"]) for r in rows)
        lines.append(f"| `{arm}` | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run dirs, exports and v2_ablation.json")
    parser.add_argument("--data-dir", default=None, help="where the datasets are built")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                        help=f"comma-separated, from: {', '.join(ARMS)} (the control first; "
                             f"default all but the test sets {', '.join(sorted(TEST_ONLY_ARMS))})")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT,
                        help="patches per class per arm")
    parser.add_argument("--size", type=int, default=PATCH_SIZE, choices=(64, 128),
                        help="patch size of every arm (one size per --out)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="the training seed")
    parser.add_argument("--limit", type=int, default=2000, help="test patches measured")
    parser.add_argument("--originals", type=Path, default=None)
    parser.add_argument("--recaptured", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cross", default=None, metavar="ARM",
                        help="measure every finished export on ARM's test patches (its data "
                             "is built first, at --count, unless it is there), then stop")
    parser.add_argument("--summary", type=Path, default=None,
                        help="print the table of this v2_ablation.json and stop")
    args = parser.parse_args(argv)

    from tfrecap import jsonio

    if args.summary:
        record = json.loads(args.summary.read_text())
        print(arm_table(record), summary_table(record), sep="\n\n")
        return 0
    if args.out is None or args.data_dir is None:
        parser.error("--out and --data-dir are needed (or --summary)")
    if (args.originals is None) != (args.recaptured is None):
        parser.error("give both --originals and --recaptured, or neither")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for arm in arms:
        arm_params(arm)  # a bad arm fails before anything is built
    photos = (args.originals, args.recaptured) if args.originals else None
    path = args.out / "v2_ablation.json"
    record = json.loads(path.read_text()) if path.exists() else {"rows": []}
    if path.exists() and record_size(record) != args.size:
        parser.error(f"{path} holds {record_size(record)}-px arms; give --size "
                     f"{record_size(record)} or another --out")
    if args.size != PATCH_SIZE:
        record["patch_size"] = args.size
    if args.cross:
        arm_params(args.cross)
        if args.cross == CONTROL:
            parser.error("--cross control: every row is measured on the control's test "
                         "patches already (v2_test)")
        cross_test(record, out=args.out, data_dir=args.data_dir, arm=args.cross,
                   limit=args.limit, count=args.count, workers=args.workers)
        jsonio.write_json(path, record)
        return 0
    done = {(row["arm"], row["seed"]) for row in record["rows"]}
    if CONTROL not in arms and not any(arm == CONTROL for arm, _ in done):
        # Every arm is also measured on the control's test patches: build those first.
        arms.insert(0, CONTROL)
    for arm in arms:
        if (arm, args.seed) in done:
            print(f"{arm} seed {args.seed}: already in {path}")
            continue
        print(f"{arm} seed {args.seed}: {ARMS[arm][0]}", flush=True)
        row = run_arm(arm, out=args.out, data_dir=args.data_dir, count=args.count,
                      steps=args.steps, seed=args.seed, limit=args.limit, photos=photos,
                      workers=args.workers, size=args.size)
        record["rows"].append(row)
        jsonio.write_json(path, record)
        print(summary_table({"rows": [row]}).splitlines()[-1], flush=True)
    print(summary_table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
