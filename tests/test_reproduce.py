"""tfrecap reproduce: the whole Section 4 flow at tiny settings, reuse on rerun, clear errors."""

import json
import shlex

import pytest
from click.testing import CliRunner

from tests.conftest import TINY_COUNT, TINY_SEED
from tfrecap import jsonio
from tfrecap import reproduce as lib
from tfrecap.cli.main import cli
from tfrecap.reproduce.results import readable_time

# Tiny everything: 2 steps of a 4-8 wide CNN on batches of 8, attacks on 8 patches.
TINY_ARGS = [
    "--profile", "demo", "--count", str(TINY_COUNT), "--seed", str(TINY_SEED),
    "--steps", "2", "--widths", "4,4,8,8,8", "--batch-size", "8",
    "--limit", "8", "--pgd-limit", "8", "--quiet",
]


def _versions(root):
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


@pytest.fixture(scope="module")
def demo_runs(synthetic_dir, tmp_path_factory):
    """The tiny demo run twice into one output: (output, first CLI result, its report, its
    result JSONs by pipeline, second CLI result)."""
    import dataclasses

    from tests.test_cli_auto import _apgd, _square
    from tfrecap import attacks

    out = tmp_path_factory.mktemp("reproduce") / "out"
    args = ["reproduce", *TINY_ARGS, "--data-dir", str(synthetic_dir), "--output", str(out)]
    with pytest.MonkeyPatch.context() as patch:
        # auto on tiny budgets; stand-ins for apgd and square where they are not registered.
        patch.setitem(lib.PROFILES, "demo", dataclasses.replace(
            lib.PROFILES["demo"], auto_apgd_steps=2, auto_square_queries=5))
        for name, fn in (("apgd", _apgd), ("square", _square)):
            if name not in attacks.ATTACKS:
                patch.setitem(attacks.ATTACKS, name, fn)
        first = CliRunner().invoke(cli, args)
        assert first.exit_code == 0, first.output
        report = (out / "report.md").read_text()
        made = {name: jsonio.loads_strict((out / "results" / f"{name}.json").read_text())
                for name in ("demo_baseline", "demo")}
        second = CliRunner().invoke(cli, args)
    return out, first, report, made, second


def test_demo_flow_writes_the_report_then_reuses_everything(demo_runs):
    out, first, report, results, second = demo_runs
    assert "already built" in first.output  # the fixture's data (same count and seed)

    for heading in ("## Table 1", "## Table 2", "## Table 3", "## PGD", "## auto ensemble",
                    "## Per-class",
                    "## Sanity checks", "## Findings", "## Wall time"):
        assert heading in report, heading
    assert "96.7%" in report  # the paper's Table 1, Yang 64x64
    assert "2.8%" in report  # the paper's Table 2, FGSM eps=1
    assert "LLCM (TGSM)" in report
    assert "n (ours)" in report and "n (paper): 10000" in report
    assert "--widths 4,4,8,8,8" in report  # the command that produced it
    assert "![" in report and "robustness_64.png" in report
    assert (out / "robustness_64.png").stat().st_size > 1000
    for name in ("demo_baseline", "demo"):
        result = results[name]
        assert result["schema_version"] == 1
        assert {"fgsm", "llcm", "pgd", "pgd (eps=255)", "auto", lib.SUBSET_PGD} <= {
            a["attack"] for a in result["attacks"]}
        auto = next(a for a in result["attacks"] if a["attack"] == "auto")
        assert [r["eps"] for r in auto["results"]] == [2.0, 4.0]
        assert all(sum(r["broken_by"].values()) == r["n"] == 8 for r in auto["results"])
        assert _versions(out / "saved_models" / name) == ["1"]

    assert second.exit_code == 0, second.output
    assert second.output.count("reusing the finished model") == 2
    assert second.output.count("same model and evaluation settings") == 2
    for name in ("demo_baseline", "demo"):
        assert _versions(out / "saved_models" / name) == ["1"]  # nothing retrained
    assert "reused export version 1" in (out / "report.md").read_text()


def test_rerun_report_says_when_the_reused_figures_were_made(demo_runs):
    out, _, _, results, _ = demo_runs
    report = (out / "report.md").read_text()
    assert "reused export version 1, made at " in report
    made = {}
    for name, result in results.items():
        assert result["train_seed"] == 0
        made[name] = result["made_at"]
        assert made[name].endswith("+00:00")  # UTC
    for name in ("demo_baseline", "demo"):
        # The rerun's report says when the figures it reuses were made, not just now.
        assert f"| evaluate {name} | " in report
        line = next(x for x in report.splitlines() if x.startswith(f"| evaluate {name} |"))
        assert f"reused results, made at {readable_time(made[name])}" in line
    assert "already built, made at " in report
    summary = jsonio.loads_strict((out / "summary.json").read_text())
    assert summary["seeds"] == [0]


