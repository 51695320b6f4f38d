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
