"""The minimum-norm search inside `evaluate`: its medians, curve, JSON and table."""

import math

import numpy as np
import pytest

from tests.evaluation.helpers import tiny_model_and_data
from tfrecap import evaluation as ev
from tfrecap import jsonio


@pytest.fixture(scope="module")
def tiny():
    return tiny_model_and_data()


def test_min_norm_gives_median_curve_and_json(tiny):
    model, dataset = tiny
    report = ev.evaluate(model, dataset, [], [], limit=40, unbounded_check=False,
                         min_norm={"eps_max": 8.0, "search_steps": 3, "steps": 3},
                         min_norm_limit=20)
    summary = report.min_norm
    assert summary["n"] == 20 and len(summary["min_eps"]) == 20
    values = np.array(summary["min_eps"])
    assert np.all((values == 0) | (values > 0))
    curve = [c["accuracy"] for c in summary["curve"]]
    assert [c["eps"] for c in summary["curve"]] == list(range(9))
    assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))
    # At ε = 0 nothing moves: the curve starts at the clean accuracy of those 20 images.
    images, labels = next(iter(dataset.unbatch().batch(20)))
    clean = np.mean(np.argmax(model(images), -1) == labels.numpy())
    assert curve[0] == pytest.approx(clean)
    assert summary["median_eps"] == pytest.approx(float(np.median(values)))
    assert sum(c["n"] for c in summary["by_class"].values()) == 20

    payload = jsonio.loads_strict(jsonio.dumps(report.to_json_dict()))
    assert payload["min_norm"]["params"]["eps_max"] == 8.0
    assert payload["min_norm"]["curve"] == summary["curve"]
    table = ev.format_table(report)
    assert "Minimum ε that flips each image" in table and "| robust |" in table


def test_reports_without_min_norm_keep_their_json_keys(tiny):
    model, dataset = tiny
    report = ev.evaluate(model, dataset, [], [], limit=16, unbounded_check=False)
    assert report.min_norm is None and "min_norm" not in report.to_json_dict()


def test_never_flipped_images_are_inf_and_null_in_json(tiny):
    model, dataset = tiny
    # ε_max = 1 level cannot flip this separable model's confident images.
    report = ev.evaluate(model, dataset, [], [], limit=16, unbounded_check=False,
                         min_norm={"eps_max": 1.0, "search_steps": 1, "steps": 2})
    values = report.min_norm["min_eps"]
    assert any(math.isinf(v) for v in values)
    payload = jsonio.loads_strict(jsonio.dumps(report.to_json_dict()))
    assert None in payload["min_norm"]["min_eps"]
