"""Keras callbacks for tfrecap training: accuracy under attack while the model trains.

The callback runs the evaluator itself (:func:`tfrecap.evaluation.evaluate`), not a loop of its
own, so a figure logged during training means exactly what ``tfrecap evaluate`` reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfrecap.evaluation import AttackSpec, evaluate


class AdversarialEvaluation(keras.callbacks.Callback):
    """Accuracy under attack on a held-out subset, every ``every`` epochs.

    It calls the same evaluator as ``tfrecap evaluate``
    (:func:`tfrecap.evaluation.evaluate`) and adds ``val_<attack>_acc_eps<ε>``
    (for example ``val_fgsm_acc_eps2``) to the epoch logs, so the values reach
    the progress bar, ``history.json`` and TensorBoard. Put it before the
    TensorBoard callback in the list: callbacks share one logs dict, in order.

    Args:
        dataset: batches of ``(images, labels)``; only the first ``limit`` images are used.
        attacks: attack names (``fgsm``, ``llcm``, ``pgd``) or :class:`AttackSpec`\\ s.
        eps: budgets in pixel levels.
        every: run on epochs ``every, 2*every, ...`` (1-based).
        limit: images per evaluation (keep it small: it runs during training).
    """

    def __init__(
        self,
        dataset: tf.data.Dataset,
        attacks: Sequence[str | AttackSpec] = ("fgsm",),
        eps: Sequence[float] = (2.0,),
        every: int = 1,
        limit: int = 256,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"`every` has to be >= 1, got {every}")
        self.dataset = dataset
        self.attacks = [a if isinstance(a, AttackSpec) else AttackSpec(a) for a in attacks]
        self.eps = list(eps)
        self.every = every
        self.limit = limit
        self.last_report = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        report = evaluate(
            self.model,
            self.dataset,
            self.attacks,
            self.eps,
            limit=self.limit,
            unbounded_check=False,
        )
        self.last_report = report
        if logs is None:
            return
        logs["val_clean_acc"] = report.clean.value
        for result in report.attacks:
            for eps, acc in zip(result.eps, result.accuracy, strict=True):
                logs[f"val_{result.spec.name}_acc_eps{eps:g}"] = acc.value
