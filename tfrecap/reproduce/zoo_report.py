"""What ``tfrecap reproduce --profile zoo`` writes: ``zoo.json``, ``report.md`` and the plots.

Everything is rendered from the defences' result JSONs and training records, so a rerun that
reuses every result writes the same figures. A figure over several training seeds is the mean
with its min–max range (:func:`tfrecap.reproduce.results.spread_text`); every sentence of the
findings is decided from the measured values, on every seed separately
(:func:`tfrecap.reproduce.findings.agreed`).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tfrecap import LABEL_NAMES, __version__, jsonio
from tfrecap.reproduce.findings import agreed, auto_verdict, seed_list
from tfrecap.reproduce.profiles import is_synthetic, unbounded_schedule
from tfrecap.reproduce.results import (
    Stage,
    duration,
    pct,
    row,
    seeds_cell,
    spread,
    spread_text,
)
from tfrecap.reproduce.zoo import (
    AIMS,
    INNER_STEP_METHODS,
    METHOD_LABELS,
    METHOD_PAPERS,
    TARGET_CLEAN_GAP,
    TARGET_EPS,
    TARGET_ROBUST,
    ZOO_SCHEMA_VERSION,
    DefenceRun,
    ZooProfile,
    ZooResult,
    estimate_line,
    inner_step_size,
)

COLLAPSE = 0.6  # clean accuracy at or below this is a collapse (a coin toss is 0.5)
STAGE_PARTS = ("data", "train", "evaluate", "edits", "photos")


# ---------------------------------------------------------------- figures


def _accuracy(result: dict, attack: str, eps: float) -> float | None:
    r = row(result, attack, eps)
    return None if r is None else r["accuracy"]


def _photo_robust(photos: dict | None, key: str = "accuracy") -> float | None:
    if not photos or not photos.get("attacks"):
        return None
    return photos["attacks"][0]["results"][0].get(key)


def figures(run: DefenceRun, baseline: DefenceRun | None, eps: Sequence[float]) -> dict:
    """Every figure of one defence, each a list over its seeds (None where missing)."""
    seeds = run.seeds
    out = {
        "clean": [s.result["clean"]["accuracy"] for s in seeds],
        "auto_subset_clean": [s.result.get("subset_clean", {}).get("accuracy") for s in seeds],
        "training_seconds": [s.training["seconds"] for s in seeds],
        "seconds_per_step": [s.training["seconds_per_step"] for s in seeds],
        "cost_vs_plain": [],
    }
    for attack in ("auto", "pgd", "fgsm"):
        for e in eps:
            out[f"{attack}_eps{e:g}"] = [_accuracy(s.result, attack, e) for s in seeds]
    for i, s in enumerate(seeds):
        plain = baseline.seeds[i].training["seconds_per_step"] if baseline else None
        mine = s.training["seconds_per_step"]
        out["cost_vs_plain"].append(mine / plain if mine and plain else None)
    for i, e in enumerate(["clean", *eps]):
        key = "edits_clean" if e == "clean" else f"edits_eps{e:g}"
        out[key] = [_edits_pooled(s.edits, i) for s in seeds]
    if any(s.photos for s in seeds):
        out["photos_clean_balanced"] = [s.photos["balanced_accuracy"] if s.photos else None
                                        for s in seeds]
        for name in LABEL_NAMES:
            out[f"photos_clean_{name}"] = [
                s.photos["classes"][name]["accuracy"] if s.photos else None for s in seeds]
        out["photos_robust"] = [_photo_robust(s.photos) for s in seeds]
        out["photos_robust_balanced"] = [_photo_robust(s.photos, "balanced_accuracy")
                                         for s in seeds]
    return out


def _edits_pooled(edits: dict | None, column: int) -> float | None:
    """Column ``column`` (0: clean, then each ε) of a model-free record's pooled accuracy."""
    if not edits or column >= len(edits.get("pooled", [])):
        return None
    return edits["pooled"][column]


def _mean(values) -> float | None:
    s = spread(values)
    return None if s is None else s.mean


def _cell(values) -> dict:
    s = spread(values)
    return s.to_dict() if s else {"per_seed": list(values), "mean": None, "min": None,
                                  "max": None}


def baseline_of(runs: Sequence[DefenceRun]) -> DefenceRun | None:
    """The plain step: the first undefended defence."""
    return next((r for r in runs if r.is_baseline), None)


# ---------------------------------------------------------------- outputs


