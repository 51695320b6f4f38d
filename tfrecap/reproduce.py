"""Reproduce Section 4 of Zhao et al. 2018 (Tables 1–3) and write an honest report.

:func:`reproduce` runs the whole experiment for ``tfrecap reproduce``:

1. **Data.** ``synthetic_64`` / ``synthetic_128`` are built (or reused, when the
   same size, count and seed are already built); any other dataset, such as the
   ``real_256`` / ``real_512`` that the paper's larger sizes need, must already be
   imported, and the error names the ``tfrecap data import`` command.
2. **Training.** Yang's baseline and the secure model for each patch size, in
   ``OUTPUT/runs/NAME`` (rerunning resumes from the checkpoints there) with
   exports in ``OUTPUT/saved_models/NAME``. A model whose latest export holds
   exactly the requested config is finished and is not touched again, so a rerun
   does not add export versions.
3. **Evaluation** of the *exported* models (the artefact a user would deploy) on
   the test split: clean; FGSM and LLCM at every ε on the whole split (or a
   limit); PGD with the margin loss on a subset, with FGSM on the same subset so
   that the two are compared on the same images; the unbounded sanity check.
   Each model's report is a ``tfrecap evaluate --json`` file in
   ``OUTPUT/results``; it is reused when the model version and the evaluation
   settings are unchanged.
4. **Report.** ``OUTPUT/report.md``: the paper's Tables 1–3 with the paper's own
   published figures (:data:`PAPER_TABLES`) beside ours, every cell with its
   95% Wilson interval and n; a PGD table; per-class accuracy; the sanity checks;
   a robustness plot; and findings written from the numbers.

Profiles (:data:`PROFILES`): ``demo`` is the CPU demonstration at 64×64 on
synthetic data (pipelines ``demo_baseline`` / ``demo``); ``paper`` is the full
100k-step run at all four sizes (pipelines ``yang2016_S`` / ``secure_S``), for a
GPU and real photographs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tfrecap import LABEL_NAMES, __version__
from tfrecap.config import ConfigError, PipelineConfig, load_pipeline, override

# ---------------------------------------------------------------- the paper's figures

PAPER_EPS = (1.0, 2.0, 3.0, 4.0, 5.0)
PAPER_TEST_N = 10_000  # "10000 original images and 10000 recaptured images" per size, 50% test

PAPER_TABLES = {
    # The paper's PUBLISHED numbers (Zhao et al. 2018, Sec. 4, Tables 1-3), in percent.
    # They are quoted beside ours for comparison; nothing here was measured by tfrecap.
    # "llcm" is the method the paper's tables call TGSM.
    "table1": {
        "baseline": {64: 96.7, 128: 98.2, 256: 99.1, 512: 99.4},  # "Yang"
        "secure": {64: 96.6, 128: 98.1, 256: 98.5, 512: 99.0},  # "Prop"
    },
    "table2": {  # Yang's method under attack, eps = 1..5
        64: {"fgsm": (2.8, 0.9, 0.5, 0.6, 2.6), "llcm": (7.5, 5.7, 5.2, 5.3, 6.9)},
        128: {"fgsm": (1.1, 0.2, 1.4, 4.9, 6.5), "llcm": (2.9, 2.0, 3.1, 6.1, 7.5)},
        256: {"fgsm": (2.6, 3.6, 5.4, 7.5, 9.9), "llcm": (3.9, 4.9, 6.6, 8.6, 11.1)},
        512: {"fgsm": (3.3, 1.6, 0.9, 0.7, 1.0), "llcm": (4.6, 2.8, 2.2, 1.9, 2.1)},
    },
    "table3": {  # the proposed (secure) method under attack, eps = 1..5
        64: {"fgsm": (93.6, 94.5, 96.1, 96.3, 95.9), "llcm": (90.0, 91.6, 93.0, 93.3, 93.0)},
        128: {"fgsm": (95.9, 97.1, 97.8, 98.4, 98.7), "llcm": (94.5, 95.6, 96.2, 96.8, 97.1)},
        256: {"fgsm": (97.4, 98.5, 98.8, 98.9, 98.6), "llcm": (94.3, 95.1, 95.3, 95.4, 95.2)},
        512: {"fgsm": (99.2, 99.3, 99.3, 99.4, 99.3), "llcm": (98.1, 98.2, 98.3, 98.3, 98.2)},
    },
}

ROLES = {"baseline": "Yang", "secure": "Prop"}  # the paper's row names
METHODS = {"fgsm": "FGSM", "llcm": "LLCM (TGSM)"}
SUBSET_FGSM = "fgsm (PGD subset)"  # FGSM on the PGD images, for a like-with-like comparison
SYNTHETIC_SIZES = (64, 128)


class ReproduceError(RuntimeError):
    """A request that cannot run as given; the message says what to do instead."""


# ---------------------------------------------------------------- profiles


@dataclasses.dataclass(frozen=True)
class Profile:
    """What one ``tfrecap reproduce --profile`` runs. Every field can be overridden.

    Attributes:
        name: ``demo`` or ``paper``.
        sizes: patch sizes to run.
        allowed_sizes: sizes the profile's pipelines exist for.
        baseline: pipeline of Yang's baseline; ``{size}`` is replaced.
        secure: pipeline of the secure model; ``{size}`` is replaced.
        count: synthetic patches per class (all splits), when synthetic data is built.
        seed: synthetic simulator seed.
        eps: FGSM and LLCM budgets (pixel levels).
        limit: FGSM/LLCM on at most this many test patches (None: the whole split).
        pgd_eps: PGD budgets.
        pgd_limit: PGD (and FGSM for comparison) on the first this-many test patches.
        pgd_steps: PGD iterations (margin loss, no random start).
        unbounded_limit: patches for the eps = 255 sanity check.
        batch_size: evaluation batch size.
    """

    name: str
    sizes: tuple[int, ...]
    allowed_sizes: tuple[int, ...]
    baseline: str
    secure: str
    count: int = 3000
    seed: int = 0
    eps: tuple[float, ...] = PAPER_EPS
    limit: int | None = None
    pgd_eps: tuple[float, ...] = PAPER_EPS
    pgd_limit: int | None = 1000
    pgd_steps: int = 10
    unbounded_limit: int = 256
    batch_size: int = 64

    def pipeline(self, role: str, size: int) -> str:
        return getattr(self, role).format(size=size)


PROFILES = {
    # CPU demo, <= 20 min on 2 cores: data ~1.5 min, baseline ~2.5 min, secure ~7 min,
    # evaluation the rest.
    "demo": Profile(
        name="demo", sizes=(64,), allowed_sizes=(64,), baseline="demo_baseline", secure="demo",
        pgd_eps=(1.0, 3.0, 5.0), pgd_limit=500,
    ),
    # The paper's settings (100k steps each, batch 64): a GPU job; 256 and 512 need real data.
    "paper": Profile(
        name="paper", sizes=(64, 128, 256, 512), allowed_sizes=(64, 128, 256, 512),
        baseline="yang2016_{size}", secure="secure_{size}",
    ),
}


def eval_settings(profile: Profile) -> dict:
    """The evaluation settings a stored result must match to be reused."""
    return {
        "split": "test",
        "eps": [float(e) for e in profile.eps],
        "limit": profile.limit,
        "pgd": {"eps": [float(e) for e in profile.pgd_eps], "limit": profile.pgd_limit,
                "steps": profile.pgd_steps, "loss": "margin", "random_start": False},
        "unbounded_limit": profile.unbounded_limit,
        "unbounded_schedule": _unbounded_schedule(),
    }


def _unbounded_schedule() -> list:
    from tfrecap.evaluation import UNBOUNDED_STEP_SIZE, UNBOUNDED_STEPS

    return [UNBOUNDED_STEPS, UNBOUNDED_STEP_SIZE]


# ---------------------------------------------------------------- results of a run


@dataclasses.dataclass
class Stage:
    """One timed stage of the run; ``status`` says e.g. "built", "reused", "resumed"."""

    name: str
    seconds: float = 0.0
    status: str = ""


@dataclasses.dataclass
class SizeRun:
    """What one patch size produced: per role its pipeline config and result JSON."""

    size: int
    dataset: str
    configs: dict[str, PipelineConfig] = dataclasses.field(default_factory=dict)
    results: dict[str, dict] = dataclasses.field(default_factory=dict)
    result_paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    plot: Path | None = None


@dataclasses.dataclass
class ReproduceResult:
    """What :func:`reproduce` wrote."""

    output: Path
    report_path: Path
    runs: list[SizeRun]
    stages: list[Stage]
    seconds: float


# ---------------------------------------------------------------- the run


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

    Raises:
        ReproduceError: sizes the profile cannot run, a missing non-synthetic dataset,
            or overrides that make an invalid pipeline.
    """
    started = time.time()
    output = Path(output)
    sizes = _check_sizes(profile)
    configs = {
        size: {role: _configure(profile, role, size, dataset, steps, widths, batch_size)
               for role in ROLES}
        for size in sizes
    }
    # Fail before spending hours on 64 and 128 when 512 cannot run at all.
    for size in sizes:
        _check_dataset_available(configs[size]["baseline"].data.dataset, size, data_dir)

    stages: list[Stage] = []
    runs = []
    for size in sizes:
        run = SizeRun(size=size, dataset=configs[size]["baseline"].data.dataset,
                      configs=configs[size])
        with _stage(stages, f"data {run.dataset}", log) as stage:
            stage.status = _prepare_data(run.dataset, size, profile, data_dir, workers, log)
        exports = {}
        for role, config in run.configs.items():
            with _stage(stages, f"train {config.name} ({ROLES[role]}, {size}×{size})",
                        log) as stage:
                exports[role], stage.status = _train_or_reuse(
                    config, data_dir, output, verbose, log
                )
        for role, config in run.configs.items():
            with _stage(stages, f"evaluate {config.name}", log) as stage:
                path = output / "results" / f"{config.name}.json"
                run.results[role], stage.status = _evaluate_or_reuse(
                    exports[role], role, config, profile, data_dir, path, log
                )
                run.result_paths[role] = path
        run.plot = output / f"robustness_{size}.png"
        _plot(run, run.plot)
        runs.append(run)

    report_path = output / "report.md"
    seconds = time.time() - started
    report_path.write_text(render_report(
        runs, profile, stages, command=command, seconds=seconds, output=output
    ))
    log(f"Wrote {report_path}")
    return ReproduceResult(output, report_path, runs, stages, seconds)


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
    log(f"    {name}: {stage.status or 'done'} in {_duration(stage.seconds)}")


