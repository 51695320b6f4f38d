"""The ``auto`` ensemble: an image is robust only if every member attack fails on it.

After AutoAttack (Croce & Hein 2020), for a binary detector (DESIGN.md, "Strong attacks for a
binary detector"): APGD-CE, APGD-margin and Square at one budget ε. Each member runs only on
the images still correct after the members before it (gather, attack, scatter back), so
Square's queries are spent on the images the white-box attacks could not break. Every member
gets the images' dataset ``index``, which keys its random draws (`tfrecap.ops.random`), so an
image gets the same draws as when that member runs alone: in one run, ``auto`` is never above
any of its members run alone on the same images with the same seed (as long as the model's
logits for an image do not depend on the batch it is in, true in inference mode up to float
reassociation on some kernels).

The orchestration is plain Python over traced members (one `make_attack_fn` each, built
once): the members stay the tested, traced functions, an empty remainder skips a member
entirely, and Square's early stop sees only the images it has to break.
"""

import inspect
import numbers

import numpy as np
import tensorflow as tf

from tfrecap.attacks._gradients import check_eps, predicted_labels
from tfrecap.ops.random import default_index

# (name, registry attack, params): the members in the order they run.
DEFAULT_MEMBERS = (
    ("apgd-ce", "apgd", {"loss": "ce"}),
    # From a random point of the ball: for two classes CE = softplus(margin), so from x the
    # margin run would take the CE run's steps again (issue 14: diversity from restarts).
    ("apgd-margin", "apgd", {"loss": "margin", "random_start": True}),
    ("square", "square", {}),
)
# Members that never take a gradient: they have no zero-gradient diagnostic, and Square
# breaking what the white-box members missed is the gradient-masking symptom.
GRADIENT_FREE = ("square",)
# `broken_by` codes besides a member's index.
ROBUST = -1
ALREADY_WRONG = -2


def check_members(members):
    """The members as a tuple of `(name, attack, params)`; ValueError naming what is wrong."""
    if not members:
        raise ValueError("`members` has to name at least one attack")
    checked, names = [], set()
    for member in members:
        if not (isinstance(member, (tuple, list)) and len(member) == 3):
            raise ValueError(f"each member has to be (name, attack, params), got {member!r}")
        name, attack, params = member
        if not isinstance(name, str) or not isinstance(attack, str) or not isinstance(params,
                                                                                       dict):
            raise ValueError(f"member {member!r}: name and attack are strings, params a dict")
        if name in names:
            raise ValueError(f"member name {name!r} appears twice in `members`")
        if name in ("robust", "already_wrong"):
            raise ValueError(f"member name {name!r} is taken by the report's breakdown")
        if attack == "auto":
            raise ValueError(f"member {name!r}: `auto` cannot be a member of itself")
        names.add(name)
        checked.append((name, attack, dict(params)))
    return tuple(checked)


