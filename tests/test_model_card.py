"""scripts/model_card.py renders every figure from the card's JSON, and judges the targets."""

import numpy as np
import pytest

from tests.script_loader import load_script
from tfrecap.cli.main import cli
from tfrecap.verdict import Verdict


def _card(real=True):
    measured = {"synthetic_test": {
        "n": 3000, "accuracy": 0.961, "ci": [0.95, 0.97],
        "by_class": {"original": 0.97, "recaptured": 0.952}, "auc": 0.99,
        "attacks": {"fgsm": {"n": 3000, "accuracy": {"1": 0.5, "2": 0.4, "3": 0.3, "4": 0.2,
                                                     "5": 0.1}},
                    "pgd-margin": {"n": 500, "accuracy": {"1": 0.25, "3": 0.05}}}}}
    if real:
        measured["real_photos"] = {
            "name": "some photos", "threshold": 0.6, "balanced_accuracy": 0.815, "auc": None,
            "skipped": 0,
            "by_class": {"original": {"n": 10, "correct": 9, "accuracy": 0.9, "ci": [0.6, 0.98]},
                         "recaptured": {"n": 10, "correct": 7, "accuracy": 0.7,
                                        "ci": [0.4, 0.9]}}}
    card = load_script("model_card")
    return card, {"name": "m", "version": 1, "summary": "A test card.",
                  "training": {"data": "d", "model": "L-CNN", "command": "tfrecap train",
                               "dataset": "synthetic_v2_64"},
                  "verdict": Verdict("top_k", 0.6).to_dict(), "verdict_source": "chosen",
                  "measured": measured, "targets": card.targets(measured), "limits": ["x"]}


def test_targets_follow_the_figures():
    card, data = _card()
    met = {t["what"]: t["met"] for t in data["targets"]}
    assert met["synthetic test accuracy ≥ 95 %"] is True
    assert met["real dev photos: balanced accuracy ≥ 80 %"] is True
    assert met["real dev photos: ROC AUC ≥ 0.88"] is False  # no AUC is no target met


def test_card_shows_the_json_figures_and_gaps():
    card, data = _card()
    text = card.render_card(data)
    assert "96.1 %" in text and "| pgd-margin | 500 | 25.0 % | n/a | 5.0 % | n/a | n/a |" in text
    assert "ROC AUC n/a" in text and "| original | 10 | 9 | 90.0 % |" in text
    assert "top_k of the tile probabilities, recaptured at or above 0.6000 (chosen)" in text
    _, bare = _card(real=False)
    assert "Not measured." in card.render_card(bare)
    assert len(card.targets(bare["measured"])) == 1


def test_card_names_the_checkpoint_the_guard_chose():
    card, data = _card()
    guard = {"step": 750, "exported_step": 750, "clean": 0.9, "pgd": 0.4, "eps": 2.0,
             "clean_floor": 0.6, "measured_patches": 512, "history": [{}] * 6}
    data["training"]["guard"] = guard
    assert ("- Checkpoint: step 750, the best of 6 guard records on 512 validation patches "
            "(clean 90.0 %, PGD-margin at ε = 2 40.0 %, clean floor 60.0 %).") in (
        card.render_card(data))
    data["training"]["guard"] = {**guard, "step": None, "exported_step": 1500,
                                 "warning": "none passed"}
    assert "- Checkpoint: the last (step 1500): none passed." in card.render_card(data)
    del data["training"]["guard"]
    assert "Checkpoint" not in card.render_card(data)


def test_one_real_folder_alone_is_a_usage_error():
    with pytest.raises(SystemExit):
        load_script("model_card").main(["m", "--dataset", "d", "--train-command", "c",
                                        "--real-originals", "x"])


def test_ablation_rules_and_rows():
    ablation = load_script("experiments/scale_and_aggregation")
    pixels = np.zeros((1500, 1100, 3), np.uint8)
    # 23 x 17 tiles, capped at 64.
    assert ablation.tiles_under_rule(pixels, 64, "native", 64).shape == (63, 64, 64, 3)
    assert ablation.tiles_under_rule(pixels, 64, "reference-1024", 300).shape[0] == 16 * 11
    with pytest.raises(ValueError, match="scale rule"):
        ablation.tiles_under_rule(pixels, 64, "half", 64)
    per_rule = {"reference-1024": ([np.array([0.1, 0.2]), np.array([0.9, 0.1])], [0, 1])}
    rows = ablation.summarise(per_rule, Verdict("top_k", 0.5))
    top_k = next(r for r in rows if r["aggregation"] == "top_k")
    assert top_k["deployed"] and top_k["auc"] == 1.0 and top_k["balanced_accuracy"] == 1.0


def test_a_card_of_an_undefended_model_names_the_robust_one():
    card, data = _card()
    assert "robust" not in card.render_card(data).lower()  # an older card without the key
    for defence in ({"penalty_weight": 0.0, "fusion_count": 0},      # Yang's baseline
                    {"method": "auto", "penalty_weight": 1.0},        # the paper's defence
                    {"method": "zhao2018"}):
        data["robust_alternative"] = card.robust_alternative({"defence": defence})
        text = card.render_card(data)
        assert "## Under attack: the robust model" in text, defence
        assert f"`{card.ROBUST_ALTERNATIVE['command']}`" in text
    # The command the card gives is one the CLI accepts (an unknown flag fails to parse).
    words = card.ROBUST_ALTERNATIVE["command"].split()
    assert words[:2] == ["tfrecap", "reproduce"]
    params = cli.commands["reproduce"].make_context("reproduce", words[2:]).params
    assert params["defences"] and params["steps"] == 3000 and params["profile"] == "zoo"
    for method in ("pgd_at", "trades", "fast_fgsm"):
        assert card.robust_alternative({"defence": {"method": method}}) is None
