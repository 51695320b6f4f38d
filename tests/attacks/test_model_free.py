"""tfrecap.attacks.model_free: the blind edits and their pooled accuracy."""

import numpy as np
import pytest

from tfrecap.attacks import model_free


def test_pooled_accuracy_weights_the_classes_by_their_counts():
    by_class = {"original": [1.0, 0.5], "recaptured": [0.5, 0.0]}
    assert model_free.pooled_accuracy(by_class, {"original": 3, "recaptured": 1}) == [
        pytest.approx(0.875), pytest.approx(0.375)]
    # A class with no patches does not count.
    assert model_free.pooled_accuracy({"original": [None], "recaptured": [0.25]},
                                      {"original": 0, "recaptured": 4}) == [0.25]


def test_edits_fool_a_detector_of_fine_detail_and_need_no_gradient():
    rng = np.random.default_rng(0)
    flat = [np.full((16, 16, 3), 128.0, np.float32) + rng.normal(0, 0.2, (16, 16, 3))
            for _ in range(4)]
    # Recaptures: a checkerboard of +-2 levels, fine detail that erase at eps 2 removes.
    board = 2.0 * (np.indices((16, 16)).sum(0) % 2 * 2 - 1)[..., None]
    recaptures = [np.round(x + board).astype(np.float32) for x in flat]
    originals = [np.round(x).astype(np.float32) for x in flat]

    def predict(images):  # recaptured when the fine detail is strong
        residual = np.stack([np.abs(model_free.high_pass(x)).mean() for x in images])
        return (residual > 0.8).astype(int)

    result = model_free.model_free_attacks(predict, originals, recaptures, [2.0])
    assert result["original"][0] == 1.0 and result["recaptured"][0] == 1.0  # clean: right
    assert result["original"][1] == 0.0 and result["recaptured"][1] == 0.0  # edited: fooled
    empty = model_free.model_free_attacks(predict, [], recaptures, [2.0])
    assert empty["original"] == [None, None] and empty["recaptured"][0] == 1.0
