"""``tfrecap reproduce``: the paper's Section 4 (Tables 1–3) end to end, with a report."""

import dataclasses
import shlex
from pathlib import Path

import click
from click.core import ParameterSource

from tfrecap.cli.options import POSITIVE_INTEGERS, POSITIVE_NUMBERS, data_dir_option


def _command_line(ctx: click.Context) -> str:
    """The command as the user gave it (options from the command line or environment)."""
    words = ["tfrecap", ctx.info_name or "reproduce"]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        value = ctx.params.get(param.name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        if isinstance(param, click.Option) and param.is_flag:
            words += [param.opts[0]] if value else []
        elif value is not None:
            text = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) \
                if isinstance(value, tuple) else str(value)
            words += [param.opts[0], text]
    return shlex.join(words)


@click.command()
@click.option("--profile", type=click.Choice(["demo", "paper"]), default="demo",
              show_default=True,
              help="demo: 64×64 synthetic data, CPU demo pipelines (demo_baseline/demo), "
              "≤ 20 min on 2 cores. paper: yang2016_S/secure_S, 100k steps, all four sizes "
              "(a GPU job; 256 and 512 need imported real photos).")
@click.option("--sizes", callback=POSITIVE_INTEGERS, default=None,
              help="Comma-separated patch sizes [demo: 64; paper: 64,128,256,512].")
@data_dir_option
@click.option("--dataset", default=None,
              help="Dataset for every size instead of the pipelines' own (synthetic_64, "
              "synthetic_128, real_256, real_512). {size} is replaced by the size, e.g. "
              "mine_{size}.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Runs, exports, results and report.md go here [default: "
              "reproduction/PROFILE]. Rerunning resumes training and reuses finished work.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps instead of the pipelines' (demo 1500, paper 100000).")
@click.option("--count", type=click.IntRange(min=10), default=None,
              help="Synthetic patches per class when synthetic data is built [3000].")
@click.option("--seed", type=int, default=None, help="Synthetic data seed [0].")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train every model with N training seeds (the pipelines' [train] seed + "
              "0..N-1) on the same data; every cell becomes the mean with its min–max range, "
              "and summary.json keeps the per-seed values. Seeds after the first write to "
              "OUTPUT/seed_S/.")
@click.option("--eps", callback=POSITIVE_NUMBERS, default=None,
              help="FGSM/LLCM budgets in pixel levels [1,2,3,4,5].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="FGSM/LLCM on at most N test patches [the whole test split].")
@click.option("--pgd-eps", callback=POSITIVE_NUMBERS, default=None,
              help="PGD budgets [demo: 1,3,5; paper: 1,2,3,4,5].")
@click.option("--pgd-limit", type=click.IntRange(min=0), default=None,
              help="PGD on the first N test patches; 0 = all [demo: 500; paper: 1000].")
@click.option("--pgd-steps", type=click.IntRange(min=1), default=None, help="PGD steps [10].")
@click.option("--widths", callback=POSITIVE_INTEGERS, default=None,
              help="Advanced (tests, quick looks): the 5 LaplacianCNN widths instead of the "
              "pipelines', e.g. 4,4,8,8,8. Results are then not the profile's.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Advanced: training batch m instead of the pipelines' 64; the fused FGSM "
              "count k keeps the paper's k/m = 1/2.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Simulator processes when synthetic data is built [all CPUs].")
@click.option("--quiet", is_flag=True, help="One line per training epoch, no step bar.")
@click.pass_context
def reproduce(ctx, profile, sizes, data_dir, dataset, output, steps, count, seed, seeds, eps,
              limit, pgd_eps, pgd_limit, pgd_steps, widths, batch_size, workers, quiet):
    """Run the paper's Section 4 and write OUTPUT/report.md.

    Builds or reuses the data, trains Yang's baseline and the secure model per
    size, attacks both (FGSM, LLCM, PGD, an unbounded check) and writes Tables 1–3
    beside the paper's own figures, with 95% intervals, n, sanity checks, a plot
    and findings.

    \b
    Examples:
      tfrecap reproduce --profile demo                      # CPU, ~20 min
      tfrecap reproduce --profile demo --seeds 3            # 3× as long; mean [min–max]
      tfrecap reproduce --profile paper --sizes 64,128      # GPU, synthetic data
      scripts/reproduce_paper.sh --data-dir ~/tensorflow_datasets   # GPU, real data
    """
    import tensorflow_datasets as tfds

    from tfrecap import reproduce as lib
    from tfrecap.cli.data import _progress
    from tfrecap.data.catalog import DatasetNotFoundError

    chosen = lib.PROFILES[profile]
    changes = {"sizes": sizes, "count": count, "seed": seed, "seeds": seeds, "eps": eps,
               "limit": limit,
               "pgd_eps": pgd_eps, "pgd_steps": pgd_steps,
               "pgd_limit": (pgd_limit or None) if pgd_limit is not None else chosen.pgd_limit}
    chosen = dataclasses.replace(chosen, **{k: v for k, v in changes.items() if v is not None})
    tfds.disable_progress_bar()  # our own bars show generation
    try:
        result = lib.reproduce(
            chosen, data_dir=data_dir, output=output or Path("reproduction") / profile,
            dataset=dataset, steps=steps, widths=widths, batch_size=batch_size,
            workers=workers, command=_command_line(ctx),
            verbose=2 if quiet else 1, log=click.echo, progress=_progress,
        )
    except (lib.ReproduceError, DatasetNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Done in {result.seconds / 60:.1f} min. Report: {result.report_path}")
    for line in lib.next_steps(result, data_dir):
        click.echo(line)