def _check_sizes(profile: Profile) -> tuple[int, ...]:
    if not profile.sizes:
        raise ReproduceError("no patch size given")
    bad = [s for s in profile.sizes if s not in profile.allowed_sizes]
    if bad:
        raise ReproduceError(
            f"profile {profile.name!r} runs at {', '.join(map(str, profile.allowed_sizes))} "
            f"only, not {', '.join(map(str, bad))}"
            + ("; use --profile paper for the other sizes" if profile.name == "demo" else "")
        )
    return tuple(dict.fromkeys(profile.sizes))


def _configure(profile, role, size, dataset, steps, widths, batch_size) -> PipelineConfig:
    """The pipeline of ``role`` at ``size`` with the run's overrides applied."""
    try:
        config = load_pipeline(profile.pipeline(role, size))
        changes = {"train.steps": steps, "model.widths": list(widths) if widths else None}
        if dataset:
            if "{size}" not in dataset and len(profile.sizes) > 1:
                raise ReproduceError(
                    f"--dataset {dataset} names one dataset but there are several sizes "
                    f"({', '.join(map(str, profile.sizes))}); write it as e.g. "
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


def _is_synthetic(dataset: str, size: int) -> bool:
    return dataset == f"synthetic_{size}" and size in SYNTHETIC_SIZES


def _check_dataset_available(dataset: str, size: int, data_dir) -> None:
    """Synthetic datasets are built on demand; anything else must be imported already."""
    from tfrecap.data.catalog import DatasetNotFoundError, load_builder

    if _is_synthetic(dataset, size):
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
            f"Import it first with:\n  {import_command}\nand run again"
            + (", or run only the synthetic sizes with --sizes 64,128."
               if size not in SYNTHETIC_SIZES else ".")
        ) from None
    have = builder.info.features["image"].shape[0]
    if have != size:
        raise ReproduceError(
            f"Dataset {dataset!r} has {have}×{have} patches, not {size}×{size}; "
            f"import one at {size} with:\n  {import_command}"
        )


