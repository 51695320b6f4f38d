"""`tfrecap evaluate --originals --recaptured`: whole-image verdicts on labelled folders.

The detector is a Keras model with fixed weights whose logit margin is (mean brightness - 128)
/ 10, so a flat grey photo of level m is called recaptured with probability sigmoid((m-128)/10)
and every count, AUC and best threshold below is worked out by hand.
"""

import math

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tfrecap.cli import main as main_module
from tfrecap.cli.main import cli
from tfrecap.data.folder import FolderImportError
from tfrecap.evaluation import images
from tfrecap.evaluation.stats import roc_auc
from tfrecap.jsonio import dumps, loads_strict

S = 16
# Flat grey levels: dark reads as original, bright as recaptured.
ORIGINAL_LEVELS = {"a.png": 40, "b.jpg": 60, "sub/c.png": 150}  # c is called recaptured
RECAPTURED_LEVELS = {"d.png": 100, "e.jpg": 140, "f.png": 200, "sub/g.jpg": 220}  # d: original


def _probability(level):
    return 1 / (1 + math.exp(-(level - 128) / 10))


def _write(path, level, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((*size, 3), level, np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from tfrecap.export import export_detector

    detector = keras.Sequential([
        keras.Input((S, S, 3)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])
    # logit[1] - logit[0] = (sum of the channel means - 3·128) / 30 = (level - 128) / 10.
    kernel = np.array([[0.0, 1 / 30]] * 3, np.float32)
    detector.layers[-1].set_weights([kernel, np.array([0.0, -128 / 10], np.float32)])
    root = tmp_path_factory.mktemp("evaluate_images")
    export_detector(detector, root / "brightness")
    return root / "brightness"


@pytest.fixture
def folders(tmp_path):
    """Originals (3 usable, a corrupt JPEG, a too-small PNG, a text file) and 4 recaptures,
    sizes not multiples of S, at two depths."""
    originals, recaptured = tmp_path / "originals", tmp_path / "recaptured"
    sizes = [(37, 41), (16, 53), (50, 17), (33, 33)]
    for i, (name, level) in enumerate(ORIGINAL_LEVELS.items()):
        _write(originals / name, level, sizes[i % 4])
    for i, (name, level) in enumerate(RECAPTURED_LEVELS.items()):
        _write(recaptured / name, level, sizes[(i + 1) % 4])
    (originals / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    _write(originals / "tiny.png", 90, (10, 12))
    (originals / "notes.txt").write_text("not a photo")
    return originals, recaptured


def test_auc_by_hand():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # Every pair tied counts half; one tie among four pairs: (1 + 1 + 1 + 0.5) / 4.
    assert roc_auc([0.5, 0.5, 0.5], [0, 1, 1]) == 0.5
    assert roc_auc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == 0.875
    assert math.isnan(roc_auc([0.1, 0.9], [1, 1]))


def test_best_threshold_by_hand():
    # Recaptured iff >= threshold. Cutting between 0.3 and 0.8 gets both originals and 2 of 3
    # recaptures (5/6); between 0.1 and 0.2 all recaptures and 1 of 2 originals (3/4).
    best = images.best_threshold([0.1, 0.3, 0.2, 0.9, 0.8], [0, 0, 1, 1, 1])
    assert best["threshold"] == pytest.approx(0.55)
    assert best["balanced_accuracy"] == pytest.approx(5 / 6)
    assert (best["original_accuracy"], best["recaptured_accuracy"]) == (1.0, pytest.approx(2 / 3))
    assert "optimistic" in best["note"]
    # Two equally good cuts (0.15 and 0.85): the one nearer the reference wins.
    scores, labels = [0.1, 0.2, 0.8, 0.9], [0, 1, 0, 1]
    assert images.best_threshold(scores, labels, 0.9)["threshold"] == pytest.approx(0.85)
    assert images.best_threshold(scores, labels, 0.1)["threshold"] == pytest.approx(0.15)
    assert images.best_threshold([0.1, 0.2], [1, 1]) is None


def _result(path, p, label, threshold=None):
    out = {"path": path, "label": label, "recaptured_probability": p, "patch_count": 4}
    return out if threshold is None else {**out, "threshold": threshold}


def test_summary_reads_the_stored_threshold_and_trusts_the_label():
    # A stored threshold 0.3: the signature's labels follow it (0.4 is recaptured), not 0.5.
    results = [_result("o1", 0.1, "original", 0.3), _result("o2", 0.4, "recaptured", 0.3),
               _result("r1", 0.35, "recaptured", 0.3), {"path": "r2", "error": "file not found"}]
    report = images.summarize(results, [0, 0, 1, 1])
    assert (report.threshold, report.threshold_source) == (0.3, "export")
    assert (report.accuracy(0).correct, report.accuracy(0).n) == (1, 2)
    assert (report.accuracy(1).correct, report.accuracy(1).n) == (1, 1)
    assert report.balanced_accuracy == 0.75
    assert report.auc == 0.5  # 0.35 beats 0.1, loses to 0.4
    assert report.skipped == [{"path": "r2", "class": "recaptured", "category": "unreadable",
                               "reason": "file not found"}]
    older = images.summarize([_result("o1", 0.1, "original")], [0])
    assert (older.threshold, older.threshold_source) == (0.5, "default")
    with pytest.raises(ValueError, match="different thresholds"):
        images.summarize([_result("a", 0.1, "original", 0.3), _result("b", 0.1, "original")],
                         [0, 0])


def test_a_class_without_usable_photos_gives_null_auc():
    report = images.summarize([_result("o1", 0.1, "original"),
                               {"path": "r1", "error": "image is 3x3 (height x width), smaller "
                                "than the 16x16 patch size"}], [0, 1])
    data = loads_strict(dumps(report.to_json_dict()))
    assert data["auc"] is None and data["balanced_accuracy"] is None
    assert data["best_threshold_on_these_photos"] is None
    assert data["classes"]["recaptured"] == {"accuracy": None, "ci": [0.0, 1.0], "n": 0,
                                             "correct": 0, "files": 1}
    assert data["skipped"]["by_category"] == {"too small": 1}
    assert "no judged photo" in report.format_table()


def test_collect_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FolderImportError, match=f"originals folder does not exist: {tmp_path}"):
        images.collect_folder(tmp_path / "nowhere", 0)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(FolderImportError, match="recaptured folder is not a directory"):
        images.collect_folder(tmp_path / "file.png", 1)
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(FolderImportError, match=r"No image file .* recaptured folder .*empty "
                       r"\(only 1 other files\)"):
        images.collect_folder(tmp_path / "empty", 1)


def test_folder_evaluation_gives_known_counts(export, folders, tmp_path):
    originals, recaptured = folders
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, [
        "evaluate", str(export), "--originals", str(originals), "--recaptured", str(recaptured),
        "--json", str(out),
    ])
    assert result.exit_code == 0, result.output
    report = loads_strict(out.read_text())
    assert (report["schema_version"], report["kind"]) == (1, "whole_image")
    assert (report["model_version"], report["patch_size"], report["limit"]) == ("1", S, None)
    # export_detector stores the default verdict, and classify_images returns its threshold.
    assert (report["threshold"], report["threshold_source"]) == (0.5, "export")
    original, recaptured_ = report["classes"]["original"], report["classes"]["recaptured"]
    assert (original["n"], original["correct"], original["files"]) == (3, 2, 5)
    assert (recaptured_["n"], recaptured_["correct"], recaptured_["files"]) == (4, 3, 4)
    assert original["ci"][0] < 2 / 3 < original["ci"][1]
    assert report["balanced_accuracy"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    # Recaptures 100 and 140 beat the originals 40 and 60 but not 150; 200 and 220 beat all.
    assert report["auc"] == pytest.approx(10 / 12)
    best = report["best_threshold_on_these_photos"]
    assert best["balanced_accuracy"] == pytest.approx(5 / 6)
    assert best["threshold"] == pytest.approx((_probability(60) + _probability(100)) / 2,
                                              rel=0.05)

    by_name = {r["path"].split("/")[-1]: r for r in report["images"]}
    assert by_name["c.png"]["label"] == "recaptured" and by_name["d.png"]["label"] == "original"
    assert by_name["a.png"]["probability"] == pytest.approx(_probability(40), rel=1e-4)
    assert by_name["a.png"]["patch_count"] == 2 * 2 and by_name["a.png"]["error"] is None
    assert by_name["broken.jpg"]["label"] is None and by_name["broken.jpg"]["error"]
    assert report["skipped"]["count"] == 3
    assert report["skipped"]["by_category"] == {"corrupt": 1, "not an image": 1, "too small": 1}
    skipped = {s["path"].split("/")[-1] for s in report["skipped"]["files"]}
    assert skipped == {"broken.jpg", "tiny.png", "notes.txt"}

    assert "original           3        2     66.7%" in result.output
    assert "recaptured         4        3     75.0%" in result.output
    assert "balanced accuracy: 70.8%" in result.output and "ROC AUC: 0.833" in result.output
    assert "skipped: 3 files" in result.output
    assert "warning: skipped:" in result.output and "tiny.png" in result.output
    assert "Judging photos" not in result.output  # no progress bar off a terminal


def test_limit_caps_photos_per_class(export, folders):
    originals, recaptured = folders
    result = CliRunner().invoke(cli, [
        "evaluate", str(export), "--originals", str(originals), "--recaptured", str(recaptured),
        "--limit", "2",
    ])
    assert result.exit_code == 0, result.output
    # Sorted: a.png, b.jpg of the originals (both right); d.png (wrong), e.jpg of the recaptures.
    assert "original           2        2    100.0%" in result.output
    assert "recaptured         2        1     50.0%" in result.output


def _main_error(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main_module.main(["evaluate", *map(str, args)])
    return exit_info.value.code, capsys.readouterr().err


def test_missing_or_empty_folder_is_one_error_line(tmp_path, folders, capsys):
    originals, recaptured = folders
    model = tmp_path  # never loaded: the folders are checked first
    code, err = _main_error(capsys, model, "--originals", tmp_path / "nowhere",
                            "--recaptured", recaptured)
    assert code != 0
    assert err == f"Error: The originals folder does not exist: {tmp_path / 'nowhere'}\n"
    (tmp_path / "empty").mkdir()
    code, err = _main_error(capsys, model, "--originals", originals,
                            "--recaptured", tmp_path / "empty")
    assert code != 0 and err.count("\n") == 1 and err.startswith("Error: No image file")
    assert str(tmp_path / "empty") in err
    code, err = _main_error(capsys, model, "--originals", originals / "a.png",
                            "--recaptured", recaptured)
    assert code != 0
    assert err == f"Error: The originals folder is not a directory: {originals / 'a.png'}\n"


def test_one_flag_alone_or_attack_options_are_usage_errors(tmp_path, folders):
    originals, recaptured = folders
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--recaptured", str(recaptured)])
    assert result.exit_code == 2 and "--recaptured needs --originals" in result.output
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--originals", str(originals)])
    assert result.exit_code == 2 and "--originals needs --recaptured" in result.output
    result = CliRunner().invoke(cli, [
        "evaluate", str(tmp_path), "--originals", str(originals), "--recaptured",
        str(recaptured), "--attack", "pgd", "--split", "test", "--dataset", "x",
    ])
    assert result.exit_code == 2, result.output
    # --attack applies to whole images too (tests/test_whole_image_attack.py).
    assert "--dataset, --split only apply to the patch/attack evaluation" in result.output
