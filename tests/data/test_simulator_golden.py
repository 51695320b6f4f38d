"""The committed default simulator is bit-identical to the one the recorded results were made with.

The hashes were taken from `generate.generate_split` before the simulator's parameters moved
into `SimulatorParams`; any change to the default physics, its draw order or the region choice
changes them. A deliberate change to the default simulator must bump `SimulatorParams.version`
and update these hashes in the same commit.
"""

import hashlib

import pytest

from tfrecap.data import generate

SEED = 11
# (size, count per class, split) -> sha256 of the split's pixel bytes, in example order.
GOLDEN = {
    (64, 10, "train"): "0ac745891dfa20983aa7f7dc71f27f36cf81ec719868a8b0c2ccba56521b63a7",
    (64, 10, "validation"): "076bb7c3f97ea4b8660df869a987ce4b019ea153e7b2899c9d8f196c4a74709d",
    (64, 10, "test"): "a5f87d62fbc2d29e94d55f41340eb9dfec9efeeea63fcec2d23f55fbd52ececb",
    (128, 1, "test"): "de88452c99c287f777ea6894e094566f5890f9c67919bb2636c1c141d4f66580",
}


def pixel_hash(examples) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.image.tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize(("size", "count", "split"), list(GOLDEN))
def test_default_simulator_output_is_pinned(size, count, split):
    examples = generate.generate_split(size, count, SEED, split, workers=1)
    assert len(examples) == 2 * generate.split_counts(count)[split]
    assert pixel_hash(examples) == GOLDEN[size, count, split]