def _check_count(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{what}` has to be a positive integer, got {value!r}")


class AutoAttackFn:
    """The traced ensemble: ``.run(x, y, eps, index) -> (x_adv, zero_gradient)``, as `AttackFn`.

    Attributes:
        members: the resolved `(name, attack, params)` of each member, in run order.
        gradient_free: names of the members that take no gradient.
    """

    def __init__(self, model, members, member_fns):
        self.model = model
        self.members = members
        self.member_fns = member_fns
        self.gradient_free = tuple(name for name, attack, _ in members if attack in GRADIENT_FREE)

    def run_with_breakdown(self, x, y=None, eps=0.0, index=None):
        """Returns `(x_adv, zero_gradient, broken_by)`.

        Per image, ``x_adv`` is the output of the member that broke it, else that of the
        last member (x itself when already wrong at x). ``zero_gradient`` is True where
        every white-box member that attacked the image saw an all-zero gradient throughout.
        ``broken_by`` (int32) is that member's index, `ROBUST` (-1) or `ALREADY_WRONG` (-2).
        """
        check_eps(eps)
        x = tf.convert_to_tensor(x, tf.float32)
        n = int(x.shape[0])
        y = tf.fill([n], -1) if y is None else tf.cast(y, tf.int32)
        index = default_index(x) if index is None else tf.cast(index, tf.int64)
        eps = tf.cast(eps, tf.float32)
        per_image = eps.shape.rank == 1
        predicted = predicted_labels(tf.cast(self.model(x), tf.float32))
        labels = tf.where(y < 0, predicted, y)
        labels_np = labels.numpy()
        broken_by = np.where(predicted.numpy() == labels_np, ROBUST, ALREADY_WRONG)
        broken_by = broken_by.astype(np.int32)
        x_adv = x.numpy().copy()
        blind = np.zeros(n, bool)
        tried = np.zeros(n, bool)  # some white-box member attacked the image
        for k, ((name, _, _), fn) in enumerate(zip(self.members, self.member_fns, strict=True)):
            todo = np.flatnonzero(broken_by == ROBUST)
            if todo.size == 0:
                break
            adv, zero = fn.run(tf.gather(x, todo), tf.gather(labels, todo),
                               tf.gather(eps, todo) if per_image else eps,
                               tf.gather(index, todo))
            fooled = predicted_labels(tf.cast(self.model(adv), tf.float32)).numpy() \
                != labels_np[todo]
            x_adv[todo] = adv.numpy()
            broken_by[todo[fooled]] = k
            if name not in self.gradient_free:
                zero = zero.numpy()
                blind[todo] = np.where(tried[todo], blind[todo] & zero, zero)
                tried[todo] = True
        return tf.constant(x_adv), tf.constant(blind), tf.constant(broken_by)

    def run(self, x, y=None, eps=0.0, index=None):
        """Returns `(x_adv, zero_gradient)`, the `AttackFn.run` contract."""
        return self.run_with_breakdown(x, y, eps, index)[:2]

    def __call__(self, x, y=None, eps=0.0, index=None):
        return self.run(x, y, eps, index)[0]

    def tracing_count(self):
        """The most times any member was traced: 1 when each was traced once."""
        return max(fn.tracing_count() for fn in self.member_fns)


def make_auto_fn(model, *, image_size=None, per_image_eps=False, jit_compile=False,
                 members=DEFAULT_MEMBERS, apgd_steps=100, square_queries=5000, seed=0,
                 quantize=True):
    """Builds every member with `make_attack_fn` (traced once each) into an `AutoAttackFn`.

    ``apgd_steps`` goes to each `apgd` member as ``steps``, ``square_queries`` to each
    `square` member as ``queries``, and ``seed`` and ``quantize`` to every member that takes
    them; a member's own params override these.
    """
    from tfrecap.attacks import get_attack, make_attack_fn

    members = check_members(members)
    _check_count(apgd_steps, "apgd_steps")
    _check_count(square_queries, "square_queries")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"`seed` has to be a nonnegative integer, got {seed!r}")
    resolved, fns = [], []
    for name, attack, params in members:
        takes = inspect.signature(get_attack(attack)).parameters
        passed = {"steps": apgd_steps} if attack == "apgd" else {}
        if attack == "square":
            passed["queries"] = square_queries
        passed.update({k: v for k, v in (("seed", seed), ("quantize", quantize)) if k in takes})
        passed.update(params)
        resolved.append((name, attack, passed))
        fns.append(make_attack_fn(model, attack, image_size=image_size,
                                  per_image_eps=per_image_eps, jit_compile=jit_compile,
                                  **passed))
    return AutoAttackFn(model, tuple(resolved), fns)


def auto(model, x, y=None, *, eps, members=DEFAULT_MEMBERS, apgd_steps=100,
         square_queries=5000, seed=0, index=None, quantize=True, return_diagnostics=False,
         return_broken_by=False):
    """The ensemble on one batch: robust only where every member fails (AutoAttack).

    Builds the members anew on every call; a batch loop should build them once with
    ``make_attack_fn(model, "auto", ...)``.

    Reference:
        Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble of
        diverse parameter-free attacks", ICML 2020.

    Args:
        model: callable mapping float32 images `[N, H, W, 3]` in [0, 255] to logits.
        x: the clean images.
        y: int `[N]` true labels; None (or -1 entries) uses the prediction at x.
        eps: nonnegative scalar or `[N]`, in pixel levels.
        members: `(name, attack, params)` per member, in run order; attacks are registry
            names (`tfrecap.attacks.ATTACKS`).
        apgd_steps: iterations of each `apgd` member.
        square_queries: queries of each `square` member.
        seed: the members' random draws, keyed per image by ``index``.
        index: int `[N]`, the images' indices in the dataset; None gives 0..N-1.
        quantize: valid 8-bit outputs (passed to the members that take it).
        return_diagnostics: also return the white-box members' zero-gradient mask.
        return_broken_by: also return `broken_by` (int32 `[N]`: the breaking member's
            index, `ROBUST` or `ALREADY_WRONG`).

    Returns:
        `x_adv`, with `zero_gradient` and then `broken_by` appended as asked.
    """
    fn = make_auto_fn(model, per_image_eps=np.ndim(eps) == 1, members=members,
                      apgd_steps=apgd_steps, square_queries=square_queries, seed=seed,
                      quantize=quantize)
    x_adv, zero, broken_by = fn.run_with_breakdown(x, y, eps, index)
    out = (x_adv,) + ((zero,) if return_diagnostics else ()) + (
        (broken_by,) if return_broken_by else ())
    return out if len(out) > 1 else x_adv
