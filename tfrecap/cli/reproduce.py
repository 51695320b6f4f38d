"""``tfrecap reproduce``: the paper's Section 4 (Tables 1–3) end to end, with a report; or,
with ``--profile zoo``, five defences side by side (:mod:`tfrecap.reproduce.zoo`)."""

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


# The options --profile zoo does not read (its attacks all run on the first --auto-limit
# patches at --eps, at 64×64 only): given with it they are refused, not ignored.
_NOT_ZOO = ("sizes", "limit", "pgd_eps", "pgd_limit")
# The options only --profile zoo reads.
_ZOO_ONLY = ("originals", "recaptured", "photos_from", "attack_limit", "inner_steps",
             "guard_pgd_steps", "grad_align", "defences")


def _defence_names(ctx, param, value):
    """``--defences``: comma-separated zoo pipelines, in the zoo's own order (the baseline
    first, as the report expects), each once; ``None`` passes through."""
    if value is None:
        return None
    from tfrecap.reproduce.zoo import DEFENCES

    names = {v.strip() for v in value.split(",") if v.strip()}
    unknown = sorted(names - set(DEFENCES))
    if not names or unknown:
        raise click.BadParameter(f"{', '.join(unknown) or repr(value)}: expected "
                                 f"comma-separated names from {', '.join(DEFENCES)}")
    return tuple(name for name in DEFENCES if name in names)


def _given(ctx: click.Context, names) -> list[str]:
    """The long flags of the options in ``names`` given on the command line."""
    return [p.opts[0] for p in ctx.command.params if p.name in names
            and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]


@click.command()
@click.option("--profile", type=click.Choice(["demo", "paper", "zoo"]), default="demo",
              show_default=True,
              help="demo: 64×64 synthetic data, CPU demo pipelines (demo_baseline/demo), "
              "≤ 20 min on 2 cores. paper: yang2016_S/secure_S, 100k steps, all four sizes "
              "(a GPU job; 256 and 512 need imported real photos). zoo: five defences "
              "(demo_baseline, demo, demo_pgd_at, demo_trades, demo_fast_fgsm) on the shipped "
              "default's data (synthetic_v2_64), 300 steps each, all attacked with auto, PGD "
              "and FGSM on the same patches; 50 min per seed as measured on 2 cores.")
@click.option("--sizes", callback=POSITIVE_INTEGERS, default=None,
              help="Comma-separated patch sizes [demo: 64; paper: 64,128,256,512]; not zoo "
              "(64 only).")
@data_dir_option
@click.option("--dataset", default=None,
              help="Dataset for every size instead of the pipelines' own (synthetic_64, "
              "synthetic_128, real_256, real_512). {size} is replaced by the size, e.g. "
              "mine_{size}. zoo: instead of synthetic_v2_64.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Runs, exports, results and report.md go here [default: "
              "reproduction/PROFILE]. Rerunning resumes training and reuses finished work.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps instead of the pipelines' (demo 1500, paper 100000); "
              "zoo: of every defence [300].")
@click.option("--count", type=click.IntRange(min=10), default=None,
              help="Synthetic patches per class when synthetic data is built [3000; zoo: "
              "6000, the shipped default's data].")
@click.option("--seed", type=int, default=None, help="Synthetic data seed [0].")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train every model with N training seeds (the pipelines' [train] seed + "
              "0..N-1) on the same data; every cell becomes the mean with its min–max range, "
              "and summary.json keeps the per-seed values. Seeds after the first write to "
              "OUTPUT/seed_S/.")
