"""scripts/experiments/clean_robust_frontier.py: points, the baseline reference, the target."""

import json
from pathlib import Path

from tests.script_loader import load_script

DOCS = Path(__file__).resolve().parents[1] / "docs" / "defences"


def _zoo(tmp_path, steps=100):
    seeds = [{"seed": s, "training": {"steps": steps}} for s in (0, 1)]
    zoo = {"defences": [
        {"label": "undefended", "baseline": True, "seeds": seeds,
         "cells": {"clean": {"per_seed": [0.96, 0.98]}, "auto_eps2": {"per_seed": [0.2, 0.1]}}},
        {"label": "PGD-AT", "seeds": seeds,
         "cells": {"clean": {"per_seed": [0.95, 0.90]}, "auto_eps2": {"per_seed": [0.81, 0.85]}}},
    ]}
    path = tmp_path / f"zoo_{steps}" / "zoo.json"
    path.parent.mkdir()
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
    # Of two baselines, the more accurate one is the reference (the fairer to it).
    weaker = [dict(p, clean=p["clean"] - 0.1, label="other") for p in points if p["baseline"]]
    assert abs(script.best_baseline_clean(weaker + points) - 0.97) < 1e-12
    # 0.95 >= 0.97 - 0.03 with 0.81 robust: in; 0.90 clean: out; the baseline: robust too low.
    assert [script.in_target(p, reference) for p in points] == [False, False, True, False]


def test_main_prints_every_point_and_writes_the_plot(tmp_path, capsys):
    script = load_script("experiments/clean_robust_frontier")
    pilots = tmp_path / "pilots.json"
    pilots.write_text(json.dumps({"pilots": [{"pipeline": "pilot_x", "train_seed": 0, "steps": 9,
                                              "clean": {"accuracy": 0.5},
                                              "auto_eps2": {"accuracy": 0.9}}]}))
    out = tmp_path / "frontier.png"
    assert script.main(["--zoo", str(_zoo(tmp_path)), "--pilots", str(pilots),
                        "--plot", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| pilot_x, 9 steps | 0 | 50.0% | 90.0% | no |" in table
    assert "| PGD-AT, 100 steps | 0 | 95.0% | 81.0% | yes |" in table
    assert out.stat().st_size > 0


def test_the_committed_records_read_as_their_reports_say(capsys):
    """The schema of the real zoo.json and pilots files, not only of hand-made ones: PGD-AT
    seed 0 at 1,000 steps is (90.7 %, 73.4 %) in defences/zoo_v1_1000steps/report.md."""
    script = load_script("experiments/clean_robust_frontier")
    points = script.zoo_points(DOCS / "zoo_v1_1000steps" / "zoo.json")
    pgd_at = {p["seed"]: p for p in points if p["label"] == "PGD-AT, 1000 steps"}
    assert (round(pgd_at[0]["clean"], 3), round(pgd_at[0]["robust"], 3)) == (0.907, 0.734)
    pilots = script.pilot_points(DOCS / "pilots" / "pilots_v1_1000steps.json")
    assert {p["label"] for p in pilots} >= {"pilot_trades_beta1, 1000 steps"}
    longer = script.pilot_points(DOCS / "pilots" / "pilots_v1_3000steps.json")
    assert [(p["label"], round(p["clean"], 3), round(p["robust"], 3)) for p in longer] == [
        ("pilot_trades_beta1_3000, 3000 steps", 0.91, 0.789)]
    # Two zoo files holding the same runs get their folder in the label, not merged points.
    assert script.main(["--zoo", str(DOCS / "zoo_v1_3000steps" / "zoo.json"),
                        str(DOCS / "zoo_v1_3000steps_clean_baseline" / "zoo.json")]) == 0
    table = capsys.readouterr().out
    assert "| PGD-AT, 3000 steps (zoo_v1_3000steps) | 0 |" in table
    assert "| PGD-AT, 3000 steps (zoo_v1_3000steps_clean_baseline) | 0 |" in table