def _prepare_data(dataset, size, profile, data_dir, workers, log) -> str:
    """Build (or reuse) the synthetic dataset; a real one was checked up front."""
    if not _is_synthetic(dataset, size):
        return "imported dataset, present"
    from tqdm.auto import tqdm

    from tfrecap.data import builder, catalog, generate

    config = builder.synthetic_config(size, profile.count, profile.seed)
    if catalog.is_built(config, data_dir):
        result = catalog.build_dataset(config, data_dir, workers=workers)
    else:
        total = 2 * sum(generate.split_counts(profile.count).values())
        with tqdm(total=total, desc=f"Simulating {dataset}", unit="patch") as bar:
            result = catalog.build_dataset(config, data_dir, workers=workers,
                                           progress=bar.update)
    log(f"    {result.message} ({profile.count} per class, seed {profile.seed})")
    return result.status


def _jsonable(value):
    return json.loads(json.dumps(value, default=list))


def finished_export(export_root: Path, config: PipelineConfig) -> Path | None:
    """The latest export of ``config`` if it holds exactly this config, else None.

    An export is written only after the last training step, and it stores the run's
    config, so a matching one means that training finished with these settings.
    """
    from tfrecap.export import latest_version_dir, load_config_asset

    try:
        version_dir = latest_version_dir(export_root)
    except FileNotFoundError:
        return None
    return version_dir if load_config_asset(version_dir) == _jsonable(config.to_dict()) else None


