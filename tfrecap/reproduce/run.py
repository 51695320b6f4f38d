"""Orchestration of ``tfrecap reproduce``: data, training per seed, evaluation, report.

Every stage reuses finished work. A model whose latest export holds exactly the requested
config (training seed included) is not retrained; a result JSON is reused when its model
version, dataset, seed and evaluation settings are unchanged, and it records when it was
made (``made_at``, UTC) so that the report can say when reused figures were made.

Seed i of ``--seeds N`` trains with the pipeline's ``[train] seed`` + i on the same data. The
pipeline's own seed writes to ``OUTPUT`` as with one seed; every other seed ``s`` has its own
tree ``OUTPUT/seed_s/{runs,saved_models,results}``, so going from one seed to three reuses
the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tfrecap import jsonio
from tfrecap.config import ConfigError, PipelineConfig, load_pipeline, override, with_defaults
from tfrecap.names import SYNTHETIC_SIZES
from tfrecap.reproduce.paper_tables import ROLES
from tfrecap.reproduce.profiles import (
    Profile,
    ReproduceError,
    auto_limit,
    check_sizes,
    eval_settings,
    is_simulated,
    is_synthetic,
    simulator_version,
)
from tfrecap.reproduce.report import render_report
from tfrecap.reproduce.results import (
    SUBSET_FGSM,
    SUBSET_PGD,
    ReproduceResult,
    SeedRun,
    SizeRun,
    Stage,
    duration,
    file_time_utc,
    now_utc,
    readable_time,
    summary,
)

# progress(desc, total, unit) -> a context manager yielding the callback ``update(n)``; the
# CLI passes the bar that `tfrecap data synth` uses (tqdm on stderr).
ProgressFactory = Callable[[str, "int | None", str], contextlib.AbstractContextManager]


def reproduce(
    profile: Profile,
    *,
    data_dir: str | os.PathLike,
    output: str | os.PathLike,
    dataset: str | None = None,
    steps: int | None = None,
    widths: Sequence[int] | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    command: str | None = None,
    verbose: int = 1,
    log: Callable[[str], None] = print,
    progress: ProgressFactory | None = None,
) -> ReproduceResult:
    """Run the paper's Section 4 for ``profile`` and write ``OUTPUT/report.md``.

    Args:
        profile: from :data:`PROFILES`, possibly with fields replaced.
        data_dir: the TFDS data directory.
        output: where runs, exports, results, plots and the report go. Rerunning with
            the same output resumes training and reuses finished models and results.
        dataset: one dataset for every size instead of the pipelines' own; ``{size}``
            in it is replaced by the patch size (needed when there are several sizes).
        steps: training steps instead of the pipelines' (the report says so).
        widths: the five LaplacianCNN widths instead of the pipelines' (tests, quick looks).
        batch_size: training batch m instead of the pipelines'; the fused count k is
            scaled to keep the pipeline's k/m (the paper's 32/64).
        workers: simulator processes when synthetic data is built.
        command: the command line, recorded in the report.
        verbose: Keras ``fit`` verbosity (1: progress bar, 2: one line per epoch).
        log: receives the stage lines.
        progress: a progress-bar factory for the data build; with one, the evaluations
            show their bars too. None: neither shows a bar.

    Raises:
        ReproduceError: sizes the profile cannot run, a missing non-synthetic dataset,
            or overrides that make an invalid pipeline.
    """
    started = time.time()
    output = Path(output)
    sizes = check_sizes(profile)
    configs = {
        size: [{role: _configure(profile, role, size, dataset, steps, widths, batch_size, i)
                for role in ROLES} for i in range(profile.seeds)]
        for size in sizes
    }
    # Fail before spending hours on 64 and 128 when 512 cannot run at all.
    for size in sizes:
        _check_dataset_available(configs[size][0]["baseline"].data.dataset, size, data_dir)
    runs_to_check = [(config, seed_output(output, seed_configs["baseline"].train.seed, i))
                     for size in sizes for i, seed_configs in enumerate(configs[size])
                     for config in seed_configs.values()]
    check_runs_up_front(*zip(*runs_to_check, strict=True))

    stages: list[Stage] = []
    runs = []
    several = profile.seeds > 1
    for size in sizes:
        run = SizeRun(size=size, dataset=configs[size][0]["baseline"].data.dataset)
        with _stage(stages, f"data {run.dataset}", log) as stage:
            stage.status = _prepare_data(run.dataset, size, profile, data_dir, workers, log,
                                         progress)
        _check_same_data(output, run.dataset, data_dir)
        run.simulated = is_simulated(run.dataset, size, data_dir)
        for index, seed_configs in enumerate(configs[size]):
            seed = seed_configs["baseline"].train.seed
            where = seed_output(output, seed, index)
            seed_run = SeedRun(seed=seed, output=where, configs=seed_configs)
            tag = f", seed {seed}" if several else ""
            for role, config in seed_configs.items():
                with _stage(stages, f"train {config.name} ({ROLES[role]}, {size}×{size}{tag})",
                            log) as stage:
                    seed_run.exports[role], stage.status, _ = _train_or_reuse(
                        config, data_dir, where, verbose, log
                    )
            for role, config in seed_configs.items():
                with _stage(stages, f"evaluate {config.name}{tag}", log) as stage:
                    path = where / "results" / f"{config.name}.json"
                    seed_run.results[role], stage.status = _evaluate_or_reuse(
                        seed_run.exports[role], role, config, profile, data_dir, path, log,
                        progress is not None,
                    )
                    seed_run.result_paths[role] = path
            seed_run.plot = where / f"robustness_{size}.png"
            _plot(seed_run, size, seed_run.plot, tag)
            run.seeds.append(seed_run)
        runs.append(run)

    summary_path = jsonio.write_json(output / "summary.json", summary(runs, output))
    report_path = output / "report.md"
    seconds = time.time() - started
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(render_report(
        runs, profile, stages, command=command, seconds=seconds, output=output
    ))
    log(f"Wrote {report_path} and {summary_path}")
    return ReproduceResult(output, report_path, summary_path, runs, stages, seconds)


def seed_output(output: Path, seed: int, index: int) -> Path:
    """Where training seed ``seed`` (the ``index``-th of the run) writes: the pipeline's own
    seed (index 0) in ``output`` itself, as a one-seed run does; the others in
    ``output/seed_SEED``."""
    return output if index == 0 else output / f"seed_{seed}"


@contextlib.contextmanager
def _stage(stages: list[Stage], name: str, log) -> Iterator[Stage]:
    stage = Stage(name)
    log(f"==> {name}")
    started = time.time()
    try:
        yield stage
    finally:
        stage.seconds = time.time() - started
        stages.append(stage)
    log(f"    {name}: {stage.status or 'done'} in {duration(stage.seconds)}")


def _configure(profile, role, size, dataset, steps, widths, batch_size,
               seed_index=0) -> PipelineConfig:
    """The pipeline of ``role`` at ``size`` with the run's overrides applied."""
    return configure_pipeline(profile.pipeline(role, size), size, dataset=dataset, steps=steps,
                              widths=widths, batch_size=batch_size, seed_index=seed_index,
                              sizes=profile.sizes)


