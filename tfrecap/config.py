"""Every setting of a training run, as frozen dataclasses loaded from pipeline TOML.

A pipeline file has one table per dataclass below (``[data]``, ``[model]``,
``[defence]``, ``[train]``, ``[monitor]``, ``[verdict]``, ``[guard]``) plus top-level ``name`` and
``description``. Unknown keys, wrong types and inconsistent values are errors that name the
file and the key, so a typo is never ignored silently. CLI flags change a loaded config with
:func:`override`, which goes through the same validation.

Built-in pipelines ship as package data (``tfrecap/pipelines/*.toml``; the
top-level ``pipelines/`` folder of the repository is the same folder), so
``--pipeline secure_64`` resolves after a plain ``pip install``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from importlib import resources
from pathlib import Path

from tfrecap import jsonio
from tfrecap.names import (
    ADVERSARIAL_TRAINING_METHODS,
    ATTACK_BATCHNORM,
    ATTACK_NAMES,
    DEFENCE_METHODS,
    GUARD_SELECT,
    JIT_COMPILE,
    OPTIMIZERS,
    PATCH_SIZES,
    PRECISIONS,
    STRATEGY_NAMES,
    resolve_defence_method,
)


class ConfigError(ValueError):
    """A pipeline file or override is invalid; the message names what and where."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset to train on (see ``tfrecap data``).

    ``shuffle_buffer``: examples in the training set's shuffle buffer (capped at the split's
    size; 1 keeps the stored order).
    """

    dataset: str = "synthetic_64"
    patch_size: int = 64
    shuffle_buffer: int = 4096


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """LaplacianCNN widths (Yang et al. 2016). The paper does not give them."""

    widths: tuple[int, ...] = (32, 64, 128, 256, 512)
    batchnorm: bool = True
    synchronized_batchnorm: bool = False
    bn_momentum: float = 0.99


@dataclasses.dataclass(frozen=True)
class DefenceConfig:
    """The secure train step of Zhao et al. 2018, Sec. 3.2.

    ``penalty_weight`` is lambda of eq. 5 (not given by the paper). It weighs the penalty
    normalised for the patch size, ``sqrt(H*W)/64 * ||grad_x J||_2``, so one lambda means the
    same at 64 and at 512 (at 64x64 it is eq. 5 exactly; see ``input_gradient_penalty``);
    ``fusion_count`` is k and ``fusion_weight`` is alpha of eq. 7;
    ``eps_min``/``eps_max`` bound the per-image FGSM strength (pixel levels).
    ``attack_batchnorm``: BatchNorm in the FGSM fusion pass, "inference" (moving
    statistics: the deployed model) or "batch" (the attacked images' batch
    statistics); see ``SecureForensicModel``.
    lambda = 0 and k = 0 is Yang's undefended baseline.

    ``method`` picks the defence (``tfrecap.models.defences``): ``zhao2018`` (the fields
    above), ``pgd_at`` (Madry et al. 2018), ``trades`` (Zhang et al. 2019), ``fast_fgsm``
    (Wong et al. 2020), ``baseline``, or ``auto``: zhao2018 when the penalty or the fusion is
    on, else the baseline. The adversarial-training methods share:

    * ``attack_eps``: the inner attack's L-inf budget, pixel levels (train near the target
      eps, 2-3 levels: the fusion's [1, 5] reaches the size of the recapture signal itself);
    * ``attack_steps``: its iterations k (pgd_at, trades; pgd_at with 0 is the plain step);
    * ``attack_step_size``: pixel levels per step; 0 picks the method's default
      (pgd_at 2.5 eps / k, trades eps / 4, fast_fgsm 1.25 eps);
    * ``random_start``: pgd_at, start the inner attack at a uniform point of the eps-ball
      (Madry et al.); false starts at x, so that pgd_at with 0 steps is the plain step
      (fast_fgsm always starts at random: that is the method);
    * ``clean_fraction``: pgd_at and fast_fgsm, the share of each batch left clean (its last
      images; per replica under a strategy, like the fusion's k);
    * ``early_stop_tau``: pgd_at, stop each image's inner attack τ steps after the model first
      misclassifies it (friendly adversarial training, Zhang et al. 2020); -1: off (Madry);
    * ``trades_beta``: TRADES' beta, the weight of KL(clean || adversarial);
    * ``grad_align_weight``: fast_fgsm's GradAlign term (Andriushchenko & Flammarion 2020).
    """

    penalty_weight: float = 0.0
    fusion_count: int = 0
    fusion_weight: float = 0.2
    eps_min: float = 1.0
    eps_max: float = 5.0
    attack_batchnorm: str = "inference"
    method: str = "auto"
    attack_eps: float = 2.0
    attack_steps: int = 5
    attack_step_size: float = 0.0
    random_start: bool = True
    clean_fraction: float = 0.0
    early_stop_tau: int = -1
    trades_beta: float = 6.0
    grad_align_weight: float = 0.0

    @property
    def resolved_method(self) -> str:
        """The method this section trains with: ``auto`` becomes zhao2018 or baseline."""
        return resolve_defence_method(self.method, self.penalty_weight, self.fusion_count)


@dataclasses.dataclass(frozen=True)
class GuardConfig:
    """The guard against catastrophic and robust overfitting (``tfrecap.training.guard``).

    Every ``every`` epochs (an epoch is ``[train] checkpoint_every`` steps) the model is
    attacked with PGD-margin (``pgd_steps`` steps, budget ``eps``, from the clean image) on
    the first ``patches`` validation patches, always the same ones. The checkpoint with the
    best PGD accuracy among those whose clean accuracy is at least ``clean_floor`` is kept
    in ``best/``, outside the rotation of the last checkpoints, and is the one exported.
    ``select = "clean"`` ranks by clean accuracy instead, for an undefended model (whose PGD
    accuracy only says which checkpoint an attack happened to spare). Off when ``every = 0``.
    """

    every: int = 0
    patches: int = 512
    eps: float = 2.0
    pgd_steps: int = 10
    clean_floor: float = 0.6
    select: str = "pgd"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation (paper Sec. 4: batch 64, lr 1e-4 x 0.9 every 10k steps, 100k steps)."""

    batch_size: int = 64
    steps: int = 100_000
    optimizer: str = "adam"
    learning_rate: float = 1e-4
    lr_decay_rate: float = 0.9
    lr_decay_steps: int = 10_000
    checkpoint_every: int = 1000
    validation_steps: int = 0  # 0 means the whole validation split
    precision: str = "auto"  # auto: mixed_float16 on GPU, float32 on CPU
    jit_compile: str = "auto"  # auto: on for GPU, off on CPU (where XLA measurably hurts)
    strategy: str = "default"
    seed: int = 0
    # A run directory (or checkpoint prefix) whose detector weights start a fresh run: warm
    # start, e.g. adversarial fine-tuning of a clean model. The optimizer and the step count
    # start at 0; ignored when run_dir already holds a checkpoint (that one resumes).
    init_from: str = ""


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """Accuracy under attack on validation images during training (``AdversarialEvaluation``).

    Off by default; when on, ``val_<attack>_acc_eps<eps>`` is logged every ``every``
    epochs (an epoch is ``[train] checkpoint_every`` steps) on ``limit`` images.
    """

    enabled: bool = False
    attacks: tuple[str, ...] = ("fgsm",)
    eps: tuple[float, ...] = (2.0,)
    every: int = 1
    limit: int = 256


@dataclasses.dataclass(frozen=True)
class VerdictConfig:
    """How the export's whole-image verdict is chosen (``tfrecap/training/calibration.py``).

    With ``calibration_photos = 0`` the export keeps the uncalibrated verdict (the mean tile
    probability, cut at 0.5). Otherwise, after training, that many whole synthetic
    *validation* photos per class (``photo_height`` × ``photo_width``, from the simulator that
    made the training data, so synthetic v2 data only) choose the aggregation over tiles and
    the threshold, which the export stores.
    """

    calibration_photos: int = 0
    photo_height: int = 768
    photo_width: int = 1024


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """One training run: data, model, defence and optimisation settings."""

    name: str = "custom"
    description: str = ""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    defence: DefenceConfig = DefenceConfig()
    train: TrainConfig = TrainConfig()
    monitor: MonitorConfig = MonitorConfig()
    verdict: VerdictConfig = VerdictConfig()
    guard: GuardConfig = GuardConfig()

    @property
    def is_baseline(self) -> bool:
        return self.defence.resolved_method == "baseline"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return jsonio.dumps(self.to_dict(), sort_keys=True)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "defence": DefenceConfig,
    "train": TrainConfig,
    "monitor": MonitorConfig,
    "verdict": VerdictConfig,
    "guard": GuardConfig,
}


