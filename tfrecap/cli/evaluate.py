"""``tfrecap evaluate`` and ``tfrecap plot``: accuracy under attack, as tables, JSON and plots.

With ``--originals`` and ``--recaptured``, ``evaluate`` instead judges two labelled folders of
photos whole (:mod:`tfrecap.evaluation.images`), as ``predict`` does, and reports per-class
accuracy, balanced accuracy, ROC AUC and the operating point.

Names (attacks, losses, splits) come from the TensorFlow-free ``tfrecap.names``, so ``--help``
and an unknown name answer at once; TensorFlow is imported only once the arguments are valid.
"""

import json
import sys
from pathlib import Path

import click

from tfrecap.cli.options import (
    NONNEGATIVE_NUMBERS,
    attack_budget_options,
    attack_specs,
    data_dir_option,
    dataset_option,
    load_classifier,
    load_patch_dataset,
)
from tfrecap.names import ATTACK_NAMES, SPLITS


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


# The options only the patch/attack evaluation uses: given with --originals/--recaptured they
# would be ignored, so they are refused instead. (The name is kept for importers; --attack,
# --eps and the PGD options apply to whole images too.)
_ATTACK_ONLY = ("data_dir", "dataset", "split", "batch_size", "transfer_from", "jpeg_quality",
                "through_jpeg", "min_norm", "min_norm_limit", "min_norm_max",
                "no_unbounded_check")
# The options of a whole-image attack: with --originals/--recaptured they need --attack.
_WHOLE_IMAGE_ATTACK = ("eps", "pgd_steps", "pgd_step_size", "pgd_restarts", "loss",
                       "apgd_steps", "square_queries", "seed", "attack_limit")
_WHOLE_IMAGE_ONLY = ("attack_limit",)


def _given(ctx: click.Context, names) -> list[str]:
    """The long flags of the options in ``names`` that were given on the command line."""
    return [
        next(o for o in p.opts if o.startswith("--"))
        for p in ctx.command.params
        if p.name in names
        and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE
    ]


def _check_whole_image_options(ctx: click.Context, originals, recaptured) -> bool:
    """Whether the whole-image evaluation was asked for; usage errors for a bad mix."""
    if (originals is None) != (recaptured is None):
        given, missing = ("--originals", "--recaptured")[:: 1 if originals else -1]
        raise click.UsageError(f"{given} needs {missing} too: the whole-image evaluation "
                               "judges both folders, original and recaptured photos", ctx)
    if originals is None:
        whole_only = _given(ctx, _WHOLE_IMAGE_ONLY)
        if whole_only:
            raise click.UsageError(
                f"{', '.join(whole_only)} only applies to the whole-image evaluation "
                "(--originals/--recaptured with --attack); drop it", ctx)
        return False
    ignored = _given(ctx, _ATTACK_ONLY)
    if ignored:
        raise click.UsageError(
            f"{', '.join(ignored)} only apply to the patch/attack evaluation, not to "
            "--originals/--recaptured (whole images); drop them", ctx)
    if not _given(ctx, ("attacks",)) or not ctx.params.get("attacks"):
        unused = _given(ctx, _WHOLE_IMAGE_ATTACK)
        if unused:
            raise click.UsageError(
                f"{', '.join(unused)} need --attack with --originals/--recaptured (no "
                "attack is run on whole images without it); add --attack or drop them", ctx)
    return True


def _store_in_meta(ctx, param, value):
    # Kept out of evaluate()'s arguments: only the whole-image path reads it.
    ctx.meta[f"tfrecap.{param.name}"] = value
    return value


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--attack", "attacks", default="fgsm,llcm", show_default=True,
              callback=_attack_list,
              help="Comma-separated: " + ", ".join(ATTACK_NAMES) + "; or none. llcm is the "
              "paper's TGSM. auto is the AutoAttack-style ensemble: APGD-CE, then "
              "APGD-margin, then Square, each on the images still correct; an image counts "
              "as robust only if all three fail. It costs about 2 × --apgd-steps gradient "
              "passes plus up to --square-queries forward passes per robust image and ε "
              "(Square: seconds per unbroken image on a CPU); keep --limit small.")
@click.option("--eps", default="1,2,3,4,5", show_default=True, callback=NONNEGATIVE_NUMBERS,
              help="Comma-separated L∞ budgets in pixel levels.")
@data_dir_option
@dataset_option(default=None)
@click.option("--split", default="test", show_default=True,
              type=click.Choice(SPLITS))
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N images; with --originals/--recaptured, the first N image files "
              "of each folder.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@attack_budget_options
