"""tfrecap evaluate --attack auto end to end on an exported tiny model.

apgd and square land separately: where they are not yet registered, stand-ins with their
planned signatures are patched into the registry for this test only.
"""

import json

import pytest
import tensorflow as tf
from click.testing import CliRunner

from tfrecap import attacks
from tfrecap.cli.main import cli
from tfrecap.ops.random import per_image_uniform
from tfrecap.ops.steps import project, to_valid_image

CALLS = {}  # attack -> the budgets it was built with


def _apgd(model, x, y=None, *, eps, steps=100, loss="ce", restarts=1, seed=0, index=None,
          quantize=True, return_diagnostics=False):
    CALLS.setdefault("apgd", set()).add((steps, loss, seed))
    return attacks.pgd(model, x, y, eps=eps, steps=steps, loss=loss, quantize=quantize,
                       return_diagnostics=return_diagnostics)


def _square(model, x, y=None, *, eps, queries=5000, p_init=0.8, seed=0, index=None,
            output="logits", quantize=True, return_diagnostics=False):
    CALLS.setdefault("square", set()).add((queries, seed))
    draw = per_image_uniform(seed, 0, index, tf.shape(x)[1:], -1.0, 1.0)
    x_adv = to_valid_image(project(x + eps * tf.sign(draw), x, eps), x, eps)
    return (x_adv, tf.zeros(tf.shape(x)[:1], tf.bool)) if return_diagnostics else x_adv


@pytest.fixture
def members(monkeypatch):
    CALLS.clear()
    for name, fn in (("apgd", _apgd), ("square", _square)):
        if name not in attacks.ATTACKS:
            monkeypatch.setitem(attacks.ATTACKS, name, fn)


def test_evaluate_attack_auto_end_to_end(exported, synthetic_dir, tmp_path, members):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "pgd,auto",
        "--eps", "2,8", "--limit", "8", "--batch-size", "4", "--pgd-steps", "2",
        "--apgd-steps", "3", "--square-queries", "5", "--seed", "7", "--no-unbounded-check",
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    by_name = {a["attack"]: a for a in report["attacks"]}
    assert set(by_name) == {"pgd", "auto"}
    auto = by_name["auto"]
    assert {k: auto["params"][k] for k in ("apgd_steps", "square_queries", "seed")} == {
        "apgd_steps": 3, "square_queries": 5, "seed": 7}
    assert [m["name"] for m in auto["params"]["members"]] == ["apgd-ce", "apgd-margin",
                                                               "square"]
    assert "apgd_steps" not in by_name["pgd"]["params"]  # each attack gets its own options
    assert by_name["pgd"]["params"]["steps"] == 2
    for row in auto["results"]:
        assert sum(row["broken_by"].values()) == report["n"] == 8
        assert row["broken_by"]["robust"] == round(row["accuracy"] * 8)
        assert {"ci", "by_class", "zero_grad_fraction"} <= set(row)
    if "apgd" in CALLS:  # the stand-ins: the budgets reached the members
        assert CALLS["apgd"] == {(3, "ce", 7), (3, "margin", 7)}
    assert "| 64×64 | auto |" in result.output
    assert "auto: images broken by each member" in result.output
    assert any(c["name"].startswith("auto: square breaks nothing") for c in report["checks"])


def test_help_says_what_auto_is_and_costs():
    result = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for words in ("auto is the AutoAttack-style ensemble", "APGD-CE", "Square", "--apgd-steps",
                  "--square-queries", "--seed", "[default: 100;", "[default: 5000;"):
        assert words in text, words


def test_evaluate_min_norm_and_through_jpeg_end_to_end(exported, synthetic_dir, tmp_path):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "pgd",
        "--eps", "2", "--limit", "6", "--batch-size", "3", "--pgd-steps", "2",
        "--jpeg-quality", "75", "--through-jpeg", "--min-norm", "--min-norm-limit", "4",
        "--min-norm-max", "4", "--apgd-steps", "2", "--no-unbounded-check", "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [a["attack"] for a in report["attacks"]] == ["pgd", "pgd (through jpeg)"]
    assert report["jpeg_quality"] == 75 and report["through_jpeg_attacks"] is True
    assert report["min_norm"]["n"] == 4
    assert report["min_norm"]["params"]["steps"] == 2
    assert [c["eps"] for c in report["min_norm"]["curve"]] == [0, 1, 2, 3, 4]
    assert "Minimum ε that flips each image" in result.output


def test_through_jpeg_without_a_quality_is_a_usage_error(exported, synthetic_dir):
    result = CliRunner().invoke(cli, [
        "evaluate", str(exported), "--data-dir", str(synthetic_dir), "--attack", "pgd",
        "--through-jpeg", "--limit", "2"])
    assert result.exit_code == 2 and "--through-jpeg needs --jpeg-quality" in result.output
