"""Shared by the tests of fields added to simulator v2 after its first build: the pixels of six
fast dead-leaves pairs, hashed with the code before any such field existed, and the check that
a variant leaves the originals' pixels alone."""

import dataclasses
import hashlib

import numpy as np

from tfrecap.data.simulator import V2_PARAMS, simulate_pair

FAST = dataclasses.replace(V2_PARAMS, downscale=(1.0, 1.5), pitch=(1.5, 6.0),
                           dead_leaves_radius=(4.0, 40.0))
# Six dead-leaves pairs (seeds 0-5) at FAST, hashed before `layouts` existed.
GOLDEN_PAIRS = "4eac863a2b34c49735fa8d62d8e842b87a2813ed69676171d04933a786b1b51b"


def pairs_digest(params=FAST) -> str:
    """sha256 of the six pairs' pixels (original, then recapture, seeds 0-5)."""
    digest = hashlib.sha256()
    for seed in range(6):
        for image in simulate_pair(None, 64, np.random.default_rng(seed), params):
            digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def screens_changed_originals_kept(variant, seeds=(0, 1)) -> list[bool]:
    """Asserts that ``variant`` (a FAST variant) leaves every original's pixels as FAST's;
    returns, per seed, whether its recapture differs."""
    changed = []
    for seed in seeds:
        original, recapture = simulate_pair(None, 64, np.random.default_rng(seed), FAST)
        same, other = simulate_pair(None, 64, np.random.default_rng(seed), variant)
        assert np.array_equal(original, same)
        changed.append(not np.array_equal(recapture, other))
    return changed
