"""From a PipelineConfig to a compiled SecureForensicModel: the one place that reads [model]
and [defence] for the model.

``tfrecap.models`` takes plain constructor arguments and knows nothing of pipeline configs;
this module maps a config onto them (:func:`detector_kwargs`, :func:`secure_model_kwargs`),
resolves ``precision`` and ``jit_compile`` for the machine it runs on, and builds the
optimizer of the paper's schedule (Zhao et al. 2018, Sec. 4).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfrecap.config import PipelineConfig
from tfrecap.names import JIT_COMPILE, PRECISIONS, check_registry

# SGD's momentum is not a pipeline setting; Adam keeps Keras's defaults.
_OPTIMIZERS = {
    "adam": lambda schedule: keras.optimizers.Adam(schedule),
    "sgd": lambda schedule: keras.optimizers.SGD(schedule, momentum=0.9),
}
check_registry("tfrecap.training.factory", _OPTIMIZERS, "OPTIMIZERS")


def _has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_precision(precision: str) -> str:
    """``auto`` means mixed_float16 on a GPU and float32 on CPU (DESIGN.md, Mixed precision)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "mixed_float16" if _has_gpu() else "float32"


def resolve_jit_compile(jit_compile: str, strategy: str = "default") -> bool:
    """XLA is on by default on GPU only: on CPU it halved a tf.function FGSM's speed.

    ``auto`` is also off under a strategy (DESIGN.md, Distribution); ``on`` forces it.
    """
    if jit_compile not in JIT_COMPILE:
        raise ValueError(
            f"jit_compile must be one of {', '.join(JIT_COMPILE)}, got {jit_compile!r}")
    if jit_compile == "on":
        return True
    if jit_compile == "off" or strategy != "default":
        return False
    return _has_gpu()


def build_optimizer(config: PipelineConfig) -> keras.optimizers.Optimizer:
    """Adam (or SGD), lr x decay_rate every decay_steps, staircase (paper Sec. 4)."""
    t = config.train
    schedule = keras.optimizers.schedules.ExponentialDecay(
        t.learning_rate, decay_steps=t.lr_decay_steps, decay_rate=t.lr_decay_rate, staircase=True
    )
    return _OPTIMIZERS[t.optimizer](schedule)


def detector_kwargs(config: PipelineConfig, precision: str = "float32") -> dict:
    """Keyword arguments of :func:`tfrecap.models.build_detector` for ``config``."""
    size, m = config.data.patch_size, config.model
    return dict(
        input_shape=(size, size, 3),
        widths=m.widths,
        batchnorm=m.batchnorm,
        synchronized_batchnorm=m.synchronized_batchnorm,
        bn_momentum=m.bn_momentum,
        dtype=precision,
    )


def secure_model_kwargs(config: PipelineConfig, precision: str = "float32") -> dict:
    """Keyword arguments of :class:`tfrecap.models.SecureForensicModel` (eqs. 5-7), less the
    detector."""
    s = config.defence
    return dict(
        penalty_weight=s.penalty_weight,
        fusion_count=s.fusion_count,
        fusion_weight=s.fusion_weight,
        eps_min=s.eps_min,
        eps_max=s.eps_max,
        attack_batchnorm=s.attack_batchnorm,
        method=s.method,
        attack_eps=s.attack_eps,
        attack_steps=s.attack_steps,
        attack_step_size=s.attack_step_size,
        random_start=s.random_start,
        clean_fraction=s.clean_fraction,
        early_stop_tau=s.early_stop_tau,
        trades_beta=s.trades_beta,
        grad_align_weight=s.grad_align_weight,
        seed=config.train.seed,
        dtype=precision,
    )


def build_model(config: PipelineConfig, precision: str = "float32", jit_compile: bool = False):
    """The compiled SecureForensicModel for ``config`` (built, optimizer built).

    ``precision`` is a resolved policy name (see :func:`resolve_precision`); under
    ``mixed_float16`` ``compile`` wraps the optimizer in a ``LossScaleOptimizer``.
    """
    from tfrecap.models import SecureForensicModel, build_detector

    detector = build_detector(**detector_kwargs(config, precision))
    model = SecureForensicModel(detector, **secure_model_kwargs(config, precision))
    model.compile(optimizer=build_optimizer(config), jit_compile=jit_compile)
    size = config.data.patch_size
    model(tf.zeros((1, size, size, 3)))
    model.optimizer.build(model.trainable_variables)
    return model


def describe(config: PipelineConfig, model) -> str:
    """One line for the training log: the detector's size and the defence it trains with."""
    weights = sum(math.prod(v.shape) for v in model.detector.trainable_variables)
    widths = "-".join(str(w) for w in config.model.widths)
    s = config.defence
    method = s.resolved_method
    step_size = f", step {s.attack_step_size:g}" if s.attack_step_size else ""
    if method == "baseline":
        defence = "undefended baseline"
    elif method == "pgd_at":
        stop = (f", early-stopped tau={s.early_stop_tau}" if s.early_stop_tau >= 0 else "")
        defence = (f"PGD-AT, {s.attack_steps} steps at eps {s.attack_eps:g}{step_size}, "
                   f"{s.clean_fraction:.0%} clean{stop}")
    elif method == "trades":
        defence = (f"TRADES beta={s.trades_beta:g}, {s.attack_steps} steps at eps "
                   f"{s.attack_eps:g}{step_size}")
    elif method == "fast_fgsm":
        defence = (f"fast FGSM at eps {s.attack_eps:g}{step_size}, GradAlign "
                   f"{s.grad_align_weight:g}")
    else:
        defence = (f"penalty lambda={s.penalty_weight:g}, FGSM fusion k={s.fusion_count} of "
                   f"m={config.train.batch_size} at eps {s.eps_min:g}-{s.eps_max:g}, "
                   f"alpha={s.fusion_weight:g}")
    return (f"LaplacianCNN {widths} ({weights:,} weights) on {config.data.patch_size}-px "
            f"patches, {defence}")