def configure_pipeline(pipeline: str, size: int, *, dataset=None, steps=None, widths=None,
                       batch_size=None, seed_index: int = 0,
                       sizes: Sequence[int] = ()) -> PipelineConfig:
    """Pipeline ``pipeline`` with a run's overrides: the dataset (``{size}`` replaced), steps,
    widths, batch size (k scaled to keep k/m) and training seed + ``seed_index``.

    Raises:
        ReproduceError: the overrides make an invalid pipeline, or one dataset name is given
            for several ``sizes``.
    """
    try:
        config = load_pipeline(pipeline)
        changes = {"train.steps": steps, "model.widths": list(widths) if widths else None}
        if seed_index:
            changes["train.seed"] = config.train.seed + seed_index
        if dataset:
            if "{size}" not in dataset and len(sizes) > 1:
                raise ReproduceError(
                    f"--dataset {dataset} names one dataset but there are several sizes "
                    f"({', '.join(map(str, sizes))}); write it as e.g. "
                    f"{dataset}_{{size}}, or run one size at a time"
                )
            changes["data.dataset"] = dataset.format(size=size)
        if batch_size:
            # Keep the paper's share of FGSM images (k/m = 32/64) at the new m.
            k, m = config.defence.fusion_count, config.train.batch_size
            changes["train.batch_size"] = batch_size
            changes["defence.fusion_count"] = round(k * batch_size / m)
        return override(config, **changes)
    except ConfigError as err:
        raise ReproduceError(str(err)) from None


