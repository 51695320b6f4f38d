"""Deterministic, parallel generation of simulated original/recaptured patch pairs.

No TensorFlow here: the TFDS builder imports this module and consumes plain numpy examples.

Every pair gets its own generator, seeded from ``(seed, split index, pair index)``, so a
split's examples are byte-identical whatever the number of worker processes. Pair ``i`` uses the
region at position ``i mod n`` of a seeded permutation of the split's ``n`` regions: every
region is used about equally often, with fresh random draws each time. The simulator's
parameters (`SimulatorParams` or `SimulatorParamsV2`, picklable) travel to the workers with
each chunk.

Simulator v2 shows a procedural dead-leaves scene instead of a photo region in a fraction of
the pairs (`dead_leaves_fraction`), chosen by a generator of its own seeded from ``(seed,
split index, pair index)``; the scene itself comes from the pair's generator, so it is fixed by
the same triple, and splits stay disjoint. Such examples have source ``"dead_leaves"`` and
region ``"dead_leaves/{split}/{pair}"``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import multiprocessing
import os
from collections.abc import Callable

import numpy as np

from tfrecap import names
from tfrecap.data import simulator, sources
from tfrecap.data.simulator import ALL_PARAMS, DEFAULT_PARAMS, SimulatorParams

DEAD_LEAVES = "dead_leaves"
# Stream keys of the per-pair side generators (pair indices stay below them).
_ORDER_KEY = 2**31
_SCENE_KEY = 2**31 + 1

SPLITS = names.SPLITS
SIZES = names.SYNTHETIC_SIZES


@dataclasses.dataclass(frozen=True)
class Example:
    """One simulated patch.

    Attributes:
        image: uint8 [S, S, 3].
        label: 0 = original, 1 = recaptured.
        source: scene name.
        region: id of the source region; a region belongs to exactly one split.
        capture_id: unique per example, ``f"{split}-{pair:06d}-{label}"``.
    """

    image: np.ndarray
    label: int
    source: str
    region: str
    capture_id: str


def split_counts(count_per_class: int) -> dict[str, int]:
    """Examples per class in each split, 40/10/50, summing exactly to `count_per_class`.

    Args:
        count_per_class: total examples per class over all splits.

    Returns:
        ``{"train": n, "validation": n, "test": n}``.

    Raises:
        ValueError: if `count_per_class` < 1.
    """
    if count_per_class < 1:
        raise ValueError(f"count_per_class must be >= 1, got {count_per_class}")
    train = round(names.SPLIT_FRACTIONS[0] * count_per_class)
    validation = round(names.SPLIT_FRACTIONS[1] * count_per_class)
    return {
        "train": train,
        "validation": validation,
        "test": count_per_class - train - validation,
    }


def _check_size(size: int) -> None:
    if size not in SIZES:
        raise ValueError(
            f"synthetic patches come in sizes {SIZES}, got {size}; 256 and 512 need real data, "
            "because a simulated patch that big would need upsampling, itself a trace"
        )


def _check_params(params) -> None:
    if not isinstance(params, ALL_PARAMS):
        raise TypeError(f"params must be a SimulatorParams or SimulatorParamsV2, got "
                        f"{type(params).__name__}")


def _regions(size: int, split: str, params: SimulatorParams) -> tuple[sources.Region, ...]:
    # The window, and so the set of regions that fit in a band, depends on the ranges.
    regions = sources.split_regions(size, simulator.window_radius(size, params), split)
    if not regions:
        raise ValueError(f"no usable source region for {size}-px patches in split {split!r}")
    return regions


def _region_order(size: int, seed: int, split: str, params: SimulatorParams) -> np.ndarray:
    count = len(_regions(size, split, params))
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), _ORDER_KEY]))
    return rng.permutation(count)


def is_dead_leaves(seed: int, split: str, pair: int, params) -> bool:
    """Whether pair `pair` of a split shows a dead-leaves scene (v2 only)."""
    fraction = getattr(params, "dead_leaves_fraction", 0.0)
    if fraction <= 0.0:
        return False
    key = np.random.SeedSequence([seed, SPLITS.index(split), pair, _SCENE_KEY])
    return bool(np.random.default_rng(key).uniform() < fraction)


def _make_pair(
    size: int, seed: int, split: str, pair: int, region_index: int, params: SimulatorParams
) -> list[Example]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), pair]))
    if is_dead_leaves(seed, split, pair, params):
        scene, region_id, window = DEAD_LEAVES, f"{DEAD_LEAVES}/{split}/{pair:06d}", None
    else:
        region = _regions(size, split, params)[region_index]
        scene, region_id = region.scene, region.region
        window = sources.window(region, simulator.window_radius(size, params))
    images = simulator.simulate_pair(window, size, rng, params)
    return [
        Example(image, label, scene, region_id, f"{split}-{pair:06d}-{label}")
        for label, image in enumerate(images)
    ]


def _make_chunk(
    size: int, seed: int, split: str, pairs: list[tuple[int, int]], params: SimulatorParams
):
    """Worker entry point (top level, so that `spawn` can pickle it)."""
    return [
        example
        for pair, region in pairs
        for example in _make_pair(size, seed, split, pair, region, params)
    ]


def _chunks(items: list, workers: int) -> list[list]:
    # About 4 chunks per worker balances load; at least 8 pairs keeps pickling overhead small.
    step = max(8, -(-len(items) // (4 * workers)))
    return [items[i : i + step] for i in range(0, len(items), step)]


_POOLS: dict[int, concurrent.futures.ProcessPoolExecutor] = {}


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool kept across calls: spawning and loading the photos costs ~2 s per pool."""
    if workers not in _POOLS:
        context = multiprocessing.get_context("spawn")  # forking after TensorFlow is unsafe
        _POOLS[workers] = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)
    return _POOLS[workers]


