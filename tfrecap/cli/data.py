"""`tfrecap data`: build, import, describe and look at recapture datasets.

Thin commands: each parses its options and calls `tfrecap.data`. TensorFlow is
imported inside the commands so that `--help` stays instant.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from tfrecap import LABEL_NAMES, jsonio
from tfrecap.cli.options import data_dir_option, dataset_option
from tfrecap.names import PATCH_SIZES, SYNTHETIC_SIZES

INFO_SCHEMA_VERSION = 1


@click.group("data")
def data():
    """Build, import, describe and preview recapture datasets (TFDS)."""


@contextlib.contextmanager
def _progress(desc: str, total: int | None, unit: str):
    """A tqdm bar on stderr; yields the `progress(n)` callback the library takes."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True) as bar:
        yield bar.update


def _warn(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"warning: {line}", file=sys.stderr)


def _quiet_tfds():
    import tensorflow_datasets as tfds

    # Our own bars show generation; TFDS's would add three more per split.
    tfds.disable_progress_bar()


@data.command("synth")
@click.option(
    "--size",
    type=click.Choice([str(s) for s in SYNTHETIC_SIZES]),
    default=str(SYNTHETIC_SIZES[0]),
    show_default=True,
    help="Patch size. Synthetic data stops at 128: bigger patches would need upsampling, "
    "itself a trace. Use `tfrecap data import` with real photos for 256 and 512.",
)
@click.option(
    "--count",
    type=click.IntRange(min=10),
    default=3000,
    show_default=True,
    help="Patches per class over all splits (split 40/10/50 by scene region).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed.")
@data_dir_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Simulator processes [default: all CPUs]. The data do not depend on it.",
)
@click.option(
    "--simulator",
    type=click.Choice(["v1", "v2"]),
    default="v1",
    show_default=True,
    help="Simulator version: v1 builds synthetic_{SIZE}; v2 (domain randomization at "
    "sensor resolution, dead-leaves scenes, messaging-app chains) builds synthetic_v2_{SIZE}.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Replace one simulator parameter (repeatable), e.g. --param glare_prob=0 or "
    "--param messaging_jpeg_quality=80,95: a variant, for ablations. Needs --dataset, so that "
    "the variant never replaces the built-in dataset.",
)
@click.option(
    "--dataset",
    default=None,
    help="Build under this name instead of synthetic_[v2_]SIZE (letters, digits, _ - .).",
)
@click.option("--force", is_flag=True, help="Rebuild even if the same dataset is already built.")
def synth(size, count, seed, data_dir, workers, simulator, params, dataset, force):
    """Simulate recaptures and build `synthetic_{SIZE}` (v1) or `synthetic_v2_{SIZE}` (v2).

    Size, count, seed and the simulator's parameters are the dataset's identity:
    running again with the same values reuses the dataset, with other values
    rebuilds it (atomically). A variant (--param, with --dataset NAME) records its
    parameters in the dataset's metadata (`tfrecap data info --dataset NAME`).

    \b
    Example (an ablation: v2 without glare, then Yang's baseline on it):
      tfrecap data synth --simulator v2 --count 6000 --param glare_prob=0 --dataset v2_no_glare
      tfrecap train --pipeline demo_baseline --dataset v2_no_glare
    """
    from tfrecap.data import builder, catalog, generate
    from tfrecap.data.simulator import PARAMS_BY_VERSION
    from tfrecap.data.simulator.overrides import (
        ParamOverrideError,
        parse_assignments,
        with_overrides,
    )

    if params and (not dataset or dataset in builder.SYNTHETIC_NAMES):
        raise click.UsageError("--param needs --dataset NAME, a name of your own: a variant is "
                               "built under it, never over a built-in dataset.")
    try:
        chosen = with_overrides(PARAMS_BY_VERSION[simulator], parse_assignments(params))
    except ParamOverrideError as err:
        raise click.BadParameter(str(err), param_hint="--param") from None
    try:
        config = builder.synthetic_config(int(size), count, seed, chosen, name=dataset)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--dataset") from None
    _quiet_tfds()
    total = 2 * sum(generate.split_counts(count).values())
    try:
        with _progress(f"Simulating {config.name}", total, "patch") as progress:
            result = catalog.build_dataset(
                config, data_dir, workers=workers, progress=progress, force=force
            )
    except catalog.DatasetConflictError as err:
        raise click.ClickException(str(err)) from None
    click.echo(result.message)


