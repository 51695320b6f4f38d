"""Click options shared by every command (DESIGN.md, "One vocabulary")."""

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
