"""What an evaluation returns: attack specs, per-attack results, checks, and the report.

A :class:`Report` is the one result of :func:`tfrecap.evaluation.evaluate`; tables, plots,
``tfrecap evaluate --json`` and ``tfrecap reproduce`` all read it or its JSON form
(:meth:`Report.to_json_dict`, ``schema_version`` 1). A missing figure (an accuracy of no
images, the ROC AUC of one class) is NaN here and ``null`` once written with ``tfrecap.jsonio``.
"""

from __future__ import annotations

import dataclasses
import math

from tfrecap.evaluation.stats import Accuracy

SCHEMA_VERSION = 1


@dataclasses.dataclass
class AttackSpec:
    """One attack to run: a registry name plus its parameters (eps excluded)."""

    name: str
    params: dict = dataclasses.field(default_factory=dict)
    label: str | None = None  # how it is shown in tables; default: the name

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclasses.dataclass
class AttackResult:
    spec: AttackSpec
    eps: list[float]
    accuracy: list[Accuracy]
    # Per eps: accuracy on the originals and on the recaptures separately. An
    # attack can fool one direction (original -> "recaptured") far more easily.
    by_class: list[dict[str, Accuracy]] = dataclasses.field(default_factory=list)
    # Per eps: (images whose input gradient was exactly zero, n). For FGSM/LLCM
    # that is the gradient at x; for PGD, zero at every step of every restart.
    zero_grad: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    transfer_from: str | None = None
    # An ensemble (``auto``) only, else empty. Its resolved members, each a dict of name,
    # attack, params and gradient_free; and per eps, how many images each member broke,
    # with "robust" and "already_wrong" (wrong at x), as the ensemble judged them before
    # any JPEG re-encoding.
    members: list[dict] = dataclasses.field(default_factory=list)
    broken_by: list[dict[str, int]] = dataclasses.field(default_factory=list)

    @property
    def zero_grad_fraction(self) -> float:
        """Over all eps of this attack."""
        zero, n = sum(z for z, _ in self.zero_grad), sum(n for _, n in self.zero_grad)
        return zero / n if n else float("nan")

    def zero_grad_fraction_at(self, index: int) -> float:
        zero, n = self.zero_grad[index]
        return zero / n if n else float("nan")

    def at(self, eps: float) -> Accuracy | None:
        for e, a in zip(self.eps, self.accuracy, strict=True):
            if math.isclose(e, eps):
                return a
        return None


@dataclasses.dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclasses.dataclass
class Report:
    clean: Accuracy
    clean_by_class: dict[str, Accuracy]
    auc: float
    operating_point: dict
    attacks: list[AttackResult]
    checks: list[Check]
    notes: list[str]
    meta: dict = dataclasses.field(default_factory=dict)
    # Per-image minimum ε (tfrecap.attacks.min_norm.summarize_minimum_eps), when measured.
    min_norm: dict | None = None

    def attack(self, title: str) -> AttackResult | None:
        return next((a for a in self.attacks if a.spec.title == title), None)

    def to_json_dict(self) -> dict:
        """The report as JSON types; missing figures stay NaN until ``tfrecap.jsonio`` writes
        them as ``null``."""
        return {
            "schema_version": SCHEMA_VERSION,
            **self.meta,
            "n": self.clean.n,
            "clean": {
                "accuracy": self.clean.value,
                "ci": list(self.clean.ci),
                "by_class": {k: v.to_dict() for k, v in self.clean_by_class.items()},
            },
            "auc": self.auc,
            "operating_point": self.operating_point,
            "attacks": [
                {
                    "attack": a.spec.title,
                    "params": {**a.spec.params, **({"transfer_from": a.transfer_from}
                                                   if a.transfer_from else {}),
                               **({"members": a.members} if a.members else {})},
                    "results": [
                        {
                            "eps": e,
                            "accuracy": acc.value,
                            "ci": list(acc.ci),
                            "n": acc.n,
                            "zero_grad_fraction": a.zero_grad_fraction_at(i),
                            "by_class": {k: v.to_dict() for k, v in a.by_class[i].items()}
                            if a.by_class else {},
                            **({"broken_by": a.broken_by[i]} if a.broken_by else {}),
                        }
                        for i, (e, acc) in enumerate(zip(a.eps, a.accuracy, strict=True))
                    ],
                }
                for a in self.attacks
            ],
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "notes": self.notes,
            **({"min_norm": self.min_norm} if self.min_norm else {}),
        }
