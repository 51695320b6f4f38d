"""``tfrecap predict``: whole-image verdicts from an exported model's ``classify_images``."""

from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results (schema_version 1) here.")
def predict(model, images, json_path):
    """Judge each IMAGE as original or recaptured with an exported MODEL.

    IMAGE may be JPEG, PNG, WebP, BMP or TIFF, told apart by the file's content, not
    its name (a WebP named .jpg works), and decoded and tiled exactly as `tfrecap data
    import` does. Images converted to 8-bit RGB (16-bit, CMYK, ...) get a warning.

    MODEL is an export folder: saved_models/NAME (the highest version is used) or
    saved_models/NAME/VERSION. Each image must be at least S×S, the model's patch
    size. In exports of this version a photo whose long side exceeds 1024 px is
    first downscaled to 1024 (never upsampled); the verdict aggregates the
    recaptured probabilities of a grid of S×S tiles (at most the cap the model's
    data was imported with, 64 by default, evenly spaced) by the export's stored
    rule, and calls the photo
    recaptured at or above the stored threshold (the mean and 0.5 unless the
    pipeline calibrated them). One line per image: path, verdict, probability,
    tiles. A file that is missing or is not a usable image gets an error line and
    the others are still judged; the exit status is non-zero only if no image could
    be judged.

    \b
    Examples:
      tfrecap predict saved_models/demo photo.jpg screen_shot.png
      tfrecap predict saved_models/demo/3 photos/*.jpg --json verdicts.json
    """
    from tfrecap.cli.options import load_classifier
    from tfrecap.export import classify_files
    from tfrecap.jsonio import write_json

    version_dir, loaded = load_classifier(model)
    results = classify_files(
        loaded.signatures["classify_images"], images,
        warn=lambda line: click.echo(f"warning: {line}", err=True),
    )
    for r in results:
        if "error" in r:
            click.echo(f"{r['path']}\terror: {r['error']}", err=True)
        else:
            click.echo(f"{r['path']}\t{r['label']}\tp={r['recaptured_probability']:.4f}"
                       f"\t{r['patch_count']} tiles")
    if json_path:
        report = {"schema_version": 1, "model": str(model), "model_version": version_dir.name,
                  "results": results}
        write_json(json_path, report)
        click.echo(f"Wrote {json_path}", err=True)
    if not any("error" not in r for r in results):
        raise click.ClickException(f"no image could be judged ({len(results)} failed)")
