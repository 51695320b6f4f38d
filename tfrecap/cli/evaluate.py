"""``tfrecap evaluate`` and ``tfrecap plot``: accuracy under attack, as tables, JSON and plots.

Names (attacks, losses, splits) come from the TensorFlow-free ``tfrecap.names``, so ``--help``
and an unknown name answer at once; TensorFlow is imported only once the arguments are valid.
"""

import json
from pathlib import Path

import click

from tfrecap.cli.options import NONNEGATIVE_NUMBERS, data_dir_option, dataset_option
from tfrecap.names import ATTACK_LOSSES, ATTACK_NAMES, SPLITS


def _attack_list(ctx, param, value):
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in ATTACK_NAMES]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown attack {', '.join(unknown) or value!r}; known: "
            f"{', '.join(sorted(ATTACK_NAMES))}, or none"
        )
    return names


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--attack", "attacks", default="fgsm,llcm", show_default=True,
              callback=_attack_list,
              help="Comma-separated: fgsm, llcm (the paper's TGSM), pgd; or none.")
@click.option("--eps", default="1,2,3,4,5", show_default=True, callback=NONNEGATIVE_NUMBERS,
              help="Comma-separated L∞ budgets in pixel levels.")
@data_dir_option
@dataset_option(default=None)
@click.option("--split", default="test", show_default=True,
              type=click.Choice(SPLITS))
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N images.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--pgd-steps", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--pgd-step-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="PGD step in pixel levels. Default: 2.5·ε/steps.")
@click.option("--pgd-restarts", type=click.IntRange(min=1), default=1, show_default=True,
              help="PGD runs per image; the one that fools the model is kept. Restart 0 "
              "starts at x, the others at random points of the ε-ball.")
@click.option("--loss", type=click.Choice(ATTACK_LOSSES), default="margin", show_default=True,
              help="PGD loss: the logit margin (does not saturate) or cross-entropy.")
@click.option("--transfer-from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Also make the attacks on this model and judge them on MODEL.")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=None,
              help="Re-encode adversarial images as JPEG at this quality before judging them.")
@click.option("--no-unbounded-check", is_flag=True,
              help="Skip the ε = 255 PGD sanity check (256 images).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the full report (schema_version 1) here.")
@click.option("--label", default=None, help="Name of this model in plots.")
def evaluate(model, attacks, eps, data_dir, dataset, split, limit, batch_size, pgd_steps,
             pgd_step_size, pgd_restarts, loss, transfer_from, jpeg_quality,
             no_unbounded_check, json_path, label):
    """Accuracy of an exported MODEL under attack, with 95% intervals and masking checks.

    MODEL is an export folder: saved_models/NAME (the highest version is used) or
    saved_models/NAME/VERSION. Attacks use its `logits` signature, never the
    probabilities. The dataset defaults to the one the model was trained on.

    \b
    Examples:
      tfrecap evaluate saved_models/demo --attack llcm --eps 1,2,3,4,5
      tfrecap evaluate saved_models/demo --attack fgsm,llcm,pgd --limit 500 --json demo.json
      tfrecap evaluate saved_models/demo --attack fgsm --transfer-from saved_models/demo_baseline
    """
    import tensorflow as tf

    from tfrecap import jsonio
    from tfrecap.data.catalog import DatasetNotFoundError, load_builder
    from tfrecap.data.pipeline import make_dataset
    from tfrecap.evaluation import AttackSpec, format_table
    from tfrecap.evaluation import evaluate as run_evaluation
    from tfrecap.export import latest_version_dir, load_config_asset

    try:
        version_dir = latest_version_dir(model)
        source_dir = latest_version_dir(transfer_from) if transfer_from else None
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    trained = load_config_asset(version_dir)
    dataset = dataset or trained.get("data", {}).get("dataset") or "synthetic_64"
    loaded = tf.saved_model.load(str(version_dir))
    if "logits" not in loaded.signatures:
        raise click.ClickException(f"{version_dir} has no `logits` signature; re-export it")
    patch = loaded.signatures["logits"].structured_input_signature[1]["images"].shape[1]
    try:
        data = make_dataset(data_dir, dataset, split, batch_size, training=False)
        num_images = load_builder(data_dir, dataset).info.splits[split].num_examples
    except DatasetNotFoundError as err:
        raise click.ClickException(str(err)) from None
    except KeyError:
        raise click.ClickException(f"dataset {dataset!r} in {data_dir} has no {split!r} "
                                   "split") from None
    data_patch = data.element_spec[0].shape[1]
    if patch is not None and data_patch is not None and patch != data_patch:
        raise click.ClickException(
            f"{version_dir} takes {patch}x{patch} patches but dataset {dataset!r} has "
            f"{data_patch}x{data_patch}; pass --dataset with the right patch size"
        )

    pgd_params = {"steps": pgd_steps, "restarts": pgd_restarts, "loss": loss,
                  **({"step_size": pgd_step_size} if pgd_step_size is not None else {})}
    specs = [AttackSpec(name, pgd_params if name == "pgd" else {}) for name in attacks]
    report = run_evaluation(
        loaded, data, specs, eps,
        transfer_model=tf.saved_model.load(str(source_dir)) if source_dir else None,
        transfer_name=str(source_dir) if source_dir else None,
        jpeg_quality=jpeg_quality, limit=limit, unbounded_check=not no_unbounded_check,
        progress=True, num_images=num_images,
        meta={"model": str(model), "model_version": version_dir.name, "label": label
              or Path(model).name, "dataset": dataset, "patch_size": patch, "split": split},
    )
    click.echo(format_table(report, patch_size=patch))
    if json_path:
        jsonio.write_json(json_path, report.to_json_dict())
        click.echo(f"Wrote {json_path}")


@click.command()
@click.argument("results", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write.")
@click.option("--title", default=None)
def plot(results, output, title):
    """Accuracy against ε from one or more `tfrecap evaluate --json` files.

    \b
    Example (baseline against the secure model):
      tfrecap plot baseline.json secure.json --output robustness.png
    """
    from tfrecap.evaluation import check_report, plot_results

    parsed = []
    for path in results:
        try:
            parsed.append(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise click.ClickException(f"{path} is not valid JSON: {err}") from None
        except UnicodeDecodeError:
            raise click.ClickException(f"{path} is not a text file, so not JSON") from None
        try:
            check_report(parsed[-1], str(path))
        except ValueError as err:
            raise click.ClickException(str(err)) from None
    try:
        plot_results(parsed, output, title=title)
    except (KeyError, ValueError) as err:
        raise click.ClickException(f"cannot plot {', '.join(map(str, results))}: {err}") from None
    click.echo(f"Wrote {output}")
