"""What a reproduction produced, and how its figures are read and summarised over seeds.

A :class:`SizeRun` holds, for one patch size, one :class:`SeedRun` per training seed; each
holds the ``tfrecap evaluate --json`` result of both models. The report and the findings read
the results only through the helpers here, so a cell over N seeds is computed in one place:
the mean with its min–max range (:func:`spread`), and :func:`summary` writes the same cells,
with every per-seed value, to ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from tfrecap.config import PipelineConfig
from tfrecap.reproduce.paper_tables import METHODS, ROLES

SUBSET_FGSM = "fgsm (PGD subset)"  # FGSM on the PGD images, for a like-with-like comparison
SUBSET_PGD = "pgd (auto subset)"  # PGD on the auto images, likewise
SUMMARY_SCHEMA_VERSION = 1


@dataclasses.dataclass
class Stage:
    """One timed stage of the run; ``status`` says e.g. "built", "reused", "resumed"."""

    name: str
    seconds: float = 0.0
    status: str = ""


@dataclasses.dataclass
class SeedRun:
    """What one training seed produced at one size: per role its config, export and result.

    Attributes:
        seed: the training seed (``[train] seed``).
        output: the folder holding this seed's runs, exports, results and plot.
    """

    seed: int
    output: Path | None = None
    configs: dict[str, PipelineConfig] = dataclasses.field(default_factory=dict)
    exports: dict[str, Path] = dataclasses.field(default_factory=dict)
    results: dict[str, dict] = dataclasses.field(default_factory=dict)
    result_paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    plot: Path | None = None


@dataclasses.dataclass
class SizeRun:
    """What one patch size produced: one :class:`SeedRun` per training seed, in seed order."""

    size: int
    dataset: str
    seeds: list[SeedRun] = dataclasses.field(default_factory=list)
    simulated: bool | None = None  # simulated recaptures (None: judged by the dataset's name)

    @property
    def configs(self) -> dict[str, PipelineConfig]:
        """The first seed's configs (the seeds differ in ``[train] seed`` only)."""
        return self.seeds[0].configs

    @property
    def seed_values(self) -> list[int]:
        return [s.seed for s in self.seeds]

    def results_of(self, role: str) -> list[dict]:
        """``role``'s result JSON of every seed."""
        return [s.results[role] for s in self.seeds]


@dataclasses.dataclass
class ReproduceResult:
    """What :func:`tfrecap.reproduce.reproduce` wrote."""

    output: Path
    report_path: Path
    summary_path: Path
    runs: list[SizeRun]
    stages: list[Stage]
    seconds: float


# ---------------------------------------------------------------- reading result JSONs


def row(result: dict, attack: str, eps: float) -> dict | None:
    """The result row of ``attack`` at ``eps``, or None."""
    for a in result["attacks"]:
        if a["attack"] == attack:
            for r in a["results"]:
                if math.isclose(r["eps"], eps):
                    return r
    return None


def eps_of(result: dict, attack: str) -> list[float]:
    for a in result["attacks"]:
        if a["attack"] == attack:
            return [r["eps"] for r in a["results"]]
    return []


def now_utc() -> str:
    """The current time as an ISO 8601 UTC timestamp, to the second."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def file_time_utc(path: Path) -> str:
    """When ``path`` was last written, as :func:`now_utc` writes it."""
    stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.UTC)
    return stamp.replace(microsecond=0).isoformat()


def readable_time(stamp: str | None) -> str:
    """``2026-12-01T10:32:05+00:00`` as ``2026-12-01 10:32 UTC``."""
    if not stamp:
        return "an unknown time"
    return datetime.datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- formatting


def pct(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1%}"


def cell(r: dict | None) -> str:
    """Accuracy with its 95% Wilson interval."""
    if r is None:
        return "—"
    lo, hi = r["ci"]
    return f"{r['accuracy']:.1%} [{lo:.1%}, {hi:.1%}]"


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@dataclasses.dataclass(frozen=True)
class Spread:
    """One figure over seeds: every seed's value, their mean and range."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def to_dict(self) -> dict:
        return {"per_seed": list(self.values), "mean": self.mean, "min": self.min,
                "max": self.max}


def spread(values: Sequence[float | None]) -> Spread | None:
    """The spread of ``values``, or None when any seed lacks the figure (a cell stays "—"
    rather than averaging fewer seeds than its neighbours)."""
    if not values or any(v is None or math.isnan(v) for v in values):
        return None
    return Spread(tuple(float(v) for v in values))


def spread_text(values: Sequence[float | None], fmt: Callable[[float], str] = pct) -> str:
    """One value as ``fmt`` writes it; several as "mean [min–max]"."""
    if len(values) == 1:
        return "—" if values[0] is None else fmt(values[0])
    s = spread(values)
    return "—" if s is None else f"{fmt(s.mean)} [{fmt(s.min)}–{fmt(s.max)}]"


def seeds_cell(rows: Sequence[dict | None]) -> str:
    """A table cell: one seed as accuracy [Wilson interval]; several as mean [min–max]."""
    if len(rows) == 1:
        return cell(rows[0])
    return spread_text([r["accuracy"] if r else None for r in rows])


def seeds_caption(n_seeds: int) -> str:
    """What an *ours* cell holds, for the caption under each table."""
    if n_seeds == 1:
        return "Cells marked *ours*: accuracy [95% Wilson interval]."
    return (f"Cells marked *ours*: mean accuracy over the {n_seeds} training seeds "
            "[min–max over the seeds]; each seed's value and its 95% Wilson interval are in "
            "its result JSON and in `summary.json`.")


# ---------------------------------------------------------------- summary.json


def summary(runs: Sequence[SizeRun], output: Path) -> dict:
    """Every headline cell (clean and each attack at each ε, both models, every size) with
    its per-seed values, mean, min and max, and where each seed's files are."""
    cells = []
    sizes = []
    for run in runs:
        for role in ROLES:
            results = run.results_of(role)
            cells.append({"size": run.size, "role": role, "attack": "clean", "eps": 0.0,
                          "n": results[0]["n"],
                          **_spread_dict([r["clean"]["accuracy"] for r in results])})
            attacks = [a["attack"] for a in results[0]["attacks"]]
            for attack in attacks:
                for e in eps_of(results[0], attack):
                    rows = [row(r, attack, e) for r in results]
                    cells.append({
                        "size": run.size, "role": role, "attack": attack, "eps": e,
                        "n": rows[0]["n"],
                        **_spread_dict([x["accuracy"] if x else None for x in rows]),
                    })
        sizes.append({
            "size": run.size, "dataset": run.dataset,
            "seeds": [{
                "seed": s.seed,
                "models": {role: str(p) for role, p in s.exports.items()},
                "results": {role: _relative(p, output) for role, p in s.result_paths.items()},
                "made_at": {role: s.results[role].get("made_at") for role in s.results},
            } for s in run.seeds],
        })
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "seeds": runs[0].seed_values if runs else [],
        "methods": {**METHODS, SUBSET_FGSM: "FGSM on the PGD patches",
                    SUBSET_PGD: "PGD on the auto patches"},
        "sizes": sizes,
        "cells": cells,
    }


def _spread_dict(values) -> dict:
    s = spread(values)
    return s.to_dict() if s else {"per_seed": list(values), "mean": None, "min": None,
                                  "max": None}


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)
