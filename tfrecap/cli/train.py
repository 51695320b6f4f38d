"""``tfrecap train``: run a training pipeline, resume it, export the detector."""

from pathlib import Path

import click

from tfrecap.cli.options import data_dir_option
from tfrecap.names import JIT_COMPILE, PRECISIONS, STRATEGY_NAMES


@click.command()
@click.option(
    "--pipeline",
    required=True,
    help="A built-in pipeline (demo, demo_baseline, yang2016_64 ... secure_512) or a TOML file.",
)
@data_dir_option
@click.option("--dataset", default=None, help="Dataset config; overrides the pipeline's [data].")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override [train] steps.")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Checkpoints, TensorBoard logs, history.json. Default: runs/PIPELINE_NAME. "
    "Rerunning with the same run dir resumes from its last checkpoint.",
)
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="SavedModel root; versions 1, 2, ... go under it. Default: saved_models/PIPELINE_NAME.",
)
@click.option("--no-export", is_flag=True, help="Skip the SavedModel export at the end.")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Override [train] precision. auto = mixed_float16 on GPU, float32 on CPU.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=None,
    help="Override [train] checkpoint_every: steps between checkpoints (and validation).",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGY_NAMES),
    default=None,
    help="Override [train] strategy. mirrored = all local GPUs. multi_worker = several "
    "machines configured by TF_CONFIG (every worker runs the same command; worker 0 writes "
    "the run dir and export). The batch size stays the global batch.",
)
@click.option(
    "--sync-batchnorm/--no-sync-batchnorm",
    default=None,
    help="Override [model] synchronized_batchnorm: BatchNorm statistics over the global "
    "batch (all replicas) instead of each replica's. Only matters under a strategy.",
)
@click.option(
    "--jit-compile",
    type=click.Choice(JIT_COMPILE),
    default=None,
    help="Override [train] jit_compile (XLA). auto = on for a single GPU, off on CPU and "
    "under a strategy.",
)
@click.option(
    "--init-from",
    type=click.Path(path_type=Path),
    default=None,
    help="Override [train] init_from: start a fresh run from the detector weights of this run "
    "dir (the checkpoint it exported, else its newest) or of a checkpoint prefix: a warm "
    "start, e.g. adversarial fine-tuning of a clean model. The optimizer and step count start "
    "at 0; a run dir that resumes ignores it.",
)
@click.option("--quiet", is_flag=True, help="No per-step progress bar.")
def train(pipeline, data_dir, dataset, steps, run_dir, export_dir, no_export, precision,
          checkpoint_every, strategy, sync_batchnorm, jit_compile, init_from, quiet):
    """Train a detector from a pipeline and export it as a SavedModel.

    \b
    Examples:
      tfrecap train --pipeline demo
      tfrecap train --pipeline secure_64 --data-dir ~/tensorflow_datasets --steps 20000
      tfrecap train --pipeline my_run.toml --run-dir runs/mine --export-dir saved_models/mine
      tfrecap train --pipeline secure_64 --strategy mirrored --sync-batchnorm
      tfrecap train --pipeline pgd_at_64 --init-from runs/yang2016_64 --steps 2000
    """
    from tfrecap import config as cfg

    try:
        config = cfg.load_pipeline(pipeline)
        config = cfg.override(
            config,
            **{
                "data.dataset": dataset,
                "train.steps": steps,
                "train.precision": precision,
                "train.checkpoint_every": checkpoint_every,
                "train.strategy": strategy,
                "model.synchronized_batchnorm": sync_batchnorm,
                "train.jit_compile": jit_compile,
                "train.init_from": None if init_from is None else str(init_from),
            },
        )
    except cfg.ConfigError as err:
        raise click.UsageError(str(err)) from None

    from tfrecap.data.catalog import DatasetNotFoundError
    from tfrecap.data.pipeline import CorruptShardError
    from tfrecap.distribute import StrategyError
    from tfrecap.training import TrainingError
    from tfrecap.training import train as run_training

    run_dir = run_dir or Path("runs") / config.name
    export_dir = None if no_export else (export_dir or Path("saved_models") / config.name)
    try:
        result = run_training(
            config,
            data_dir=data_dir,
            run_dir=run_dir,
            export_dir=export_dir,
            verbose=2 if quiet else 1,
            log=click.echo,
        )
    except (DatasetNotFoundError, StrategyError, TrainingError, CorruptShardError,
            PermissionError, NotADirectoryError, FileExistsError) as err:
        # User errors (a missing or unfit dataset, a run dir that cannot be resumed or
        # written, a bad TF_CONFIG): one line, no traceback. train() has removed a run dir
        # it just created.
        raise click.ClickException(str(err)) from None
    last = result.history[-1] if result.history else {}
    # A figure that was NaN is null once history.json has been read back on a resume.
    summary = ", ".join(f"{k}={'null' if v is None else format(v, '.4f')}"
                        for k, v in last.items() if k.startswith("val_"))
    click.echo(
        f"Done: {result.steps_done} steps in {result.seconds:.0f} s. {summary}\n"
        f"Run dir: {result.run_dir}" + (f"\nExport: {result.export_path}" if export_dir else "")
    )
