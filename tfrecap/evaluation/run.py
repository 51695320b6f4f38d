"""The evaluation loop: clean and adversarial verdicts of a model, batch by batch.

:func:`evaluate` serves ``tfrecap evaluate``, the ``AdversarialEvaluation`` callback and
``tfrecap reproduce`` alike (STYLE.md: the evaluator and the callback share one function). It
walks the dataset once, in the dataset's own batches; for every batch it computes the clean
logits and, for each attack and each ε, the adversarial images and their verdicts, and tallies
them into a :class:`~tfrecap.evaluation.report.Report`. Attacks always run on logits
(DESIGN.md): the model is a callable ``images → logits`` or a SavedModel with a ``logits``
signature.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfrecap.evaluation.checks import UNBOUNDED_EPS, sanity_checks, unbounded_spec
from tfrecap.evaluation.report import AttackResult, AttackSpec, Report
from tfrecap.evaluation.stats import Accuracy, roc_auc, threshold_at_fpr
from tfrecap.ops.jpeg import jpeg_roundtrip, through_jpeg


def logits_fn_of(model) -> Callable[[tf.Tensor], tf.Tensor]:
    """A callable images → float32 logits, from a Keras model or a loaded SavedModel.

    The callable holds ``model`` itself, not only its signature: a signature whose loaded
    object has been garbage-collected fails once traced ("variables which have been
    deleted"), so ``logits_fn_of(tf.saved_model.load(path))`` must keep the object alive.
    """
    if hasattr(model, "signatures") and "logits" in getattr(model, "signatures", {}):
        return lambda images: model.signatures["logits"](images=images)["logits"]
    return lambda images: tf.cast(model(images, training=False), tf.float32)


def evaluate(
    model,
    dataset: tf.data.Dataset,
    attacks: Sequence[AttackSpec],
    eps_list: Sequence[float],
    *,
    transfer_model=None,
    transfer_name: str | None = None,
    jpeg_quality: int | None = None,
    through_jpeg_attacks: bool = False,
    min_norm: dict | None = None,
    min_norm_limit: int = 256,
    limit: int | None = None,
    unbounded_check: bool = True,
    unbounded_limit: int = 256,
    fpr: float = 0.01,
    progress: bool = False,
    num_images: int | None = None,
    meta: dict | None = None,
) -> Report:
    """Clean accuracy, accuracy under each attack at each ε, and the sanity checks.

    Args:
        model: the judged model: a Keras model or a SavedModel with a ``logits`` signature.
        dataset: batches of ``(images float32 [0, 255], labels int32)``; they are evaluated
            in these batches (the last one cut short at ``limit``).
        attacks: which attacks to run (names from ``tfrecap.attacks.ATTACKS``).
        eps_list: attack budgets in pixel levels.
        transfer_model: if given, each attack is also made on this model and judged on
            ``model`` (a black-box transfer); shown as ``"<attack> (transfer)"``.
        transfer_name: how the transfer source is named in the report.
        jpeg_quality: re-encode adversarial images as JPEG before judging them.
        through_jpeg_attacks: with ``jpeg_quality``, also make each attack *through* the
            JPEG round trip at that quality (BPDA: the real encoder forward, the identity
            backward; :func:`tfrecap.ops.jpeg.through_jpeg`), shown as
            ``"<attack> (through jpeg)"``. Both rows are judged after a real JPEG: neither
            is always the stronger (at Q = 95 a plain ±ε pattern survives the encoder better
            than a BPDA one), so the robust accuracy after JPEG is the lower of the two.
        min_norm: if given, also find per image the smallest ε that flips it, by a
            bisection over ε with APGD (:func:`tfrecap.attacks.min_norm.minimum_eps`; the
            dict holds its ``eps_max``, ``search_steps``, ``steps``, ``loss``, ``seed``), on
            the first ``min_norm_limit`` images; the report gives the median and the curve.
        limit: evaluate at most this many images.
        unbounded_check: also run PGD with ε = 255 on the first ``unbounded_limit``
            images; it must reach about 0% or the attack is being masked.
        fpr: false-positive rate of the reported operating point.
        progress: show a progress bar over the images, on stderr.
        num_images: how many images ``dataset`` holds (e.g. the split's example count),
            for the progress bar's total and ETA; default: tf.data's count when it knows.
        meta: extra fields for the JSON report (model, dataset, split, ...).
    """
    from tfrecap import attacks as attack_lib

    if not attacks:
        unbounded_check = False
    for e in eps_list:
        if e < 0:
            raise ValueError(f"`eps` has to be nonnegative, got {e}")
    judge = logits_fn_of(model)
    source = logits_fn_of(transfer_model) if transfer_model is not None else None
    whitebox = [(spec, judge, None) for spec in attacks]
    transfer = [
        (
            AttackSpec(spec.name, spec.params, f"{spec.title} (transfer)"),
            source,
            transfer_name or "transfer model",
        )
        for spec in attacks
    ] if source is not None else []
    if through_jpeg_attacks and jpeg_quality is None:
        raise ValueError("through_jpeg_attacks needs jpeg_quality: the quality to attack through")
    through = [
        (AttackSpec(spec.name, spec.params, f"{spec.title} (through jpeg)"),
         through_jpeg(judge, quality=jpeg_quality), None)
        for spec in attacks
    ] if through_jpeg_attacks else []
    unbounded = [(unbounded_spec(), judge, None)] if unbounded_check else []

    runs = []
    for spec, maker, tname in whitebox + through + transfer:
        fn = attack_lib.make_attack_fn(maker, spec.name, **spec.params)
        runs.append(dict(spec=spec, fn=fn, maker=maker, eps=list(eps_list),
                         counts=[[0] * 7 for _ in eps_list], transfer_from=tname,
                         **_ensemble_fields(fn, len(eps_list))))
    for spec, maker, _ in unbounded:
        runs.append(dict(spec=spec, fn=attack_lib.make_attack_fn(maker, spec.name, **spec.params),
                         maker=maker, eps=[UNBOUNDED_EPS], counts=[[0] * 7],
                         transfer_from=None, cap=unbounded_limit))

    norm = None
    if min_norm is not None:
        from tfrecap.attacks import min_norm as min_norm_lib

        norm_params = {"eps_max": 16.0, "search_steps": 6, "steps": 20, "loss": "margin",
                       "seed": 0, **min_norm}
        norm = dict(params=norm_params, limit=min_norm_limit, values=[], labels=[],
                    attack=min_norm_lib.make_minimum_eps_attack(
                        judge, steps=norm_params["steps"], loss=norm_params["loss"],
                        seed=norm_params["seed"]))
    clean_counts = [0] * 7
    scores, labels_all = [], []
    bar = _progress_bar(dataset, limit, num_images) if progress else None
    seen = 0
    try:
        for images, labels in dataset:
            if limit is not None:
                # Cut the last batch rather than re-batch: the dataset's batch size stands.
                images, labels = images[: limit - seen], labels[: limit - seen]
            index = tf.range(seen, seen + int(tf.shape(images)[0]), dtype=tf.int64)
            seen += int(tf.shape(images)[0])
            _evaluate_batch(images, labels, index, judge, runs, jpeg_quality, clean_counts,
                            scores, labels_all)
            if norm is not None:
                _minimum_eps_batch(norm, images, labels, index, judge)
            if bar is not None:
                bar.update(int(tf.shape(images)[0]))
            if limit is not None and seen >= limit:
                break
    finally:
        if bar is not None:
            bar.close()

    scores_np = np.concatenate(scores) if scores else np.zeros(0)
    labels_np = np.concatenate(labels_all) if labels_all else np.zeros(0, np.int32)
    results = [
        AttackResult(
            spec=run["spec"],
            eps=run["eps"],
            accuracy=[Accuracy(c[0], c[1]) for c in run["counts"]],
            by_class=[_by_class(c) for c in run["counts"]],
            zero_grad=[(c[2], c[1]) for c in run["counts"]],
            transfer_from=run["transfer_from"],
            members=run.get("members", []),
            broken_by=run.get("broken_by", []),
        )
        for run in runs
    ]
    clean = Accuracy(clean_counts[0], clean_counts[1])
    checks, notes = sanity_checks(clean, results)
    min_norm_summary = None
    if norm is not None and norm["values"]:
        from tfrecap import LABEL_NAMES
        from tfrecap.attacks.min_norm import summarize_minimum_eps

        min_norm_summary = {
            "attack": "apgd bisection", "params": norm["params"],
            **summarize_minimum_eps(np.concatenate(norm["values"]),
                                    np.concatenate(norm["labels"]),
                                    norm["params"]["eps_max"], LABEL_NAMES)}
    return Report(
        min_norm=min_norm_summary,
        clean=clean,
        clean_by_class=_by_class(clean_counts),
        auc=roc_auc(scores_np, labels_np),
        operating_point=threshold_at_fpr(scores_np, labels_np, fpr),
        attacks=results,
        checks=checks,
        notes=notes,
        meta={**(meta or {}), **({"jpeg_quality": jpeg_quality} if jpeg_quality else {}),
              **({"through_jpeg_attacks": True} if through_jpeg_attacks else {})},
    )


def _evaluate_batch(images, labels, index, judge, runs, jpeg_quality, clean_counts, scores,
                    labels_all) -> None:
    """Tally one batch: its clean verdicts, and every run's verdicts at every ε.

    ``index`` holds the images' indices in the dataset, which key the attacks' random draws.
    """
    labels = tf.cast(labels, tf.int32)
    logits = judge(images)
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    _tally(clean_counts, predicted, labels)
    scores.append(tf.nn.softmax(logits)[:, 1].numpy())
    labels_all.append(labels.numpy())
    for run in runs:
        x, y, ids = images, labels, index
        if "cap" in run:
            room = run["cap"] - run["counts"][0][1]
            if room <= 0:
                continue
            x, y, ids = images[:room], labels[:room], index[:room]
        for i, eps in enumerate(run["eps"]):
            if "broken_by" in run:
                x_adv, zero, broken_by = run["fn"].run_with_breakdown(
                    x, y, tf.constant(eps, tf.float32), ids)
                _tally_breakdown(run["broken_by"][i], run["members"], broken_by)
            else:
                x_adv, zero = run["fn"].run(x, y, tf.constant(eps, tf.float32), ids)
            if jpeg_quality is not None:
                x_adv = jpeg_roundtrip(x_adv, jpeg_quality)
            pred = tf.argmax(judge(x_adv), axis=-1, output_type=tf.int32)
            _tally(run["counts"][i], pred, y, zero)


def _ensemble_fields(fn, n_eps: int) -> dict:
    """For an ensemble attack (one with ``run_with_breakdown``): its members and, per eps,
    zeroed counts of the images each member broke; nothing for a single attack."""
    if not hasattr(fn, "run_with_breakdown"):
        return {}
    members = [{"name": name, "attack": attack, "params": params,
                "gradient_free": name in fn.gradient_free}
               for name, attack, params in fn.members]
    keys = [m["name"] for m in members] + ["robust", "already_wrong"]
    return {"members": members, "broken_by": [dict.fromkeys(keys, 0) for _ in range(n_eps)]}


def _tally_breakdown(counts: dict, members: list[dict], broken_by) -> None:
    """Add a batch's ``broken_by`` codes (a member's index, -1 robust, -2 wrong at x)."""
    from tfrecap.attacks.auto import ALREADY_WRONG, ROBUST

    codes = np.asarray(broken_by)
    counts["robust"] += int((codes == ROBUST).sum())
    counts["already_wrong"] += int((codes == ALREADY_WRONG).sum())
    for k, member in enumerate(members):
        counts[member["name"]] += int((codes == k).sum())


def _minimum_eps_batch(norm, images, labels, index, judge) -> None:
    """The minimum ε of this batch's images, up to the run's cap."""
    from tfrecap.attacks.min_norm import minimum_eps

    room = norm["limit"] - sum(len(v) for v in norm["values"])
    if room <= 0:
        return
    p = norm["params"]
    values = minimum_eps(judge, images[:room], tf.cast(labels[:room], tf.int32),
                         eps_max=p["eps_max"], search_steps=p["search_steps"], steps=p["steps"],
                         loss=p["loss"], seed=p["seed"], index=index[:room],
                         attack_fn=norm["attack"])
    norm["values"].append(values)
    norm["labels"].append(np.asarray(labels[:room]))


def _progress_bar(dataset: tf.data.Dataset, limit: int | None, num_images: int | None):
    """A tqdm bar over images on stderr, with a total (hence an ETA) whenever one is known."""
    from tqdm.auto import tqdm

    available = num_images if num_images is not None else _image_count(dataset)
    total = limit if available is None else available if limit is None else min(limit, available)
    return tqdm(total=total, desc="evaluate", unit="image", file=sys.stderr)


def _image_count(dataset: tf.data.Dataset) -> int | None:
    """Images in ``dataset`` when tf.data knows: its batch count times a static batch size."""
    batches = int(dataset.cardinality())
    size = dataset.element_spec[0].shape[0]
    return batches * int(size) if batches >= 0 and size is not None else None


def _tally(counts: list, predicted, labels, zero=None) -> None:
    """Add a batch to ``[correct, n, zero_grad, correct_0, n_0, correct_1, n_1]``."""
    right = (predicted == labels).numpy()
    labels = labels.numpy()
    counts[0] += int(right.sum())
    counts[1] += len(labels)
    if zero is not None:
        counts[2] += int(tf.reduce_sum(tf.cast(zero, tf.int32)))
    for label in (0, 1):
        counts[3 + 2 * label] += int(right[labels == label].sum())
        counts[4 + 2 * label] += int((labels == label).sum())


def _by_class(counts: list) -> dict[str, Accuracy]:
    from tfrecap import LABEL_NAMES

    return {name: Accuracy(counts[3 + 2 * i], counts[4 + 2 * i])
            for i, name in enumerate(LABEL_NAMES)}