def _check_dataset_available(dataset: str, size: int, data_dir) -> None:
    """Synthetic datasets are built on demand; anything else must be imported already."""
    from tfrecap.data.catalog import DatasetNotFoundError, load_builder

    if is_synthetic(dataset, size):
        return
    import_command = (
        f"tfrecap data import --originals DIR --recaptured DIR --size {size} "
        f"--dataset {dataset} --data-dir {data_dir}"
    )
    try:
        builder = load_builder(data_dir, dataset)
    except DatasetNotFoundError:
        why = (
            f"Synthetic data exists only at {' and '.join(map(str, SYNTHETIC_SIZES))} "
            f"pixels (bigger patches would need upsampling, itself a trace), so the "
            f"{size}×{size} rows of the paper need real photographs. "
            if size not in SYNTHETIC_SIZES else ""
        )
        raise ReproduceError(
            f"Dataset {dataset!r} ({size}×{size}) is not built in {data_dir}. {why}"
            f"Import it first with:\n  {import_command}\n(or, for a simulator variant, build "
            f"it with tfrecap data synth --param KEY=VALUE --dataset {dataset})\nand run again"
            + (", or run only the synthetic sizes with --sizes 64,128."
               if size not in SYNTHETIC_SIZES else ".")
        ) from None
    have = builder.info.features["image"].shape[0]
    if have != size:
        raise ReproduceError(
            f"Dataset {dataset!r} has {have}×{have} patches, not {size}×{size}; "
            f"import one at {size} with:\n  {import_command}"
        )


def _prepare_data(dataset, size, profile, data_dir, workers, log, progress) -> str:
    """Build (or reuse) the synthetic dataset; a real one was checked up front."""
    from tfrecap.data import builder, catalog, generate
    from tfrecap.data.simulator import PARAMS_BY_VERSION

    if not is_synthetic(dataset, size):
        what = ("simulator variant" if is_simulated(dataset, size, data_dir)
                else "imported dataset")
        return _made_at(f"{what}, present", catalog.dataset_dir(data_dir, dataset))
    config = builder.synthetic_config(size, profile.count, profile.seed,
                                      PARAMS_BY_VERSION[simulator_version(dataset)])
    if catalog.is_built(config, data_dir) or progress is None:
        result = catalog.build_dataset(config, data_dir, workers=workers)
    else:
        total = 2 * sum(generate.split_counts(profile.count).values())
        with progress(f"Simulating {dataset}", total, "patch") as update:
            result = catalog.build_dataset(config, data_dir, workers=workers, progress=update)
    log(f"    {result.message} ({profile.count} per class, seed {profile.seed})")
    if result.status == "already built":
        return _made_at(result.status, result.path)
    return result.status