@click.option("--transfer-from", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Also make the attacks on this model and judge them on MODEL.")
@click.option("--jpeg-quality", type=click.IntRange(1, 100), default=None,
              help="Re-encode adversarial images as JPEG at this quality before judging them.")
@click.option("--min-norm", is_flag=True,
              help="Also find per image the smallest ε that flips its verdict (APGD-margin, "
              "--apgd-steps capped at 20, bisected over [0, --min-norm-max]); the report gives "
              "the median ε and the robustness curve at every whole level.")
@click.option("--min-norm-limit", type=click.IntRange(min=1), default=256, show_default=True,
              help="Images given to --min-norm (the first N).")
@click.option("--min-norm-max", type=click.FloatRange(min=0, min_open=True), default=16.0,
              show_default=True, help="Largest ε --min-norm tries, in levels.")
@click.option("--through-jpeg", is_flag=True,
              help="With --jpeg-quality Q: also make every attack through the JPEG round trip "
              "at Q (BPDA: real encoder forward, identity backward), shown as "
              "'<attack> (through jpeg)'. Both rows are judged after a real JPEG at Q; the "
              "lower one is the robust accuracy.")
@click.option("--no-unbounded-check", is_flag=True,
              help="Skip the ε = 255 PGD sanity check (256 images).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the full report (schema_version 1) here.")
@click.option("--label", default=None, help="Name of this model in plots.")
@click.option("--originals", type=click.Path(path_type=Path), default=None,
              help="Folder of original photos (as in `data import`, any depth). With "
              "--recaptured: evaluate whole images instead of patches under attack.")
@click.option("--recaptured", type=click.Path(path_type=Path), default=None,
              help="Folder of recaptured photos (photos of a screen); needs --originals.")
@click.option("--attack-limit", type=click.IntRange(min=1), default=None, expose_value=False,
              callback=_store_in_meta,
              help="With --originals/--recaptured and --attack: attack at most N judged photos "
              "per class, the first in sorted order (default 50; a photo costs seconds).")
def evaluate(model, attacks, eps, data_dir, dataset, split, limit, batch_size, pgd_steps,
             pgd_step_size, pgd_restarts, loss, apgd_steps, square_queries, seed,
             transfer_from, jpeg_quality, min_norm, min_norm_limit, min_norm_max, through_jpeg,
             no_unbounded_check, json_path, label, originals, recaptured):
    """Accuracy of an exported MODEL under attack, with 95% intervals and masking checks.

    MODEL is an export folder: saved_models/NAME (the highest version is used) or
    saved_models/NAME/VERSION. Attacks use its `logits` signature, never the
    probabilities. The dataset defaults to the one the model was trained on.

    With --originals DIR --recaptured DIR it judges your own labelled photos instead:
    each image file under either folder, at any depth, gets a whole-image verdict
    from the `classify_images` signature, exactly as `tfrecap predict` gives it. It
    reports per class the photos, the correct ones and the accuracy with a 95% Wilson
    interval, then balanced accuracy, ROC AUC, the threshold used (the one stored in
    the export, else 0.5) and the skipped files (unreadable, corrupt, smaller than
    the patch). --limit (the first N image files per class, in sorted order), --json
    and --label apply then; the dataset options are refused.

    Add --attack (and --eps, --pgd-steps, --pgd-step-size, --pgd-restarts, --loss) to
    attack those photos whole: one perturbation on each decoded photo, through the
    export's scaling, tiling and stored verdict, against the stored threshold. Each
    adversarial photo is saved as PNG (lossless) and judged by `classify_images`, so a
    tile flip that does not flip the verdict is no success. It reports whole-image
    robust accuracy per class with 95% Wilson intervals, and balanced, for the first
    --attack-limit judged photos per class (default 50). Synthetic full images:
    `python scripts/experiments/synthetic_photo_folders.py OUT` writes folders to
    evaluate the same way.

    \b
    Examples:
      tfrecap evaluate saved_models/demo --attack llcm --eps 1,2,3,4,5
      tfrecap evaluate saved_models/demo --attack fgsm,llcm,pgd --limit 500 --json demo.json
      tfrecap evaluate saved_models/demo --attack pgd,auto --eps 2,4 --limit 200
      tfrecap evaluate saved_models/demo --attack fgsm --transfer-from saved_models/demo_baseline
      tfrecap evaluate saved_models/demo --originals photos/direct --recaptured photos/screens
      tfrecap evaluate saved_models/demo --originals photos/direct --recaptured photos/screens \\
        --attack pgd --eps 2,4 --attack-limit 20 --json whole.json
    """
    if _check_whole_image_options(click.get_current_context(), originals, recaptured):
        _evaluate_images(model, originals, recaptured, limit, json_path, label)
        return
    if through_jpeg and jpeg_quality is None:
        raise click.UsageError("--through-jpeg needs --jpeg-quality Q: the quality to attack "
                               "through and to judge after")
    import tensorflow as tf

    from tfrecap import jsonio
    from tfrecap.evaluation import evaluate as run_evaluation
    from tfrecap.evaluation import format_table
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
    data, num_images, data_patch = load_patch_dataset(data_dir, dataset, split, batch_size)
    if patch is not None and data_patch is not None and patch != data_patch:
        raise click.ClickException(
            f"{version_dir} takes {patch}x{patch} patches but dataset {dataset!r} has "
            f"{data_patch}x{data_patch}; pass --dataset with the right patch size"
        )

    specs = attack_specs(attacks, click.get_current_context().params)
    report = run_evaluation(
        loaded, data, specs, eps,
        transfer_model=tf.saved_model.load(str(source_dir)) if source_dir else None,
        transfer_name=str(source_dir) if source_dir else None,
        jpeg_quality=jpeg_quality, through_jpeg_attacks=through_jpeg, limit=limit,
        min_norm={"eps_max": min_norm_max, "steps": min(apgd_steps, 20), "seed": seed}
        if min_norm else None,
        min_norm_limit=min_norm_limit,
        unbounded_check=not no_unbounded_check,
        progress=True, num_images=num_images,
        meta={"model": str(model), "model_version": version_dir.name, "label": label
              or Path(model).name, "dataset": dataset, "patch_size": patch, "split": split},
    )
    click.echo(format_table(report, patch_size=patch))
    if json_path:
        jsonio.write_json(json_path, report.to_json_dict())
        click.echo(f"Wrote {json_path}")


def _whole_image_attacks(ctx: click.Context) -> list:
    """The attacks asked for with --originals/--recaptured (none without --attack)."""
    if not _given(ctx, ("attacks",)):
        return []
    return attack_specs(ctx.params["attacks"], ctx.params)


def _evaluate_images(model, originals, recaptured, limit, json_path, label):
    """``evaluate --originals --recaptured``: whole-image verdicts on two labelled folders,
    and with ``--attack`` whole-image robust accuracy."""
    from tfrecap.evaluation import images

    ctx = click.get_current_context()
    specs = _whole_image_attacks(ctx)

    # Folder errors (FolderImportError: one `Error:` line) come before TensorFlow loads.
    folders = (images.collect_folder(originals, 0, limit),
               images.collect_folder(recaptured, 1, limit))

    from tqdm import tqdm

    from tfrecap import jsonio

    version_dir, loaded = load_classifier(model)
    patch = (loaded.signatures["logits"].structured_input_signature[1]["images"].shape[1]
             if "logits" in loaded.signatures else None)
    total = sum(len(f.images) for f in folders)
    meta = {"model": str(model), "model_version": version_dir.name,
            "label": label or Path(model).name, "patch_size": patch}
    warn = lambda line: tqdm.write(f"warning: {line}", file=sys.stderr)  # noqa: E731
    # disable=None: no bar when stderr is not a terminal (logs, pipes, tests).
    with tqdm(total=total, desc="Judging photos", unit="photo", file=sys.stderr,
              dynamic_ncols=True, disable=None) as bar:
        if not specs:
            report = images.evaluate_folders(
                loaded.signatures["classify_images"], originals, recaptured, limit=limit,
                folders=folders, progress=bar.update, warn=warn, meta=meta)
        else:
            report = _attack_images(images, loaded, version_dir, folders, specs, ctx, limit,
                                    meta, bar, warn, tqdm)
    click.echo(f"Whole-image verdicts of {version_dir}")
    click.echo(report.format_table())
    if json_path:
        jsonio.write_json(json_path, report.to_json_dict())
        click.echo(f"Wrote {json_path}")


def _attack_images(images, loaded, version_dir, folders, specs, ctx, limit, meta, bar, warn,
                   tqdm):
    """The whole-image evaluation under attack, with a second bar for the attacks."""
    from tfrecap.export import load_verdict

    if "logits" not in loaded.signatures:
        raise click.ClickException(f"{version_dir} has no `logits` signature to attack; "
                                   "re-export it with this version")
    attack_limit = ctx.meta.get("tfrecap.attack_limit") or images.DEFAULT_ATTACK_LIMIT
    eps = ctx.params["eps"]
    judged = [min(len(f.images), attack_limit) for f in folders]
    try:
        verdict = load_verdict(version_dir)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    with tqdm(total=sum(judged) * len(specs) * len(eps), desc="Attacking photos",
              unit="attack", file=sys.stderr, dynamic_ncols=True, disable=None) as attack_bar:
        return images.evaluate_folders_under_attack(
            loaded, None, None, specs, eps, verdict=verdict, limit=limit,
            attack_limit=attack_limit, folders=folders, progress=bar.update,
            attack_progress=attack_bar.update, warn=warn,
            meta={**meta, "verdict": verdict.to_dict()})


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