def _train_or_reuse(config, data_dir, output, verbose, log) -> tuple[Path, str]:
    import keras

    from tfrecap.training import train

    export_root = output / "saved_models" / config.name
    done = finished_export(export_root, config)
    if done is not None:
        log(f"    {config.name}: reusing the finished model {done} "
            f"({config.train.steps} steps); delete it to retrain")
        return done, f"reused export version {done.name}"
    try:
        result = train(config, data_dir=data_dir, run_dir=output / "runs" / config.name,
                       export_dir=export_root, verbose=verbose,
                       log=lambda line: log(f"    {line}"))
    except ValueError as err:
        # A run dir started with other settings (an edited pipeline, other --widths):
        # resuming it would mix two models, so say how to start over instead.
        raise ReproduceError(
            f"{err}. It was started with other settings than this run's {config.name}; "
            f"pass another --output, or delete {output / 'runs' / config.name} and "
            f"{export_root} to retrain"
        ) from None
    keras.backend.clear_session()  # the next model starts from a clean graph
    status = (f"resumed from step {result.resumed_from_step}" if result.resumed_from_step
              else "trained") + f", {result.steps_done} steps"
    return result.export_path, status


def _evaluate_or_reuse(version_dir, role, config, profile, data_dir, path, log):
    settings = eval_settings(profile)
    wanted = {"model_version": version_dir.name, "dataset": config.data.dataset,
              "eval_settings": settings}
    if path.exists():
        old = json.loads(path.read_text())
        if all(old.get(k) == v for k, v in wanted.items()):
            log(f"    reusing {path} (same model version and evaluation settings)")
            return old, "reused results"
    meta = {
        "model": str(version_dir.parent), "model_version": version_dir.name,
        "label": f"{ROLES[role]} ({config.name})", "role": role, "pipeline": config.name,
        "dataset": config.data.dataset, "patch_size": config.data.patch_size, "split": "test",
        "train_steps": config.train.steps, "eval_settings": settings,
    }
    result = evaluate_model(version_dir, config.data.dataset, profile, data_dir, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, path)  # a killed run never leaves a half-written result to reuse
    log(f"    wrote {path}")
    return result, "evaluated"


def evaluate_model(version_dir, dataset, profile: Profile, data_dir, meta: dict) -> dict:
    """One exported model's report (``tfrecap evaluate --json`` schema) as a dict.

    Two passes over the test split: FGSM and LLCM (and the unbounded check) on
    ``profile.limit`` patches; then FGSM and PGD on the first ``profile.pgd_limit``,
    so the "PGD is at least as strong as FGSM" check compares the same images.
    """
    import tensorflow as tf

    from tfrecap.data.pipeline import make_dataset
    from tfrecap.evaluation import UNBOUNDED_TITLE, AttackSpec, Check, Report, evaluate

    model = tf.saved_model.load(str(version_dir))
    data = make_dataset(data_dir, dataset, "test", profile.batch_size, training=False)
    full = evaluate(model, data, [AttackSpec("fgsm"), AttackSpec("llcm")], profile.eps,
                    limit=profile.limit, unbounded_check=True,
                    unbounded_limit=profile.unbounded_limit, progress=True)
    pgd_params = {"steps": profile.pgd_steps, "loss": "margin", "random_start": False}
    subset = evaluate(model, data, [AttackSpec("fgsm"), AttackSpec("pgd", pgd_params)],
                      profile.pgd_eps, limit=profile.pgd_limit, unbounded_check=False,
                      progress=True)
    pgd, fgsm_subset = subset.attack("pgd"), subset.attack("fgsm")
    fgsm_subset = dataclasses.replace(fgsm_subset, spec=AttackSpec("fgsm", {}, SUBSET_FGSM))
    n_subset = pgd.accuracy[0].n if pgd.accuracy else 0
    checks = list(full.checks) + [
        Check(f"{c.name} (same {n_subset} patches)" if "as strong as" in c.name else c.name,
              c.passed, c.detail)
        for c in subset.checks if c.name.startswith("pgd")
    ]
    unbounded = [a for a in full.attacks if a.spec.title == UNBOUNDED_TITLE]
    bounded = [a for a in full.attacks if a.spec.title != UNBOUNDED_TITLE]
    report = Report(
        clean=full.clean, clean_by_class=full.clean_by_class, auc=full.auc,
        operating_point=full.operating_point,
        attacks=[*bounded, pgd, fgsm_subset, *unbounded], checks=checks,
        notes=list(full.notes) + [
            f"PGD ({profile.pgd_steps} steps, margin loss, no random start) and "
            f"'{SUBSET_FGSM}' use the first {n_subset} test patches; FGSM and LLCM use "
            f"{full.clean.n}."
        ],
        meta=meta,
    )
    return report.to_json_dict()


