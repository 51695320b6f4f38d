"""AdversarialEvaluation: the evaluator's figures reach the epoch logs."""

import pytest

from tests.evaluation.helpers import tiny_model_and_data
from tfrecap.callbacks import AdversarialEvaluation


def test_callback_logs_what_the_evaluator_reports():
    model, dataset = tiny_model_and_data()
    callback = AdversarialEvaluation(dataset, attacks=("fgsm",), eps=(1.0, 30.0), every=2,
                                     limit=20)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)  # epoch 1 of every 2: skipped
    assert logs == {} and callback.last_report is None
    callback.on_epoch_end(1, logs)
    report = callback.last_report
    assert report.clean.n == 20 and report.attack("pgd (eps=255)") is None
    assert logs["val_clean_acc"] == report.clean.value
    assert logs["val_fgsm_acc_eps1"] == report.attack("fgsm").at(1.0).value
    assert logs["val_fgsm_acc_eps30"] < logs["val_fgsm_acc_eps1"]


def test_callback_rejects_a_bad_period():
    with pytest.raises(ValueError, match="every"):
        AdversarialEvaluation(None, every=0)
