"""Results over several training seeds: mean [min–max] cells, per-seed verdicts. No training."""

from pathlib import Path

import pytest

from tfrecap import reproduce as lib
from tfrecap.config import load_pipeline
from tfrecap.reproduce.findings import agreed
from tfrecap.reproduce.results import spread, spread_text, summary

N = 100


def _ci(acc):
    return [max(0.0, acc - 0.05), min(1.0, acc + 0.05)]


def _row(eps, acc):
    by_class = {"original": {"accuracy": acc, "ci": _ci(acc), "n": N // 2},
                "recaptured": {"accuracy": acc / 2, "ci": _ci(acc / 2), "n": N // 2}}
    return {"eps": eps, "accuracy": acc, "ci": _ci(acc), "n": N, "zero_grad_fraction": 0.0,
            "by_class": by_class}


def _result(clean, fgsm, pgd, seed):
    """A result JSON with FGSM/LLCM at eps 1 and 5, PGD and FGSM on its subset at eps 5."""
    by_class = {"original": {"accuracy": clean, "ci": _ci(clean), "n": N // 2},
                "recaptured": {"accuracy": clean, "ci": _ci(clean), "n": N // 2}}
    attacks = [{"attack": "fgsm", "results": [_row(1.0, fgsm + 0.1), _row(5.0, fgsm)]},
               {"attack": "llcm", "results": [_row(1.0, fgsm + 0.1), _row(5.0, fgsm)]},
               {"attack": "pgd", "results": [_row(5.0, pgd)]},
               {"attack": lib.SUBSET_FGSM, "results": [_row(5.0, fgsm)]}]
    return {"schema_version": 1, "n": N, "train_seed": seed, "pipeline": "p",
            "model_version": "1", "made_at": "2026-12-01T10:32:05+00:00",
            "clean": {"accuracy": clean, "ci": _ci(clean), "by_class": by_class},
            "auc": 0.9 + seed / 100, "operating_point": {"threshold": 0.5, "fpr": 0.01,
                                                         "tpr": 0.5, "fpr_target": 0.01},
            "attacks": attacks, "checks": [{"name": "c", "passed": True, "detail": "ok"}],
            "notes": []}


def _run(secure_fgsm=(0.9, 0.8), secure_clean=(0.96, 0.92)):
    configs = {"baseline": load_pipeline("demo_baseline"), "secure": load_pipeline("demo")}
    seeds = []
    for seed, (fgsm, clean) in enumerate(zip(secure_fgsm, secure_clean, strict=True)):
        seeds.append(lib.SeedRun(seed=seed, configs=configs, results={
            "baseline": _result(0.97, 0.03 + seed / 100, 0.0, seed),
            "secure": _result(clean, fgsm, 0.05, seed),
        }, result_paths={"secure": Path(f"/o/seed_{seed}/results/demo.json")}))
    return lib.SizeRun(size=64, dataset="synthetic_64", seeds=seeds)


def test_spread_is_mean_with_min_max():
    assert spread_text([0.5, 0.7, 0.6]) == "60.0% [50.0%–70.0%]"
    assert spread_text([0.5]) == "50.0%"  # one seed: just the value
    assert spread_text([0.5, None]) == "—"  # never a mean of fewer seeds than its neighbours
    s = spread([0.2, 0.4])
    assert (s.mean, s.min, s.max) == (pytest.approx(0.3), 0.2, 0.4)


def test_agreed_names_the_seeds_each_verdict_holds_on():
    assert agreed(["holds", "holds"], [0, 1]) == "holds"
    assert agreed(["holds", "fails", "holds"], [0, 1, 2]) == (
        "on seeds 0 and 2, holds; on seed 1, fails")


def test_findings_hold_for_every_seed_or_name_the_failing_one():
    same = " ".join(lib.findings(_run(secure_fgsm=(0.9, 0.8))))
    assert "FGSM at ε = 5.** Baseline 3.5% [3.0%–4.0%], secure 85.0% [80.0%–90.0%]" in same
    assert ": the defence holds against this attack." in same
    differ = " ".join(lib.findings(_run(secure_fgsm=(0.9, 0.06))))
    assert ("on seed 0, the defence holds against this attack; on seed 1, the defence gives "
            "no real protection against it") in differ
    assert "All 2 pass for both models on every seed." in differ


def test_report_cells_over_two_seeds_are_mean_min_max(tmp_path):
    run = _run()
    report = lib.render_report([run], lib.PROFILES["demo"], [], command="c", seconds=1.0,
                               output=tmp_path)
    prop = next(x for x in report.splitlines() if x.startswith("| Prop | "))
    assert prop.startswith("| Prop | 94.0% [92.0%–96.0%] | 96.6% |")
    table3 = report.split("## Table 3")[1].split("## PGD")[0]
    assert "| 64×64 | FGSM | ours | 95.0% [90.0%–100.0%] | 85.0% [80.0%–90.0%] |" in table3
    assert "mean accuracy over the 2 training seeds [min–max over the seeds]" in table3
    assert "| Prop | 64×64 | 0.9050 [0.9000–0.9100] |" in report  # ROC AUC
    assert "### Prop, 64×64, seed 1 " in report  # checks per seed

    cells = summary([run], tmp_path)["cells"]
    clean = next(c for c in cells if (c["role"], c["attack"]) == ("secure", "clean"))
    assert clean["per_seed"] == [0.96, 0.92]
    assert clean["mean"] == pytest.approx(0.94)


def test_one_seed_report_keeps_wilson_cells(tmp_path):
    run = _run()
    run.seeds = run.seeds[:1]
    report = lib.render_report([run], lib.PROFILES["demo"], [], command="c", seconds=1.0,
                               output=tmp_path)
    assert "| Prop | 96.0% [91.0%, 100.0%] | 96.6% |" in report
    assert "training seeds" not in report
    assert "64×64, seed" not in report


def test_data_build_reports_progress_through_the_given_bar(monkeypatch, tmp_path):
    import contextlib

    from tfrecap.data import catalog
    from tfrecap.reproduce import run as run_module

    bars, updates = [], []

    @contextlib.contextmanager
    def progress(desc, total, unit):
        bars.append((desc, total, unit))
        yield updates.append

    def build(config, data_dir, workers=None, progress=None):
        progress(7)
        return catalog.BuildResult(tmp_path, "built", "built")

    monkeypatch.setattr(catalog, "is_built", lambda config, data_dir: False)
    monkeypatch.setattr(catalog, "build_dataset", build)
    profile = lib.PROFILES["demo"]
    status = run_module._prepare_data("synthetic_64", 64, profile, tmp_path, 1, print, progress)
    assert status == "built"
    assert bars == [("Simulating synthetic_64", 2 * 3000, "patch")] and updates == [7]


def test_the_data_stage_tells_a_simulator_variant_from_an_import(tmp_path, monkeypatch):
    from tfrecap.data import catalog
    from tfrecap.reproduce import run as run_module

    profile = lib.PROFILES["demo"]
    for kind, expected in (("synthetic", "simulator variant, present"),
                           ("folder", "imported dataset, present")):
        monkeypatch.setattr(catalog, "read_metadata",
                            lambda data_dir, name, kind=kind: {"identity": {"kind": kind}})
        status = run_module._prepare_data("v2_no_glare", 64, profile, tmp_path, 1, print, None)
        assert status.startswith(expected), status


def test_an_output_made_from_other_data_is_refused(tmp_path, monkeypatch):
    """Models and results are reused by their config; after a rebuild of the data (another
    simulator or tiling rule) reusing them would mix models of the old data into the new."""
    from tfrecap.data import catalog
    from tfrecap.reproduce import ReproduceError
    from tfrecap.reproduce import run as reproduce_run

    identity = {"kind": "synthetic", "simulator_fingerprint": "aaaa"}
    monkeypatch.setattr(catalog, "read_metadata", lambda data_dir, dataset: {"identity": identity})
    reproduce_run._check_same_data(tmp_path, "synthetic_64", "D")  # first run: records it
    reproduce_run._check_same_data(tmp_path, "synthetic_64", "D")  # same data: fine
    identity = {"kind": "synthetic", "simulator_fingerprint": "bbbb"}
    with pytest.raises(ReproduceError, match="another synthetic_64"):
        reproduce_run._check_same_data(tmp_path, "synthetic_64", "D")


def test_a_simulator_variant_is_called_simulated_in_the_findings(tmp_path, monkeypatch):
    """A variant's name is not built in, but its recorded identity says it is simulated: the
    report's closing sentence must not call it imported photographs."""
    import importlib

    from tfrecap.config import load_pipeline
    from tfrecap.data import catalog
    from tfrecap.reproduce import profiles
    from tfrecap.reproduce.results import SeedRun, SizeRun

    # The package re-exports a function named `findings`: fetch the module itself.
    findings = importlib.import_module("tfrecap.reproduce.findings")

    monkeypatch.setattr(findings, "findings", lambda run: [])  # only the closing sentence
    seed = SeedRun(seed=0, output=tmp_path, configs={"baseline": load_pipeline("demo_baseline")})
    for kind, expected in (("synthetic", "simulated recaptures"),
                           ("folder", "the imported photographs")):
        monkeypatch.setattr(catalog, "read_metadata",
                            lambda data_dir, name, kind=kind: {"identity": {"kind": kind}})
        run = SizeRun(size=64, dataset="v2_no_glare", seeds=[seed],
                      simulated=profiles.is_simulated("v2_no_glare", 64, tmp_path))
        assert expected in findings.findings_section([run])
    monkeypatch.setattr(catalog, "read_metadata", lambda data_dir, name: None)
    assert profiles.is_simulated("synthetic_v2_64", 64, tmp_path)  # built in, by its name
    assert not profiles.is_simulated("mine_64", 64, tmp_path)  # not built: not simulated
    # A run recorded before the field existed is judged by its name, as before.
    assert "the imported photographs" in findings.findings_section(
        [SizeRun(size=64, dataset="v2_no_glare", seeds=[seed])])


def test_results_are_reused_only_for_the_same_export_not_its_version_number(tmp_path):
    """An export deleted and trained again is version 1 again: its results are made anew,
    because they are keyed by the SavedModel's fingerprint (graph and weights)."""
    import tensorflow as tf

    from tfrecap.reproduce.run import export_fingerprint, reuse_result, write_result

    def export(weight, where):
        module = tf.Module()
        module.w = tf.Variable(weight)
        module.f = tf.function(lambda x: x * module.w, input_signature=[tf.TensorSpec([])])
        tf.saved_model.save(module, str(where))
        return where

    first = export(1.0, tmp_path / "a" / "1")
    again = export(2.0, tmp_path / "b" / "1")
    assert export_fingerprint(first) == export_fingerprint(first)
    assert export_fingerprint(first) != export_fingerprint(again)
    assert export_fingerprint(tmp_path / "missing") is None

    path = tmp_path / "result.json"
    wanted = {"model_version": "1", "export": export_fingerprint(first)}
    write_result(path, {"accuracy": 0.9, **wanted}, log=lambda line: None)
    assert reuse_result(path, wanted, log=lambda line: None) is not None
    assert reuse_result(path, {**wanted, "export": export_fingerprint(again)},
                        log=lambda line: None) is None
    # No fingerprint to compare: never reused (the old results may be another model's).
    assert reuse_result(path, {**wanted, "export": None}, log=lambda line: None) is None
