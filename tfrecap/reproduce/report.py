"""``report.md`` of a reproduction: the paper's Tables 1–3 beside ours, PGD, checks, findings.

Markdown only, rendered from the runs' result JSONs (:mod:`tfrecap.reproduce.results`), so a
rerun that reuses every result renders the same tables. With one training seed a cell is the
accuracy with its 95% Wilson interval; with several it is the mean over the seeds with the
min–max range, and each table's caption says which.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from tfrecap import LABEL_NAMES, __version__
from tfrecap.reproduce.findings import findings_section, simulated
from tfrecap.reproduce.paper_tables import (
    METHODS,
    PAPER_TABLES,
    PAPER_TEST_N,
    ROLES,
    paper_at,
    paper_cell,
)
from tfrecap.reproduce.profiles import Profile, is_synthetic, unbounded_schedule
from tfrecap.reproduce.results import (
    SUBSET_FGSM,
    SUBSET_PGD,
    SizeRun,
    Stage,
    duration,
    eps_of,
    row,
    seeds_caption,
    seeds_cell,
    spread_text,
)


def render_report(runs: list[SizeRun], profile: Profile, stages: list[Stage], *,
                  command: str | None, seconds: float, output: Path) -> str:
    """The whole ``report.md``, from the runs' result JSONs."""
    n_seeds = len(runs[0].seeds)
    parts = [
        _header(runs, profile, command, seconds),
        _stages_section(stages, seconds),
        _table1(runs),
        _attack_table(runs, "baseline", "table2",
                      "Table 2: detection accuracy of adversarial images, Yang's method"),
        _attack_table(runs, "secure", "table3",
                      "Table 3: detection accuracy of adversarial images, proposed method"),
        _pgd_table(runs, profile),
        _auto_table(runs, profile),
        _per_class_section(runs),
        _checks_section(runs),
        _plot_section(runs, output),
        findings_section(runs),
    ]
    if n_seeds > 1:
        # Under each table, what its cells hold (the one-seed report keeps its old layout).
        parts = [p if not p.startswith(("## Table", "## PGD", "## auto", "## Per-class")) else
                 p.rstrip("\n") + "\n\n" + seeds_caption(n_seeds) for p in parts]
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

    unbounded_steps, unbounded_step_size = unbounded_schedule()
    first = runs[0].configs
    seeds = runs[0].seed_values
    pipelines = ", ".join(f"{c['baseline'].name} / {c['secure'].name}"
                          for c in (r.configs for r in runs))
    data = ", ".join(f"{r.dataset}{_data_note(r, profile)}" for r in runs)
    steps = sorted({c.train.steps for r in runs for c in r.configs.values()})
    limit = "the whole test split" if profile.limit is None else f"the first {profile.limit} " \
        "test patches"
    pgd_limit = ("the whole test split" if profile.pgd_limit is None
                 else f"the first {profile.pgd_limit} test patches")
    eps = ", ".join(f"{e:g}" for e in profile.eps)
    pgd_eps = ", ".join(f"{e:g}" for e in profile.pgd_eps)
    widths = sorted({tuple(c.model.widths) for c in first.values()})
    seeds_line = "" if len(seeds) == 1 else (
        f"- **Seeds:** {len(seeds)} training seeds ({', '.join(map(str, seeds))}: the "
        "pipelines' `[train] seed` + 0, 1, …; initialisation, shuffle and fusion ε draws) on "
        "the same data. Every *ours* cell is the mean over the seeds [min–max]; each seed's "
        "values are in `summary.json` and its result JSONs.\n"
    )
    cells = ("accuracy [95% Wilson interval]" if len(seeds) == 1 else
             f"the mean accuracy over {len(seeds)} training seeds [min–max over the seeds]")
    return f"""
# Reproduction of Zhao et al. 2018, Section 4 (Tables 1–3)

- **Command:** `{command or "tfrecap.reproduce.reproduce(...)"}`
- **Date:** {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}
- **Machine:** {_machine()}; TensorFlow {tf.__version__}, Keras {keras.__version__}, \
tfrecap {__version__}
- **Profile:** `{profile.name}`; sizes {", ".join(f"{r.size}×{r.size}" for r in runs)}
- **Pipelines** (Yang / Prop): {pipelines}; {"/".join(map(str, steps))} training steps; \
LaplacianCNN widths {", ".join(str(list(w)) for w in widths)}
{seeds_line}- **Data:** {data}; split 40/10/50 by scene region; evaluation on the test split
- **Attacks:** FGSM and LLCM (the paper's TGSM) at ε = {eps} on {limit}; \
PGD (margin loss, {profile.pgd_steps} steps, no random start) at ε = {pgd_eps} on {pgd_limit}, \
with FGSM on the same patches; PGD-margin at ε = 255 ({unbounded_steps} steps of \
{unbounded_step_size:g} levels) on {profile.unbounded_limit} patches as a sanity \
check (at most that many of the FGSM/LLCM patches). ε is in pixel levels of [0, 255]; \
adversarial images are rounded to 8 bits.
- **Total wall time:** {duration(seconds)}

Cells marked *ours* are {cells} measured by this run; cells marked
*paper* are the paper's published figures (`tfrecap.reproduce.PAPER_TABLES`: real photographs,
n = {PAPER_TEST_N} test images per size, 100k steps), quoted for comparison, not measured here.
"""