def builtin_pipelines() -> list[str]:
    """Names of the pipelines shipped inside the package."""
    folder = resources.files("tfrecap") / "pipelines"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_pipeline(name_or_path: str | Path) -> PipelineConfig:
    """Load a built-in pipeline by name, or a TOML file by path.

    Raises:
        ConfigError: unknown name, unreadable file, bad TOML, unknown key, wrong
            type or inconsistent values; the message names the file and key.
    """
    path = Path(name_or_path)
    # A file path, not a name: a .toml suffix, a folder part, or an existing file. (A folder
    # that happens to share a built-in's name, like the demo's output `demo/`, is no file.)
    if path.suffix == ".toml" or len(path.parts) > 1 or path.is_file():
        if not path.is_file():
            raise ConfigError(f"pipeline file {path} does not exist")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    else:
        resource = resources.files("tfrecap") / "pipelines" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise ConfigError(
                f"unknown pipeline {str(name_or_path)!r}: give a .toml file or one of "
                f"{', '.join(builtin_pipelines())}"
            )
        text, origin = resource.read_text(encoding="utf-8"), f"built-in pipeline {name_or_path}"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{origin}: invalid TOML: {err}") from None
    return pipeline_from_dict(raw, origin=origin)


def pipeline_from_dict(raw: dict, origin: str = "config") -> PipelineConfig:
    """Build and validate a :class:`PipelineConfig` from a parsed TOML/JSON dict."""
    raw = dict(raw)
    top = {}
    for key in ("name", "description"):
        if key in raw:
            top[key] = _coerce(raw.pop(key), str, f"{origin}: {key}")
    sections = {}
    for key, value in raw.items():
        if key not in _SECTIONS:
            raise ConfigError(
                f"{origin}: unknown key {key!r}; expected name, description or one of the "
                f"tables [{'], ['.join(_SECTIONS)}]"
            )
        if not isinstance(value, dict):
            raise ConfigError(f"{origin}: {key!r} must be a table like [{key}]")
        sections[key] = _section_from_dict(_SECTIONS[key], value, f"{origin}: [{key}]")
    config = PipelineConfig(**top, **sections)
    validate(config, origin)
    return config