def shutdown_workers() -> None:
    """Stops the worker processes kept by `generate_split` (also done at interpreter exit)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_workers)


def _run_parallel(size, seed, split, jobs, workers, progress, params) -> list[Example]:
    chunks = _chunks(jobs, workers)
    results: list = [None] * len(chunks)
    pool = _pool(workers)
    try:
        futures = {
            pool.submit(_make_chunk, size, seed, split, chunk, params): i
            for i, chunk in enumerate(chunks)
        }
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if progress is not None:
                progress(len(results[index]))
    except BaseException:
        # A broken or interrupted pool is not reused.
        _POOLS.pop(workers, None)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return [example for chunk in results for example in chunk]


def generate_split(
    size: int,
    count_per_class: int,
    seed: int,
    split: str,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    params: SimulatorParams = DEFAULT_PARAMS,
) -> list[Example]:
    """Simulates one split: original/recaptured pairs of regions reserved for that split.

    Args:
        size: patch side, 64 or 128.
        count_per_class: examples per class over all three splits (see `split_counts`).
        seed: dataset seed; with the other arguments it fixes every byte of the output.
        split: one of `SPLITS`.
        workers: processes; None means `os.cpu_count()`, 1 runs in this process.
        progress: called with the number of new examples each time some are done.
        params: the simulator's parameters: `DEFAULT_PARAMS` (v1, the committed default) or
            a `SimulatorParamsV2` such as `V2_PARAMS`.

    Returns:
        ``2 * split_counts(count_per_class)[split]`` examples, ordered by pair, the original
        (label 0) before its recapture (label 1).

    Raises:
        ValueError: for an unsupported size, a count < 1, an unknown split, or workers < 1.
        TypeError: if `params` is not a `SimulatorParams` or `SimulatorParamsV2`.
    """
    _check_size(size)
    pairs = split_counts(count_per_class)[split] if split in SPLITS else None
    if pairs is None:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    _check_params(params)
    order = _region_order(size, seed, split, params)
    jobs = [(pair, int(order[pair % len(order)])) for pair in range(pairs)]
    if workers == 1 or len(jobs) <= 8:
        examples = []
        for pair, region in jobs:
            examples.extend(_make_pair(size, seed, split, pair, region, params))
            if progress is not None:
                progress(2)
        return examples
    return _run_parallel(size, seed, split, jobs, workers, progress, params)


_PHOTO_KEY = 2**31 + 2


def _make_photo(seed, split, index, height, width, params) -> tuple[np.ndarray, int]:
    """Worker entry point for `photos` (top level, so that `spawn` can pickle it)."""
    from tfrecap.data.simulator.v2.photo import simulate_photo

    key = np.random.SeedSequence([seed, SPLITS.index(split), index, _PHOTO_KEY])
    label = index % 2
    return simulate_photo(np.random.default_rng(key), label, height, width, params), label


def photos(
    split: str,
    count_per_class: int,
    seed: int,
    params=None,
    workers: int | None = 1,
    height: int = 768,
    width: int = 1024,
):
    """Yields `(image, label)` whole synthetic photos (simulator v2), originals and recaptures.

    Photo ``i`` has label ``i % 2`` and its own generator seeded from ``(seed, split index,
    i)``, so the photos are byte-identical whatever the number of workers, and splits differ.

    Args:
        split: one of `SPLITS` (it only seeds the photos: their scenes are procedural).
        count_per_class: photos per class.
        seed: the photos' seed.
        params: a `SimulatorParamsV2`; None means `V2_PARAMS`.
        workers: processes; None means `os.cpu_count()`, 1 runs in this process.
        height, width: reference resolution of each photo.

    Raises:
        ValueError: an unknown split, a count < 1 or workers < 1.
        TypeError: `params` is not a `SimulatorParamsV2`.
    """
    from tfrecap.data.simulator import V2_PARAMS, SimulatorParamsV2

    params = V2_PARAMS if params is None else params
    if not isinstance(params, SimulatorParamsV2):
        raise TypeError(f"photos need SimulatorParamsV2, got {type(params).__name__}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if count_per_class < 1:
        raise ValueError(f"count_per_class must be >= 1, got {count_per_class}")
    workers = os.cpu_count() or 1 if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    args = [(seed, split, i, height, width, params) for i in range(2 * count_per_class)]
    if workers == 1:
        for arg in args:
            yield _make_photo(*arg)
        return
    pool = _pool(workers)
    futures = [pool.submit(_make_photo, *arg) for arg in args]
    for future in futures:  # in order: the output does not depend on scheduling
        yield future.result()
