"""``tfrecap audit MODEL``: tfrecap's evaluation of a detector tfrecap did not make.

The model is adapted by :mod:`tfrecap.audit.adapter` (pixel range, output kind, recaptured
index, patch size S; checked at load time), then judged by the very loop of ``tfrecap
evaluate`` (:func:`tfrecap.evaluation.evaluate`): clean metrics, the attacks asked for and the
sanity checks, printed as the same tables and written as the same JSON, with an ``audit``
block in its meta. The data are a tfrecap TFDS dataset of S×S patches, or two labelled
folders of photos cut into S×S tiles by the one tiling rule (:mod:`tfrecap.audit.folders`).
"""

from pathlib import Path

import click

from tfrecap.audit import INPUT_RANGES, OUTPUT_KINDS
from tfrecap.cli.evaluate import _attack_list
from tfrecap.cli.options import (
    NONNEGATIVE_NUMBERS,
    attack_budget_options,
    attack_specs,
    data_dir_option,
    dataset_option,
    load_patch_dataset,
)
from tfrecap.names import SPLITS

_DATASET_ONLY = ("data_dir", "dataset", "split")


def _use_folders(ctx: click.Context, originals, recaptured) -> bool:
    """Whether the data are two folders; usage errors for half a pair or a mix with --dataset."""
    if (originals is None) != (recaptured is None):
        given, missing = ("--originals", "--recaptured")[:: 1 if originals else -1]
        raise click.UsageError(f"{given} needs {missing} too: the audit labels tiles by "
                               "their folder, original or recaptured", ctx)
    if originals is None:
        return False
    mixed = [
        next(o for o in p.opts if o.startswith("--"))
        for p in ctx.command.params
        if p.name in _DATASET_ONLY
        and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE
    ]
    if mixed:
        raise click.UsageError(f"{', '.join(mixed)} choose a TFDS dataset; with "
                               "--originals/--recaptured the data are the folders: drop them",
                               ctx)
    return True


@click.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--signature", default=None,
              help="SavedModel signature to judge.  [default: serving_default]")
@click.option("--input-key", default=None,
              help="The signature's image input, when it has several.")
@click.option("--output-key", default=None,
              help="The signature's output to judge, when it has several.")
@click.option("--input-range", type=click.Choice(INPUT_RANGES), default="0-255",
              show_default=True, help="Pixel range the model expects; ours is mapped onto it.")
@click.option("--output", "output_kind", type=click.Choice(OUTPUT_KINDS), default="logits",
              show_default=True,
              help="What the model returns: C ≥ 2 logits, C ≥ 2 probabilities, or one sigmoid.")
@click.option("--recaptured-index", type=click.IntRange(min=0), default=1, show_default=True,
              help="Which output means recaptured; with sigmoid, 1 if it is P(recaptured), "
              "0 if P(original).")
@click.option("--patch-size", type=click.IntRange(min=1), default=None,
              help="S, for a model that takes images of any size.")
@data_dir_option
@dataset_option(default=None)
@click.option("--split", default="test", show_default=True, type=click.Choice(SPLITS))
@click.option("--originals", type=click.Path(path_type=Path), default=None,
              help="Folder of original photos (any depth), cut into S×S tiles; needs "
              "--recaptured.")
@click.option("--recaptured", type=click.Path(path_type=Path), default=None,
              help="Folder of recaptured photos (photos of a screen); needs --originals.")
@click.option("--attack", "attacks", default="auto", show_default=True, callback=_attack_list,
              help="Comma-separated attack names (as for evaluate), or none.")
