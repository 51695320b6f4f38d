"""Accuracy against ε from ``tfrecap evaluate --json`` reports, one line per (model, attack).

Reads the JSON form (not a :class:`Report`), so ``tfrecap plot`` can compare reports written
by earlier runs; :func:`check_report` says which file is not such a report, and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tfrecap.evaluation.checks import UNBOUNDED_EPS
from tfrecap.evaluation.report import SCHEMA_VERSION

_EXPECTED = (f"a `tfrecap evaluate --json` report (an object with schema_version "
             f"{SCHEMA_VERSION}, 'clean' and 'attacks')")


def check_report(result, source: str = "the result") -> None:
    """Raise ``ValueError`` naming ``source`` unless ``result`` is an evaluate JSON report.

    Only the fields a plot reads are checked: ``schema_version``, ``clean.accuracy`` and, per
    attack, ``attack`` and ``results`` rows with ``eps``, ``accuracy`` and ``ci``.
    """
    if not isinstance(result, dict):
        raise ValueError(f"{source} is not {_EXPECTED}: it holds a JSON "
                         f"{type(result).__name__}")
    missing = [key for key in ("schema_version", "clean", "attacks") if key not in result]
    if missing:
        raise ValueError(f"{source} is not {_EXPECTED}: it has no "
                         + ", ".join(repr(k) for k in missing))
    if result["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"{source} has unsupported schema_version "
                         f"{result['schema_version']!r} (expected {SCHEMA_VERSION})")
    if not isinstance(result["clean"], dict) or "accuracy" not in result["clean"]:
        raise ValueError(f"{source} is not {_EXPECTED}: 'clean' has no 'accuracy'")
    attacks = result["attacks"]
    if not isinstance(attacks, list):
        raise ValueError(f"{source} is not {_EXPECTED}: 'attacks' is not a list")
    for i, attack in enumerate(attacks):
        rows = attack.get("results") if isinstance(attack, dict) else None
        if (not isinstance(rows, list) or "attack" not in attack
                or not all(isinstance(r, dict) and {"eps", "accuracy", "ci"} <= set(r)
                           for r in rows)):
            raise ValueError(f"{source} is not {_EXPECTED}: attacks[{i}] needs 'attack' and "
                             "'results' rows with 'eps', 'accuracy' and 'ci'")


def _number(value) -> float:
    """A figure of the JSON; a missing one (null) is NaN, which matplotlib leaves out."""
    return float("nan") if value is None else float(value)


def plot_results(results: Sequence[dict], output, title: str | None = None) -> None:
    """Accuracy against ε, one line per (model, attack), from ``tfrecap evaluate --json`` files.

    Args:
        results: parsed JSON reports (schema_version 1); several models share one figure.
        output: PNG path.
        title: the figure's title; default: what the axes and bars mean.

    Raises:
        ValueError: a result is not such a report (see :func:`check_report`).
    """
    for i, result in enumerate(results):
        check_report(result, f"result {i + 1}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = ["-o", "--s", ":^", "-.D", "-v", "--P"]
    for i, result in enumerate(results):
        model = result.get("label") or result.get("model", f"model {i + 1}")
        for j, attack in enumerate(result["attacks"]):
            points = [(r["eps"], _number(r["accuracy"]), r["ci"]) for r in attack["results"]
                      if r["eps"] != UNBOUNDED_EPS]
            if not points:
                continue
            eps, acc, ci = zip(*sorted(points), strict=True)
            # Clamped at 0: at an accuracy of exactly 0 or 1 the Wilson bound can sit a rounding
            # error beyond it, and matplotlib refuses a negative error bar.
            lower = [max(0.0, a - c[0]) if not math.isnan(a) else 0.0
                     for a, c in zip(acc, ci, strict=True)]
            upper = [max(0.0, c[1] - a) if not math.isnan(a) else 0.0
                     for a, c in zip(acc, ci, strict=True)]
            ax.errorbar(
                [0.0, *eps], [_number(result["clean"]["accuracy"]), *acc],
                yerr=[[0.0, *lower], [0.0, *upper]], fmt=styles[j % len(styles)],
                color=f"C{i}", capsize=2, label=f"{model}: {attack['attack']}",
            )
    ax.set_xlabel("ε (pixel levels, L∞)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or "Accuracy under attack (ε = 0: clean; bars: 95% Wilson)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def plot_tradeoff(points: Sequence[dict], output, *, x_label: str, y_label: str,
                  title: str | None = None) -> None:
    """One point per model (the mean over its seeds) with min–max range bars, and the Pareto
    front: the points that no other point beats on both axes (lower x, higher y).

    Args:
        points: ``{"label", "x": [per seed], "y": [per seed]}``; a point whose x or y has a
            missing value (None or NaN) is left out.
        output: PNG path.
        x_label, y_label: the axes (x: a cost, lower is better; y: higher is better).
        title: the figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    for p in points:
        xs, ys = [_number(v) for v in p["x"]], [_number(v) for v in p["y"]]
        if xs and ys and not any(math.isnan(v) for v in xs + ys):
            shown.append((p["label"], xs, ys))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    means = []
    for i, (label, xs, ys) in enumerate(shown):
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        means.append((mx, my))
        ax.errorbar([mx], [my], xerr=[[mx - min(xs)], [max(xs) - mx]],
                    yerr=[[my - min(ys)], [max(ys) - my]], fmt="o", color=f"C{i}", capsize=3,
                    label=label)
    front = sorted((m for m in means
                    if not any(o != m and o[0] <= m[0] and o[1] >= m[1] for o in means)))
    if len(front) > 1:
        ax.plot(*zip(*front, strict=True), ":", color="grey", label="Pareto front")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    if shown:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