def _plot(run: SizeRun, path: Path) -> None:
    from tfrecap.evaluation import plot_results

    # FGSM on the PGD subset repeats the FGSM line on fewer images: leave it out.
    shown = [{**r, "attacks": [a for a in r["attacks"] if a["attack"] != SUBSET_FGSM]}
             for r in run.results.values()]
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_results(shown, path, title=f"Accuracy under attack, {run.size}×{run.size} "
                 "(ε = 0: clean; bars: 95% Wilson)")


# ---------------------------------------------------------------- reading result JSONs


def _row(result: dict, attack: str, eps: float) -> dict | None:
    for a in result["attacks"]:
        if a["attack"] == attack:
            for r in a["results"]:
                if math.isclose(r["eps"], eps):
                    return r
    return None


def _eps_of(result: dict, attack: str) -> list[float]:
    for a in result["attacks"]:
        if a["attack"] == attack:
            return [r["eps"] for r in a["results"]]
    return []


def _pct(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1%}"


def _cell(row: dict | None) -> str:
    """Accuracy with its 95% Wilson interval."""
    if row is None:
        return "—"
    lo, hi = row["ci"]
    return f"{row['accuracy']:.1%} [{lo:.1%}, {hi:.1%}]"


def _paper(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _paper_at(table: str, size: int, method: str, eps: float) -> float | None:
    values = PAPER_TABLES[table].get(size, {}).get(method)
    for e, v in zip(PAPER_EPS, values or (), strict=False):
        if math.isclose(e, eps):
            return v
    return None


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ---------------------------------------------------------------- the report


def render_report(runs: list[SizeRun], profile: Profile, stages: list[Stage], *,
                  command: str | None, seconds: float, output: Path) -> str:
    """The whole ``report.md``, from the runs' result JSONs."""
    parts = [
        _header(runs, profile, command, seconds),
        _stages_section(stages, seconds),
        _table1(runs),
        _attack_table(runs, "baseline", "table2",
                      "Table 2: detection accuracy of adversarial images, Yang's method"),
        _attack_table(runs, "secure", "table3",
                      "Table 3: detection accuracy of adversarial images, proposed method"),
        _pgd_table(runs, profile),
        _per_class_section(runs),
        _checks_section(runs),
        _plot_section(runs, output),
        _findings_section(runs),
    ]
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _machine() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", "GPU"))
        except (ValueError, RuntimeError):
            names.append("GPU")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = f"CPU {platform.machine()}, {cores} cores"
    return f"{cpu}; GPU: {', '.join(names) if names else 'none'}"


def _header(runs, profile, command, seconds) -> str:
    import keras
    import tensorflow as tf

    unbounded_steps, unbounded_step_size = _unbounded_schedule()
    first = runs[0].configs
    pipelines = ", ".join(f"{c['baseline'].name} / {c['secure'].name}"
                          for c in (r.configs for r in runs))
    data = ", ".join(
        f"{r.dataset}" + (f" ({profile.count} per class, seed {profile.seed})"
                          if _is_synthetic(r.dataset, r.size) else "")
        for r in runs
    )
    steps = sorted({c.train.steps for r in runs for c in r.configs.values()})
    limit = "the whole test split" if profile.limit is None else f"the first {profile.limit} " \
        "test patches"
    pgd_limit = ("the whole test split" if profile.pgd_limit is None
                 else f"the first {profile.pgd_limit} test patches")
    eps = ", ".join(f"{e:g}" for e in profile.eps)
    pgd_eps = ", ".join(f"{e:g}" for e in profile.pgd_eps)
    widths = sorted({tuple(c.model.widths) for c in first.values()})
    return f"""
# Reproduction of Zhao et al. 2018, Section 4 (Tables 1–3)

- **Command:** `{command or "tfrecap.reproduce.reproduce(...)"}`
- **Date:** {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
- **Machine:** {_machine()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, \
tfrecap {__version__}
- **Profile:** `{profile.name}`; sizes {", ".join(f"{r.size}×{r.size}" for r in runs)}
- **Pipelines** (Yang / Prop): {pipelines}; {"/".join(map(str, steps))} training steps; \
LaplacianCNN widths {", ".join(str(list(w)) for w in widths)}
- **Data:** {data}; split 40/10/50 by scene region; evaluation on the test split
- **Attacks:** FGSM and LLCM (the paper's TGSM) at ε = {eps} on {limit}; \
PGD (margin loss, {profile.pgd_steps} steps, no random start) at ε = {pgd_eps} on {pgd_limit}, \
with FGSM on the same patches; PGD-margin at ε = 255 ({unbounded_steps} steps of \
{unbounded_step_size:g} levels) on {profile.unbounded_limit} patches as a sanity \
check (at most that many of the FGSM/LLCM patches). ε is in pixel levels of [0, 255]; \
adversarial images are rounded to 8 bits.
- **Total wall time:** {_duration(seconds)}

Cells marked *ours* are accuracy [95% Wilson interval] measured by this run; cells marked
*paper* are the paper's published figures (`tfrecap.reproduce.PAPER_TABLES`: real photographs,
n = {PAPER_TEST_N} test images per size, 100k steps), quoted for comparison, not measured here.
"""


def _stages_section(stages: list[Stage], seconds: float) -> str:
    lines = ["## Wall time per stage", "", "| stage | time | what happened |", "|---|---|---|"]
    lines += [f"| {s.name} | {_duration(s.seconds)} | {s.status} |" for s in stages]
    lines.append(f"| **total** (with the report) | {_duration(seconds)} | |")
    return "\n".join(lines)


def _n_line(runs) -> str:
    parts = [f"{name} {r.size}×{r.size}: {r.results[role]['n']}"
             for r in runs for role, name in ROLES.items()]
    return "n (ours): " + "; ".join(parts) + f". n (paper): {PAPER_TEST_N} per size."


def _table1(runs) -> str:
    sizes = [r.size for r in runs]
    head = "| | " + " | ".join(f"{s}×{s} ours | {s}×{s} paper" for s in sizes) + " |"
    lines = ["## Table 1: accuracy on clean images", "", head, "|---|" + "---|---|" * len(sizes)]
    for role, name in ROLES.items():
        cells = []
        for r in runs:
            clean = r.results[role]["clean"]
            cells.append(_cell({"accuracy": clean["accuracy"], "ci": clean["ci"]}))
            cells.append(_paper(PAPER_TABLES["table1"][role].get(r.size)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", _n_line(runs), "",
              "ROC AUC and the operating point at a false-positive rate of at most 1% "
              "(ours only; the paper gives neither):", "",
              "| model | size | ROC AUC | threshold | FPR | TPR |", "|---|---|---|---|---|---|"]
    for r in runs:
        for role, name in ROLES.items():
            res = r.results[role]
            op = res["operating_point"]
            lines.append(f"| {name} | {r.size}×{r.size} | {res['auc']:.4f} | "
                         f"{op['threshold']:.4f} | {_pct(op['fpr'])} | {_pct(op['tpr'])} |")
    return "\n".join(lines)


def _attack_table(runs, role, table, title) -> str:
    eps = sorted({e for r in runs for m in METHODS for e in _eps_of(r.results[role], m)})
    lines = [f"## {title}", "",
             "| size | method | source | " + " | ".join(f"ε = {e:g}" for e in eps) + " |",
             "|---|---|---|" + "---|" * len(eps)]
    for r in runs:
        for method, label in METHODS.items():
            ours = [_cell(_row(r.results[role], method, e)) for e in eps]
            paper = [_paper(_paper_at(table, r.size, method, e)) for e in eps]
            lines.append(f"| {r.size}×{r.size} | {label} | ours | " + " | ".join(ours) + " |")
            lines.append("| | | paper | " + " | ".join(paper) + " |")
    lines += ["", _role_n_line(runs, role, "fgsm")]
    return "\n".join(lines)


def _role_n_line(runs, role, attack) -> str:
    parts = []
    for r in runs:
        rows = next((a["results"] for a in r.results[role]["attacks"] if a["attack"] == attack),
                    [])
        parts.append(f"{r.size}×{r.size}: {rows[0]['n'] if rows else 0}")
    return (f"n (ours) per cell: {'; '.join(parts)} test patches. "
            f"n (paper): {PAPER_TEST_N} per size.")


def _pgd_table(runs, profile) -> str:
    eps = sorted({e for r in runs for res in r.results.values() for e in _eps_of(res, "pgd")})
    lines = ["## PGD (beyond the paper)", "",
             f"PGD with the margin loss, {profile.pgd_steps} steps, no random start (a uniform "
             "random start is itself a recapture cue to this detector and weakens PGD), against "
             "FGSM on the same patches. The paper reports no iterative attack.", "",
             "| size | model | attack | " + " | ".join(f"ε = {e:g}" for e in eps)
             + " | zero-grad |", "|---|---|---|" + "---|" * (len(eps) + 1)]
    for r in runs:
        for role, name in ROLES.items():
            res = r.results[role]
            for attack, label in ((SUBSET_FGSM, "FGSM"), ("pgd", "PGD-margin")):
                rows = [_row(res, attack, e) for e in eps]
                zero = [x["zero_grad_fraction"] for x in rows if x]
                lines.append(f"| {r.size}×{r.size} | {name} | {label} | "
                             + " | ".join(_cell(x) for x in rows)
                             + f" | {_pct(max(zero) if zero else None)} |")
    parts = []
    for r in runs:
        for role, name in ROLES.items():
            rows = _eps_of(r.results[role], "pgd")
            n = _row(r.results[role], "pgd", rows[0])["n"] if rows else 0
            parts.append(f"{name} {r.size}×{r.size}: {n}")
    lines += ["", "n per cell: " + "; ".join(parts) + " test patches."]
    return "\n".join(lines)


def _per_class_section(runs) -> str:
    lines = ["## Per-class accuracy under each attack",
             "", f"Each cell: accuracy on {LABEL_NAMES[0]}s / on {LABEL_NAMES[1]} images. "
             "An attack may fool one direction far more easily than the other."]
    shown = (("fgsm", "FGSM"), ("llcm", "LLCM (TGSM)"), (SUBSET_FGSM, "FGSM (PGD subset)"),
             ("pgd", "PGD-margin"))
    for r in runs:
        for role, name in ROLES.items():
            res = r.results[role]
            eps = sorted({e for attack, _ in shown for e in _eps_of(res, attack)})
            clean = res["clean"]["by_class"]
            counts = " / ".join(str(clean[k]["n"]) for k in LABEL_NAMES)
            lines += ["", f"### {name}, {r.size}×{r.size} (clean n = {counts})", "",
                      "| attack | clean | " + " | ".join(f"ε = {e:g}" for e in eps) + " |",
                      "|---|---|" + "---|" * len(eps)]
            clean_cell = " / ".join(_pct(clean[k]["accuracy"]) for k in LABEL_NAMES)
            for attack, label in shown:
                cells = []
                for e in eps:
                    row = _row(res, attack, e)
                    cells.append(" / ".join(_pct(row["by_class"][k]["accuracy"])
                                            for k in LABEL_NAMES) if row and row["by_class"]
                                 else "—")
                lines.append(f"| {label} | {clean_cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _checks_section(runs) -> str:
    lines = ["## Sanity checks (Carlini et al. 2019) and notes"]
    for r in runs:
        for role, name in ROLES.items():
            res = r.results[role]
            lines += ["", f"### {name}, {r.size}×{r.size} ({res.get('pipeline', '')}, "
                      f"export version {res.get('model_version', '?')})", ""]
            for c in res["checks"]:
                mark = "PASS" if c["passed"] else "**FAIL**"
                detail = c["detail"]
                if not c["passed"] and "possible gradient masking" not in detail:
                    detail += " (possible gradient masking)"
                lines.append(f"- {mark} {c['name']}: {detail}")
            lines += [f"- note: {n}" for n in res["notes"]]
    return "\n".join(lines)


def _plot_section(runs, output: Path) -> str:
    lines = ["## Robustness plot"]
    for r in runs:
        rel = os.path.relpath(r.plot, output) if r.plot else ""
        lines += ["", f"![Accuracy against ε, {r.size}×{r.size}, both models]({rel})"]
    lines += ["", "Every line starts at ε = 0 from the clean accuracy on all evaluated patches; "
              "the PGD points use the PGD subset (see the PGD table for FGSM on the same "
              "patches)."]
    lines += ["", "Result JSONs (`tfrecap evaluate --json` schema): " + ", ".join(
        f"`{os.path.relpath(p, output)}`" for r in runs for p in r.result_paths.values())]
    return "\n".join(lines)


# ---------------------------------------------------------------- findings


def _overlap(a: dict, b: dict) -> bool:
    return a["ci"][0] <= b["ci"][1] and b["ci"][0] <= a["ci"][1]


def findings(run: SizeRun) -> list[str]:
    """Plain sentences about one size, generated from its numbers."""
    base, sec = run.results["baseline"], run.results["secure"]
    size = f"{run.size}×{run.size}"
    out = []
    b, s = base["clean"], sec["clean"]
    pb, ps = (PAPER_TABLES["table1"][role].get(run.size) for role in ("baseline", "secure"))
    paper = f" (paper: {_paper(pb)} vs {_paper(ps)})" if pb else ""
    verdict = ("the difference is within the 95% intervals" if _overlap(b, s) else
               "the secure model pays for its robustness in clean accuracy"
               if s["accuracy"] < b["accuracy"] else "the secure model is more accurate")
    out.append(f"**{size}, clean.** Baseline {_pct(b['accuracy'])}, secure "
               f"{_pct(s['accuracy'])}{paper}: {verdict}.")

    for method, label in METHODS.items():
        eps = _eps_of(base, method)
        if not eps:
            continue
        e = max(eps)
        rb, rs = _row(base, method, e), _row(sec, method, e)
        pb, ps = _paper_at("table2", run.size, method, e), _paper_at("table3", run.size,
                                                                       method, e)
        paper = f" (paper: {_paper(pb)} and {_paper(ps)})" if pb is not None else ""
        gain = rs["accuracy"] - rb["accuracy"]
        if rb["accuracy"] >= b["accuracy"] - 0.05:
            verdict = "the attack barely moves even the baseline here, so this says little"
        elif gain > 0.2 and rs["accuracy"] > 0.5:
            verdict = "the defence holds against this attack"
        elif gain > 0.05:
            verdict = "the defence helps only partly"
        else:
            verdict = "the defence gives no real protection against it"
        out.append(f"**{size}, {label} at ε = {e:g}.** Baseline {_pct(rb['accuracy'])}, secure "
                   f"{_pct(rs['accuracy'])}{paper}: {verdict}.")

    common = sorted(set(_eps_of(sec, "pgd")) & set(_eps_of(sec, SUBSET_FGSM)))
    if common:
        e = common[-1]
        f, p = _row(sec, SUBSET_FGSM, e), _row(sec, "pgd", e)
        pb = _row(base, "pgd", e)
        drop = f["accuracy"] - p["accuracy"]
        if f["accuracy"] < 0.5:
            verdict = ("it is below 50% even under FGSM here, so there is no robustness for "
                       "PGD to test")
        elif drop > 0.2 or (f["accuracy"] > 0.2 and p["accuracy"] < 0.5 * f["accuracy"]):
            verdict = ("its FGSM robustness largely disappears under PGD: resisting the attack "
                       "it was trained on does not make it robust to an adaptive attacker")
        elif drop > 0.05 and not _overlap(f, p):
            verdict = ("PGD takes away part of it: some of the FGSM robustness is specific to "
                       "the single-step attack")
        else:
            verdict = "its FGSM robustness survives PGD"
        out.append(
            f"**{size}, PGD at ε = {e:g}** ({p['n']} patches). The secure model keeps "
            f"{_pct(p['accuracy'])} under PGD against {_pct(f['accuracy'])} under FGSM on the "
            f"same patches: {verdict}. The baseline keeps {_pct(pb['accuracy']) if pb else '—'}."
        )

    failed = [(name, c["name"]) for role, name in ROLES.items()
              for c in run.results[role]["checks"] if not c["passed"]]
    total = sum(len(run.results[role]["checks"]) for role in ROLES)
    if failed:
        out.append(f"**{size}, sanity checks.** {len(failed)} of {total} fail — possible "
                   "gradient masking, so the accuracies under attack above may overstate "
                   "robustness: " + "; ".join(f"{n}: {c}" for n, c in failed) + ".")
    else:
        out.append(f"**{size}, sanity checks.** All {total} pass for both models.")
    n = min(base["n"], sec["n"])
    if n < 200:
        out.append(f"With n = {n} test patches the intervals are wide; read these numbers as "
                   "illustrative.")
    return out


def _findings_section(runs) -> str:
    lines = ["## Findings", ""]
    for r in runs:
        lines.append(" ".join(findings(r)))
        lines.append("")
    synthetic = [r for r in runs if _is_synthetic(r.dataset, r.size)]
    steps = sorted({c.train.steps for r in runs for c in r.configs.values()})
    if synthetic or steps != [100_000]:
        lines.append(
            "These results come from "
            + ("simulated recaptures of a few bundled photographs" if synthetic
               else "the imported photographs")
            + f" and {'/'.join(map(str, steps))} training steps, while the paper used real "
            f"recaptured photographs (n = {PAPER_TEST_N} test images per size) and 100k steps: "
            "compare directions and gaps with the paper, not the digits. LLCM and FGSM "
            "coincide on correctly classified images for a 2-class model, so LLCM being "
            "clearly weaker than FGSM, as in the paper's tables, is not expected here "
            "(see the |acc_llcm - acc_fgsm| check)."
        )
    return "\n".join(lines)
