"""tf.data pipeline: shapes, dtypes, value range, batching, order, and named corrupt shards."""

import numpy as np
import pytest
import tensorflow as tf

from tests.data.conftest import TINY_COUNT
from tfrecap.data import catalog, pipeline


def _collect(ds):
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def test_round_trip_shapes_dtypes_and_range(synthetic_dir):
    ds = pipeline.make_dataset(synthetic_dir, "synthetic_64", "train", 4, training=True)
    assert ds.element_spec[0].shape.as_list() == [4, 64, 64, 3]
    assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.int32
    images, labels = _collect(ds)
    n_train = catalog.load_builder(synthetic_dir, "synthetic_64").info.splits["train"].num_examples
    assert len(labels) == n_train // 4 * 4  # drop_remainder when training
    assert images.min() >= 0 and images.max() <= 255 and images.max() > 1  # pixels, not [0, 1]
    assert set(labels.tolist()) == {0, 1}


def test_evaluation_reads_every_example_in_order(synthetic_dir):
    first = _collect(pipeline.make_dataset(synthetic_dir, "synthetic_64", "test", 3, False))
    again = _collect(pipeline.make_dataset(synthetic_dir, "synthetic_64", "test", 3, False))
    assert len(first[1]) == TINY_COUNT  # 50% of 2 x 20, the partial batch kept
    np.testing.assert_array_equal(first[0], again[0])


def test_seeded_training_order_repeats_and_cache_changes_nothing(synthetic_dir):
    def run(**kw):
        ds = pipeline.make_dataset(synthetic_dir, "synthetic_64", "train", 2, True, seed=7, **kw)
        return _collect(ds)

    a, b = run(cache=True), run(cache=False)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    two = _collect(
        pipeline.make_dataset(synthetic_dir, "synthetic_64", "validation", 2, False, repeat=2)
    )
    assert len(two[1]) == 2 * TINY_COUNT // 10 * 2


def _a_train_shard(data_dir):
    builder = catalog.load_builder(data_dir, "synthetic_64")
    return catalog.shard_paths(builder, "train")[1]


def test_bit_flip_in_a_shard_names_the_shard(synthetic_copy):
    shard = _a_train_shard(synthetic_copy)
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))

    ds = pipeline.make_dataset(synthetic_copy, "synthetic_64", "train", 2, training=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=shard):
        _collect(ds)
    with pytest.raises(pipeline.CorruptShardError, match=shard):
        pipeline.verify_shards(synthetic_copy, "synthetic_64")


def test_truncated_shard_is_named_before_reading(synthetic_copy):
    shard = _a_train_shard(synthetic_copy)
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[: len(data) - 100])
    with pytest.raises(pipeline.CorruptShardError, match=shard):
        pipeline.make_dataset(synthetic_copy, "synthetic_64", "train", 2, training=True)


def test_verify_shards_counts_a_good_dataset(synthetic_dir):
    assert pipeline.verify_shards(synthetic_dir, "synthetic_64") == 2 * TINY_COUNT


def test_missing_split_is_a_clear_error(synthetic_dir):
    with pytest.raises(KeyError, match="no 'dev' split"):
        pipeline.make_dataset(synthetic_dir, "synthetic_64", "dev", 2, training=False)


def test_auto_shard_policy_shards_by_file(synthetic_dir):
    # What tf.distribute does to a dataset for 3 input workers, with the default AUTO policy.
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    builder = catalog.load_builder(synthetic_dir, "synthetic_64")
    lengths = list(builder.info.splits["train"].shard_lengths)
    assert len(lengths) >= 3
    # No cache here: the three simulated workers share one process, and so one memory
    # cache; real workers are separate processes.
    ds = pipeline.make_dataset(synthetic_dir, "synthetic_64", "train", 1, False, cache=False)
    per_worker = [sum(1 for _ in _AutoShardDataset(ds, 3, i)) for i in range(3)]
    by_file = [sum(lengths[i::3]) for i in range(3)]  # FILE policy: files dealt round-robin
    assert per_worker == by_file


def test_evaluation_order_is_tfds_shard_order(synthetic_dir, monkeypatch):
    """`--limit N` means the first N examples as TFDS reads them shard after shard."""
    import tensorflow_datasets as tfds

    # Shards are read in chunks: with chunks smaller than a shard, interleaving shards would
    # reorder examples (the tiny shards here fit in one default chunk).
    monkeypatch.setattr(pipeline, "_CHUNK", 2)
    builder = catalog.load_builder(synthetic_dir, "synthetic_64")
    assert len(catalog.shard_paths(builder, "test")) > 1  # else any order would pass
    reference = builder.as_dataset(split="test", shuffle_files=False,
                                   read_config=tfds.ReadConfig(interleave_cycle_length=1))
    expected = [(ex["image"], ex["label"]) for ex in reference.as_numpy_iterator()]
    images, labels = _collect(pipeline.make_dataset(synthetic_dir, "synthetic_64", "test", 3,
                                                    False))
    np.testing.assert_array_equal(images, np.stack([e[0] for e in expected]).astype(np.float32))
    np.testing.assert_array_equal(labels, [e[1] for e in expected])
