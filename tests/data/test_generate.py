"""Tests for deterministic, parallel generation of simulated pairs."""

import numpy as np
import pytest

from tfrecap.data import generate


def _same(first, second):
    return len(first) == len(second) and all(
        a.image.tobytes() == b.image.tobytes()
        and (a.label, a.source, a.region, a.capture_id)
        == (b.label, b.source, b.region, b.capture_id)
        for a, b in zip(first, second, strict=True)
    )


def test_split_counts_are_40_10_50_and_exact():
    assert generate.split_counts(3000) == {"train": 1200, "validation": 300, "test": 1500}
    for count in (1, 2, 7, 33, 101):
        assert sum(generate.split_counts(count).values()) == count


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="256 and 512 need real data"):
        generate.generate_split(256, 10, 0, "train")
    with pytest.raises(ValueError, match="count_per_class"):
        generate.generate_split(64, 0, 0, "train")
    with pytest.raises(ValueError, match="split"):
        generate.generate_split(64, 10, 0, "dev")


def test_examples_are_balanced_pairs_with_unique_ids():
    examples = generate.generate_split(64, 20, seed=0, split="validation", workers=1)
    assert len(examples) == 2 * generate.split_counts(20)["validation"]
    assert [e.label for e in examples] == [0, 1] * (len(examples) // 2)
    for original, recaptured in zip(examples[::2], examples[1::2], strict=True):
        assert original.region == recaptured.region
    assert len({e.capture_id for e in examples}) == len(examples)
    for e in examples:
        assert e.image.shape == (64, 64, 3) and e.image.dtype == np.uint8
        assert e.region.startswith(e.source + "/")


def test_same_seed_is_byte_identical_and_another_seed_differs():
    first = generate.generate_split(64, 10, seed=3, split="train", workers=1)
    second = generate.generate_split(64, 10, seed=3, split="train", workers=1)
    other = generate.generate_split(64, 10, seed=4, split="train", workers=1)
    assert _same(first, second)
    assert not _same(first, other)


def test_parallel_spawn_equals_serial():
    calls = []
    serial = generate.generate_split(64, 40, seed=1, split="train", workers=1)
    parallel = generate.generate_split(64, 40, seed=1, split="train", workers=2,
                                       progress=calls.append)
    assert _same(serial, parallel)
    assert sum(calls) == len(parallel)


def test_no_region_is_shared_between_splits():
    from tfrecap.data import simulator, sources

    radius = simulator.window_radius(64)
    seen = {}
    for split in generate.SPLITS:
        for region in sources.split_regions(64, radius, split):
            assert seen.setdefault(region.region, split) == split
    # and the examples carry those ids
    regions = {split: {e.region for e in generate.generate_split(64, 20, 0, split, workers=1)}
               for split in generate.SPLITS}
    assert not regions["train"] & regions["test"]
    assert not regions["train"] & regions["validation"]
    assert not regions["validation"] & regions["test"]


def test_params_reach_the_spawned_workers():
    import dataclasses

    from tfrecap.data.simulator import DEFAULT_PARAMS

    params = dataclasses.replace(DEFAULT_PARAMS, jpeg_subsampling="4:4:4")
    serial = generate.generate_split(64, 30, seed=1, split="train", workers=1, params=params)
    parallel = generate.generate_split(64, 30, seed=1, split="train", workers=2, params=params)
    default = generate.generate_split(64, 30, seed=1, split="train", workers=2)
    assert len(parallel) > 16  # more than 8 pairs: the process pool ran
    assert _same(serial, parallel)
    assert not any(a.image.tobytes() == b.image.tobytes()
                   for a, b in zip(parallel, default, strict=True))
    with pytest.raises(TypeError, match="SimulatorParams"):
        generate.generate_split(64, 10, 0, "train", params={"version": 1})
