"""The evaluator: statistics, the sanity checks, and one real run on a tiny model."""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrecap import evaluation as ev


def test_wilson_interval_known_values():
    lo, hi = ev.wilson_interval(81, 263)  # worked example of Wilson (1927)-style intervals
    assert lo == pytest.approx(0.2553, abs=1e-3) and hi == pytest.approx(0.3662, abs=1e-3)
    assert ev.wilson_interval(0, 10)[0] == 0.0
    assert ev.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert ev.wilson_interval(0, 0) == (0.0, 1.0)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 40).astype(float)  # many ties
    labels = rng.integers(0, 2, 40)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = [(p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg)]
    assert ev.roc_auc(scores, labels) == pytest.approx(np.mean(pairs))


def test_threshold_at_fpr_respects_the_rate():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(1000), np.ones(1000)]
    scores = np.r_[rng.normal(0, 1, 1000), rng.normal(2, 1, 1000)]
    point = ev.threshold_at_fpr(scores, labels, fpr=0.05)
    assert point["fpr"] <= 0.05 and point["fpr"] > 0.03
    assert 0.5 < point["tpr"] < 0.9


def _result(name, eps, accs, n=1000, zero=0, transfer=None, title=None):
    return ev.AttackResult(
        spec=ev.AttackSpec(name, {}, title),
        eps=list(eps),
        accuracy=[ev.Accuracy(int(a * n), n) for a in accs],
        zero_grad=[(zero, n) for _ in eps],
        transfer_from=transfer,
    )


def test_checks_flag_masking_and_note_fgsm_overshoot():
    clean = ev.Accuracy(950, 1000)
    results = [
        _result("fgsm", [1, 3, 5], [0.10, 0.05, 0.30]),  # overshoot: a note
        _result("llcm", [1, 3, 5], [0.50, 0.05, 0.30]),  # |llcm - fgsm| > clean error
        _result("pgd", [1, 3, 5], [0.05, 0.20, 0.01], zero=50),  # rises, zero gradients
        _result("fgsm", [1, 3, 5], [0.01, 0.01, 0.01], transfer="other",
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
        _result("fgsm", [1, 2], [0.20, 0.10]),
        _result("llcm", [1, 2], [0.22, 0.12]),
        _result("pgd", [1, 2], [0.05, 0.00]),
    ]
    checks, notes = ev.sanity_checks(clean, results)
    assert checks and all(c.passed for c in checks), checks
    assert not notes


def _tiny_model_and_data(n=48, size=8):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n).astype("int32")
    # Class 1 is brighter in the green channel: a linear model learns it at once.
    images = rng.uniform(60, 190, (n, size, size, 3)).astype("float32")
    images[..., 1] += np.where(labels == 1, 25.0, -25.0)[:, None, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255.0),
        keras.layers.Flatten(), keras.layers.Dense(2),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, epochs=40, batch_size=16, verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    return model, dataset


def test_evaluate_end_to_end_on_a_tiny_model():
    model, dataset = _tiny_model_and_data()
    attacks = [ev.AttackSpec("fgsm"), ev.AttackSpec("llcm"),
               ev.AttackSpec("pgd", {"steps": 5, "loss": "margin", "random_start": False})]
    report = ev.evaluate(model, dataset, attacks, [1.0, 30.0], limit=40, unbounded_limit=16)
    assert report.clean.n == 40 and report.clean.value > 0.8
    fgsm, pgd = report.attack("fgsm"), report.attack("pgd")
    assert fgsm.at(30.0).value < fgsm.at(1.0).value
    assert pgd.at(30.0).value <= fgsm.at(30.0).value
    assert report.attack("pgd (eps=255)").accuracy[0].n == 16
    names = {c.name: c for c in report.checks}
    assert names["|acc_llcm - acc_fgsm| <= clean error"].passed
    assert names["an unbounded attack reaches about 0%"].passed
    payload = json.loads(json.dumps(report.to_json_dict()))
    assert {"schema_version", "n", "clean", "auc", "attacks", "checks"} <= set(payload)
    first = payload["attacks"][0]
    assert {"attack", "params", "results"} <= set(first)
    assert {"eps", "accuracy", "ci", "zero_grad_fraction"} <= set(first["results"][0])
    table = ev.format_table(report, patch_size=8)
    assert "| 8×8 | fgsm |" in table and "ε = 30" in table
    assert "pgd (eps=255)" not in table and "ε = 255" not in table  # the check is not a column


def test_table_shows_an_attack_asked_for_at_eps_255():
    report = ev.Report(
        clean=ev.Accuracy(90, 100), clean_by_class={}, auc=0.9,
        operating_point={"fpr_target": 0.01, "threshold": 0.5, "fpr": 0.01, "tpr": 0.5},
        attacks=[_result("pgd", [255], [0.03], n=100)], checks=[], notes=[],
    )
    table = ev.format_table(report, patch_size=8)
    assert "ε = 255" in table and "| 8×8 | pgd | 3.0%" in table


def test_jpeg_roundtrip_changes_little_and_stays_valid():
    x = tf.constant(np.full((2, 16, 16, 3), 128.0, "float32"))
    y = ev.jpeg_roundtrip(x, 90)
    assert y.shape == x.shape and float(tf.reduce_max(tf.abs(y - x))) <= 2.0