def _check_same_data(output: Path, dataset: str, data_dir) -> None:
    """Refuse to reuse an output made from other data (another simulator or tiling rule).

    Models and results are reused by their pipeline config; the data's identity is recorded
    beside them here, so a rebuilt dataset never meets models trained on its predecessor.
    """
    from tfrecap.data import catalog

    identity = (catalog.read_metadata(data_dir, dataset) or {}).get("identity")
    record = output / "data" / f"{dataset}.json"
    if record.exists():
        old = json.loads(record.read_text()).get("identity")
        if old != identity:
            raise ReproduceError(
                f"{output} holds models and results made from another {dataset} "
                f"(identity {old} in {record}, now {identity}); pass another --output, or "
                f"delete {output} to start over")
        return
    jsonio.write_json(record, {"schema_version": 1, "dataset": dataset, "identity": identity})


def _made_at(status: str, path: Path) -> str:
    """``status`` with when ``path`` (a reused dataset or export) was written."""
    info = path / "dataset_info.json"
    target = info if info.exists() else path
    return f"{status}, made at {readable_time(file_time_utc(target))}" if target.exists() \
        else status


def finished_export(export_root: Path, config: PipelineConfig) -> Path | None:
    """The latest export of ``config`` if it holds exactly this config, else None.

    An export is written only after the last training step, and it stores the run's
    config (training seed included), so a matching one means that training finished
    with these settings.
    """
    from tfrecap.export import latest_version_dir, load_config_asset

    try:
        version_dir = latest_version_dir(export_root)
    except FileNotFoundError:
        return None
    wanted = _ranked_settings_only(jsonio.to_jsonable(config.to_dict()))
    saved = _ranked_settings_only(with_defaults(load_config_asset(version_dir)))
    return version_dir if saved == wanted else None


def _ranked_settings_only(config: dict) -> dict:
    """``config`` with a guard that is off reduced to ``{"every": 0}``: it ranked nothing, so
    its other settings (say a ``select`` added later) say nothing about the export."""
    guard = config.get("guard") if isinstance(config, dict) else None
    if isinstance(guard, dict) and guard.get("every") == 0:
        return {**config, "guard": {"every": 0}}
    return config


def _start_over(err, config, output: Path) -> ReproduceError:
    """A run dir started with other settings (an edited pipeline, other --widths, another
    guard): resuming it would mix two models, so say how to start over instead."""
    return ReproduceError(
        f"{err}. It was started with other settings than this run's {config.name}; pass "
        f"another --output, or delete {output / 'runs' / config.name} and "
        f"{output / 'saved_models' / config.name} to retrain")


def check_runs_up_front(configs, outputs) -> None:
    """Fail before any training when a run dir cannot be resumed with its config.

    Otherwise the first such run would stop the reproduction only when its turn comes,
    perhaps an hour in. A finished export of the same config is reused and not checked.

    Args:
        configs: the pipeline configs, one per run.
        outputs: the output folder of each (``runs/`` and ``saved_models/`` are under it).
    """
    from tfrecap.training.checkpoint import RunDirError, check_resumable
    from tfrecap.training.guard import check_finished_guard
    from tfrecap.training.loop import read_history

    for config, output in zip(configs, outputs, strict=True):
        output = Path(output)
        if finished_export(output / "saved_models" / config.name, config) is not None:
            continue
        run_dir = output / "runs" / config.name
        try:
            check_resumable(run_dir / "config.json", config)
            done = max((e["step"] for e in read_history(run_dir / "history.json")), default=0)
            check_finished_guard(run_dir, config, done)
        except RunDirError as err:
            raise _start_over(err, config, output) from None


def _train_or_reuse(config, data_dir, output, verbose, log):
    """``(export version dir, status, TrainResult or None when a finished export is reused)``."""
    import keras

    from tfrecap.training import RunDirError, train

    export_root = output / "saved_models" / config.name
    done = finished_export(export_root, config)
    if done is not None:
        log(f"    {config.name}: reusing the finished model {done} "
            f"({config.train.steps} steps); delete it to retrain")
        return (done, _made_at(f"reused export version {done.name}", done / "saved_model.pb"),
                None)
    try:
        result = train(config, data_dir=data_dir, run_dir=output / "runs" / config.name,
                       export_dir=export_root, verbose=verbose,
                       log=lambda line: log(f"    {line}"))
    except RunDirError as err:
        raise _start_over(err, config, output) from None
    keras.backend.clear_session()  # the next model starts from a clean graph
    status = (f"resumed from step {result.resumed_from_step}" if result.resumed_from_step
              else "trained") + f", {result.steps_done} steps"
    return result.export_path, status, result


