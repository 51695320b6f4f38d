"""Adversarial attacks on a detector's logits, one per module, behind one registry.

Every attack has the signature ``attack(model, x, y=None, *, eps, ...) -> x_adv``
on float32 RGB images in [0, 255] and ε in pixel levels (DESIGN.md, "Attacks").
`make_attack_fn` wraps one in a `tf.function` traced once for every batch size
and ε, which is what batch loops (evaluation, callbacks, benchmarks) should use.
The losses and pixel-space steps they share live in `tfrecap.ops`. `apgd` is Auto-PGD, the
strongest white-box attack here; `tfrecap.attacks.min_norm` searches, per image, the smallest
ε at which it flips the prediction (not an attack of the registry: it returns ε, not images).
"""

import inspect

import tensorflow as tf

from tfrecap.attacks._gradients import (
    check_eps,
    input_gradient,
    least_likely_labels,
    zero_gradient_fraction,
)
from tfrecap.attacks.apgd import apgd
from tfrecap.attacks.auto import auto
from tfrecap.attacks.fgsm import fgsm
from tfrecap.attacks.llcm import llcm
from tfrecap.attacks.pgd import pgd
from tfrecap.attacks.square import square
from tfrecap.names import check_registry
from tfrecap.ops.losses import margin_loss
from tfrecap.ops.random import default_index
from tfrecap.ops.steps import to_valid_image

ATTACKS = {"fgsm": fgsm, "llcm": llcm, "pgd": pgd, "apgd": apgd, "square": square,
           "auto": auto}
check_registry("tfrecap.attacks", ATTACKS, "ATTACK_NAMES")


def get_attack(name):
    """The attack function registered under `name`; an unknown name lists the known ones."""
    if name not in ATTACKS:
        raise ValueError(f"Unknown attack {name!r}; known attacks: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name]


class AttackFn:
    """A traced attack: ``fn(x, y, eps, index) -> x_adv``; ``fn.run`` adds the zero-gradient mask.

    Attributes:
        function: the underlying `tf.function`; it returns `(x_adv, zero_gradient)`.
    """

    def __init__(self, function):
        self.function = function

    def run(self, x, y=None, eps=0.0, index=None):
        """Returns `(x_adv, zero_gradient)`; y None (or -1 entries) uses the prediction.

        `index` (int `[N]`) is each image's index in the dataset, which keys the random
        draws of the attacks that take one (`tfrecap.ops.random`); default 0..N-1.
        """
        check_eps(eps)
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.fill(tf.shape(x)[:1], -1) if y is None else tf.cast(y, tf.int32)
        index = default_index(x) if index is None else tf.cast(index, tf.int64)
        return self.function(x, y, tf.cast(eps, tf.float32), index)

    def __call__(self, x, y=None, eps=0.0, index=None):
        return self.run(x, y, eps, index)[0]

    def tracing_count(self):
        return self.function.experimental_get_tracing_count()


def make_attack_fn(model, name, *, image_size=None, per_image_eps=False, jit_compile=False,
                   **params):
    """Builds the attack `name` on `model` as a `tf.function` traced once, here and now.

    The batch dimension is None and ε is a tensor, so neither a last partial
    batch nor a new ε retraces. Tracing here also makes bad parameters fail
    now, with the attack's ValueError, rather than at the first batch.

    Args:
        model: callable mapping float32 images to logits.
        name: a key of `ATTACKS`.
        image_size: S for a `[None, S, S, 3]` signature; None allows any size.
        per_image_eps: ε is `[N]`, one value per image, instead of a scalar.
        jit_compile: compile with XLA. Off by default: on CPU it halved an
            FGSM's speed (DESIGN.md); measure before turning it on.
        **params: the attack's own keyword arguments (e.g. `steps`, `loss`).

    Returns:
        An `AttackFn`; for ``"auto"``, an `AutoAttackFn` with the same ``.run``.
    """
    attack = get_attack(name)
    takes_index = "index" in inspect.signature(attack).parameters
    allowed = set(inspect.signature(attack).parameters) - {"model", "x", "y", "eps", "index"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"Unknown parameters for {name!r}: {sorted(unknown)}; "
                         f"allowed: {sorted(allowed - {'return_diagnostics'})}")
    params.pop("return_diagnostics", None)
    if name == "auto":
        # An ensemble of traced members rather than one traced function (tfrecap.attacks.auto).
        from tfrecap.attacks.auto import make_auto_fn

        params.pop("return_broken_by", None)
        return make_auto_fn(model, image_size=image_size, per_image_eps=per_image_eps,
                            jit_compile=jit_compile, **params)
    signature = [
        tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="images"),
        tf.TensorSpec([None], tf.int32, name="labels"),
        tf.TensorSpec([None] if per_image_eps else [], tf.float32, name="eps"),
        tf.TensorSpec([None], tf.int64, name="index"),
    ]

    @tf.function(input_signature=signature, jit_compile=jit_compile)
    def function(x, y, eps, index):
        extra = {"index": index} if takes_index else {}
        return attack(model, x, y, eps=eps, return_diagnostics=True, **extra, **params)

    function.get_concrete_function()
    return AttackFn(function)


__all__ = [
    "ATTACKS",
    "AttackFn",
    "apgd",
    "auto",
    "fgsm",
    "get_attack",
    "input_gradient",
    "least_likely_labels",
    "llcm",
    "make_attack_fn",
    "margin_loss",
    "pgd",
    "square",
    "to_valid_image",
    "zero_gradient_fraction",
]
