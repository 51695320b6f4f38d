"""tfrecap evaluate and tfrecap plot, end to end on an exported tiny model."""

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from tests.evaluation.helpers import fake_tqdm
from tfrecap import jsonio
from tfrecap.cli.main import cli


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


def test_json_report_is_strict_and_a_missing_figure_is_null(exported, synthetic_dir, tmp_path):
    # Bug: one image is one class, so ROC AUC, the operating point and the other class's
    # accuracy are NaN, and `json.dumps` wrote them as the invalid literal NaN.
    out = tmp_path / "one.json"
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "fgsm",
        "--eps", "1", "--limit", "1", "--no-unbounded-check", "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = jsonio.loads_strict(out.read_text())
    assert report["n"] == 1
    assert report["auc"] is None
    assert None in [v["accuracy"] for v in report["clean"]["by_class"].values()]


def test_progress_bar_total_is_the_split_size(exported, synthetic_dir, monkeypatch):
    # Bug: without --limit the bar had no total, so tqdm showed no ETA.
    bars = fake_tqdm(monkeypatch)
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "none",
        "--batch-size", "8",
    ])
    assert result.exit_code == 0, result.output
    (bar,) = bars
    assert bar.total == 20  # the test split of the tiny synthetic_64: 10 per class
    assert sum(bar.updates) == 20


def test_plot_of_a_non_evaluate_json_names_the_file(tmp_path):
    # Bug: the error was only "'attacks'" (a KeyError's text).
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"schema_version": 1, "loss": [0.7, 0.6]}))
    result = CliRunner().invoke(cli, ["plot", str(history), "--output", str(tmp_path / "p.png")])
    assert result.exit_code == 1
    assert str(history) in result.output and "tfrecap evaluate --json" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, KeyError)
    assert not (tmp_path / "p.png").exists()


def test_unknown_attack_is_rejected_before_tensorflow_is_imported(tmp_path):
    # Bug: the --attack callback imported tfrecap.attacks, hence TensorFlow (about 5 s).
    script = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from tfrecap.cli.main import cli
        result = CliRunner().invoke(cli, ["evaluate", {str(tmp_path)!r}, "--attack", "nosuch"])
        print(result.exit_code, "tensorflow" in sys.modules)
        print(result.output)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    status, output = done.stdout.split("\n", 1)
    assert status == "2 False", done.stdout + done.stderr
    assert "nosuch" in output and "fgsm, llcm, pgd" in output


def test_help_describes_restarts_and_has_no_random_start_flag():
    result = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0
    assert "--random-start" not in result.output
    assert "restart 0 starts at x" in " ".join(result.output.lower().split())


@pytest.mark.parametrize("args, message", [
    (["--eps", "nan"], "finite"),
    (["--eps", "1,inf"], "finite"),
    (["--pgd-step-size", "-1"], "--pgd-step-size"),
    (["--pgd-step-size", "0"], "--pgd-step-size"),
])
def test_bad_attack_budgets_are_usage_errors_not_tracebacks(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--attack", "pgd", *args])
    assert result.exit_code == 2, result.output  # click's usage error, no traceback
    assert message in result.output
