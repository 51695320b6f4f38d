"""Reproduce Section 4 of Zhao et al. 2018 (Tables 1–3) and write an honest report.

:func:`reproduce` runs the whole experiment for ``tfrecap reproduce``: it builds or reuses the
data, trains Yang's baseline and the secure model per patch size and training seed, attacks
the exported models (FGSM, LLCM, PGD, an unbounded check) and writes ``OUTPUT/report.md`` with
the paper's published figures beside ours, and ``OUTPUT/summary.json`` with every per-seed
value. One job per module:

- :mod:`~tfrecap.reproduce.profiles`: what a ``--profile`` runs (:data:`PROFILES`);
- :mod:`~tfrecap.reproduce.paper_tables`: the paper's own figures (:data:`PAPER_TABLES`);
- :mod:`~tfrecap.reproduce.run`: the orchestration, with reuse of finished work;
- :mod:`~tfrecap.reproduce.results`: the runs' records and their spread over seeds;
- :mod:`~tfrecap.reproduce.report`: the markdown report;
- :mod:`~tfrecap.reproduce.findings`: sentences written from the numbers;
- :mod:`~tfrecap.reproduce.zoo` and :mod:`~tfrecap.reproduce.zoo_report`: the ``zoo`` profile,
  five defences side by side (:func:`reproduce_zoo`).

Profiles: ``demo`` is the CPU demonstration at 64×64 on synthetic data (pipelines
``demo_baseline`` / ``demo``); ``paper`` is the full 100k-step run at all four sizes
(pipelines ``yang2016_S`` / ``secure_S``), for a GPU and real photographs. ``zoo`` trains the
undefended baseline, Zhao 2018, PGD-AT, TRADES and fast FGSM-AT (``demo_*``) on the shipped
default's synthetic v2 data and attacks them all on the same patches (:data:`ZOO`).
"""

from tfrecap.reproduce.findings import findings
from tfrecap.reproduce.paper_tables import (
    METHODS,
    PAPER_EPS,
    PAPER_TABLES,
    PAPER_TEST_N,
    ROLES,
)
from tfrecap.reproduce.profiles import (
    PROFILES,
    Profile,
    ReproduceError,
    eval_settings,
)
from tfrecap.reproduce.report import next_steps, render_report
from tfrecap.reproduce.results import (
    SUBSET_FGSM,
    SUBSET_PGD,
    ReproduceResult,
    SeedRun,
    SizeRun,
    Stage,
)
from tfrecap.reproduce.run import evaluate_model, finished_export, reproduce, seed_output
from tfrecap.reproduce.zoo import ZOO, DefenceRun, DefenceSeed, ZooProfile, ZooResult, reproduce_zoo

__all__ = [
    "METHODS", "PAPER_EPS", "PAPER_TABLES", "PAPER_TEST_N", "PROFILES", "ROLES", "SUBSET_FGSM",
    "SUBSET_PGD", "ZOO",
    "DefenceRun", "DefenceSeed", "Profile", "ReproduceError", "ReproduceResult", "SeedRun",
    "SizeRun", "Stage", "ZooProfile", "ZooResult",
    "eval_settings", "evaluate_model", "findings", "finished_export", "next_steps",
    "render_report", "reproduce", "reproduce_zoo", "seed_output",
]
