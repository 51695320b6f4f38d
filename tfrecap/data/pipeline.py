"""The tf.data input pipeline: built TFDS shards → `(float32 images, int32 labels)` batches.

The shards are read directly with the builder's file list and a two-feature parse
spec rather than through `builder.as_dataset`, which also decodes the three text
features and wraps each element in a dict; `scripts/bench/bench_pipeline.py` measures both.

Pipeline, in order: shard files (shuffled when training) → `interleave` of
`TFRecordDataset`s in chunks of 64 records (parallel, non-deterministic when
training without a seed) → parse + PNG decode per chunk, chunks in parallel →
`unbatch` → `cache` of the decoded uint8 pixels when they fit →
`shuffle` (training) → `repeat` → `batch(drop_remainder=training)` → cast to
float32 → `prefetch(AUTOTUNE)`.

* **Chunks, not elements.** A per-element `map` costs about as much as decoding a
  64-px PNG, so records are parsed with one vectorised `parse_example` per chunk
  and decoded in one `map_fn`; only `unbatch`, `shuffle` and `batch` touch single
  elements.
* **Cache only when it fits.** The decoded split takes `examples × S × S × 3` bytes.
  It is cached in memory when that is at most `cache_budget_bytes` (default: a
  quarter of the physical memory, at most 4 GiB): the 64-px synthetic train split
  at the default count is 29 MB, a large 512-px import is not. Pixels are cached
  as uint8, 4× smaller than float32, and cast after batching.
* **Distribution.** The source is a dataset of file names read by an interleave,
  so `tf.distribute`'s default AUTO shard policy can shard by FILE (8 shards per
  split); it falls back to DATA when there are fewer files than workers.
* **Corrupt shards are named.** tf.data's own `DataLossError` ("corrupted record at
  N") does not say which file. Before reading, shard sizes are checked against the
  sizes recorded at build time (a stat per file), and while reading, each shard's
  records are counted: a shard that ends early or has an unreadable record raises
  an `InvalidArgumentError` whose message names the shard. `verify_shards` checks
  every record's CRC up front and raises `CorruptShardError`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
from pathlib import Path

import tensorflow as tf

from tfrecap import LABEL_NAMES
from tfrecap.data import catalog

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 10_000
_CHUNK = 64  # records parsed and decoded per call
_MAX_CACHE_BYTES = 4 << 30

# How TFDS serialises the two features we read: Image as encoded bytes,
# ClassLabel as int64 (checked against the builder's own spec in the tests).
FEATURE_SPEC = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


class CorruptShardError(RuntimeError):
    """A TFRecord shard is truncated, altered or unreadable.

    Attributes:
        path: the shard file.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(
            f"Corrupt TFRecord shard {path}: {reason}. Rebuild the dataset "
            "(`tfrecap data synth` or `tfrecap data import`)."
        )
        self.path = path


