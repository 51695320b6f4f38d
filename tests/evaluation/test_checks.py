"""The sanity checks of Carlini et al. 2019 on hand-made results: each failure says masking."""

from tests.evaluation.helpers import result
from tfrecap import evaluation as ev


def test_checks_flag_masking_and_note_fgsm_overshoot():
    clean = ev.Accuracy(950, 1000)
    results = [
        result("fgsm", [1, 3, 5], [0.10, 0.05, 0.30]),  # overshoot: a note
        result("llcm", [1, 3, 5], [0.50, 0.05, 0.30]),  # |llcm - fgsm| > clean error
        result("pgd", [1, 3, 5], [0.05, 0.20, 0.01], zero=50),  # rises, zero gradients
        result("fgsm", [1, 3, 5], [0.01, 0.01, 0.01], transfer="other",
               title="fgsm (transfer)"),  # transfer beats white-box
    ]
    checks, notes = ev.sanity_checks(clean, results)
    failed = {c.name for c in checks if not c.passed}
    assert "pgd: accuracy does not rise with eps" in failed
    assert "pgd: zero-gradient fraction is small" in failed
    assert "|acc_llcm - acc_fgsm| <= clean error" in failed
    assert "pgd is at least as strong as fgsm" in failed
    assert "fgsm (transfer) from other is weaker than white-box" in failed
    assert all(ev.MASKING in c.detail for c in checks if not c.passed)
    assert any("overshoots" in n for n in notes)
    assert "fgsm: accuracy does not rise with eps" not in {c.name for c in checks}


def test_checks_pass_on_consistent_results():
    clean = ev.Accuracy(950, 1000)
    results = [
        result("fgsm", [1, 2], [0.20, 0.10]),
        result("llcm", [1, 2], [0.22, 0.12]),
        result("pgd", [1, 2], [0.05, 0.00]),
    ]
    checks, notes = ev.sanity_checks(clean, results)
    assert checks and all(c.passed for c in checks), checks
    assert not notes