def _stages_section(stages: list[Stage], seconds: float) -> str:
    lines = ["## Wall time per stage", "", "| stage | time | what happened |", "|---|---|---|"]
    lines += [f"| {s.name} | {duration(s.seconds)} | {s.status} |" for s in stages]
    lines.append(f"| **total** (with the report) | {duration(seconds)} | |")
    return "\n".join(lines)


def _n_line(runs) -> str:
    parts = [f"{name} {r.size}×{r.size}: {r.seeds[0].results[role]['n']}"
             for r in runs for role, name in ROLES.items()]
    return "n (ours): " + "; ".join(parts) + f". n (paper): {PAPER_TEST_N} per size."


def _data_note(run, profile) -> str:
    """What a dataset's name does not say: built-in synthetic data's count and seed, or that
    it is a simulator variant."""
    if is_synthetic(run.dataset, run.size):
        return f" ({profile.count} per class, seed {profile.seed})"
    return " (a simulator variant: see `tfrecap data info`)" if simulated(run) else ""


def _fixed(digits: int):
    return lambda v: f"{v:.{digits}f}"


def _table1(runs) -> str:
    sizes = [r.size for r in runs]
    head = "| | " + " | ".join(f"{s}×{s} ours | {s}×{s} paper" for s in sizes) + " |"
    lines = ["## Table 1: accuracy on clean images", "", head, "|---|" + "---|---|" * len(sizes)]
    for role, name in ROLES.items():
        cells = []
        for r in runs:
            cells.append(seeds_cell([res["clean"] for res in r.results_of(role)]))
            cells.append(paper_cell(PAPER_TABLES["table1"][role].get(r.size)))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", _n_line(runs), "",
              "ROC AUC and the operating point at a false-positive rate of at most 1% "
              "(ours only; the paper gives neither):", "",
              "| model | size | ROC AUC | threshold | FPR | TPR |", "|---|---|---|---|---|---|"]
    for r in runs:
        for role, name in ROLES.items():
            rs = r.results_of(role)
            ops = [res["operating_point"] for res in rs]
            lines.append(
                f"| {name} | {r.size}×{r.size} | "
                f"{spread_text([res['auc'] for res in rs], _fixed(4))} | "
                f"{spread_text([op['threshold'] for op in ops], _fixed(4))} | "
                f"{spread_text([op['fpr'] for op in ops])} | "
                f"{spread_text([op['tpr'] for op in ops])} |"
            )
    return "\n".join(lines)


def _attack_table(runs, role, table, title) -> str:
    eps = sorted({e for r in runs for m in METHODS
                  for e in eps_of(r.seeds[0].results[role], m)})
    lines = [f"## {title}", "",
             "| size | method | source | " + " | ".join(f"ε = {e:g}" for e in eps) + " |",
             "|---|---|---|" + "---|" * len(eps)]
    for r in runs:
        rs = r.results_of(role)
        for method, label in METHODS.items():
            ours = [seeds_cell([row(res, method, e) for res in rs]) for e in eps]
            paper = [paper_cell(paper_at(table, r.size, method, e)) for e in eps]
            lines.append(f"| {r.size}×{r.size} | {label} | ours | " + " | ".join(ours) + " |")
            lines.append("| | | paper | " + " | ".join(paper) + " |")
    lines += ["", _role_n_line(runs, role, "fgsm")]
    return "\n".join(lines)