@click.option("--eps", default="1,2,3,4,5", show_default=True, callback=NONNEGATIVE_NUMBERS,
              help="Comma-separated L∞ budgets in pixel levels.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N patches (tiles); from folders the classes alternate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@attack_budget_options
@click.option("--no-unbounded-check", is_flag=True,
              help="Skip the ε = 255 PGD sanity check (256 images).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the full report (the schema of evaluate --json) here.")
@click.option("--label", default=None, help="Name of this model in plots.")
def audit(model, signature, input_key, output_key, input_range, output_kind, recaptured_index,
          patch_size, data_dir, dataset, split, originals, recaptured, attacks, eps, limit,
          batch_size, pgd_steps, pgd_step_size, pgd_restarts, loss, apgd_steps, square_queries,
          seed, no_unbounded_check, json_path, label):
    """Audit any detector: accuracy under attack, with 95% intervals and masking checks.

    MODEL is a SavedModel directory (any signature: --signature, --input-key,
    --output-key) or a .keras file. Say which pixel range it takes (--input-range)
    and what it returns (--output, --recaptured-index): the audit maps our pixels
    in [0, 255] onto its range inside the graph and turns its output into two
    logits (class 1 = recaptured), so the attacks differentiate through it. They
    attack the pre-sigmoid or pre-softmax logits of a .keras model that ends in
    that activation; probabilities are inverted to a logit margin otherwise.

    The data are a tfrecap dataset of S×S patches (--data-dir, --dataset, by
    default synthetic_S, --split), or two labelled folders (--originals,
    --recaptured) whose photos are cut into S×S tiles as `classify_images` cuts
    them; unreadable files are skipped and listed. The output is that of
    `tfrecap evaluate`: tables and, with --json, the same report with an "audit"
    block.

    \b
    Examples:
      tfrecap audit model.keras --input-range 0-1 --output sigmoid --dataset synthetic_64 \\
          --attack pgd --eps 2 --limit 128 --json audit.json
      tfrecap audit exported/ --signature serving_default --output-key probs \\
          --output probabilities --originals photos/direct --recaptured photos/screens
    """
    folders = _use_folders(click.get_current_context(), originals, recaptured)

    from tfrecap import jsonio
    from tfrecap.audit.adapter import AuditError, load_audited_model
    from tfrecap.evaluation import evaluate as run_evaluation
    from tfrecap.evaluation import format_table

    try:
        audited = load_audited_model(
            model, signature=signature, input_key=input_key, output_key=output_key,
            input_range=input_range, output=output_kind, recaptured_index=recaptured_index,
            patch_size=patch_size)
    except AuditError as err:
        raise click.ClickException(str(err)) from None
    size = audited.patch_size
    if folders:
        data, tiles, num_images, data_meta = _folder_data(originals, recaptured, size,
                                                          batch_size)
    else:
        dataset = dataset or f"synthetic_{size}"
        data, num_images = _tfds_data(data_dir, dataset, split, batch_size, size)
        tiles, data_meta = None, {"source": "dataset", "data_dir": str(data_dir),
                                  "dataset": dataset, "split": split}
    report = run_evaluation(
        audited, data, attack_specs(attacks, click.get_current_context().params), eps, limit=limit,
        unbounded_check=not no_unbounded_check, progress=True, num_images=num_images,
        meta={"model": str(model), "label": label or Path(model).stem, "patch_size": size,
              **({"dataset": dataset, "split": split} if not folders else {}),
              "audit": dict(audited.meta)},
    )
    if tiles is not None:
        data_meta = tiles.summary()
    report.meta["audit"]["data"] = data_meta
    click.echo(f"Audit of {audited.meta['model']} ({audited.meta['format']}; input "
               f"{input_range}, output {output_kind}, recaptured index {recaptured_index}, "
               f"{size}x{size}); attacked: {audited.meta['attacked']}")
    click.echo(_data_line(data_meta))
    click.echo(format_table(report, patch_size=size))
    if json_path:
        jsonio.write_json(json_path, report.to_json_dict())
        click.echo(f"Wrote {json_path}")


def _tfds_data(data_dir, dataset, split, batch_size, size):
    """A tfrecap TFDS dataset, as ``evaluate`` reads it; its patches must be S×S."""
    data, num_images, data_patch = load_patch_dataset(data_dir, dataset, split, batch_size)
    if data_patch != size:
        raise click.ClickException(
            f"the model takes {size}x{size} patches but dataset {dataset!r} has "
            f"{data_patch}x{data_patch}; pass --dataset with {size}x{size} patches, or "
            "--originals/--recaptured folders")
    return data, num_images


def _folder_data(originals, recaptured, size, batch_size):
    """Two labelled folders as tiles; folder errors are one ``Error:`` line."""
    from tfrecap.audit.folders import FolderTiles
    from tfrecap.data.folder import FolderImportError

    try:
        tiles = FolderTiles.collect(originals, recaptured, size)
    except FolderImportError as err:
        raise click.ClickException(str(err)) from None
    return tiles.dataset(batch_size), tiles, None, tiles.summary()


def _data_line(data_meta: dict) -> str:
    if data_meta["source"] == "dataset":
        return (f"Data: dataset {data_meta['dataset']!r}, split {data_meta['split']!r} "
                f"in {data_meta['data_dir']}")
    photos, tiles = data_meta["photos_read"], data_meta["tiles_read"]
    line = (f"Data: folders {data_meta['originals']} (original) and "
            f"{data_meta['recaptured']} (recaptured), cut into tiles by rule "
            f"{data_meta['tiling_rule']}: "
            + ", ".join(f"{photos[k]} {k} photos ({tiles[k]} tiles)" for k in photos)
            + " read")
    skipped = data_meta["skipped"]
    if skipped:
        line += f"; skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''}:" + "".join(
            f"\n  {s['path']} ({s['class']}): {s['reason']}" for s in skipped)
    return line