def _evaluate_or_reuse(version_dir, role, config, profile, data_dir, path, log,
                       progress=True):
    settings = eval_settings(profile)
    model = model_key(version_dir)
    wanted = {**model, "dataset": config.data.dataset, "train_seed": config.train.seed,
              "eval_settings": settings}
    reused = reuse_result(path, wanted, log)
    if reused is not None:
        return reused
    meta = {
        "model": str(version_dir.parent), **model,
        "label": f"{ROLES[role]} ({config.name})", "role": role, "pipeline": config.name,
        "dataset": config.data.dataset, "patch_size": config.data.patch_size, "split": "test",
        "train_steps": config.train.steps, "train_seed": config.train.seed,
        "eval_settings": settings,
    }
    result = evaluate_model(version_dir, config.data.dataset, profile, data_dir, meta,
                            progress=progress)
    return write_result(path, result, log), "evaluated"


def model_key(version_dir) -> dict:
    """What names an exported model in a result it made, for :func:`reuse_result`: its
    version number and its fingerprint (:func:`export_fingerprint`)."""
    return {"model_version": version_dir.name, "export": export_fingerprint(version_dir)}


def export_fingerprint(version_dir) -> str | None:
    """The SavedModel's own fingerprint: the hashes of its graph and of its weights.

    Results are reused by it, not by the version number alone: an export deleted and
    trained again gets version 1 again, and its results must not be the old model's.
    None when the export has no ``fingerprint.pb`` (nothing is then reused)."""
    import tensorflow as tf

    try:
        fingerprint = tf.saved_model.experimental.read_fingerprint(str(version_dir))
    except (OSError, ValueError, tf.errors.OpError):
        return None
    return f"{fingerprint.saved_model_checksum}-{fingerprint.checkpoint_hash}"


def reuse_result(path: Path, wanted: dict, log) -> tuple[dict, str] | None:
    """``(the stored result, status)`` when ``path`` holds every ``wanted`` key and value,
    else None (a missing, older or differently made result is made again). A model whose
    fingerprint is unknown (``wanted["export"]`` None, see :func:`model_key`) never reuses
    one: the stored result may be another model's."""
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    if wanted.get("export", "") is None or not all(old.get(k) == v
                                                   for k, v in wanted.items()):
        return None
    log(f"    reusing {path} (same model and evaluation settings)")
    made = old.get("made_at") or file_time_utc(path)
    return old, f"reused results, made at {readable_time(made)}"


def write_result(path: Path, result: dict, log) -> dict:
    """Stamp ``result`` with ``made_at``, write it atomically (a killed run never leaves a
    half-written result to reuse) and return it as read back (NaN as None)."""
    result["made_at"] = now_utc()
    jsonio.write_json(path, result)
    log(f"    wrote {path}")
    return json.loads(path.read_text())