def _role_n_line(runs, role, attack) -> str:
    parts = []
    for r in runs:
        rows = next((a["results"] for a in r.seeds[0].results[role]["attacks"]
                     if a["attack"] == attack), [])
        parts.append(f"{r.size}×{r.size}: {rows[0]['n'] if rows else 0}")
    return (f"n (ours) per cell: {'; '.join(parts)} test patches. "
            f"n (paper): {PAPER_TEST_N} per size.")


def _pgd_table(runs, profile) -> str:
    eps = sorted({e for r in runs for res in r.seeds[0].results.values()
                  for e in eps_of(res, "pgd")})
    lines = ["## PGD (beyond the paper)", "",
             f"PGD with the margin loss, {profile.pgd_steps} steps, no random start (a uniform "
             "random start is itself a recapture cue to this detector and weakens PGD), against "
             "FGSM on the same patches. The paper reports no iterative attack.", "",
             "| size | model | attack | " + " | ".join(f"ε = {e:g}" for e in eps)
             + " | zero-grad |", "|---|---|---|" + "---|" * (len(eps) + 1)]
    for r in runs:
        for role, name in ROLES.items():
            rs = r.results_of(role)
            for attack, label in ((SUBSET_FGSM, "FGSM"), ("pgd", "PGD-margin")):
                per_seed = [[row(res, attack, e) for e in eps] for res in rs]
                zero = []  # the largest zero-gradient fraction over ε, per seed
                for rows in per_seed:
                    fractions = [x["zero_grad_fraction"] for x in rows if x]
                    zero.append(max(fractions) if fractions else None)
                cells = [seeds_cell([rows[i] for rows in per_seed]) for i in range(len(eps))]
                lines.append(f"| {r.size}×{r.size} | {name} | {label} | "
                             + " | ".join(cells) + f" | {spread_text(zero)} |")
    parts = []
    for r in runs:
        for role, name in ROLES.items():
            res = r.seeds[0].results[role]
            rows = eps_of(res, "pgd")
            n = row(res, "pgd", rows[0])["n"] if rows else 0
            parts.append(f"{name} {r.size}×{r.size}: {n}")
    lines += ["", "n per cell: " + "; ".join(parts) + " test patches."]
    return "\n".join(lines)


def _auto_table(runs, profile) -> str:
    """``auto`` beside PGD on the same patches, and which member broke how many; empty when
    no result has an auto row (a profile without ``auto_eps``, or older results)."""
    eps = sorted({e for r in runs for res in r.seeds[0].results.values()
                  for e in eps_of(res, "auto")})
    if not eps:
        return ""
    lines = ["## auto ensemble (beyond the paper)", "",
             f"AutoAttack-style (Croce & Hein 2020): APGD-CE and APGD-margin "
             f"({profile.auto_apgd_steps} steps), then Square ({profile.auto_square_queries} "
             "queries), each on the patches still correct; a patch counts as robust only if "
             f"all three fail. Beside PGD-margin ({profile.pgd_steps} steps) on the same "
             "patches.", "",
             "| size | model | attack | " + " | ".join(f"ε = {e:g}" for e in eps) + " |",
             "|---|---|---|" + "---|" * len(eps)]
    for r in runs:
        for role, name in ROLES.items():
            rs = r.results_of(role)
            for attack, label in ((SUBSET_PGD, "PGD-margin"), ("auto", "auto")):
                cells = [seeds_cell([row(res, attack, e) for res in rs]) for e in eps]
                lines.append(f"| {r.size}×{r.size} | {name} | {label} | "
                             + " | ".join(cells) + " |")
    lines += ["", "Patches broken by each member (first seed; each member attacks only the "
              "patches still correct):", ""]
    header = False
    for r in runs:
        for role, name in ROLES.items():
            res = r.seeds[0].results[role]
            for e in eps:
                counts = (row(res, "auto", e) or {}).get("broken_by")
                if not counts:
                    continue
                if not header:
                    lines += ["| size | model | ε | " + " | ".join(
                        k.replace("_", " ") for k in counts) + " |",
                        "|---|---|---|" + "---|" * len(counts)]
                    header = True
                lines.append(f"| {r.size}×{r.size} | {name} | {e:g} | "
                             + " | ".join(str(v) for v in counts.values()) + " |")
    return "\n".join(lines)


