"""tfrecap reproduce: the whole Section 4 flow at tiny settings, reuse on rerun, clear errors."""

import json

import pytest
from click.testing import CliRunner

from tests.conftest import TINY_COUNT, TINY_SEED
from tfrecap import reproduce as lib
from tfrecap.cli.main import cli

# Tiny everything: 2 steps of a 4-8 wide CNN on batches of 8, attacks on 8 patches.
TINY_ARGS = [
    "--profile", "demo", "--count", str(TINY_COUNT), "--seed", str(TINY_SEED),
    "--steps", "2", "--widths", "4,4,8,8,8", "--batch-size", "8",
    "--limit", "8", "--pgd-limit", "8", "--quiet",
]


def _versions(root):
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def test_demo_flow_writes_the_report_then_reuses_everything(synthetic_dir, tmp_path):
    out = tmp_path / "out"
    args = ["reproduce", *TINY_ARGS, "--data-dir", str(synthetic_dir), "--output", str(out)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "already built" in first.output  # the fixture's data (same count and seed)

    report = (out / "report.md").read_text()
    for heading in ("## Table 1", "## Table 2", "## Table 3", "## PGD", "## Per-class",
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
        result = json.loads((out / "results" / f"{name}.json").read_text())
        assert result["schema_version"] == 1
        assert {"fgsm", "llcm", "pgd", "pgd (eps=255)"} <= {a["attack"] for a in
                                                               result["attacks"]}
        assert _versions(out / "saved_models" / name) == ["1"]

    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert second.output.count("reusing the finished model") == 2
    assert second.output.count("same model version and evaluation settings") == 2
    for name in ("demo_baseline", "demo"):
        assert _versions(out / "saved_models" / name) == ["1"]  # nothing retrained
    assert "reused export version 1" in (out / "report.md").read_text()


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