def _printed_command(output: str, program: str) -> list[str]:
    line = next(x for x in output.splitlines() if x.strip().startswith(f"tfrecap {program} "))
    return shlex.split(line)


def test_demo_ends_with_where_the_models_are_and_commands_that_work(demo_runs, tmp_path):
    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from tfrecap.export import latest_version_dir

    out, _, _, _, result = demo_runs
    tail = result.output.splitlines()[-9:]
    assert any(str(out / "saved_models" / "demo") in x for x in tail), tail
    predict = _printed_command(result.output, "predict")
    model = predict[2]
    assert model == str(out / "saved_models" / "demo")  # the secure model
    assert "classify_images" in tf.saved_model.load(str(latest_version_dir(model))).signatures

    # It works as printed (photo.jpg replaced by a real file).
    photo = tmp_path / "photo.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    ran = CliRunner().invoke(cli, [*predict[1:-1], str(photo)])
    assert ran.exit_code == 0, ran.output
    assert "photo.jpg" in ran.output
    evaluate = _printed_command(result.output, "evaluate")
    assert evaluate[:3] == ["tfrecap", "evaluate", model]
    assert evaluate[-6:] == ["--attack", "pgd", "--eps", "2", "--limit", "256"]


@pytest.mark.slow
def test_printed_evaluate_command_works_as_printed(demo_runs):
    ran = CliRunner().invoke(cli, _printed_command(demo_runs[4].output, "evaluate")[1:])
    assert ran.exit_code == 0, ran.output
    assert "pgd" in ran.output


