"""The `auto` ensemble in the report: its breakdown by member, in JSON and table, and the
gradient-masking checks it feeds (Square breaking what the white-box attacks missed)."""

import pytest

from tests.evaluation.helpers import result, tiny_model_and_data
from tfrecap import evaluation as ev
from tfrecap import jsonio

MEMBERS = [{"name": "apgd-ce", "attack": "apgd", "params": {}, "gradient_free": False},
           {"name": "apgd-margin", "attack": "apgd", "params": {}, "gradient_free": False},
           {"name": "square", "attack": "square", "params": {}, "gradient_free": True}]


def _auto(square_counts, n=1000):
    r = result("auto", [2, 4], [0.5, 0.3], n=n)
    r.members = MEMBERS
    r.broken_by = [{"apgd-ce": 400 - k, "apgd-margin": 50, "square": k, "robust": a,
                    "already_wrong": n - 450 - a}
                   for k, a in zip(square_counts, (500, 300), strict=True)]
    return r


def _check(checks, prefix):
    return next(c for c in checks if c.name.startswith(prefix))


def test_square_breaking_what_apgd_missed_is_flagged_and_quiet_otherwise():
    clean = ev.Accuracy(950, 1000)
    checks, _ = ev.sanity_checks(clean, [_auto([0, 30])])
    flagged = _check(checks, "auto: square breaks nothing")
    assert not flagged.passed and ev.MASKING in flagged.detail
    assert "eps=4 (30 of 1000)" in flagged.detail and "eps=2" not in flagged.detail
    checks, _ = ev.sanity_checks(clean, [_auto([0, 0])])
    assert _check(checks, "auto: square breaks nothing").passed
    # Three of 1000 is within two standard errors: said, not failed.
    checks, _ = ev.sanity_checks(clean, [_auto([0, 3])])
    few = _check(checks, "auto: square breaks nothing")
    assert few.passed and "within noise: eps=4 (3 of 1000)" in few.detail


def test_square_alone_stronger_than_apgd_is_flagged_beyond_the_tolerance():
    clean = ev.Accuracy(950, 1000)
    checks, _ = ev.sanity_checks(clean, [result("apgd", [2, 4], [0.40, 0.30]),
                                         result("square", [2, 4], [0.39, 0.10])])
    flagged = _check(checks, "apgd is at least as strong as square")
    assert not flagged.passed and ev.MASKING in flagged.detail
    assert "eps=4" in flagged.detail and "eps=2" not in flagged.detail  # 1 point is noise
    checks, _ = ev.sanity_checks(clean, [result("apgd", [2, 4], [0.40, 0.30]),
                                         result("square", [2, 4], [0.60, 0.50])])
    assert _check(checks, "apgd is at least as strong as square").passed
    checks, _ = ev.sanity_checks(clean, [result("apgd", [2, 4], [0.40, 0.30])])
    assert not any("square" in c.name for c in checks)


def test_auto_rising_with_eps_is_a_failed_check_not_an_overshoot_note():
    checks, notes = ev.sanity_checks(ev.Accuracy(950, 1000),
                                     [result("auto", [2, 4], [0.1, 0.5])])
    assert not _check(checks, "auto: accuracy does not rise").passed
    assert not notes


@pytest.fixture(scope="module")
def tiny():
    return tiny_model_and_data()


def test_evaluate_reports_the_breakdown_in_json_and_table(tiny):
    model, dataset = tiny
    # Stand-in members from the registry: the real apgd and square land separately.
    members = (("pgd-ce", "pgd", {"steps": 3, "loss": "ce"}),
               ("pgd-margin", "pgd", {"steps": 3, "loss": "margin"}), ("fgsm", "fgsm", {}))
    report = ev.evaluate(model, dataset, [ev.AttackSpec("auto", {"members": members})],
                         [1.0, 30.0], limit=40, unbounded_check=False)
    auto = report.attack("auto")
    for i, counts in enumerate(auto.broken_by):
        assert sum(counts.values()) == 40
        assert counts["robust"] == auto.accuracy[i].correct
        assert counts["already_wrong"] == 40 - report.clean.correct
    assert auto.broken_by[1]["pgd-ce"] > 0  # eps = 30 breaks images

    payload = jsonio.loads_strict(jsonio.dumps(report.to_json_dict()))
    entry = payload["attacks"][0]
    assert entry["attack"] == "auto"
    assert [m["name"] for m in entry["params"]["members"]] == ["pgd-ce", "pgd-margin", "fgsm"]
    assert entry["params"]["members"][1]["params"]["steps"] == 3
    assert entry["results"][1]["broken_by"] == auto.broken_by[1]
    assert {"eps", "accuracy", "ci", "n", "zero_grad_fraction", "by_class"} <= set(
        entry["results"][0])

    table = ev.format_table(report, patch_size=8)
    assert "| method | ε | pgd-ce | pgd-margin | fgsm | robust | already wrong |" in table
    counts = auto.broken_by[1]
    assert (f"| auto | 30 | {counts['pgd-ce']} | {counts['pgd-margin']} | {counts['fgsm']} | "
            f"{counts['robust']} | {counts['already_wrong']} |") in table
    assert "| 8×8 | auto |" in table  # its robust-accuracy row with the Wilson interval
