"""The paper-shaped markdown table."""

from tests.evaluation.helpers import result
from tfrecap import evaluation as ev


def test_table_shows_an_attack_asked_for_at_eps_255():
    report = ev.Report(
        clean=ev.Accuracy(90, 100), clean_by_class={}, auc=0.9,
        operating_point={"fpr_target": 0.01, "threshold": 0.5, "fpr": 0.01, "tpr": 0.5},
        attacks=[result("pgd", [255], [0.03], n=100)], checks=[], notes=[],
    )
    table = ev.format_table(report, patch_size=8)
    assert "ε = 255" in table and "| 8×8 | pgd | 3.0%" in table