def with_defaults(saved):
    """``saved``, a config as JSON (a run's ``config.json``, an export's config asset), with
    the sections and keys that tfrecap added since it was written filled in with their
    defaults: that run trained with those defaults, so it compares equal to a config that
    sets them. Anything else (not a dict) is returned as it is."""
    if not isinstance(saved, dict):
        return saved
    defaults = jsonio.to_jsonable(PipelineConfig().to_dict())
    return {**defaults, **{key: {**defaults[key], **value}
                           if isinstance(value, dict) and isinstance(defaults.get(key), dict)
                           else value for key, value in saved.items()}}


def override(config: PipelineConfig, **changes) -> PipelineConfig:
    """Return a copy with ``section.field`` values replaced (``None`` values are skipped).

    Example: ``override(cfg, **{"train.steps": 10, "data.dataset": "mine"})``.
    """
    by_section: dict[str, dict] = {}
    top = {}
    for dotted, value in changes.items():
        if value is None:
            continue
        if "." not in dotted:
            top[dotted] = value
            continue
        section, field = dotted.split(".", 1)
        by_section.setdefault(section, {})[field] = value
    replaced = {}
    for section, fields in by_section.items():
        current = getattr(config, section)
        checked = _section_from_dict(
            type(current), {**dataclasses.asdict(current), **fields}, f"override [{section}]"
        )
        replaced[section] = checked
    config = dataclasses.replace(config, **top, **replaced)
    validate(config, "override")
    return config