def evaluate_model(version_dir, dataset, profile: Profile, data_dir, meta: dict, *,
                   progress: bool = True) -> dict:
    """One exported model's report (``tfrecap evaluate --json`` schema) as a dict.

    Three passes over the test split: FGSM and LLCM (and the unbounded check) on
    ``profile.limit`` patches; then FGSM and PGD on the first ``profile.pgd_limit``,
    so the "PGD is at least as strong as FGSM" check compares the same images; then PGD
    and the ``auto`` ensemble at ``profile.auto_eps`` on the first :func:`auto_limit`.
    """
    import tensorflow as tf

    from tfrecap.data.catalog import load_builder
    from tfrecap.data.pipeline import make_dataset
    from tfrecap.evaluation import UNBOUNDED_TITLE, AttackSpec, Check, Report, evaluate

    model = tf.saved_model.load(str(version_dir))
    data = make_dataset(data_dir, dataset, "test", profile.batch_size, training=False)
    # The split's size gives the progress bars their total, hence an ETA.
    num_images = load_builder(data_dir, dataset).info.splits["test"].num_examples
    full = evaluate(model, data, [AttackSpec("fgsm"), AttackSpec("llcm")], profile.eps,
                    limit=profile.limit, unbounded_check=True,
                    unbounded_limit=profile.unbounded_limit, progress=progress,
                    num_images=num_images)
    pgd_params = {"steps": profile.pgd_steps, "loss": "margin"}
    subset = evaluate(model, data, [AttackSpec("fgsm"), AttackSpec("pgd", pgd_params)],
                      profile.pgd_eps, limit=profile.pgd_limit, unbounded_check=False,
                      progress=progress, num_images=num_images)
    pgd, fgsm_subset = subset.attack("pgd"), subset.attack("fgsm")
    fgsm_subset = dataclasses.replace(fgsm_subset, spec=AttackSpec("fgsm", {}, SUBSET_FGSM))
    n_subset = pgd.accuracy[0].n if pgd.accuracy else 0
    checks = list(full.checks) + [
        Check(f"{c.name} (same {n_subset} patches)" if "as strong as" in c.name else c.name,
              c.passed, c.detail)
        for c in subset.checks if c.name.startswith("pgd")
    ]
    ensemble, notes = [], []
    if profile.auto_eps:
        auto_params = {"apgd_steps": profile.auto_apgd_steps,
                       "square_queries": profile.auto_square_queries, "seed": 0}
        third = evaluate(model, data, [AttackSpec("pgd", pgd_params, SUBSET_PGD),
                                       AttackSpec("auto", auto_params)],
                         profile.auto_eps, limit=auto_limit(profile), unbounded_check=False,
                         progress=progress, num_images=num_images)
        ensemble = [third.attack(SUBSET_PGD), third.attack("auto")]
        n_auto = ensemble[1].accuracy[0].n if ensemble[1].accuracy else 0
        checks += [Check(f"{c.name} (same {n_auto} patches)", c.passed, c.detail)
                   for c in third.checks if c.name.startswith("auto")]
        notes.append(f"auto (APGD-CE and APGD-margin, {profile.auto_apgd_steps} steps; "
                     f"Square, {profile.auto_square_queries} queries; seed 0) and "
                     f"'{SUBSET_PGD}' use the first {n_auto} test patches.")
    unbounded = [a for a in full.attacks if a.spec.title == UNBOUNDED_TITLE]
    bounded = [a for a in full.attacks if a.spec.title != UNBOUNDED_TITLE]
    report = Report(
        clean=full.clean, clean_by_class=full.clean_by_class, auc=full.auc,
        operating_point=full.operating_point,
        attacks=[*bounded, pgd, fgsm_subset, *ensemble, *unbounded], checks=checks,
        notes=list(full.notes) + [
            f"PGD ({profile.pgd_steps} steps, margin loss, no random start) and "
            f"'{SUBSET_FGSM}' use the first {n_subset} test patches; FGSM and LLCM use "
            f"{full.clean.n}."
        ] + notes,
        meta=meta,
    )
    return report.to_json_dict()


def _plot(seed_run: SeedRun, size: int, path: Path, tag: str = "") -> None:
    from tfrecap.evaluation import plot_results

    # FGSM on the PGD subset and PGD on the auto subset repeat a line on fewer images.
    shown = [{**r, "attacks": [a for a in r["attacks"]
                               if a["attack"] not in (SUBSET_FGSM, SUBSET_PGD)]}
             for r in seed_run.results.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_results(shown, path, title=f"Accuracy under attack, {size}×{size}{tag} "
                 "(ε = 0: clean; bars: 95% Wilson)")
