"""scripts/experiments/calibration_stability.py: disjoint photo sets, and the verdict chosen on
each is the one `choose_verdict` picks on those photos alone."""

import numpy as np
import pytest

from tests.script_loader import load_script
from tfrecap.verdict import choose_verdict

script = load_script("experiments/calibration_stability")


def test_sets_are_disjoint_and_balanced():
    ranges = script.subsets(8, 4)
    assert [list(r) for r in ranges] == [list(range(0, 8)), list(range(8, 16))]
    for r in ranges:
        assert sum(i % 2 for i in r) == 4  # photo i has label i % 2: four of each
    assert len(script.subsets(9, 4)) == 2  # an incomplete last set is left out


@pytest.mark.parametrize(("count", "subset"), [(4, 5), (4, 0)])
def test_a_bad_subset_is_a_clear_error(count, subset):
    with pytest.raises(ValueError, match="subset"):
        script.subsets(count, subset)


def test_each_set_gets_the_verdict_chosen_on_it_alone():
    rng = np.random.default_rng(0)
    labels = [i % 2 for i in range(16)]
    # Recaptures' tiles score higher on average, with noise, so the sets disagree a little.
    per_image = [np.clip(rng.normal(0.35 + 0.3 * y, 0.2, size=6), 0, 1) for y in labels]
    rows = script.choices(per_image, labels, script.subsets(8, 4))
    assert [r["photos"] for r in rows] == ["set 0", "set 1", "all"]
    assert [r["per_class"] for r in rows] == [4, 4, 8]
    for row, picked in zip(rows, [range(0, 8), range(8, 16), range(16)], strict=True):
        verdict, _ = choose_verdict([per_image[i] for i in picked], [labels[i] for i in picked])
        assert (row["aggregation"], row["threshold"]) == (verdict.aggregation, verdict.threshold)


def test_each_sets_auc_is_that_of_its_own_photos():
    # Set 0 is separated perfectly, set 1 exactly the wrong way round: whatever aggregation is
    # chosen, its AUC is 1 on set 0, 0 on set 1, and 1/2 on all of them (every photo's tiles
    # agree, so every aggregation gives the photo the same score).
    labels = [i % 2 for i in range(16)]
    score = [0.9 if (y == 1) == (i < 8) else 0.1 for i, y in enumerate(labels)]
    per_image = [np.full(5, s) for s in score]
    rows = script.choices(per_image, labels, script.subsets(8, 4))
    assert [r["auc"] for r in rows] == pytest.approx([1.0, 0.0, 0.5])
    assert rows[0]["balanced_accuracy"] == pytest.approx(1.0)


def test_the_docs_figures_are_the_committed_record():
    import json
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    record = json.loads((docs / "real_photos" / "calibration_stability_big_budget.json")
                        .read_text())
    page = " ".join((docs / "real_photos.md").read_text().split())  # one line, like prose
    for export in record["exports"]:
        sets = [c for c in export["choices"] if c["photos"] != "all"]
        every = next(c for c in export["choices"] if c["photos"] == "all")
        assert {c["aggregation"] for c in export["choices"]} == {"top_k"}
        low, high = min(c["threshold"] for c in sets), max(c["threshold"] for c in sets)
        assert f"{low:.2f}–{high:.2f} for seed {export['train_seed']}" in page
        assert f"AUC {every['auc']:.2f} on all" in page
    first, second = record["exports"]
    alls = [next(c for c in e["choices"] if c["photos"] == "all") for e in (first, second)]
    assert (f"({alls[0]['threshold']:.2f} and {alls[1]['threshold']:.2f} on all 128 photos; "
            f"set 0 reproduces training's {first['choices'][0]['threshold']:.3f} and "
            f"{second['choices'][0]['threshold']:.3f})") in page