def default_cache_budget() -> int:
    """A quarter of the physical memory, at most 4 GiB (1 GiB when unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 30
    return min(_MAX_CACHE_BYTES, total // 4)


def _split_shards(data_dir, dataset: str, split: str):
    """`(builder, shard paths, records per shard)` of one split."""
    builder = catalog.load_builder(data_dir, dataset)
    paths = catalog.shard_paths(builder, split)
    lengths = list(builder.info.splits[split].shard_lengths)
    return builder, paths, lengths


def check_shard_sizes(data_dir, dataset: str, split: str) -> None:
    """Cheap check (one stat per file): every shard exists with its recorded size.

    Raises:
        CorruptShardError: a shard is missing or its size changed since the build.
    """
    _, paths, _ = _split_shards(data_dir, dataset, split)
    recorded = (catalog.read_metadata(data_dir, dataset) or {}).get("shards", {}).get(split, {})
    for path in paths:
        if not os.path.exists(path):
            raise CorruptShardError(path, "the file is missing")
        size = os.path.getsize(path)
        want = recorded.get(Path(path).name)
        if want is not None and size != want:
            raise CorruptShardError(path, f"{size} bytes on disk, {want} when it was built")


def verify_shards(data_dir, dataset: str, split: str | None = None) -> int:
    """Read every record of every shard (checking CRCs and counts); name a bad shard.

    Args:
        data_dir: the data dir.
        dataset: the dataset name.
        split: one split, or None for all.

    Returns:
        The number of records checked.

    Raises:
        CorruptShardError: the first bad shard, by name.
    """
    builder = catalog.load_builder(data_dir, dataset)
    splits = [split] if split else list(builder.info.splits)
    total = 0
    for name in splits:
        check_shard_sizes(data_dir, dataset, name)
        paths = catalog.shard_paths(builder, name)
        for path, expected in zip(paths, builder.info.splits[name].shard_lengths, strict=True):
            count = 0
            try:
                for _ in tf.data.TFRecordDataset(path):
                    count += 1
            except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as err:
                detail = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", err.message).strip()
                raise CorruptShardError(
                    path, f"unreadable after record {count} ({detail})"
                ) from err
            if count != expected:
                raise CorruptShardError(path, f"{count} records, {expected} expected")
            total += count
    return total


@contextlib.contextmanager
def _shard_named_on_data_loss(data_dir, dataset: str, split: str):
    """Turn an anonymous `DataLossError` into a `CorruptShardError` naming the shard."""
    try:
        yield
    except tf.errors.DataLossError:
        verify_shards(data_dir, dataset, split)  # raises, naming the bad shard
        raise


def _read_shard(path: tf.Tensor, expected: tf.Tensor) -> tf.data.Dataset:
    """Chunks of `_CHUNK` raw records of one shard; a corrupt shard fails by name.

    A record tf.data cannot read is dropped instead of raising an anonymous
    `DataLossError`; a sentinel after the last chunk then checks the record count
    and raises an error that names the shard. Counting whole chunks keeps the
    check's cost per chunk, not per record.
    """
    chunks = tf.data.TFRecordDataset(path).ignore_errors().batch(_CHUNK)
    end = tf.data.Dataset.from_tensors((tf.zeros([0], tf.string), tf.constant(True)))
    tagged = chunks.map(lambda c: (c, tf.constant(False))).concatenate(end)

    def count(n, item):
        chunk, is_end = item
        check = tf.debugging.Assert(
            tf.logical_or(tf.logical_not(is_end), tf.equal(n, expected)),
            [
                "Corrupt TFRecord shard",
                path,
                "read",
                n,
                "records of",
                expected,
                "- rebuild the dataset, or run tfrecap.data.pipeline.verify_shards",
            ],
        )
        with tf.control_dependencies([check]):
            return n + tf.size(chunk, out_type=tf.int64), (chunk, is_end)

    checked = tagged.scan(tf.constant(0, tf.int64), count)
    return checked.filter(lambda c, is_end: tf.logical_not(is_end)).map(lambda c, _: c)


def _read_shard_unchecked(path: tf.Tensor, _expected: tf.Tensor) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(path).batch(_CHUNK)


def _decode_chunk(size: int):
    """Parse and decode a chunk of records at once.

    Per-element `map` calls cost more than decoding a 64-px PNG, so parsing is
    vectorised over the chunk and the PNGs are decoded in one `map_fn`.
    """

    def decode(records):
        parsed = tf.io.parse_example(records, FEATURE_SPEC)
        images = tf.map_fn(
            lambda png: tf.io.decode_png(png, channels=3),
            parsed["image"],
            fn_output_signature=tf.TensorSpec((size, size, 3), tf.uint8),
            parallel_iterations=16,
        )
        return tf.ensure_shape(images, (None, size, size, 3)), tf.cast(parsed["label"], tf.int32)

    return decode


def make_dataset(
    data_dir,
    dataset: str,
    split: str,
    batch_size: int,
    training: bool,
    *,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    seed: int | None = None,
    repeat: bool | int | None = None,
    cache: bool | None = None,
    cache_budget_bytes: int | None = None,
    check_shards: bool = True,
) -> tf.data.Dataset:
    """Batches of `(images, labels)` from a built dataset.

    Args:
        data_dir: the data dir.
        dataset: dataset name, e.g. "synthetic_64".
        split: "train", "validation" or "test".
        batch_size: images per batch.
        training: shuffle files and examples, read shards in any order, and drop the
            last partial batch.
        shuffle_buffer: example shuffle buffer (training); capped at the split size.
        seed: makes a training order reproducible (and the interleave deterministic).
        repeat: None or False for one pass, True or -1 for forever, n for n passes.
        cache: cache decoded pixels in memory; None decides by size (see the module doc).
        cache_budget_bytes: the size limit for `cache=None` (default
            `default_cache_budget()`).
        check_shards: compare shard sizes with the build record before reading, and
            count each shard's records while reading, so a corrupt shard is named.

    Returns:
        A dataset of `(float32 [B, S, S, 3] in [0, 255], int32 [B])`.

    Raises:
        catalog.DatasetNotFoundError: the dataset is not built.
        KeyError: the split does not exist.
        CorruptShardError: a shard is missing or its size changed.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    builder, paths, lengths = _split_shards(data_dir, dataset, split)
    if check_shards:
        check_shard_sizes(data_dir, dataset, split)
    size = builder.info.features["image"].shape[0]
    num_examples = builder.info.splits[split].num_examples
    deterministic = not training or seed is not None

    files = tf.data.Dataset.from_tensor_slices((tf.constant(paths), tf.constant(lengths, tf.int64)))
    if training:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # Evaluation reads the shards one after another, so `--limit N` takes the first N examples
    # in shard order: the ones TFDS gives with ReadConfig(interleave_cycle_length=1) and
    # unshuffled files, hence the same images in any other tool (issue 14).
    ds = files.interleave(
        _read_shard if check_shards else _read_shard_unchecked,
        cycle_length=min(len(paths), 8) if training else 1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )
    ds = ds.map(_decode_chunk(size), num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.unbatch()

    if cache is None:
        budget = default_cache_budget() if cache_budget_bytes is None else cache_budget_bytes
        cache = num_examples * size * size * 3 <= budget
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(max(1, min(shuffle_buffer, num_examples)), seed=seed)
    if repeat is True or repeat == -1:
        ds = ds.repeat()
    elif repeat:
        ds = ds.repeat(int(repeat))
    ds = ds.batch(batch_size, drop_remainder=training)
    ds = ds.map(
        lambda images, labels: (tf.cast(images, tf.float32), labels),
        num_parallel_calls=AUTOTUNE,
    )
    return ds.prefetch(AUTOTUNE)


def count_examples(data_dir, dataset: str, splits=None) -> dict[str, dict[str, int]]:
    """Examples per split and label, counted from the shards themselves.

    Args:
        data_dir: the data dir.
        dataset: the dataset name.
        splits: the splits to count (default: all).

    Returns:
        `{split: {"original": n0, "recaptured": n1, "total": n0 + n1}}`.
    """
    builder = catalog.load_builder(data_dir, dataset)
    out = {}
    spec = {"label": FEATURE_SPEC["label"]}
    for split in splits or list(builder.info.splits):
        paths = catalog.shard_paths(builder, split)
        labels = (
            tf.data.TFRecordDataset(paths, num_parallel_reads=AUTOTUNE)
            .batch(4096)
            .map(lambda r: tf.io.parse_example(r, spec)["label"])
        )
        counter: collections.Counter = collections.Counter()
        with _shard_named_on_data_loss(data_dir, dataset, split):
            for batch in labels.as_numpy_iterator():
                counter.update(batch.tolist())
        row = {name: counter.get(i, 0) for i, name in enumerate(LABEL_NAMES)}
        row["total"] = sum(counter.values())
        out[split] = row
    return out


def take_examples(data_dir, dataset: str, split: str, n_per_class: int):
    """The first `n_per_class` examples of each class in a split, in stored order.

    Returns:
        `{label_name: [(uint8 [S, S, 3] image, source), ...]}`.
    """
    builder = catalog.load_builder(data_dir, dataset)
    paths = catalog.shard_paths(builder, split)
    spec = dict(FEATURE_SPEC, source=tf.io.FixedLenFeature([], tf.string))
    out: dict[str, list] = {name: [] for name in LABEL_NAMES}
    with _shard_named_on_data_loss(data_dir, dataset, split):
        for record in tf.data.TFRecordDataset(paths):
            parsed = tf.io.parse_single_example(record, spec)
            bucket = out[LABEL_NAMES[int(parsed["label"])]]
            if len(bucket) < n_per_class:
                image = tf.io.decode_png(parsed["image"], channels=3).numpy()
                bucket.append((image, parsed["source"].numpy().decode()))
            if all(len(v) >= n_per_class for v in out.values()):
                break
    return out
