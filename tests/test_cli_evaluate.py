"""tfrecap evaluate and tfrecap plot, end to end on an exported tiny model."""

import json

import pytest
from click.testing import CliRunner

from tests.test_training import TINY_PIPELINE
from tfrecap import config as cfg
from tfrecap.cli.main import cli


@pytest.fixture(scope="module")
def exported(synthetic_dir, tmp_path_factory):
    from tfrecap.training import train

    root = tmp_path_factory.mktemp("evaluate")
    path = root / "tiny.toml"
    path.write_text(TINY_PIPELINE)
    config = cfg.load_pipeline(path)
    train(config, data_dir=synthetic_dir, run_dir=root / "run", export_dir=root / "export",
          verbose=0, log=lambda message: None)
    return root / "export"


def test_evaluate_writes_the_json_schema(exported, synthetic_dir, tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "fgsm,llcm,pgd",
        "--eps", "1,2", "--limit", "12", "--pgd-steps", "2", "--batch-size", "8",
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "| 64×64 | fgsm |" in result.output
    report = json.loads(out.read_text())
    for key in ("schema_version", "model", "model_version", "dataset", "patch_size", "split",
                "n", "clean", "auc", "attacks", "checks"):
        assert key in report, key
    assert report["model_version"] == "1" and report["patch_size"] == 64 and report["n"] == 12
    assert {"accuracy", "ci"} <= set(report["clean"])
    attacks = {a["attack"]: a for a in report["attacks"]}
    assert {"fgsm", "llcm", "pgd", "pgd (eps=255)"} == set(attacks)
    assert attacks["pgd"]["params"]["steps"] == 2
    for row in attacks["fgsm"]["results"]:
        assert {"eps", "accuracy", "ci", "zero_grad_fraction"} <= set(row)
        assert row["ci"][0] <= row["accuracy"] <= row["ci"][1]
    assert all({"name", "passed", "detail"} == set(c) for c in report["checks"])

    plot = tmp_path / "plot.png"
    result = CliRunner().invoke(cli, ["plot", str(out), str(out), "--output", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.stat().st_size > 1000


def test_evaluate_transfer_and_jpeg(exported, synthetic_dir):
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "fgsm",
        "--eps", "2", "--limit", "8", "--transfer-from", str(exported), "--jpeg-quality", "90",
        "--no-unbounded-check",
    ])
    assert result.exit_code == 0, result.output
    assert "fgsm (transfer)" in result.output


def test_unknown_attack_lists_the_known_ones(exported):
    result = CliRunner().invoke(cli, ["evaluate", str(exported), "--attack", "cw"])
    assert result.exit_code == 2
    assert "fgsm, llcm, pgd" in result.output


def test_missing_model_says_what_is_expected(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path)])
    assert result.exit_code != 0
    assert "saved_model.pb" in result.output