@pytest.mark.slow
def test_two_seeds_reuse_the_first_train_the_second_and_report_mean_min_max(
        demo_runs, synthetic_dir, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo_runs[0], out)
    args = ["reproduce", *TINY_ARGS, "--seeds", "2", "--data-dir", str(synthetic_dir),
            "--output", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("reusing the finished model") == 2  # seed 0, from the 1-seed run
    exports = {}
    for seed, where in ((0, out), (1, out / "seed_1")):
        for name in ("demo_baseline", "demo"):
            assert _versions(where / "saved_models" / name) == ["1"], (seed, name)
            config = json.loads((where / "saved_models" / name / "1" / "assets"
                                 / "tfrecap_config.json").read_text())
            assert config["train"]["seed"] == seed
            exports[seed, name] = where / "saved_models" / name / "1"
    per_seed = {name: [jsonio.loads_strict((where / "results" / f"{name}.json").read_text())
                       for where in (out, out / "seed_1")] for name in ("demo_baseline", "demo")}
    assert [r["train_seed"] for r in per_seed["demo"]] == [0, 1]

    summary = jsonio.loads_strict((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    report = (out / "report.md").read_text()
    assert "mean accuracy over the 2 training seeds [min–max" in report
    assert "seed 1" in report and "seed_1/robustness_64.png" in report

    def spread(values):
        mean = sum(values) / len(values)
        return f"{mean:.1%} [{min(values):.1%}–{max(values):.1%}]"

    for name, role, row_name in (("demo_baseline", "baseline", "Yang"), ("demo", "secure", "Prop")):
        clean = [r["clean"]["accuracy"] for r in per_seed[name]]
        cell = next(c for c in summary["cells"]
                    if (c["role"], c["attack"], c["size"]) == (role, "clean", 64))
        assert cell["per_seed"] == clean
        assert cell["mean"] == pytest.approx(sum(clean) / 2)
        assert (cell["min"], cell["max"]) == (min(clean), max(clean))
        table1 = next(x for x in report.splitlines() if x.startswith(f"| {row_name} | "))
        assert f"| {row_name} | {spread(clean)} |" in table1
    # Table 3: the secure model under FGSM at every eps, against its per-seed values.
    table3 = report.split("## Table 3")[1].split("## PGD")[0]
    fgsm_line = next(x for x in table3.splitlines() if x.startswith("| 64×64 | FGSM | ours |"))
    for e in (1.0, 2.0, 3.0, 4.0, 5.0):
        values = [next(x["accuracy"] for a in r["attacks"] if a["attack"] == "fgsm"
                       for x in a["results"] if x["eps"] == e) for r in per_seed["demo"]]
        assert f" {spread(values)} " in fgsm_line, (e, values, fgsm_line)


def test_size_256_on_synthetic_data_names_the_import_command(synthetic_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "reproduce", "--profile", "paper", "--sizes", "64,256", "--data-dir", str(synthetic_dir),
        "--output", str(out),
    ])
    assert result.exit_code == 1
    assert "tfrecap data import" in result.output
    assert "--size 256 --dataset real_256" in result.output
    assert "Synthetic data exists only at 64 and 128" in result.output
    assert not out.exists()  # failed before building or training anything


def test_demo_profile_runs_at_64_only(tmp_path):
    result = CliRunner().invoke(cli, ["reproduce", "--sizes", "128", "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert "--profile paper" in result.output


def test_one_dataset_name_for_several_sizes_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["reproduce", "--profile", "paper", "--sizes", "64,128",
                                      "--dataset", "mine", "--output", str(tmp_path)])
    assert result.exit_code == 1
    assert "mine_{size}" in result.output


def _result(clean, fgsm, pgd, fgsm_subset, n=1000):
    """A minimal result JSON: one accuracy per attack at eps = 5."""
    def row(acc):
        lo, hi = lib_wilson(acc, n)
        return {"eps": 5.0, "accuracy": acc, "ci": [lo, hi], "n": n, "zero_grad_fraction": 0.0,
                "by_class": {}}

    lo, hi = lib_wilson(clean, n)
    return {
        "n": n, "clean": {"accuracy": clean, "ci": [lo, hi], "by_class": {}},
        "attacks": [{"attack": name, "results": [row(acc)]} for name, acc in
                    (("fgsm", fgsm), ("llcm", fgsm), ("pgd", pgd), (lib.SUBSET_FGSM,
                                                                     fgsm_subset))],
        "checks": [{"name": "c", "passed": True, "detail": "ok"}], "notes": [],
    }


def _with_auto(result, pgd, auto, n=1000):
    """``result`` plus PGD and auto on the auto patches at eps = 4."""
    for name, acc in ((lib.SUBSET_PGD, pgd), ("auto", auto)):
        lo, hi = lib_wilson(acc, n)
        result["attacks"].append({"attack": name, "results": [{
            "eps": 4.0, "accuracy": acc, "ci": [lo, hi], "n": n, "zero_grad_fraction": 0.0,
            "by_class": {}}]})
    return result


@pytest.mark.parametrize("auto, expected", [
    (0.20, "PGD overstated its robustness by 40.0 points"),
    (0.59, "PGD's figure stands"),
])
def test_findings_say_whether_pgd_overstated_robustness(auto, expected):
    run = lib.SizeRun(size=64, dataset="synthetic_64", seeds=[lib.SeedRun(seed=0, results={
        "baseline": _with_auto(_result(0.97, 0.03, 0.0, 0.03), 0.0, 0.0),
        "secure": _with_auto(_result(0.96, 0.94, 0.6, 0.94), 0.6, auto),
    })])
    text = " ".join(lib.findings(run))
    assert "auto at ε = 4" in text
    assert expected in text
    assert ("overstated" in text) == (auto < 0.5)


def lib_wilson(acc, n):
    from tfrecap.evaluation import wilson_interval

    return wilson_interval(round(acc * n), n)


@pytest.mark.parametrize("pgd, expected", [
    (0.05, "largely disappears under PGD"),
    (0.93, "survives PGD"),
])
def test_findings_say_whether_fgsm_robustness_survives_pgd(pgd, expected):
    run = lib.SizeRun(size=64, dataset="synthetic_64", seeds=[lib.SeedRun(seed=0, results={
        "baseline": _result(0.97, 0.03, 0.0, 0.03),
        "secure": _result(0.96, 0.94, pgd, 0.94),
    })])
    text = " ".join(lib.findings(run))
    assert expected in text
    assert "the defence holds against this attack" in text
    assert "paper: 96.7% vs 96.6%" in text


def test_an_export_made_before_a_setting_existed_is_still_finished(tmp_path, monkeypatch):
    """Regression: adding [train] init_from made every earlier export look unfinished (its
    config lacks the key), so a rerun retrained models it could reuse."""
    from tfrecap import config as cfg
    from tfrecap import export as export_module
    from tfrecap.jsonio import to_jsonable
    from tfrecap.reproduce import finished_export

    config = cfg.load_pipeline("demo_baseline")
    saved = to_jsonable(config.to_dict())
    del saved["train"]["init_from"]
    del saved["guard"]
    monkeypatch.setattr(export_module, "latest_version_dir", lambda root: root / "1")
    monkeypatch.setattr(export_module, "load_config_asset", lambda version_dir: saved)
    assert finished_export(tmp_path, config) == tmp_path / "1"
    assert finished_export(tmp_path, cfg.override(config, **{"train.init_from": "x"})) is None
    assert finished_export(tmp_path, cfg.override(config, **{"train.steps": 2000})) is None
    # demo_baseline's guard is off, so its `select = "clean"` (newer than this export) ranked
    # nothing; switched on, the export (ranked by PGD, if at all) is not this config's.
    assert config.guard.select == "clean" and config.guard.every == 0
    assert finished_export(tmp_path, cfg.override(config, **{"guard.every": 1})) is None
