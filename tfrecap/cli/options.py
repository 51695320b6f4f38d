"""Click options shared by every command (DESIGN.md, "One vocabulary")."""

import math
import os
from pathlib import Path

import click

DEFAULT_DATA_DIR = os.environ.get(
    "TFRECAP_DATA_DIR", str(Path("~/tensorflow_datasets").expanduser())
)

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Where the TFDS datasets live (env: TFRECAP_DATA_DIR).",
)


def dataset_option(default="synthetic_64"):
    return click.option(
        "--dataset",
        default=default,
        show_default=True,
        help="Dataset config: synthetic_64, synthetic_128, or a name given at import.",
    )


def comma_separated(cast, what: str, *, allow_zero: bool):
    """A click callback parsing ``"1,2,3"`` into a tuple; ``None`` passes through.

    Args:
        cast: ``int`` or ``float``.
        what: how the values are named in the error, e.g. "numbers".
        allow_zero: whether 0 is accepted (negative values never are).
    """

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            values = tuple(cast(v) for v in value.split(",") if v.strip())
        except ValueError:
            raise click.BadParameter(f"expected comma-separated {what}, got {value!r}") from None
        if not values or any(
            not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero) for v in values
        ):
            sign = "nonnegative" if allow_zero else "positive"
            raise click.BadParameter(f"expected finite {sign} {what}, got {value!r}")
        return values

    return callback


NONNEGATIVE_NUMBERS = comma_separated(float, "numbers", allow_zero=True)
POSITIVE_NUMBERS = comma_separated(float, "numbers", allow_zero=False)
POSITIVE_INTEGERS = comma_separated(int, "integers", allow_zero=False)


def load_classifier(model: Path):
    """``(version_dir, loaded SavedModel)`` of an export with a ``classify_images`` signature.

    Shared by ``predict`` and ``evaluate --originals/--recaptured``: a folder that holds no
    export, or an export without the signature, is one clear error. TensorFlow is imported
    here, only once a command's arguments are valid.
    """
    import tensorflow as tf

    from tfrecap.export import latest_version_dir

    try:
        version_dir = latest_version_dir(model)
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from None
    loaded = tf.saved_model.load(str(version_dir))
    if "classify_images" not in loaded.signatures:
        raise click.ClickException(
            f"{version_dir} has no `classify_images` signature; re-export it with this version"
        )
    return version_dir, loaded
