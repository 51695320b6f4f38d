"""Accuracy under attack, with the honesty checks of Carlini et al. 2019.

One job per module, in the order a result flows:

* :mod:`~tfrecap.evaluation.stats`: Wilson intervals, ROC AUC, the operating point;
* :mod:`~tfrecap.evaluation.report`: attack specs, results, checks and the report (JSON form);
* :mod:`~tfrecap.evaluation.checks`: the sanity checks ("possible gradient masking");
* :mod:`~tfrecap.evaluation.run`: the evaluation loop, :func:`evaluate`;
* :mod:`~tfrecap.evaluation.tables`: the paper-shaped markdown table;
* :mod:`~tfrecap.evaluation.plots`: accuracy against ε from ``--json`` reports.

Only ``run`` needs TensorFlow; it is imported on first use of its names, so reading and
plotting reports (``tfrecap plot``) stays TensorFlow-free.
"""

from tfrecap.evaluation.checks import (
    MASKING,
    UNBOUNDED_EPS,
    UNBOUNDED_STEP_SIZE,
    UNBOUNDED_STEPS,
    UNBOUNDED_TITLE,
    sanity_checks,
    unbounded_spec,
)
from tfrecap.evaluation.plots import check_report, plot_results, plot_tradeoff
from tfrecap.evaluation.report import SCHEMA_VERSION, AttackResult, AttackSpec, Check, Report
from tfrecap.evaluation.stats import Accuracy, roc_auc, threshold_at_fpr, wilson_interval
from tfrecap.evaluation.tables import format_table

_RUN_NAMES = ("evaluate", "jpeg_roundtrip", "logits_fn_of")


def __getattr__(name):
    if name in _RUN_NAMES:
        from tfrecap.evaluation import run

        value = globals()[name] = getattr(run, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MASKING",
    "SCHEMA_VERSION",
    "UNBOUNDED_EPS",
    "UNBOUNDED_STEPS",
    "UNBOUNDED_STEP_SIZE",
    "UNBOUNDED_TITLE",
    "Accuracy",
    "AttackResult",
    "AttackSpec",
    "Check",
    "Report",
    "check_report",
    "evaluate",
    "format_table",
    "jpeg_roundtrip",
    "logits_fn_of",
    "plot_results",
    "plot_tradeoff",
    "roc_auc",
    "sanity_checks",
    "threshold_at_fpr",
    "unbounded_spec",
    "wilson_interval",
]