def validate(config: PipelineConfig, origin: str = "config") -> None:
    """Check the cross-field rules that types alone cannot express."""
    d, m, s, t = config.data, config.model, config.defence, config.train

    def fail(message):
        raise ConfigError(f"{origin}: {message}")

    if d.patch_size not in PATCH_SIZES:
        fail(f"[data] patch_size must be one of {PATCH_SIZES}, got {d.patch_size}")
    if d.shuffle_buffer < 1:
        fail(f"[data] shuffle_buffer (examples) must be >= 1, got {d.shuffle_buffer}")
    if not m.widths or any(w < 1 for w in m.widths) or len(m.widths) != 5:
        fail(f"[model] widths must be 5 positive integers (5 conv units), got {list(m.widths)}")
    if not 0 < m.bn_momentum < 1:
        fail(f"[model] bn_momentum must be in (0, 1), got {m.bn_momentum}")
    if t.batch_size < 1:
        fail(f"[train] batch_size (m) must be >= 1, got {t.batch_size}")
    if not 0 <= s.fusion_count <= t.batch_size:
        fail(
            f"[defence] fusion_count (k) must be between 0 and [train] batch_size "
            f"(m = {t.batch_size}), got k = {s.fusion_count}"
        )
    if s.penalty_weight < 0:
        fail(f"[defence] penalty_weight (lambda) must be >= 0, got {s.penalty_weight}")
    if s.fusion_weight < 0:
        fail(f"[defence] fusion_weight (alpha) must be >= 0, got {s.fusion_weight}")
    if s.eps_min < 0:
        fail(f"[defence] eps_min must be >= 0, got {s.eps_min}")
    if s.eps_min > s.eps_max:
        fail(f"[defence] eps_min ({s.eps_min}) must not exceed eps_max ({s.eps_max})")
    if s.method not in DEFENCE_METHODS:
        fail(f"[defence] method must be one of {', '.join(DEFENCE_METHODS)}, got {s.method!r}")
    method = s.resolved_method
    if method != "zhao2018" and (s.penalty_weight or s.fusion_count):
        fail(f"[defence] penalty_weight and fusion_count belong to method zhao2018; method "
             f"{s.method!r} needs both 0, got {s.penalty_weight:g} and {s.fusion_count}")
    if method in ADVERSARIAL_TRAINING_METHODS and not s.attack_eps > 0:
        fail(f"[defence] attack_eps (pixel levels) must be > 0 for method {method}, "
             f"got {s.attack_eps}")
    if s.attack_steps < 0:
        fail(f"[defence] attack_steps must be >= 0, got {s.attack_steps}")
    if method == "trades" and s.attack_steps < 1:
        fail("[defence] method trades needs attack_steps >= 1 (its KL is flat at x)")
    if s.attack_step_size < 0:
        fail(f"[defence] attack_step_size must be >= 0 (0: the method's default), "
             f"got {s.attack_step_size}")
    if not 0 <= s.clean_fraction < 1:
        fail(f"[defence] clean_fraction must be in [0, 1), got {s.clean_fraction}")
    if s.early_stop_tau < -1:
        fail(f"[defence] early_stop_tau must be -1 (off) or >= 0, got {s.early_stop_tau}")
    # A setting that the chosen method does not read is an error, not silently ignored.
    default = DefenceConfig()
    reads = {
        "pgd_at": {"attack_eps", "attack_steps", "attack_step_size", "random_start",
                   "clean_fraction", "early_stop_tau"},
        "trades": {"attack_eps", "attack_steps", "attack_step_size", "trades_beta"},
        "fast_fgsm": {"attack_eps", "attack_step_size", "clean_fraction", "grad_align_weight"},
    }.get(method, set())
    ignored = [key for key in ("attack_eps", "attack_steps", "attack_step_size", "random_start",
                               "clean_fraction", "early_stop_tau", "trades_beta",
                               "grad_align_weight")
               if key not in reads and getattr(s, key) != getattr(default, key)]
    if ignored:
        fail(f"[defence] method {method} does not use {', '.join(ignored)}; remove "
             f"{'it' if len(ignored) == 1 else 'them'} or choose a method that does")
    if s.trades_beta < 0 or s.grad_align_weight < 0:
        fail(f"[defence] trades_beta and grad_align_weight must be >= 0, got "
             f"{s.trades_beta} and {s.grad_align_weight}")
    g = config.guard
    if g.every < 0 or g.patches < 1 or g.pgd_steps < 1 or not g.eps > 0:
        fail(f"[guard] needs every >= 0, patches >= 1, pgd_steps >= 1 and eps > 0, got "
             f"{g.every}, {g.patches}, {g.pgd_steps} and {g.eps}")
    if not 0 <= g.clean_floor <= 1:
        fail(f"[guard] clean_floor must be in [0, 1], got {g.clean_floor}")
    if g.select not in GUARD_SELECT:
        fail(f"[guard] select must be one of {', '.join(GUARD_SELECT)}, got {g.select!r}")
    if s.attack_batchnorm not in ATTACK_BATCHNORM:
        fail(
            f"[defence] attack_batchnorm must be one of {', '.join(ATTACK_BATCHNORM)}, "
            f"got {s.attack_batchnorm!r}"
        )
    if t.steps < 1:
        fail(f"[train] steps must be >= 1, got {t.steps}")
    if t.checkpoint_every < 1:
        fail(f"[train] checkpoint_every must be >= 1, got {t.checkpoint_every}")
    if t.learning_rate <= 0:
        fail(f"[train] learning_rate must be > 0, got {t.learning_rate}")
    if not 0 < t.lr_decay_rate <= 1:
        fail(f"[train] lr_decay_rate must be in (0, 1], got {t.lr_decay_rate}")
    if t.lr_decay_steps < 1:
        fail(f"[train] lr_decay_steps must be >= 1, got {t.lr_decay_steps}")
    v = config.verdict
    if v.calibration_photos < 0:
        fail(f"[verdict] calibration_photos must be >= 0, got {v.calibration_photos}")
    if min(v.photo_height, v.photo_width) < d.patch_size:
        fail(f"[verdict] photo_height and photo_width must be at least [data] patch_size "
             f"({d.patch_size}), got {v.photo_height}x{v.photo_width}")
    mon = config.monitor
    if mon.every < 1 or mon.limit < 1:
        fail(f"[monitor] every and limit must be >= 1, got {mon.every} and {mon.limit}")
    if any(e < 0 for e in mon.eps):
        fail(f"[monitor] eps must be nonnegative, got {list(mon.eps)}")
    for name in mon.attacks:
        if name not in ATTACK_NAMES:
            fail(f"[monitor] unknown attack {name!r}; known: {', '.join(ATTACK_NAMES)}")
    if t.validation_steps < 0:
        fail(f"[train] validation_steps must be >= 0, got {t.validation_steps}")
    for field, allowed in (
        ("optimizer", OPTIMIZERS),
        ("precision", PRECISIONS),
        ("strategy", STRATEGY_NAMES),
        ("jit_compile", JIT_COMPILE),
    ):
        if getattr(t, field) not in allowed:
            fail(f"[train] {field} must be one of {', '.join(allowed)}, got {getattr(t, field)!r}")


def _section_from_dict(cls, values: dict, origin: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"{origin}: unknown key {key!r}; known keys: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{origin} {key}")
    return cls(**kwargs)


def _coerce(value, hint, where: str):
    """Check ``value`` against a field's type hint; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, item_type, where) for v in value)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} has the wrong type ({hint})")
    if hint is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected nothing, got {value!r}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(
            f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}"
        )
    return value
