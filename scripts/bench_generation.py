"""Benchmark of simulated-patch generation: patches/s serially and with 2 spawned workers.

Both runs generate the same three splits in one process, side by side, so their ratio means
something even on shared CPUs (the absolute figures depend on what else is running). The
parallel time includes starting the `spawn` workers and loading the photos in each.

Run::

    python scripts/bench_generation.py --size 64 --count 300
"""

from __future__ import annotations

import argparse
import resource
import time


def _cpu_seconds() -> float:
    # Children are counted once they exit, hence the shutdown of the pool inside the timing.
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def patches_per_second(size: int, count: int, seed: int, workers: int):
    """Generates all three splits; returns (patches, patches/s, CPU cores actually obtained)."""
    from tfrecap.data import generate

    start, cpu = time.perf_counter(), _cpu_seconds()
    total = sum(
        len(generate.generate_split(size, count, seed, split, workers=workers))
        for split in generate.SPLITS
    )
    generate.shutdown_workers()
    wall = time.perf_counter() - start
    return total, total / wall, (_cpu_seconds() - cpu) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--count", type=int, default=300, help="examples per class, all splits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rates = {}
    for workers in (1, 2):
        total, rates[workers], cores = patches_per_second(args.size, args.count, args.seed, workers)
        print(f"workers={workers}: {total} patches, {rates[workers]:.1f} patches/s, "
              f"{cores:.2f} CPU cores obtained, {rates[workers] / cores:.1f} patches/CPU-s")
    print(f"scaling 2 vs 1 workers: {rates[2] / rates[1]:.2f}x "
          "(if fewer than 2 cores were obtained, other processes were competing)")
    demo = 2 * 3000 / rates[2]
    print(f"projected demo set (64 px, 3000 per class, 2 workers): {demo:.0f} s")


if __name__ == "__main__":
    main()
