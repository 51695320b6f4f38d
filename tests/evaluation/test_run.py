"""The evaluation loop on a tiny linear model: tallies, limits, batching and progress."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.evaluation.helpers import fake_tqdm, tiny_model_and_data
from tfrecap import evaluation as ev
from tfrecap import jsonio


@pytest.fixture(scope="module")
def tiny():
    return tiny_model_and_data()


def test_evaluate_end_to_end_on_a_tiny_model(tiny):
    model, dataset = tiny
    attacks = [ev.AttackSpec("fgsm"), ev.AttackSpec("llcm"),
               ev.AttackSpec("pgd", {"steps": 5, "loss": "margin"})]
    report = ev.evaluate(model, dataset, attacks, [1.0, 30.0], limit=40, unbounded_limit=16)
    assert report.clean.n == 40 and report.clean.value > 0.8
    fgsm, pgd = report.attack("fgsm"), report.attack("pgd")
    assert fgsm.at(30.0).value < fgsm.at(1.0).value
    assert pgd.at(30.0).value <= fgsm.at(30.0).value
    assert report.attack("pgd (eps=255)").accuracy[0].n == 16
    names = {c.name: c for c in report.checks}
    assert names["|acc_llcm - acc_fgsm| <= clean error"].passed
    assert names["an unbounded attack reaches about 0%"].passed
    payload = jsonio.loads_strict(jsonio.dumps(report.to_json_dict()))
    assert {"schema_version", "n", "clean", "auc", "attacks", "checks"} <= set(payload)
    first = payload["attacks"][0]
    assert {"attack", "params", "results"} <= set(first)
    assert {"eps", "accuracy", "ci", "zero_grad_fraction"} <= set(first["results"][0])
    table = ev.format_table(report, patch_size=8)
    assert "| 8×8 | fgsm |" in table and "ε = 30" in table
    assert "pgd (eps=255)" not in table and "ε = 255" not in table  # the check is not a column


class _Recording:
    """A Keras model's logits, recording the batch size of every call the evaluator makes."""

    def __init__(self, model):
        self.model, self.sizes = model, []

    def __call__(self, images, training=False):
        self.sizes.append(int(images.shape[0]))
        return self.model(images, training=training)


def test_limit_keeps_the_dataset_batch_size(tiny):
    # Bug: under `limit` the evaluator re-batched at 64 (the batch size it could not read from a
    # dataset without drop_remainder), so `tfrecap evaluate --batch-size` was ignored.
    model, dataset = tiny
    judge = _Recording(model)
    report = ev.evaluate(judge, dataset.unbatch().batch(4), [], [], limit=10)
    assert report.clean.n == 10
    assert judge.sizes == [4, 4, 2]


@pytest.mark.parametrize(("limit", "num_images", "batched", "total"), [
    (10, None, 4, 10),     # the limit
    (100, 48, 16, 48),     # the limit, capped by the images there are
    (None, 48, 16, 48),    # the images there are, as the caller knows them
    (None, None, 12, 48),  # tf.data's own count: 4 batches of a static 12
])
def test_progress_bar_has_a_total(tiny, monkeypatch, limit, num_images, batched, total):
    bars = fake_tqdm(monkeypatch)
    model, dataset = tiny
    images, labels = next(iter(dataset.unbatch().batch(48)))
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
        batched, drop_remainder=num_images is None and limit is None)
    ev.evaluate(model, data, [], [], limit=limit, num_images=num_images, progress=True)
    (bar,) = bars
    assert bar.total == total
    assert bar.kwargs["file"] is sys.stderr  # stdout holds the table
    assert sum(bar.updates) == min(total, limit or total)


def test_jpeg_roundtrip_changes_little_and_stays_valid():
    x = tf.constant(np.full((2, 16, 16, 3), 128.0, "float32"))
    y = ev.jpeg_roundtrip(x, 90)
    assert y.shape == x.shape and float(tf.reduce_max(tf.abs(y - x))) <= 2.0


def test_logits_fn_of_a_loaded_savedmodel_keeps_it_alive_for_a_traced_attack(exported):
    """Regression: the callable held only the signature, so once the loaded object was
    collected, tracing an attack on it failed ("variables which have been deleted")."""
    import gc

    from tfrecap.attacks import make_attack_fn
    from tfrecap.evaluation.run import logits_fn_of
    from tfrecap.export import latest_version_dir

    version_dir = latest_version_dir(exported)
    logits = logits_fn_of(tf.saved_model.load(str(version_dir)))
    gc.collect()
    size = tf.saved_model.load(str(version_dir)).signatures["logits"].structured_input_signature[
        1]["images"].shape[1]
    x = tf.random.stateless_uniform([2, size, size, 3], [1, 2], 0, 255)
    attack = make_attack_fn(logits, "pgd", steps=2, loss="margin")  # traces now
    x_adv = attack(x, tf.constant([0, 1]), tf.constant(2.0), tf.range(2, dtype=tf.int64))
    assert float(tf.reduce_max(tf.abs(x_adv - x))) <= 2.0
    assert logits(x).shape == (2, 2)
