"""A report as markdown in the paper's Table 2/3 layout (patch size × method × ε).

Cells are accuracy with its 95% Wilson interval, then a per-class table (originals /
recaptures: an attack often fools one direction only), then the sanity checks and notes.
"""

from __future__ import annotations

from tfrecap.evaluation.checks import UNBOUNDED_TITLE
from tfrecap.evaluation.report import Report
from tfrecap.evaluation.stats import Accuracy


def format_table(report: Report, patch_size: int | None = None) -> str:
    """Markdown in the paper's Table 2/3 layout: size | method | eps=... columns."""
    # The sanity check's eps = 255 run has its own line (a check below), not a column; an
    # attack the user asked to run at eps = 255 is an ordinary column.
    attacks = [a for a in report.attacks if a.spec.title != UNBOUNDED_TITLE]
    eps = sorted({e for a in attacks for e in a.eps})
    size = f"{patch_size}×{patch_size}" if patch_size else "—"
    lines = [
        f"Clean accuracy: {_fmt(report.clean)}; ROC AUC {report.auc:.4f}; "
        f"at FPR ≤ {report.operating_point['fpr_target']:.0%}: threshold "
        f"{report.operating_point['threshold']:.4f}, TPR {report.operating_point['tpr']:.1%}",
        "",
        "| size | method | " + " | ".join(f"ε = {e:g}" for e in eps) + " | zero-grad |",
        "|---|---|" + "---|" * (len(eps) + 1),
    ]
    for a in attacks:
        cells = [(_fmt(a.at(e)) if a.at(e) else "—") for e in eps]
        lines.append(f"| {size} | {a.spec.title} | " + " | ".join(cells)
                     + f" | {a.zero_grad_fraction:.1%} |")
    lines.append("")
    lines.append(f"n = {report.clean.n}; cells are accuracy [95% Wilson interval].")
    if report.clean_by_class:
        lines += ["", "Per class, accuracy on originals / on recaptures:", "",
                  "| method | clean | " + " | ".join(f"ε = {e:g}" for e in eps) + " |",
                  "|---|---|" + "---|" * len(eps)]
        clean_cell = _per_class_cell(report.clean_by_class)
        for a in attacks:
            if not a.by_class:
                continue
            cells = [_per_class_cell(a.by_class[a.eps.index(e)]) if a.at(e) else "—"
                     for e in eps]
            lines.append(f"| {a.spec.title} | {clean_cell} | " + " | ".join(cells) + " |")
    lines += _breakdown_lines(attacks)
    lines += _min_norm_lines(report.min_norm)
    lines.append("")
    for c in report.checks:
        lines.append(f"- [{'x' if c.passed else ' '}] {c.name}: {c.detail}")
    for note in report.notes:
        lines.append(f"- note: {note}")
    return "\n".join(lines)


def _min_norm_lines(summary: dict | None) -> list[str]:
    """The minimum-ε medians and the robustness curve it implies, when it was measured."""
    if not summary:
        return []
    p = summary["params"]
    by_class = " / ".join(f"{name} {_levels(c['median_eps'])}"
                          for name, c in summary["by_class"].items())
    curve = summary["curve"]
    return [
        "",
        f"Minimum ε that flips each image (APGD-{p['loss']}, {p['steps']} steps, bisection "
        f"over [0, {p['eps_max']:g}] in {p['search_steps']} rounds; n = {summary['n']}): "
        f"median {_levels(summary['median_eps'])} ({by_class}).",
        "",
        "| ε | " + " | ".join(f"{c['eps']:g}" for c in curve) + " |",
        "|---|" + "---|" * len(curve),
        "| robust | " + " | ".join(f"{c['accuracy']:.1%}" for c in curve) + " |",
    ]


def _levels(value: float) -> str:
    if value != value:  # NaN: no image of that class
        return "—"
    return "> ε_max (never flipped)" if value == float("inf") else f"{value:.2f} levels"


def _breakdown_lines(attacks) -> list[str]:
    """Per ensemble attack, how many images each member broke at each ε."""
    lines = []
    for a in attacks:
        if not a.broken_by:
            continue
        keys = list(a.broken_by[0])
        heads = [k.replace("_", " ") for k in keys]
        lines += ["", f"{a.spec.title}: images broken by each member (each member attacks "
                  "only the images still correct; judged before any JPEG re-encoding):", "",
                  "| method | ε | " + " | ".join(heads) + " |",
                  "|---|---|" + "---|" * len(keys)]
        for e, counts in zip(a.eps, a.broken_by, strict=True):
            lines.append(f"| {a.spec.title} | {e:g} | "
                         + " | ".join(str(counts[k]) for k in keys) + " |")
    return lines


def _per_class_cell(by_class: dict[str, Accuracy]) -> str:
    return " / ".join(f"{acc.value:.0%}" for acc in by_class.values())


def _fmt(acc: Accuracy) -> str:
    lo, hi = acc.ci
    return f"{acc.value:.1%} [{lo:.1%}, {hi:.1%}]"