def write_outputs(runs: list[DefenceRun], profile: ZooProfile, stages: list[Stage], est: dict,
                  *, output: Path, command: str | None, seconds: float, photos: bool,
                  dataset: str, simulated: bool | None = None) -> ZooResult:
    """Write ``zoo.json``, ``pareto.png``, ``robustness.png`` and ``report.md`` to ``output``.

    ``simulated``: whether ``dataset`` holds simulated recaptures (None: judged by its name, so
    only the built-in synthetic datasets count)."""
    if simulated is None:
        simulated = is_synthetic(dataset, profile.size)
    output.mkdir(parents=True, exist_ok=True)
    plot_path, curves_path = output / "pareto.png", output / "robustness.png"
    _pareto_plot(runs, profile, plot_path)
    _curves_plot(runs, profile, curves_path)
    lines = findings(runs, profile, photos=photos, simulated=simulated)
    json_path = jsonio.write_json(output / "zoo.json", zoo_json(
        runs, profile, stages, est, output=output, command=command, seconds=seconds,
        dataset=dataset, simulated=simulated, findings=lines))
    report_path = output / "report.md"
    report_path.write_text(render(runs, profile, stages, est, command=command, seconds=seconds,
                                  output=output, photos=photos, dataset=dataset,
                                  simulated=simulated, findings=lines,
                                  plots=(plot_path, curves_path)))
    return ZooResult(output, report_path, json_path, plot_path, runs, stages, seconds, est)