def _by_class_cell(rows) -> str:
    """``original / recaptured`` accuracies of one cell over the seeds."""
    if any(not r or not r["by_class"] for r in rows):
        return "—"
    return " / ".join(spread_text([r["by_class"][k]["accuracy"] for r in rows])
                      for k in LABEL_NAMES)


def _per_class_section(runs) -> str:
    lines = ["## Per-class accuracy under each attack",
             "", f"Each cell: accuracy on {LABEL_NAMES[0]}s / on {LABEL_NAMES[1]} images. "
             "An attack may fool one direction far more easily than the other."]
    shown = (("fgsm", "FGSM"), ("llcm", "LLCM (TGSM)"), (SUBSET_FGSM, "FGSM (PGD subset)"),
             ("pgd", "PGD-margin"), ("auto", "auto"))
    for r in runs:
        for role, name in ROLES.items():
            rs = r.results_of(role)
            eps = sorted({e for attack, _ in shown for e in eps_of(rs[0], attack)})
            clean = rs[0]["clean"]["by_class"]
            counts = " / ".join(str(clean[k]["n"]) for k in LABEL_NAMES)
            lines += ["", f"### {name}, {r.size}×{r.size} (clean n = {counts})", "",
                      "| attack | clean | " + " | ".join(f"ε = {e:g}" for e in eps) + " |",
                      "|---|---|" + "---|" * len(eps)]
            clean_cell = _by_class_cell([res["clean"] for res in rs])
            for attack, label in shown:
                cells = [_by_class_cell([row(res, attack, e) for res in rs]) for e in eps]
                lines.append(f"| {label} | {clean_cell} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _checks_section(runs) -> str:
    lines = ["## Sanity checks (Carlini et al. 2019) and notes"]
    for r in runs:
        several = len(r.seeds) > 1
        for role, name in ROLES.items():
            for seed_run in r.seeds:
                res = seed_run.results[role]
                tag = f", seed {seed_run.seed}" if several else ""
                lines += ["", f"### {name}, {r.size}×{r.size}{tag} ({res.get('pipeline', '')}, "
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
        for seed_run in r.seeds:
            rel = os.path.relpath(seed_run.plot, output) if seed_run.plot else ""
            tag = f", seed {seed_run.seed}" if len(r.seeds) > 1 else ""
            lines += ["", f"![Accuracy against ε, {r.size}×{r.size}{tag}, both models]({rel})"]
    lines += ["", "Every line starts at ε = 0 from the clean accuracy on all evaluated patches; "
              "the PGD points use the PGD subset (see the PGD table for FGSM on the same "
              "patches)."]
    lines += ["", "Result JSONs (`tfrecap evaluate --json` schema): " + ", ".join(
        f"`{os.path.relpath(p, output)}`" for r in runs for s in r.seeds
        for p in s.result_paths.values())]
    return "\n".join(lines)


def next_steps(result, data_dir) -> list[str]:
    """The last lines of a run: where the models are and the exact commands to try next.

    The commands name the secure model of the first size (its pipeline's own seed) by its
    export root, which ``predict`` and ``evaluate`` resolve to the highest version.
    """
    import shlex

    lines = ["Models (SavedModel roots, TF-Serving layout):"]
    for run in result.runs:
        for seed_run in run.seeds:
            tag = f", seed {seed_run.seed}" if len(run.seeds) > 1 else ""
            for role, version_dir in seed_run.exports.items():
                lines.append(f"  {ROLES[role]} {run.size}×{run.size}{tag}: "
                             f"{version_dir.parent} (version {version_dir.name})")
    secure = result.runs[0].seeds[0].exports["secure"].parent
    model, data = shlex.quote(str(secure)), shlex.quote(str(data_dir))
    lines += [
        "Next, judge a photo of your own with the secure model, and attack it:",
        f"  tfrecap predict {model} photo.jpg",
        # --limit keeps the suggested attack to a minute or two on a CPU.
        f"  tfrecap evaluate {model} --data-dir {data} --attack pgd --eps 2 --limit 256",
    ]
    return lines