@data.command("import")
@click.option(
    "--originals",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of original photos, searched at any depth for files named "
    ".jpg, .jpeg, .png, .webp, .tif, .tiff or .bmp (any letter case); each is read as "
    "the JPEG, PNG, WebP, BMP or TIFF its content says it is.",
)
@click.option(
    "--recaptured",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of recaptured photos (photos of a screen). A file with the same relative "
    "path as an original (extension aside) is kept in the same split as it.",
)
@click.option(
    "--size",
    type=click.Choice([str(s) for s in PATCH_SIZES]),
    default=str(PATCH_SIZES[0]),
    show_default=True,
    help="Tile size S, one the detector trains on: each photo is cut into a grid of "
    "non-overlapping SxS tiles from its top-left corner, the same tiles `predict` judges.",
)
@data_dir_option
@dataset_option(None)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the 40/10/50 split by source photo.",
)
@click.option(
    "--max-tiles",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="At most this many tiles per photo, evenly spaced over it, so that one huge "
    "photo cannot dominate the dataset. `tfrecap train` exports the model with the "
    "same cap, so served models judge the tiles stored here.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Image-decoding threads [default: all CPUs]. The data do not depend on it.",
)
@click.option("--force", is_flag=True, help="Rebuild even if the same dataset is already built.")
def import_(originals, recaptured, size, data_dir, dataset, seed, max_tiles, workers, force):
    """Import your own originals and recaptures as dataset NAME (--dataset).

    Bad files (corrupt, truncated, not images, too small) are skipped with one
    warning each; grey, palette, RGBA, CMYK and 16-bit images are converted to 8-bit
    RGB, with one warning each. Photos are split 40/10/50 by photo, and every split
    gets both classes: at least 5 photos per class are needed. Fails when a folder is
    missing or empty, has no usable image, or holds too few photos.
    """
    from tfrecap.data import builder, catalog, folder

    size = int(size)

    if not dataset:
        raise click.UsageError("--dataset NAME is required: the name to give the import.")
    try:
        config = builder.folder_config(dataset, size, originals, recaptured, seed, max_tiles)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--dataset/--size") from None
    _quiet_tfds()
    try:
        if not force and catalog.is_built(config, data_dir):
            # Same folders, files, size and seed: skip decoding every photo again.
            meta = catalog.read_metadata(data_dir, dataset) or {}
            click.echo(f"Import summary: {meta.get('import', {}).get('summary')}", err=True)
            click.echo(f"{dataset}: already built in {catalog.dataset_dir(data_dir, dataset)}")
            return
        with _progress("Checking images", None, "file") as progress:
            scan = folder.scan_folders(
                config.originals,
                config.recaptured,
                size,
                workers=workers,
                progress=progress,
                warn=_warn,
            )
        click.echo(f"Import summary: {scan.summary()}", err=True)
        with _progress(f"Tiling into {dataset}", len(scan.records), "photo") as progress:
            result = catalog.build_dataset(
                config, data_dir, workers=workers, progress=progress, scan=scan, force=force
            )
    except (folder.FolderImportError, catalog.DatasetConflictError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(result.message)


def _simulator_changes(meta: dict) -> tuple[dict | None, str | None]:
    """A synthetic dataset's simulator parameters that differ from the committed ones of its
    version (empty for the built-in data), and the line `data info` prints of them; both None
    for an import."""
    from tfrecap.data.simulator import PARAMS_BY_VERSION
    from tfrecap.data.simulator.overrides import changed_fields

    saved = meta.get("simulator")
    identity = meta.get("identity", {})
    version = identity.get("simulator_version", 1)
    committed = PARAMS_BY_VERSION.get(f"v{version}")
    if saved is None or committed is None:
        return None, None
    changes = changed_fields(saved, committed)
    if changes:
        line = f"v{version} variant: " + ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
    elif identity.get("simulator_fingerprint") == committed.fingerprint():
        line = f"v{version}, committed parameters"
    else:  # same recorded fields, other hash: made before a field was added or changed
        line = (f"v{version}, stale: made by parameters {identity.get('simulator_fingerprint')}"
                f", not the committed {committed.fingerprint()}; rebuild it with --force")
    return changes, line


@data.command("info")
@data_dir_option
@dataset_option("synthetic_64")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with schema_version).")
def info(data_dir, dataset, as_json):
    """Examples per split and label, and what the dataset was built from."""
    from tfrecap.data import catalog, pipeline

    try:
        builder = catalog.load_builder(data_dir, dataset)
        counts = pipeline.count_examples(data_dir, dataset)
    except (catalog.DatasetNotFoundError, pipeline.CorruptShardError) as err:
        raise click.ClickException(str(err)) from None
    meta = catalog.read_metadata(data_dir, dataset) or {}
    identity = meta.get("identity", {})
    changes, simulator_line = _simulator_changes(meta)
    if as_json:
        out = {
            "schema_version": INFO_SCHEMA_VERSION,
            "dataset": dataset,
            "path": str(catalog.dataset_dir(data_dir, dataset)),
            "identity": identity,
            "examples": counts,
            "shards": {s: builder.info.splits[s].num_shards for s in counts},
            "import": meta.get("import"),
            "simulator_changes": changes,
        }
        click.echo(jsonio.dumps(out, sort_keys=True))
        return
    lines = {"dataset": dataset, "path": catalog.dataset_dir(data_dir, dataset)}
    for key in (
        "kind",
        "size",
        "count_per_class",
        "seed",
        "originals",
        "recaptured",
        "max_tiles_per_image",
    ):
        if key in identity:
            lines[key] = identity[key]
    if "import" in meta:
        lines["import"] = meta["import"]["summary"]
    if simulator_line is not None:
        lines["simulator"] = simulator_line
    for key, value in lines.items():
        click.echo(f"{key + ':':<21}{value}")
    header = (
        f"{'split':<11}{'shards':>7}" + "".join(f"{n:>12}" for n in LABEL_NAMES) + f"{'total':>9}"
    )
    click.echo(header)
    for split, row in counts.items():
        click.echo(
            f"{split:<11}{builder.info.splits[split].num_shards:>7}"
            + "".join(f"{row[n]:>12}" for n in LABEL_NAMES)
            + f"{row['total']:>9}"
        )


@data.command("preview")
@data_dir_option
@dataset_option("synthetic_64")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("preview.png"),
    show_default=True,
    help="Where to write the picture (PNG).",
)
@click.option("--split", default="test", show_default=True, help="Split to draw from.")
@click.option(
    "--n",
    type=click.IntRange(min=1, max=64),
    default=8,
    show_default=True,
    help="Examples per class (one column each).",
)
def preview(data_dir, dataset, output, split, n):
    """Save a picture of originals (top row) over recaptures (bottom row)."""
    from tfrecap.data import catalog, pipeline

    try:
        examples = pipeline.take_examples(data_dir, dataset, split, n)
    except (catalog.DatasetNotFoundError, pipeline.CorruptShardError) as err:
        raise click.ClickException(str(err)) from None
    except KeyError as err:
        raise click.ClickException(str(err.args[0])) from None
    from tfrecap.data.preview import save_preview_grid

    save_preview_grid(
        examples, output, f"{dataset} / {split}: original (top) vs recaptured (bottom)"
    )
    click.echo(f"Wrote {output}")