def zoo_json(runs, profile: ZooProfile, stages, est, *, output: Path, command, seconds,
             simulated=None,
             dataset, findings) -> dict:
    """Every figure, per seed and as mean/min/max, with the settings that made it."""
    baseline = baseline_of(runs)
    return {
        "schema_version": ZOO_SCHEMA_VERSION,
        "kind": "zoo",
        "command": command,
        "made_at": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "profile": jsonio.to_jsonable(dataclasses.asdict(profile)),
        "dataset": dataset,
        "simulated": simulated,
        "seeds": [s.seed for s in runs[0].seeds],
        "targets": {"eps": TARGET_EPS, "robust": TARGET_ROBUST, "clean_gap": TARGET_CLEAN_GAP,
                    "aims": [{"eps": e, "robust": a} for e, a in AIMS]},
        "seconds": seconds,
        "estimate": est,
        "stages": [dataclasses.asdict(s) for s in stages],
        "defences": [{
            "pipeline": r.pipeline, "method": r.method, "label": r.label,
            "baseline": r is baseline,
            "cells": {k: _cell(v) for k, v in figures(r, baseline, profile.eps).items()},
            "seeds": [{
                "seed": s.seed, "model": str(s.export.parent), "model_version": s.export.name,
                "result": _relative(s.result_path, output), "training": s.training,
                "photos": _relative(s.photos_path, output) if s.photos_path else None,
                "edits": _relative(s.edits_path, output) if s.edits_path else None,
                "made_at": s.result.get("made_at"),
            } for s in r.seeds],
        } for r in runs],
        "findings": findings,
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _headline_eps(profile: ZooProfile) -> float:
    """The ε of the Pareto plot: the target's when measured, else the smallest."""
    return TARGET_EPS if _has_eps(profile, TARGET_EPS) else min(profile.eps)


def _has_eps(profile: ZooProfile, eps: float) -> bool:
    return any(math.isclose(e, eps) for e in profile.eps)


def _pareto_plot(runs, profile, path: Path) -> None:
    from tfrecap.evaluation.plots import plot_tradeoff

    e = _headline_eps(profile)
    points = [{"label": r.label,
               "x": [None if s.training["seconds"] is None else s.training["seconds"] / 60
                     for s in r.seeds],
               "y": [_accuracy(s.result, "auto", e) for s in r.seeds]} for r in runs]
    n = len(runs[0].seeds)
    plot_tradeoff(points, path, x_label="training time (min)",
                  y_label=f"accuracy under auto at ε = {e:g}",
                  title=f"Robustness against training cost, {profile.size}×{profile.size}"
                  + (f" (mean of {n} seeds, bars: min–max)" if n > 1 else ""))


def _curves_plot(runs, profile, path: Path) -> None:
    from tfrecap.evaluation import plot_results

    shown = [{**s.result, "label": r.label,
              "attacks": [a for a in s.result["attacks"] if a["attack"] == "auto"]}
             for r in runs for s in r.seeds[:1]]
    plot_results(shown, path, title=f"Accuracy under auto, {profile.size}×{profile.size} "
                 "(first seed; ε = 0: clean; bars: 95% Wilson)")


# ---------------------------------------------------------------- report.md


def render(runs, profile: ZooProfile, stages, est, *, command, seconds, output: Path, photos,
           dataset, findings, plots, simulated=None) -> str:
    parts = [
        _header(runs, profile, est, command, seconds, dataset, simulated),
        _headline_table(runs, profile, photos),
        _attack_table(runs, profile),
        _edits_section(runs, profile),
        _cost_table(runs),
        _photos_section(runs, profile) if photos else
        "## Real photos\n\nNot measured: pass `--originals DIR --recaptured DIR` to judge "
        "whole photos with every defence, clean and under a whole-image attack.",
        _plots_section(plots, output),
        _checks_section(runs),
        "## Findings\n\n" + "\n\n".join(f"- {line}" for line in findings),
        _stages_section(stages, est, seconds, profile.seeds),
    ]
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


def _machine() -> str:
    from tfrecap.reproduce.report import _machine as machine

    return machine()


def _header(runs, profile: ZooProfile, est, command, seconds, dataset, simulated=None) -> str:
    import keras
    import tensorflow as tf

    first = [r.seeds[0] for r in runs]
    seeds = [s.seed for s in runs[0].seeds]
    steps = sorted({s.config.train.steps for s in first})
    widths = sorted({tuple(s.config.model.widths) for s in first})
    n_clean = first[0].result["n"]
    n_attack = next((x["n"] for x in first[0].result["attacks"][0]["results"]), 0)
    eps = ", ".join(f"{e:g}" for e in profile.eps)
    unbounded_steps, unbounded_step_size = unbounded_schedule()
    data = dataset + (f" ({profile.count} per class, seed {profile.seed})"
                      if is_synthetic(dataset, profile.size)
                      else " (a simulator variant: see `tfrecap data info`)" if simulated
                      else "")
    unbounded = (f"PGD-margin at ε = 255 ({unbounded_steps} steps of {unbounded_step_size:g} "
                 f"levels) on {profile.unbounded_limit} patches as a sanity check"
                 if profile.unbounded_limit else "no ε = 255 sanity check")
    seeds_line = "" if len(seeds) == 1 else (
        f"- **Seeds:** {len(seeds)} training seeds ({', '.join(map(str, seeds))}: each "
        "pipeline's `[train] seed` + 0, 1, …) on the same data; a cell of the first table is "
        "the mean over the seeds [min–max].\n")
    return f"""
# Defence zoo: {len(runs)} defences at {profile.size}×{profile.size}, clean and under attack

- **Command:** `{command or "tfrecap.reproduce.reproduce_zoo(...)"}`
- **Date:** {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
- **Machine:** {_machine()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, \
tfrecap {__version__}
- **Defences:** {"; ".join(f"{r.label} (`{r.pipeline}`: {METHOD_PAPERS.get(r.method, r.method)})"
                          for r in runs)}; \
{"/".join(map(str, steps))} training steps each; LaplacianCNN widths \
{", ".join(str(list(w)) for w in widths)}
- **Training attacks:** {_training_attacks(first)}
{seeds_line}- **Data:** {data}; split 40/10/50 by scene region; clean accuracy on all \
{n_clean} test patches
- **Attacks** (ε in pixel levels of [0, 255], adversarial images rounded to 8 bits), all on \
the same first {n_attack} test patches at ε = {eps}: auto (APGD-CE and APGD-margin, \
{profile.auto_apgd_steps} steps each; Square, {profile.auto_square_queries} queries; each on the \
patches still correct, seed 0), PGD-margin ({profile.pgd_steps} steps, no random start) and \
FGSM; {unbounded}. These are CPU budgets, well below AutoAttack's (100 steps, 5000 \
queries): robust accuracy here is an upper bound.
- **Total wall time:** {duration(seconds)}. {estimate_line(est, profile.seeds)}.
"""


def _training_attacks(first) -> str:
    """The inner attacks' steps and the guard's settings, as the configs record them."""
    inner = [f"{METHOD_LABELS.get(s.config.defence.method, s.config.defence.method)} "
             f"{s.config.defence.attack_steps} steps of {inner_step_size(s.config.defence):.3g} "
             f"levels at ε = {s.config.defence.attack_eps:g}"
             for s in first if s.config.defence.method in INNER_STEP_METHODS]
    inner += [f"{METHOD_LABELS['fast_fgsm']} one step at ε = {s.config.defence.attack_eps:g}, "
              f"GradAlign weight {s.config.defence.grad_align_weight:g}"
              for s in first if s.config.defence.method == "fast_fgsm"]
    guards = sorted({(g.every, g.patches, g.eps, g.pgd_steps, g.clean_floor)
                     for g in (s.config.guard for s in first)})
    guard = "; ".join(
        f"every {every} epoch(s), PGD-margin at ε = {eps:g} ({steps} steps) on {patches} "
        f"validation patches; the export is the best checkpoint with clean accuracy "
        f"≥ {floor:g}" if every else "none: every export is its run's last checkpoint"
        for every, patches, eps, steps, floor in guards)
    by_clean = [s.config.name for s in first
                if s.config.guard.every and s.config.guard.select == "clean"]
    ranked = (f", by PGD accuracy ({', '.join(by_clean)}: by clean accuracy)" if by_clean
              else "")
    return (f"{'; '.join(inner) or 'no multi-step inner attack'}. Guard: {guard}{ranked}.")


def _fixed(fmt: str) -> Callable[[float], str]:
    return lambda v: format(v, fmt)


def _minutes(v: float) -> str:
    return duration(v)


def _headline_table(runs, profile: ZooProfile, photos: bool) -> str:
    baseline = baseline_of(runs)
    eps = list(profile.eps)
    head = ["defence", "clean"] + [f"auto ε = {e:g}" for e in eps] + [
        "training time", "× plain step"]
    if photos:
        head += ["photos: clean (balanced)", f"photos: robust at ε = {profile.photo_eps:g}"]
    lines = ["## The defences side by side", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in runs:
        f = figures(r, baseline, eps)
        cells = [f"{r.label} (`{r.pipeline}`)", spread_text(f["clean"])]
        cells += [spread_text(f[f"auto_eps{e:g}"]) for e in eps]
        cells += [spread_text(f["training_seconds"], _minutes),
                  spread_text(f["cost_vs_plain"], lambda v: f"{v:.1f}×")]
        if photos:
            cells += [spread_text(f["photos_clean_balanced"]), spread_text(f["photos_robust"])]
        lines.append("| " + " | ".join(cells) + " |")
    n_seeds = len(runs[0].seeds)
    lines += ["", ("One training seed: each cell is the measured value; the tables below give "
                   "the 95% Wilson intervals." if n_seeds == 1 else
                   f"Each cell: the mean over the {n_seeds} training seeds [min–max]; every "
                   "seed's value is in `zoo.json`.")
              + " Clean: all test patches; auto: the first attacked patches (see Attacks). "
              "Training time: the wall time of training (tracing, validation, guard and export "
              "included); × plain step: seconds per step from the run's history against the "
              "undefended baseline's."]
    return "\n".join(lines)


def _attack_table(runs, profile: ZooProfile) -> str:
    eps = list(profile.eps)
    lines = ["## auto, PGD and FGSM on the same patches", "",
             "| defence | attack | clean (these patches) | "
             + " | ".join(f"ε = {e:g}" for e in eps) + " | zero-grad |",
             "|---|---|---|" + "---|" * (len(eps) + 1)]
    for r in runs:
        rs = [s.result for s in r.seeds]
        subset = [res.get("subset_clean") for res in rs]
        for attack, label in (("auto", "auto"), ("pgd", "PGD-margin"), ("fgsm", "FGSM")):
            per_seed = [[row(res, attack, e) for e in eps] for res in rs]
            zero = []
            for rows in per_seed:
                fractions = [x["zero_grad_fraction"] for x in rows
                             if x and x["zero_grad_fraction"] is not None]
                zero.append(max(fractions) if fractions else None)
            cells = [seeds_cell([rows[i] for rows in per_seed]) for i in range(len(eps))]
            lines.append(f"| {r.label} | {label} | {seeds_cell(subset)} | "
                         + " | ".join(cells) + f" | {spread_text(zero)} |")
    lines += ["", "auto's robust patches are those all three members failed on; PGD and FGSM "
              "alone should never be below it (a check below). zero-grad: the largest share "
              "of patches, over ε, whose input gradient was exactly zero."]
    return "\n".join(lines)


def _edits_section(runs, profile: ZooProfile) -> str:
    """Blind edits beside auto, on the same patches: the yardstick a gradient attack must
    reach (see :mod:`tfrecap.attacks.model_free`)."""
    baseline = baseline_of(runs)
    eps = list(profile.eps)
    n = next((s.edits["n"] for r in runs for s in r.seeds if s.edits), None)
    lines = ["## The model-free yardstick: blind edits beside auto", "",
             "| defence | attack | clean (these patches) | "
             + " | ".join(f"ε = {e:g}" for e in eps) + " |", "|---|---|---|" + "---|" * len(eps)]
    for r in runs:
        f = figures(r, baseline, eps)
        lines.append(f"| {r.label} | blind edits | {spread_text(f['edits_clean'])} | "
                     + " | ".join(spread_text(f[f"edits_eps{e:g}"]) for e in eps) + " |")
        lines.append(f"| {r.label} | auto | {spread_text(f['auto_subset_clean'])} | "
                     + " | ".join(spread_text(f[f"auto_eps{e:g}"]) for e in eps) + " |")
    where = (f" ({n['original']} originals, {n['recaptured']} recaptures)" if n else "")
    lines += ["", "Blind edits use no model and no gradient (`tfrecap.attacks.model_free`): "
              "each recapture's fine detail (x − Gaussian(x, 1 px)) is shaved by up to ε "
              "levels, and each original is given a recapture's fine detail clipped to ±ε, "
              f"on the patches auto attacks{where}, 8-bit. The robust accuracy is at most the "
              "lower of the two rows; where blind edits leave fewer patches correct than auto, "
              "auto is beaten by an attack that never looks at the model."]
    return "\n".join(lines)


def _cost_table(runs) -> str:
    from tfrecap.reproduce.zoo import step_cost

    baseline = baseline_of(runs)
    lines = ["## Training cost", "",
             "| defence | method | steps | training time | s/step | × plain step | "
             "× plain, expected |", "|---|---|---|---|---|---|---|"]
    plain = step_cost(baseline.seeds[0].config.defence) if baseline else None
    for r in runs:
        f = figures(r, baseline, ())
        config = r.seeds[0].config
        expected = f"{step_cost(config.defence) / plain:.1f}×" if plain else "—"
        lines.append(
            f"| {r.label} | {r.method} | {config.train.steps} | "
            f"{spread_text(f['training_seconds'], _minutes)} | "
            f"{spread_text(f['seconds_per_step'], _fixed('.3f'))} | "
            f"{spread_text(f['cost_vs_plain'], lambda v: f'{v:.1f}×')} | {expected} |")
    sources = sorted({s.training["source"] for r in runs for s in r.seeds})
    lines += ["", "s/step: seconds per training step, an epoch's validation and checkpoint "
              "included, the guard's passes left out (every defence runs the same guard) "
              f"(from: {'; '.join(sources)}). Expected: the cost model of "
              "`tfrecap.reproduce.zoo.step_cost` (forward + backward passes per step). On a "
              "shared machine the measured ratios move with its load."]
    return "\n".join(lines)


def _photos_section(runs, profile: ZooProfile) -> str:
    first = next(s.photos for r in runs for s in r.seeds if s.photos)
    folders = first.get("folders", {})
    attacked = first.get("attacked", {}).get("classes", {})
    counts = ", ".join(f"{v['n']} {k}" for k, v in attacked.items())
    lines = ["## Real photos (whole images)", "",
             f"Every photo under {', '.join(f'`{v}`' for v in folders.values())} judged whole by "
             "each export's `classify_images` (its stored verdict), as `tfrecap predict` judges "
             f"it; then the first {profile.photo_attack_limit} judged photos per class "
             f"({counts}) attacked whole with "
             f"PGD-margin ({profile.photo_pgd_steps} steps) at ε = {profile.photo_eps:g}, each "
             "adversarial photo judged as a PNG. A photo wrong when clean counts as not "
             "robust.", "",
             "| defence | original | recaptured | balanced | ROC AUC | robust (attacked) | "
             "robust, balanced |", "|---|---|---|---|---|---|---|"]
    baseline = baseline_of(runs)
    for r in runs:
        f = figures(r, baseline, ())
        auc = [s.photos["auc"] if s.photos else None for s in r.seeds]
        lines.append(f"| {r.label} | {spread_text(f['photos_clean_original'])} | "
                     f"{spread_text(f['photos_clean_recaptured'])} | "
                     f"{spread_text(f['photos_clean_balanced'])} | "
                     f"{spread_text(auc, _fixed('.3f'))} | {spread_text(f['photos_robust'])} | "
                     f"{spread_text(f['photos_robust_balanced'])} |")
    n = {k: v["n"] for k, v in first["classes"].items()}
    lines += ["", f"n: {', '.join(f'{v} {k}' for k, v in n.items())} photos judged clean. "
              "Per-photo verdicts are in each defence's `results/NAME_photos.json`."]
    return "\n".join(lines)


def _plots_section(plots, output: Path) -> str:
    pareto, curves = (os.path.relpath(p, output) for p in plots)
    return ("## Plots\n\n"
            f"![Robust accuracy under auto against training time, one point per defence]"
            f"({pareto})\n\n"
            "One point per defence (the mean over the seeds, bars: min–max); the dotted line "
            "joins the points no other beats on both cost and robustness.\n\n"
            f"![Accuracy under auto against ε, every defence]({curves})")


def _checks_section(runs) -> str:
    lines = ["## Sanity checks (Carlini et al. 2019) and notes"]
    for r in runs:
        for s in r.seeds:
            res = s.result
            tag = f", seed {s.seed}" if len(r.seeds) > 1 else ""
            lines += ["", f"### {r.label}{tag} ({r.pipeline}, export version "
                      f"{res.get('model_version', '?')})", ""]
            for c in res["checks"]:
                mark = "PASS" if c["passed"] else "**FAIL**"
                lines.append(f"- {mark} {c['name']}: {c['detail']}")
            lines += [f"- note: {n}" for n in res["notes"]]
    return "\n".join(lines)


def _stages_section(stages: list[Stage], est: dict, seconds: float, n_seeds: int) -> str:
    lines = ["## Wall time", "", "| part | measured | estimated |", "|---|---|---|"]
    expected = {"data": est["data"], "train": n_seeds * sum(est["train"].values()),
                "evaluate": n_seeds * sum(est["evaluate"].values()), "edits": None,
                "photos": None}
    names = {"data": "data", "train": "training", "evaluate": "evaluation (patches)",
             "edits": "blind edits", "photos": "photos"}
    for part in STAGE_PARTS:
        mine = [s.seconds for s in stages if s.name.split(" ", 1)[0] == part]
        if not mine:
            continue
        guess = expected[part]
        bound = "≤ " if part == "evaluate" else ""
        lines.append(f"| {names[part]} | {duration(sum(mine))} | "
                     f"{'—' if guess is None else bound + duration(guess)} |")
    lines += [f"| **total** (with the report) | {duration(seconds)} | "
              f"{duration(est['total'])} |", "", "| stage | time | what happened |",
              "|---|---|---|"]
    lines += [f"| {s.name} | {duration(s.seconds)} | {s.status} |" for s in stages]
    return "\n".join(lines)


# ---------------------------------------------------------------- findings


def _gap(values) -> str:
    """Differences in accuracy as percentage points, e.g. "-2.0 points [-3.1–-0.9]"."""
    return spread_text(values, lambda v: f"{100 * v:+.1f}") + " points"


def _target_verdict(robust: float, clean: float, base_clean: float | None) -> str:
    missing = []
    if robust < TARGET_ROBUST:
        missing.append("its robust accuracy is too low")
    if base_clean is not None and clean < base_clean - TARGET_CLEAN_GAP:
        missing.append("its clean accuracy is too far below the baseline's")
    if not missing:
        return "it meets issue 15's target"
    return "it misses issue 15's target, as " + " and ".join(missing)


def findings(runs: list[DefenceRun], profile: ZooProfile, *, photos: bool,
             simulated: bool = True) -> list[str]:
    """Plain sentences written from the measured values, each verdict decided per seed.

    ``simulated``: whether the patches are simulated recaptures (False: patches of imported
    photos)."""
    baseline = baseline_of(runs)
    seeds = [s.seed for s in runs[0].seeds]
    eps = list(profile.eps)
    fig = {r.pipeline: figures(r, baseline, eps) for r in runs}
    base = fig[baseline.pipeline] if baseline else None
    out = []
    n_attack = next((x["n"] for x in runs[0].seeds[0].result["attacks"][0]["results"]), 0)

    def acc(values):
        return spread_text(values)

    if not _has_eps(profile, TARGET_EPS):
        out.append(f"**Targets.** Not measured: the target is stated at ε = {TARGET_EPS:g}, "
                   f"which this run did not attack (ε = {', '.join(f'{e:g}' for e in eps)}).")
    else:
        key = f"auto_eps{TARGET_EPS:g}"
        def rank(run):
            # A collapsed model (clean at or below COLLAPSE) is never headlined as the best,
            # whatever its robust accuracy; a missing figure ranks last (a 0.0 mean is not one).
            clean, robust = _mean(fig[run.pipeline]["clean"]), _mean(fig[run.pipeline][key])
            return (clean is not None and clean > COLLAPSE, -1.0 if robust is None else robust)

        ranked = sorted(runs, key=rank, reverse=True)
        best = ranked[0]
        b = fig[best.pipeline]
        base_clean = base["clean"] if base else [None] * len(seeds)
        gaps = [c - bc if c is not None and bc is not None else None
                for c, bc in zip(b["clean"], base_clean, strict=True)]
        verdicts = [_target_verdict(rb, c, bc) for rb, c, bc in
                    zip(b[key], b["clean"], base_clean, strict=True)]
        against = (f", against the baseline's {acc(base['clean'])} "
                   f"({_gap(gaps)})" if base and best is not baseline else "")
        tied = [r.label for r in ranked[1:] if _mean(fig[r.pipeline][key]) == _mean(b[key])]
        tie = f"; tied with {_and(tied)}" if tied else ""
        # Defences that keep more under attack but collapsed are named, not silently passed.
        def collapsed_but_more_robust(run):
            clean, robust = _mean(fig[run.pipeline]["clean"]), _mean(fig[run.pipeline][key])
            return (clean is not None and clean <= COLLAPSE and robust is not None
                    and robust > _mean(b[key]))

        passed_over = ([r for r in ranked if collapsed_but_more_robust(r)]
                       if rank(best)[0] and _mean(b[key]) is not None else [])
        among = " among the models that did not collapse" if passed_over else ""
        text = (f"**Best under auto at ε = {TARGET_EPS:g}{among}: {best.label}** "
                f"(`{best.pipeline}`{tie}) "
                f"keeps {acc(b[key])} of {n_attack} patches, with clean accuracy "
                f"{acc(b['clean'])}{against}: {agreed(verdicts, seeds)} "
                f"(≥ {TARGET_ROBUST:.0%} under auto at ε = {TARGET_EPS:g} with clean accuracy "
                f"within {100 * TARGET_CLEAN_GAP:g} points of the baseline's).")
        aims = []
        for e, goal in AIMS:
            if _has_eps(profile, e):
                values = b[f"auto_eps{e:g}"]
                hit = [s for s, v in zip(seeds, values, strict=True)
                       if v is not None and v >= goal]
                missed = [s for s in seeds if s not in hit]
                verdict = ("reaches" if not missed else "misses" if not hit else
                           f"reaches on {seed_list(hit)} and misses on {seed_list(missed)}")
                aims.append(f"{verdict} the aim of {goal:.0%} at ε = {e:g} "
                            f"({', '.join(pct(v) for v in values)})")
        if aims:
            text += " It " + "; it ".join(aims) + "."
        if passed_over:
            text += (" More robust, but collapsed to a clean accuracy of "
                     f"{COLLAPSE:.0%} or less (so never headlined): " + _and(
                         [f"{r.label} ({acc(fig[r.pipeline][key])} at ε = {TARGET_EPS:g}, "
                          f"clean {acc(fig[r.pipeline]['clean'])})" for r in passed_over]) + ".")
        out.append(text)
        meeting = [r for r in runs if all(
            v is not None and v >= TARGET_ROBUST and (not base or bc is None
                                                       or c >= bc - TARGET_CLEAN_GAP)
            for v, c, bc in zip(fig[r.pipeline][key], fig[r.pipeline]["clean"], base_clean,
                                strict=True))]
        out.append("**Target on every seed:** " + (
            _and([r.label for r in meeting]) + (" meets" if len(meeting) == 1 else " meet")
            + " it." if meeting else f"none of the {len(runs)} defences meets it."))

    if base:
        parts, collapsed = [], []
        for r in runs:
            if r is baseline:
                continue
            clean = fig[r.pipeline]["clean"]
            gaps = [c - bc for c, bc in zip(clean, base["clean"], strict=True)]
            parts.append(f"{r.label} {acc(clean)} ({_gap(gaps)})")
            low = [s for s, c in zip(seeds, clean, strict=True) if c <= COLLAPSE]
            if low:
                collapsed.append(r.label if len(low) == len(seeds) else
                                 f"{r.label} (on {seed_list(low)})")
        verdict = (f"clean accuracy collapses to {COLLAPSE:.0%} or less (a coin toss is 50%) "
                   f"for {_and(collapsed)}" if collapsed else
                   f"no defence's clean accuracy collapses (all above {COLLAPSE:.0%})")
        text = (f"**Clean accuracy.** The baseline {acc(base['clean'])}; "
                + "; ".join(parts) + f": {verdict}.")
        if any(c <= COLLAPSE for c in base["clean"]):
            text += (" The baseline itself is that low, so these models are too little trained "
                     "to judge the defences by.")
        out.append(text)

    if _has_eps(profile, TARGET_EPS):
        overstated, stands = [], []
        for r in runs:
            rows = [(row(s.result, "pgd", TARGET_EPS), row(s.result, "auto", TARGET_EPS))
                    for s in r.seeds]
            if any(p is None or a is None for p, a in rows):
                continue
            verdicts = [auto_verdict(p, a) for p, a in rows]
            if any("overstated" in v for v in verdicts):
                gap = [p["accuracy"] - a["accuracy"] for p, a in rows]
                overstated.append(f"{r.label} (by {_gap(gap).lstrip('+')}; "
                                  f"{agreed(verdicts, seeds)})")
            else:
                stands.append(r.label)
        text = f"**auto against PGD at ε = {TARGET_EPS:g}.** "
        text += ("PGD-margin overstates the robustness of " + "; ".join(overstated) + ". "
                 if overstated else "")
        text += (f"For {_and(stands)}, auto finds no more than noise beyond PGD."
                 if stands else "")
        out.append(text.strip())

    costs = []
    for r in runs:
        if r is baseline:
            continue
        f = fig[r.pipeline]
        costs.append(f"{r.label} {spread_text(f['cost_vs_plain'], lambda v: f'{v:.1f}×')} "
                     f"({spread_text(f['training_seconds'], _minutes)} in all)")
    if base:
        out.append(f"**Cost.** Against the plain step (the baseline: "
                   f"{spread_text(base['seconds_per_step'], _fixed('.3f'))} s per step, "
                   f"{spread_text(base['training_seconds'], _minutes)} of training), per step: "
                   + "; ".join(costs) + ".")

    failed = []
    for r in runs:
        for s in r.seeds:
            bad = [c["name"] for c in s.result["checks"] if not c["passed"]]
            if bad:
                tag = f", seed {s.seed}" if len(r.seeds) > 1 else ""
                failed.append(f"{r.label}{tag}: {'; '.join(bad)}")
    total = sum(len(s.result["checks"]) for r in runs for s in r.seeds)
    out.append("**Sanity checks.** " + (
        f"{len(failed)} of the runs fail some — possible gradient masking, so their robust "
        "accuracy may be overstated: " + " — ".join(failed) + "." if failed else
        f"All {total} pass for every defence."))

    if photos:
        out.append(_photo_finding(runs, fig, baseline, profile, seeds))
    else:
        out.append("**Real photos.** Not measured (no `--originals`/`--recaptured`): "
                   "every figure above is on " + ("simulated patches." if simulated else
                                                  "patches of the imported photos, not on "
                                                  "whole photos."))
    out.append(_edits_finding(runs, fig, profile))
    if n_attack < 200:
        out.append(f"With n = {n_attack} attacked patches the 95% intervals are wide (see the "
                   "second table); read small differences as noise.")
    return out


def _edits_finding(runs, fig, profile: ZooProfile) -> str:
    """Where the blind edits beat auto (by the mean over seeds), per defence and ε."""
    beaten, measured = [], False
    for r in runs:
        f = fig[r.pipeline]
        gaps = []
        for e in profile.eps:
            blind, auto = _mean(f[f"edits_eps{e:g}"]), _mean(f[f"auto_eps{e:g}"])
            if blind is None or auto is None:
                continue
            measured = True
            if blind < auto:
                gaps.append((e, auto - blind))
        if gaps:
            worst = max(gaps, key=lambda g: g[1])
            beaten.append(f"{r.label} at ε = {_and([f'{e:g}' for e, _ in gaps])} (by up to "
                          f"{100 * worst[1]:.1f} points, at ε = {worst[0]:g})")
    if not measured:
        return "**Model-free edits.** Not measured."
    if not beaten:
        return ("**Model-free edits.** auto leaves no more patches correct than the blind "
                "edits, for every defence at every ε where both were measured: no sign that it "
                "is beaten by an attack that never looks at the model.")
    return ("**Model-free edits.** The blind edits leave fewer patches correct than auto for "
            + "; ".join(beaten) + ". There auto understates the attacker: the robust accuracy "
            "is at most the blind-edit figure (the yardstick table).")


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _photo_finding(runs, fig, baseline, profile: ZooProfile, seeds) -> str:
    key = "photos_robust"
    measured = [r for r in runs if _mean(fig[r.pipeline][key]) is not None]
    if not measured:
        return "**Real photos.** No photo could be attacked (see the photos table)."
    # As on patches, a model whose clean verdicts are no better than a near-constant answer
    # (balanced accuracy at or below COLLAPSE) is never headlined: its robust share is the
    # share of photos that answer keeps, not robustness.
    useful = [r for r in measured
              if (_mean(fig[r.pipeline]["photos_clean_balanced"]) or 0.0) > COLLAPSE]
    best = max(useful or measured, key=lambda r: _mean(fig[r.pipeline][key]))
    b = fig[best.pipeline]
    where = (" among the models whose clean balanced accuracy is above "
             f"{COLLAPSE:.0%}" if useful and len(useful) < len(measured) else "")
    text = (f"**Real photos.** Most robust whole-image verdict at ε = {profile.photo_eps:g}"
            f"{where}: {best.label}, {spread_text(b[key])} of the attacked photos, with clean "
            f"balanced accuracy {spread_text(b['photos_clean_balanced'])}")
    if baseline and best is not baseline:
        base = fig[baseline.pipeline]
        text += (f" against the baseline's {spread_text(base[key])} and "
                 f"{spread_text(base['photos_clean_balanced'])}")
    n = next(s.photos for s in best.seeds if s.photos)["attacked"]["n"]
    text += f" ({n} photos attacked; intervals are wide at this n)."
    collapsed = [r for r in measured if r not in useful
                 and _mean(fig[r.pipeline][key]) > _mean(b[key])]
    if not useful:
        text += (f" No model's clean balanced accuracy is above {COLLAPSE:.0%}, so none of "
                 "these robust shares is robustness.")
    elif collapsed:
        text += (" More robust, but at a clean balanced accuracy of "
                 f"{COLLAPSE:.0%} or less (a near-constant answer): " + ", ".join(
                     f"{r.label} ({spread_text(fig[r.pipeline][key])}, clean balanced "
                     f"{spread_text(fig[r.pipeline]['photos_clean_balanced'])})"
                     for r in collapsed) + ".")
    return text
