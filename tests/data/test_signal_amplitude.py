"""scripts/experiments/signal_amplitude.py: residual statistics, model-free edits (no training)."""

import numpy as np
import pytest

from tests.script_loader import load_script
from tfrecap.data import simulator, sources

amplitude = load_script("experiments/signal_amplitude")


@pytest.fixture(scope="module")
def pairs():
    """(image, label) for 16 simulated test-region pairs: enough for stable class medians."""
    radius = simulator.window_radius(64)
    regions = sources.split_regions(64, radius, "test")[:16]
    simulated = [simulator.simulate_pair(sources.window(region, radius), 64,
                                         np.random.default_rng(i))
                 for i, region in enumerate(regions)]
    return [(o, 0) for o, _ in simulated] + [(r, 1) for _, r in simulated]


def test_recaptures_carry_more_fine_detail(pairs):
    stats = amplitude.class_statistics(pairs)
    original, recaptured = stats["original"], stats["recaptured"]
    assert original["n"] == recaptured["n"] == 16
    assert recaptured["rms"] > 1.5 * original["rms"]
    # Less of a recapture's fine detail fits inside any budget.
    for e in amplitude.EPS:
        assert recaptured[f"within_eps{e:g}"] < original[f"within_eps{e:g}"]


@pytest.mark.parametrize("eps", [1.0, 2.5, 5.0])
def test_edits_stay_inside_the_budget(pairs, eps):
    original = next(image for image, label in pairs if label == 0)
    recaptured = next(image for image, label in pairs if label == 1)
    for edited, source in ((amplitude.erase(recaptured, eps), recaptured),
                           (amplitude.transplant(original, recaptured, eps), original)):
        change = np.abs(edited - source.astype(np.float32))
        assert edited.dtype == np.float32  # what the exported signatures take
        assert edited.min() >= 0 and edited.max() <= 255
        assert np.array_equal(edited, np.round(edited))  # 8-bit levels
        assert change.max() <= eps and change.mean() > 0.2 * eps


def test_model_free_attacks_fool_a_fine_detail_detector(pairs):
    """A detector that calls a patch recaptured when its fine detail is strong is fooled both
    ways: transplanting a recapture's detail makes originals 'recaptured', erasing makes
    recaptures 'original'. Accuracy falls with ε from the unedited figure."""
    stats = amplitude.class_statistics(pairs)
    threshold = (stats["original"]["rms"] + stats["recaptured"]["rms"]) / 2

    def predict(images):
        return np.array([amplitude.patch_statistics(x)["rms"] > threshold for x in images],
                        dtype=int)

    originals = [x for x, label in pairs if label == 0]
    recaptured = [x for x, label in pairs if label == 1]
    result = amplitude.model_free_attacks(predict, originals, recaptured)
    assert result["original"][0] == np.mean(predict(np.stack(originals)) == 0)
    for accuracy in result.values():
        assert len(accuracy) == 1 + len(amplitude.EPS)
        assert accuracy[0] >= 0.7 and accuracy[-1] <= accuracy[0] - 0.25
    table = amplitude.attack_table({"rms": result})
    assert "original, transplant" in table and "recaptured, erase" in table


def test_docs_tables_are_the_recorded_run():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    tables = amplitude.summary(str(root / "docs" / "signal_amplitude.json"))
    assert tables.count("| demo |") == 2 and tables.count("| demo_baseline |") == 2
    assert tables in (root / "docs" / "signal_amplitude.md").read_text()
