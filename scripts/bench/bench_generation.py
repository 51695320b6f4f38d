"""Benchmark of simulated-patch generation: patches/s serially and with 2 spawned workers.

Both runs generate the same three splits, side by side, so their ratio means something even
on shared CPUs (the absolute figures depend on what else is running). Each run is a fresh
Python process, as `tfrecap data synth` is: the serial one imports the simulator and loads the
photos itself, the parallel one starts its `spawn` workers, which do the same; both costs are
in the timings, and neither run profits from a cache the other warmed. With `--rounds` above 1
the worker counts take turns and each one's fastest round counts.

Run::

    python scripts/bench/bench_generation.py --size 64 --count 300

`measure()` is the same measurement as a function (used by scripts/benchmark.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
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


def _in_fresh_process(size: int, count: int, seed: int, workers: int):
    """`patches_per_second` in a new interpreter (cold, like a `tfrecap data synth` run)."""
    command = [sys.executable, __file__, "--single", str(workers), "--size", str(size),
               "--count", str(count), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"generation with {workers} workers failed:\n{done.stderr[-2000:]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(size: int = 64, count: int = 300, seed: int = 0, workers=(1, 2),
            rounds: int = 1) -> dict:
    """Patches/s for each worker count, taking turns for `rounds` rounds; fastest round counts.

    Returns:
        Settings and `results`: `{str(workers): {"patches", "patches_per_s", "cpu_cores",
        "patches_per_cpu_s", "rounds_patches_per_s"}}`, and `scaling`, the patches/s of the
        last worker count over the first's.
    """
    rounds_rates: dict[int, list] = {w: [] for w in workers}
    best: dict[int, tuple] = {}
    for _ in range(rounds):
        for w in workers:
            total, rate, cores = _in_fresh_process(size, count, seed, w)
            rounds_rates[w].append(rate)
            if w not in best or rate > best[w][1]:
                best[w] = (total, rate, cores)
    results = {
        str(w): {
            "patches": best[w][0],
            "patches_per_s": best[w][1],
            "cpu_cores": best[w][2],
            "patches_per_cpu_s": best[w][1] / best[w][2] if best[w][2] > 0 else None,
            "rounds_patches_per_s": rounds_rates[w],
        }
        for w in workers
    }
    return {
        "size": size, "count_per_class": count, "seed": seed, "workers": list(workers),
        "rounds": rounds, "results": results,
        "scaling": best[workers[-1]][1] / best[workers[0]][1],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--count", type=int, default=300, help="examples per class, all splits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1, help="rounds, worker counts in turn")
    parser.add_argument("--single", type=int, metavar="WORKERS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:  # one measurement, for _in_fresh_process: (patches, patches/s, cores)
        print(json.dumps(patches_per_second(args.size, args.count, args.seed, args.single)))
        return
    report = measure(args.size, args.count, args.seed, (1, 2), args.rounds)
    rates = {}
    for workers in (1, 2):
        r = report["results"][str(workers)]
        rates[workers] = r["patches_per_s"]
        print(f"workers={workers}: {r['patches']} patches, {r['patches_per_s']:.1f} patches/s, "
              f"{r['cpu_cores']:.2f} CPU cores obtained, {r['patches_per_cpu_s']:.1f} "
              "patches/CPU-s")
    print(f"scaling 2 vs 1 workers: {report['scaling']:.2f}x "
          "(if fewer than 2 cores were obtained, other processes were competing)")
    demo = 2 * 3000 / rates[2]
    print(f"projected demo set (64 px, 3000 per class, 2 workers): {demo:.0f} s")


if __name__ == "__main__":
    main()
