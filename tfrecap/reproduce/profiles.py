"""What one ``tfrecap reproduce --profile`` runs: pipelines, sizes, data, attack budgets, seeds.

A :class:`Profile` is a frozen record; the CLI replaces its fields from the command line.
:func:`eval_settings` is the part of it that a stored result must match to be reused.
"""

from __future__ import annotations

import dataclasses

from tfrecap.names import SYNTHETIC_SIZES
from tfrecap.reproduce.paper_tables import PAPER_EPS


class ReproduceError(RuntimeError):
    """A request that cannot run as given; the message says what to do instead."""


@dataclasses.dataclass(frozen=True)
class Profile:
    """What one ``tfrecap reproduce --profile`` runs. Every field can be overridden.

    Attributes:
        name: ``demo`` or ``paper``.
        sizes: patch sizes to run.
        allowed_sizes: sizes the profile's pipelines exist for.
        baseline: pipeline of Yang's baseline; ``{size}`` is replaced.
        secure: pipeline of the secure model; ``{size}`` is replaced.
        count: synthetic patches per class (all splits), when synthetic data is built.
        seed: synthetic simulator seed (the data; the same for every training seed).
        seeds: how many training seeds: seed i trains with the pipeline's ``[train] seed``
            plus i (initialisation, shuffle, fusion ε draws) on the same data.
        eps: FGSM and LLCM budgets (pixel levels).
        limit: FGSM/LLCM on at most this many test patches (None: the whole split).
        pgd_eps: PGD budgets.
        pgd_limit: PGD (and FGSM for comparison) on the first this-many test patches.
        pgd_steps: PGD iterations (margin loss, one restart from the clean image).
        auto_eps: budgets of the ``auto`` ensemble (APGD-CE, APGD-margin, Square), run
            with PGD on the same patches; empty: no auto row.
        auto_limit: ``auto`` on the first this-many test patches (at most ``pgd_limit``):
            Square costs seconds per unbroken patch on a CPU.
        auto_apgd_steps: iterations of each APGD member.
        auto_square_queries: queries of the Square member.
        unbounded_limit: patches for the eps = 255 sanity check.
        batch_size: evaluation batch size.
    """

    name: str
    sizes: tuple[int, ...]
    allowed_sizes: tuple[int, ...]
    baseline: str
    secure: str
    count: int = 3000
    seed: int = 0
    seeds: int = 1
    eps: tuple[float, ...] = PAPER_EPS
    limit: int | None = None
    pgd_eps: tuple[float, ...] = PAPER_EPS
    pgd_limit: int | None = 1000
    pgd_steps: int = 10
    auto_eps: tuple[float, ...] = (2.0, 4.0)
    auto_limit: int | None = 200
    auto_apgd_steps: int = 100
    auto_square_queries: int = 5000
    unbounded_limit: int = 256
    batch_size: int = 64

    def pipeline(self, role: str, size: int) -> str:
        return getattr(self, role).format(size=size)


PROFILES = {
    # CPU demo, <= 20 min on 2 cores: data ~1.5 min, baseline ~2.5 min, secure ~7 min,
    # evaluation the rest.
    "demo": Profile(
        name="demo", sizes=(64,), allowed_sizes=(64,), baseline="demo_baseline", secure="demo",
        pgd_eps=(1.0, 3.0, 5.0), pgd_limit=500, auto_square_queries=1000,
    ),
    # The paper's settings (100k steps each, batch 64): a GPU job; 256 and 512 need real data.
    "paper": Profile(
        name="paper", sizes=(64, 128, 256, 512), allowed_sizes=(64, 128, 256, 512),
        baseline="yang2016_{size}", secure="secure_{size}",
    ),
}


def check_sizes(profile: Profile) -> tuple[int, ...]:
    """The profile's sizes without repeats, or a :class:`ReproduceError` naming the bad ones."""
    if not profile.sizes:
        raise ReproduceError("no patch size given")
    if profile.seeds < 1:
        raise ReproduceError(f"--seeds must be at least 1, got {profile.seeds}")
    bad = [s for s in profile.sizes if s not in profile.allowed_sizes]
    if bad:
        raise ReproduceError(
            f"profile {profile.name!r} runs at {', '.join(map(str, profile.allowed_sizes))} "
            f"only, not {', '.join(map(str, bad))}"
            + ("; use --profile paper for the other sizes" if profile.name == "demo" else "")
        )
    return tuple(dict.fromkeys(profile.sizes))


def eval_settings(profile: Profile) -> dict:
    """The evaluation settings a stored result must match to be reused."""
    return {
        "split": "test",
        "eps": [float(e) for e in profile.eps],
        "limit": profile.limit,
        "pgd": {"eps": [float(e) for e in profile.pgd_eps], "limit": profile.pgd_limit,
                "steps": profile.pgd_steps, "loss": "margin"},
        "unbounded_limit": profile.unbounded_limit,
        "unbounded_schedule": unbounded_schedule(),
        "auto": {"eps": [float(e) for e in profile.auto_eps], "limit": auto_limit(profile),
                 "apgd_steps": profile.auto_apgd_steps,
                 "square_queries": profile.auto_square_queries, "seed": 0},
    }


def auto_limit(profile: Profile) -> int | None:
    """How many test patches ``auto`` runs on: ``auto_limit``, but never beyond ``pgd_limit``
    (a ``--pgd-limit`` that shrinks the PGD subset shrinks auto's too)."""
    limits = [x for x in (profile.auto_limit, profile.pgd_limit) if x is not None]
    return min(limits) if limits else None


def unbounded_schedule() -> list:
    """Steps and step size of the ε = 255 sanity check (set in ``tfrecap.evaluation``)."""
    from tfrecap.evaluation import UNBOUNDED_STEP_SIZE, UNBOUNDED_STEPS

    return [UNBOUNDED_STEPS, UNBOUNDED_STEP_SIZE]


def is_synthetic(dataset: str, size: int) -> bool:
    """Whether ``dataset`` is built-in synthetic data (v1 or v2), which is built on demand."""
    return size in SYNTHETIC_SIZES and dataset in (f"synthetic_{size}", f"synthetic_v2_{size}")


def is_simulated(dataset: str, size: int, data_dir) -> bool:
    """Whether ``dataset`` holds simulated recaptures: built-in synthetic data, or a simulator
    variant (``tfrecap data synth --param ... --dataset NAME``), which its recorded identity
    calls synthetic. An imported folder of photos, or a dataset not built yet under another
    name, is not."""
    if is_synthetic(dataset, size):
        return True
    from tfrecap.data import catalog

    identity = (catalog.read_metadata(data_dir, dataset) or {}).get("identity", {})
    return identity.get("kind") == "synthetic"


def simulator_version(dataset: str) -> str:
    """The simulator (``"v1"`` or ``"v2"``) of a built-in synthetic dataset's name."""
    return "v2" if dataset.startswith("synthetic_v2_") else "v1"
