"""Clean accuracy against robust accuracy under ``auto`` at ε = 2, every v1 defence run in one plot.

Issue 15's target is a region of this plane: robust accuracy ≥ 80 % under ``auto`` at ε = 2
*and* clean accuracy within 3 points of Yang's baseline. This script gathers every
measured point, zoo runs (``zoo.json``, one point per training seed) and one-seed pilots
(``docs/defences/pilots/*.json``), draws them with the target region shaded, and prints
the same points as a markdown table, so the distance to the target is read off one figure
rather than from six tables. Nothing is measured here: it only reads committed JSON.

    python scripts/experiments/clean_robust_frontier.py \
        --zoo docs/defences/zoo_v1_3seeds/zoo.json docs/defences/zoo_v1_1000steps/zoo.json \
              docs/defences/zoo_v1_3000steps_clean_baseline/zoo.json \
        --pilots docs/defences/pilots/pilots_v1_1000steps.json \
                 docs/defences/pilots/pilots_v1_3000steps.json \
        --plot docs/defences/pilots/frontier.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# Issue 15's target: robust accuracy under auto at eps = 2, and the clean gap to the baseline.
TARGET_ROBUST = 0.80
TARGET_GAP = 0.03


def zoo_points(path: Path) -> list[dict]:
    """One point per (defence, training seed) of a zoo run's ``zoo.json``."""
    zoo = json.loads(Path(path).read_text())
    points = []
    for defence in zoo["defences"]:
        cells = defence["cells"]
        steps = defence["seeds"][0]["training"]["steps"]
        for clean, robust, seed in zip(cells["clean"]["per_seed"], cells["auto_eps2"]["per_seed"],
                                       (s["seed"] for s in defence["seeds"]), strict=True):
            points.append({"label": f"{defence['label']}, {steps} steps", "seed": seed,
                           "clean": clean, "robust": robust,
                           "baseline": bool(defence.get("baseline")), "source": str(path)})
    return points


def pilot_points(path: Path) -> list[dict]:
    """One point per pilot of a pilots JSON (``docs/defences/pilots``)."""
    pilots = json.loads(Path(path).read_text())
    return [{"label": f"{p['pipeline']}, {p['steps']} steps", "seed": p["train_seed"],
             "clean": p["clean"]["accuracy"],
             "robust": p["auto_eps2"]["accuracy"], "baseline": False, "source": str(path)}
            for p in pilots["pilots"]]


def best_baseline_clean(points: list[dict]) -> float:
    """The most accurate baseline's mean clean accuracy over its seeds: the reference the
    3-point gap is measured from (the fairest to the baseline)."""
    by_label: dict[str, list[float]] = {}
    for p in points:
        if p["baseline"]:
            by_label.setdefault(p["label"] + p["source"], []).append(p["clean"])
    if not by_label:
        raise ValueError("no baseline among the points: pass a zoo.json with demo_baseline")
    return max(sum(v) / len(v) for v in by_label.values())


def in_target(point: dict, baseline_clean: float) -> bool:
    """Whether ``point`` meets issue 15's target: both halves at once."""
    return (point["robust"] >= TARGET_ROBUST
            and point["clean"] >= baseline_clean - TARGET_GAP)


def markdown(points: list[dict], baseline_clean: float) -> str:
    """The points as a markdown table, sorted by label and seed, each marked in or out."""
    lines = [f"Baseline clean accuracy (reference): {baseline_clean:.1%}; target: auto ε = 2 "
             f"≥ {TARGET_ROBUST:.1%} and clean ≥ {baseline_clean - TARGET_GAP:.1%}.", "",
             "| run | seed | clean | auto ε = 2 | in the target |", "|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: (p["label"], p["seed"])):
        lines.append(f"| {p['label']} | {p['seed']} | {p['clean']:.1%} | {p['robust']:.1%} | "
                     f"{'yes' if in_target(p, baseline_clean) else 'no'} |")
    return "\n".join(lines)


def plot(points: list[dict], baseline_clean: float, out: Path) -> None:
    """Clean (x) against robust (y), one marker per point (squares: baselines), the target
    region shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.fill_between([baseline_clean - TARGET_GAP, 1.0], TARGET_ROBUST, 1.0, color="tab:green",
                    alpha=0.15, label="issue 15's target")
    labels = sorted({p["label"] for p in points})
    cmap = plt.get_cmap("tab20")
    for i, label in enumerate(labels):
        mine = [p for p in points if p["label"] == label]
        ax.scatter([p["clean"] for p in mine], [p["robust"] for p in mine], s=28,
                   color=cmap(i % 20), marker="s" if mine[0]["baseline"] else "o", label=label)
    ax.set_xlim(min(0.75, min(p["clean"] for p in points) - 0.01), 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("clean accuracy (synthetic_64 v1 test patches)")
    ax.set_ylabel("accuracy under auto at ε = 2 (256 test patches)")
    ax.set_title("v1 defence runs: clean against robust (one point per seed)")
    ax.legend(fontsize=6, loc="lower left", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", type=Path, nargs="+", required=True, help="zoo.json files")
    parser.add_argument("--pilots", type=Path, nargs="*", default=[], help="pilots JSON files")
    parser.add_argument("--plot", type=Path, help="write the figure here (PNG)")
    args = parser.parse_args(argv)
    for path in [*args.zoo, *args.pilots]:
        if not path.exists():
            parser.error(f"{path} does not exist")
    # Two runs of one defence at the same steps would share a label: tag each with its folder.
    by_zoo = {z: zoo_points(z) for z in args.zoo}
    keys = [(p["label"], p["seed"]) for mine in by_zoo.values() for p in mine]
    if len(set(keys)) < len(keys):
        for z, mine in by_zoo.items():
            for p in mine:
                p["label"] += f" ({z.parent.name})"
    points = [p for mine in by_zoo.values() for p in mine]
    points += [p for f in args.pilots for p in pilot_points(f)]
    reference = best_baseline_clean(points)
    print(markdown(points, reference))
    if args.plot:
        plot(points, reference, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
