"""scripts/experiments/clean_robust_frontier.py: points, the baseline reference, the target."""

import json

from tests.script_loader import load_script


def _zoo(tmp_path):
    seeds = [{"seed": s, "training": {"steps": 100}} for s in (0, 1)]
    zoo = {"defences": [
        {"label": "undefended", "baseline": True, "seeds": seeds,
         "cells": {"clean": {"per_seed": [0.96, 0.98]}, "auto_eps2": {"per_seed": [0.2, 0.1]}}},
        {"label": "PGD-AT", "seeds": seeds,
         "cells": {"clean": {"per_seed": [0.95, 0.90]}, "auto_eps2": {"per_seed": [0.81, 0.85]}}},
    ]}
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(zoo))
    return path


def test_the_reference_is_the_baselines_mean_and_the_target_needs_both_halves(tmp_path):
    script = load_script("experiments/clean_robust_frontier")
    points = script.zoo_points(_zoo(tmp_path))
    assert [(p["label"], p["seed"]) for p in points] == [
        ("undefended, 100 steps", 0), ("undefended, 100 steps", 1),
        ("PGD-AT, 100 steps", 0), ("PGD-AT, 100 steps", 1)]
    reference = script.best_baseline_clean(points)
    assert abs(reference - 0.97) < 1e-12
    # 0.95 >= 0.97 - 0.03 with 0.81 robust: in; 0.90 clean: out; the baseline: robust too low.
    assert [script.in_target(p, reference) for p in points] == [False, False, True, False]


def test_main_prints_every_point_and_writes_the_plot(tmp_path, capsys):
    script = load_script("experiments/clean_robust_frontier")
    pilots = tmp_path / "pilots.json"
    pilots.write_text(json.dumps({"pilots": [{"pipeline": "pilot_x", "train_seed": 0,
                                              "clean": {"accuracy": 0.5},
                                              "auto_eps2": {"accuracy": 0.9}}]}))
    out = tmp_path / "frontier.png"
    assert script.main(["--zoo", str(_zoo(tmp_path)), "--pilots", str(pilots),
                        "--plot", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| pilot_x | 0 | 50.0% | 90.0% | no |" in table
    assert "| PGD-AT, 100 steps | 0 | 95.0% | 81.0% | yes |" in table
    assert out.stat().st_size > 0