@click.option("--eps", callback=POSITIVE_NUMBERS, default=None,
              help="FGSM/LLCM budgets in pixel levels [1,2,3,4,5]; zoo: the budgets of every "
              "attack [1,2,3,4,5].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="FGSM/LLCM on at most N test patches [the whole test split].")
@click.option("--pgd-eps", callback=POSITIVE_NUMBERS, default=None,
              help="PGD budgets [demo: 1,3,5; paper: 1,2,3,4,5].")
@click.option("--pgd-limit", type=click.IntRange(min=0), default=None,
              help="PGD on the first N test patches; 0 = all [demo: 500; paper: 1000].")
@click.option("--pgd-steps", type=click.IntRange(min=1), default=None, help="PGD steps [10].")
@click.option("--auto-limit", type=click.IntRange(min=0), default=None,
              help="auto on the first N test patches; 0 = all [demo, paper: 200; zoo: 256, "
              "PGD and FGSM too].")
@click.option("--apgd-steps", type=click.IntRange(min=1), default=None,
              help="Steps of each APGD member of auto [demo, paper: 100; zoo: 10].")
@click.option("--square-queries", type=click.IntRange(min=1), default=None,
              help="Queries of auto's Square member [demo: 1000; paper: 5000; zoo: 50].")
@click.option("--widths", callback=POSITIVE_INTEGERS, default=None,
              help="Advanced (tests, quick looks): the 5 LaplacianCNN widths instead of the "
              "pipelines', e.g. 4,4,8,8,8. Results are then not the profile's.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Advanced: training batch m instead of the pipelines' 64; the fused FGSM "
              "count k keeps the paper's k/m = 1/2.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Simulator processes when synthetic data is built [all CPUs].")
@click.option("--originals", type=click.Path(path_type=Path), default=None,
              help="zoo: a folder of original photos; with --recaptured, every defence also "
              "judges the photos whole, clean and under a whole-image PGD at ε = 2.")
@click.option("--recaptured", type=click.Path(path_type=Path), default=None,
              help="zoo: a folder of recaptured photos (photos of a screen).")
@click.option("--photos-from", default=None, metavar="DATASET",
              help="zoo: the photos of a dataset made by `tfrecap data import`, whole (the "
              "folders it was imported from), instead of --originals/--recaptured.")
@click.option("--attack-limit", type=click.IntRange(min=1), default=None,
              help="zoo: attack at most N judged photos per class [8; a photo costs seconds].")
@click.option("--inner-steps", type=click.IntRange(min=1), default=None,
              help="zoo: k of the PGD-AT and TRADES inner attacks instead of their pipelines' "
              "5, each step longer so that k × step stays theirs [3; with the other zoo "
              "defaults a seed took 50 min on 2 CPU cores].")
@click.option("--grad-align", type=click.FloatRange(min=0), default=None,
              help="zoo: fast FGSM-AT's GradAlign weight instead of its pipeline's 0.1 [0: "
              "Wong et al.'s recipe, 2 passes a step instead of 5; the guard stops it "
              "overfitting].")
@click.option("--guard-pgd-steps", type=click.IntRange(min=1), default=None,
              help="zoo: PGD-margin steps of the best-checkpoint guard instead of the "
              "pipelines' 10 [5; it only ranks checkpoints].")
@click.option("--defences", callback=_defence_names, default=None, metavar="NAMES",
              help="zoo: the defences to train, comma-separated, from demo_baseline, demo, "
              "demo_pgd_at, demo_trades, demo_fast_fgsm [all five]. Keep demo_baseline for the "
              "cost per step and the clean-accuracy gaps against it.")
@click.option("--quiet", is_flag=True, help="One line per training epoch, no step bar.")
@click.pass_context
def reproduce(ctx, profile, sizes, data_dir, dataset, output, steps, count, seed, seeds, eps,
              limit, pgd_eps, pgd_limit, pgd_steps, auto_limit, apgd_steps, square_queries,
              widths, batch_size, workers, originals, recaptured, photos_from, attack_limit,
              inner_steps, grad_align, guard_pgd_steps, defences, quiet):
    """Run the paper's Section 4 and write OUTPUT/report.md.

    Builds or reuses the data, trains Yang's baseline and the secure model per
    size, attacks both (FGSM, LLCM, PGD, an unbounded check) and writes Tables 1–3
    beside the paper's own figures, with 95% intervals, n, sanity checks, a plot
    and findings.

    With --profile zoo it trains five defences instead (the undefended baseline, Zhao
    2018, PGD-AT, TRADES, fast FGSM-AT) on one dataset, attacks each with auto, PGD and
    FGSM on the same patches, and writes the side-by-side table, zoo.json, a Pareto plot
    (robustness against training time) and findings; with --originals/--recaptured also
    whole-photo accuracy, clean and under attack.

    \b
    Examples:
      tfrecap reproduce --profile demo                      # CPU, ~20 min
      tfrecap reproduce --profile demo --seeds 3            # 3× as long; mean [min–max]
      tfrecap reproduce --profile zoo                       # CPU, ~50 min
      tfrecap reproduce --profile zoo --originals photos/direct --recaptured photos/screens
      tfrecap reproduce --profile zoo --photos-from mine_64   # the photos `data import` read
      tfrecap reproduce --profile zoo --defences demo_baseline,demo_pgd_at --steps 1000
      tfrecap reproduce --profile paper --sizes 64,128      # GPU, synthetic data
      scripts/reproduce_paper.sh --data-dir ~/tensorflow_datasets   # GPU, real data
    """
    from tfrecap import reproduce as lib

    if profile == "zoo":
        refused = _given(ctx, _NOT_ZOO)
        if refused:
            raise click.UsageError(
                f"{', '.join(refused)} do not apply to --profile zoo: it runs at 64×64 and "
                "attacks the first --auto-limit test patches at every --eps", ctx)
        if photos_from is not None:
            originals, recaptured = _photos_from(ctx, photos_from, data_dir, originals,
                                                 recaptured)
        _reproduce_zoo(ctx, lib, dict(
            count=count, seed=seed, seeds=seeds, eps=eps, pgd_steps=pgd_steps,
            auto_apgd_steps=apgd_steps, auto_square_queries=square_queries,
            photo_attack_limit=attack_limit, inner_steps=inner_steps,
            grad_align_weight=grad_align, guard_pgd_steps=guard_pgd_steps,
            defences=defences),
            _limits(auto_limit=auto_limit),
            data_dir=data_dir, dataset=dataset, output=output, steps=steps, widths=widths,
            batch_size=batch_size, workers=workers, originals=originals,
            recaptured=recaptured, quiet=quiet)
        return
    only_zoo = _given(ctx, _ZOO_ONLY)
    if only_zoo:
        raise click.UsageError(f"{', '.join(only_zoo)} only apply to --profile zoo", ctx)
    import tensorflow_datasets as tfds

    from tfrecap.cli.data import _progress
    from tfrecap.data.catalog import DatasetNotFoundError

    chosen = lib.PROFILES[profile]
    changes = {"sizes": sizes, "count": count, "seed": seed, "seeds": seeds, "eps": eps,
               "limit": limit,
               "pgd_eps": pgd_eps, "pgd_steps": pgd_steps,
               "auto_apgd_steps": apgd_steps, "auto_square_queries": square_queries}
    chosen = dataclasses.replace(chosen, **{k: v for k, v in changes.items() if v is not None},
                                 **_limits(pgd_limit=pgd_limit, auto_limit=auto_limit))
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


def _photos_from(ctx, dataset: str, data_dir, originals, recaptured) -> tuple[Path, Path]:
    """The folders behind an imported dataset, for --photos-from."""
    from tfrecap.data.catalog import DatasetNotFoundError, imported_folders

    if originals is not None or recaptured is not None:
        raise click.UsageError("--photos-from replaces --originals/--recaptured; give one or "
                               "the other", ctx)
    try:
        return imported_folders(data_dir, dataset)
    except (DatasetNotFoundError, ValueError) as err:
        raise click.UsageError(f"--photos-from {dataset}: {err}", ctx) from None


def _limits(**given) -> dict:
    """The patch-count options that were given, with 0 meaning "all" (None): applied after
    the other changes, whose None means "not given"."""
    return {key: value or None for key, value in given.items() if value is not None}


def _reproduce_zoo(ctx, lib, changes: dict, limits: dict, *, data_dir, dataset, output, steps,
                   widths, batch_size, workers, originals, recaptured, quiet) -> None:
    """``--profile zoo``: the library call, then where the report and the models are."""
    import tensorflow_datasets as tfds

    from tfrecap.cli.data import _progress
    from tfrecap.data.catalog import DatasetNotFoundError

    chosen = dataclasses.replace(lib.ZOO, **{k: v for k, v in changes.items()
                                             if v is not None}, **limits)
    tfds.disable_progress_bar()
    try:
        result = lib.reproduce_zoo(
            chosen, data_dir=data_dir, output=output or Path("reproduction") / "zoo",
            dataset=dataset, steps=steps, widths=widths, batch_size=batch_size,
            workers=workers, originals=originals, recaptured=recaptured,
            command=_command_line(ctx), verbose=2 if quiet else 1, log=click.echo,
            progress=_progress,
        )
    except (lib.ReproduceError, DatasetNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Done in {result.seconds / 60:.1f} min. Report: {result.report_path}")
    click.echo("Models (SavedModel roots, TF-Serving layout):")
    for run in result.defences:
        for item in run.seeds:
            tag = f", seed {item.seed}" if len(run.seeds) > 1 else ""
            click.echo(f"  {run.label}{tag}: {item.export.parent} (version {item.export.name})")
