"""Measure the tf.data input pipeline alone (no model), in images/s and images/s per core.

    python scripts/bench/bench_pipeline.py --data-dir ~/tensorflow_datasets --dataset synthetic_64

Each variant runs one warm-up pass (which also fills the cache when there is one),
then `--passes` timed passes of `--epochs` epochs each over the split, the variants taking
turns pass by pass; the median pass is reported. Use several epochs per pass on a small
split: every pass starts a new iterator, whose start-up (shard interleave, shuffle buffer,
tf.data's autotuner ramping up its parallelism) is a large share of one short epoch but is
paid once per training run. Measured on the 2,368-image demo train split, 2 cores: decode
at 1 epoch per pass 3,000-4,700 images/s per core, at 4 epochs per pass 7,500.

Variants, side by side in one run, so that the ratios mean something on a shared machine:

* `decode`: `make_dataset` without cache: read + parse + PNG decode every pass;
* `decode, no shard check`: the same without the per-shard record count;
* `cached`: `make_dataset` with the decoded split cached in memory;
* `tfds as_dataset`: TFDS's own reader (decodes all features) + the same batching.

Two per-core figures: `/s/core` divides the wall-clock rate by the tf.data threads
allowed (`--cores`, default: the CPUs this process may use); `per CPU-s` divides the
images by the CPU time this process spent, which stays meaningful when other
processes share the cores (the load average is printed for that reason).

`measure()` is the same measurement as a function (used by scripts/benchmark.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _time_round_robin(variants, passes: int) -> dict[str, tuple[float, float, int]]:
    """Median wall and CPU seconds per pass of each variant, passes taken in turn.

    Taking the variants in turn, pass by pass, exposes them to the same load from
    other processes, so their ratios hold even when the absolute numbers drift.
    """
    datasets, sizes = {}, {}
    for name, make in variants:
        datasets[name] = make()
        # Warm-up: graph tracing, thread pools, cache fill.
        sizes[name] = sum(int(labels.shape[0]) for _, labels in datasets[name])
    walls = {name: [] for name in datasets}
    cpus = {name: [] for name in datasets}
    for _ in range(passes):
        for name, ds in datasets.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _images, _labels in ds:
                pass
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {
        name: (statistics.median(walls[name]), statistics.median(cpus[name]), sizes[name])
        for name in datasets
    }


VARIANTS = ("decode", "decode, no shard check", "cached", "tfds as_dataset")


def measure(
    data_dir,
    dataset: str = "synthetic_64",
    split: str = "train",
    batch_size: int = 64,
    passes: int = 5,
    cores: int | None = None,
    variants=VARIANTS,
    epochs: int = 1,
) -> dict:
    """Time the named `variants` (see the module doc) in turns, pass by pass.

    Args:
        data_dir, dataset, split: the built split to read.
        batch_size: images per batch.
        passes: timed passes per variant (after one warm-up pass each).
        cores: tf.data threads (`private_threadpool_size`); default: the CPUs this
            process may use.
        variants: a subset of `VARIANTS`, in the order they take their turns.
        epochs: epochs of the split per pass (`repeat`): a pass over a small split
            is short, and a new iterator's start-up (shard interleave, shuffle buffer)
            would otherwise weigh on it.

    Returns:
        Settings, the load average before, and `results`: `{variant: {"images_per_pass",
        "wall_s", "cpu_s", "images_per_s", "images_per_s_per_core", "images_per_cpu_s"}}`
        (median pass; per core = images/s over `cores`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tfrecap.data import catalog, pipeline

    cores = cores or len(os.sched_getaffinity(0))
    options = tf.data.Options()
    options.threading.private_threadpool_size = cores

    def ours(**kw):
        def make():
            ds = pipeline.make_dataset(data_dir, dataset, split, batch_size, training=True, **kw)
            return ds.repeat(epochs).with_options(options)

        return make

    def tfds_reader():
        builder = catalog.load_builder(data_dir, dataset)
        ds = builder.as_dataset(split=split, shuffle_files=True, as_supervised=True)
        ds = ds.shuffle(10_000).batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), tf.cast(y, tf.int32)))
        return ds.repeat(epochs).prefetch(tf.data.AUTOTUNE).with_options(options)

    makers = {
        "decode": ours(cache=False),
        "decode, no shard check": ours(cache=False, check_shards=False),
        "cached": ours(cache=True),
        "tfds as_dataset": tfds_reader,
    }
    load = os.getloadavg()[0]
    timings = _time_round_robin([(name, makers[name]) for name in variants], passes)
    return {
        "dataset": dataset,
        "split": split,
        "batch_size": batch_size,
        "passes": passes,
        "epochs_per_pass": epochs,
        "cores": cores,
        "load_average": load,
        "results": {
            name: {
                "images_per_pass": n,
                "wall_s": wall,
                "cpu_s": cpu,
                "images_per_s": n / wall,
                "images_per_s_per_core": n / wall / cores,
                "images_per_cpu_s": n / cpu if cpu > 0 else None,
            }
            for name, (wall, cpu, n) in timings.items()
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="synthetic_64")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the split per pass")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-tfds", action="store_true", help="skip the as_dataset baseline")
    args = parser.parse_args(argv)

    variants = VARIANTS[:3] if args.skip_tfds else VARIANTS
    print(
        f"{args.dataset}/{args.split}, batch {args.batch_size}, {args.cores} tf.data threads, "
        f"{args.passes} timed passes; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    report = measure(
        args.data_dir, args.dataset, args.split, args.batch_size, args.passes, args.cores,
        variants, args.epochs,
    )
    print(f"{'variant':<24}{'images/pass':>12}{'images/s':>10}{'/s/core':>9}{'per CPU-s':>11}")
    for name, r in report["results"].items():
        per_cpu = f"{r['images_per_cpu_s']:>11.0f}" if r["images_per_cpu_s"] else f"{'-':>11}"
        print(
            f"{name:<24}{r['images_per_pass']:>12}{r['images_per_s']:>10.0f}"
            f"{r['images_per_s_per_core']:>9.0f}{per_cpu}"
        )

if __name__ == "__main__":
    main()
