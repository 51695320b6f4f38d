"""Click options shared by every command (DESIGN.md, "One vocabulary")."""

import math
import os
from pathlib import Path

import click

from tfrecap.names import ATTACK_LOSSES

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


def attack_budget_options(command):
    """The attack budgets that `evaluate` and `audit` share: PGD's, APGD's, Square's, the seed.

    ``attack_specs`` turns them into one AttackSpec per attack, each with only its own.
    """
    for option in reversed(_ATTACK_BUDGET_OPTIONS):
        command = option(command)
    return command


_ATTACK_BUDGET_OPTIONS = (
    click.option("--pgd-steps", type=click.IntRange(min=1), default=10, show_default=True),
    click.option("--pgd-step-size", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="PGD step in pixel levels. Default: 2.5·ε/steps."),
    click.option("--pgd-restarts", type=click.IntRange(min=1), default=1, show_default=True,
                 help="PGD runs per image; the one that fools the model is kept. Restart 0 "
                 "starts at x, the others at random points of the ε-ball."),
    click.option("--loss", type=click.Choice(ATTACK_LOSSES), default="margin", show_default=True,
                 help="Loss of pgd and apgd: the logit margin (does not saturate) or "
                 "cross-entropy (auto runs APGD with both)."),
    click.option("--apgd-steps", type=click.IntRange(min=1), default=100, show_default=True,
                 help="APGD iterations, for apgd and for auto's two APGD members."),
    click.option("--square-queries", type=click.IntRange(min=1), default=5000, show_default=True,
                 help="Square's model queries per image, for square and for auto's Square."),
    click.option("--seed", type=click.IntRange(0, 2**62 - 1), default=0, show_default=True,
                 help="Seed of the random draws of apgd, square and auto (per image, keyed by "
                 "its index in the split: the same image gets the same draws in every run)."),
)


def attack_specs(attacks, p: dict) -> list:
    """One AttackSpec per attack name, each with only its own options from the command line.

    --pgd-* are PGD's; --loss is PGD's and APGD's (auto runs APGD with both losses);
    --apgd-steps, --square-queries and --seed reach apgd, square and auto.
    """
    from tfrecap.evaluation.report import AttackSpec

    pgd_params = {"steps": p["pgd_steps"], "restarts": p["pgd_restarts"], "loss": p["loss"],
                  **({"step_size": p["pgd_step_size"]} if p["pgd_step_size"] is not None
                     else {})}
    params = {"pgd": pgd_params,
              "apgd": {"steps": p["apgd_steps"], "loss": p["loss"], "seed": p["seed"]},
              "square": {"queries": p["square_queries"], "seed": p["seed"]},
              "auto": {"apgd_steps": p["apgd_steps"], "square_queries": p["square_queries"],
                       "seed": p["seed"]}}
    return [AttackSpec(name, params.get(name, {})) for name in attacks]



def load_patch_dataset(data_dir, dataset: str, split: str, batch_size: int):
    """`(batches, example count, patch size)` of a tfrecap dataset split, read in order as
    `evaluate` and `audit` read it; a missing dataset or split is a one-line click error."""
    from tfrecap.data.catalog import DatasetNotFoundError, load_builder
    from tfrecap.data.pipeline import make_dataset

    try:
        data = make_dataset(data_dir, dataset, split, batch_size, training=False)
        num_images = load_builder(data_dir, dataset).info.splits[split].num_examples
    except DatasetNotFoundError as err:
        raise click.ClickException(str(err)) from None
    except KeyError:
        raise click.ClickException(f"dataset {dataset!r} in {data_dir} has no {split!r} "
                                   "split") from None
    return data, num_images, data.element_spec[0].shape[1]
