"""The one definition of every name table: splits, sizes, attacks, strategies, precisions.

TensorFlow-free on purpose: the CLI builds its ``click.Choice`` lists from these tables, so
``--help`` and the rejection of an unknown name stay instant. The modules that own the behaviour
(``tfrecap.attacks``, ``tfrecap.ops.losses``, ``tfrecap.training.factory``) check at import
that their registries match these names, so a table and its implementation cannot drift apart.
"""

# The paper's split, 40/10/50 of the images (Sec. 4.1), in this order everywhere.
SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.4, 0.1, 0.5)

# Patch sizes the detector trains on (the paper's 64..512), and the ones the offline simulator
# can make: bigger synthetic patches would need upsampling the bundled photos, itself a trace.
PATCH_SIZES = (64, 128, 256, 512)
SYNTHETIC_SIZES = (64, 128)

# Attacks in the registry of tfrecap.attacks, and the losses the iterative ones take.
ATTACK_NAMES = ("fgsm", "llcm", "pgd", "apgd", "square", "auto")
ATTACK_LOSSES = ("ce", "margin")

# tf.distribute strategies (tfrecap.distribute.make_strategy) and Keras precision policies.
STRATEGY_NAMES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("adam", "sgd")
JIT_COMPILE = ("auto", "on", "off")

# BatchNorm mode of the FGSM-fusion pass: moving statistics, or the batch's own.
ATTACK_BATCHNORM = ("inference", "batch")
# How the guard ranks checkpoints ([guard] select): by PGD accuracy (a defence) or by clean
# accuracy (an undefended model).
GUARD_SELECT = ("pgd", "clean")
# [defence] method: "auto" resolves to zhao2018 when the penalty or the fusion is on, else
# to Yang's undefended baseline (tfrecap.config.DefenceConfig.resolved_method).
DEFENCE_METHODS = ("auto", "baseline", "zhao2018", "pgd_at", "trades", "fast_fgsm")
# The methods that train on an inner attack of budget [defence] attack_eps.
ADVERSARIAL_TRAINING_METHODS = ("pgd_at", "trades", "fast_fgsm")


def resolve_defence_method(method, penalty_weight, fusion_count) -> str:
    """``method``, with "auto" (or None) resolved: zhao2018 when the penalty or the fusion is
    on, else the baseline. The one rule for pipeline configs and SecureForensicModel."""
    if method is not None and method != "auto":
        return method
    return "zhao2018" if penalty_weight > 0 or fusion_count > 0 else "baseline"


def check_registry(owner: str, registry, table_name: str) -> None:
    """Stop at import when ``registry``'s keys are not, in order, the table ``table_name``.

    The CLI offers the table's names without importing TensorFlow, so the module that
    implements them (``owner``) must register exactly those.
    """
    table = globals()[table_name]
    if tuple(registry) != table:
        raise AssertionError(f"{owner} registers {tuple(registry)}, but tfrecap.names."
                             f"{table_name} lists {table}: make them agree")
