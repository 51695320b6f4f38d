"""The robustness guard: its selection rule, and train() exporting the best checkpoint, not the
last one.

The training tests script the guard's measurement (monkeypatching ``guard.measure``) so that a
chosen epoch is the most robust; the weights are real, so the exported model can be compared
with the best and with the last checkpoint.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import tiny_detector
from tests.test_training import TINY_PIPELINE
from tfrecap import config as cfg
from tfrecap.training import guard as guard_lib
from tfrecap.training.guard import BEST_JSON, RobustnessGuard, better

FLOOR = 0.6


def _record(clean, pgd, step=0):
    return {"clean": clean, "pgd": pgd, "step": step}


# -- the selection rule -----------------------------------------------------------------------


def test_the_first_record_wins_only_above_the_floor():
    assert better(_record(0.8, 0.1), None, FLOOR)
    assert better(_record(FLOOR, 0.0), None, FLOOR)  # the floor itself passes
    assert not better(_record(0.55, 0.55), None, FLOOR)
    assert not better(_record(float("nan"), float("nan")), None, FLOOR)  # no patches
    assert not better(_record(None, None), None, FLOOR)  # NaN read back from JSON


def test_a_constant_predictor_never_wins_whatever_its_pgd_accuracy():
    """A constant predictor cannot be attacked: its PGD accuracy is its clean accuracy, the
    class share (0.5 on balanced patches), which beats an honest model's 0.3 under attack."""
    honest = _record(0.9, 0.3, step=2)
    constant = _record(0.5, 0.5, step=4)
    assert not better(constant, honest, FLOOR)
    assert not better(constant, None, FLOOR)


def test_higher_pgd_wins_and_equal_pgd_goes_to_higher_clean_then_to_the_earlier():
    best = _record(0.8, 0.4, step=2)
    assert better(_record(0.7, 0.41, step=4), best, FLOOR)
    assert not better(_record(0.99, 0.39, step=4), best, FLOOR)
    assert better(_record(0.85, 0.4, step=4), best, FLOOR)  # as robust, more accurate
    assert not better(_record(0.75, 0.4, step=4), best, FLOOR)
    assert not better(_record(0.8, 0.4, step=4), best, FLOOR)  # a full tie keeps the earlier


@pytest.mark.parametrize("script, expected", [
    ([(0.9, 0.2), (0.85, 0.5), (0.8, 0.3), (0.8, 0.1)], 2),  # robust overfitting
    ([(0.9, 0.4), (0.9, 0.0), (0.5, 0.5), (0.9, 0.0)], 1),  # catastrophic, then constant
    ([(0.5, 0.5), (0.55, 0.55)], None),  # none above the floor
    ([(0.8, 0.3), (0.8, 0.3), (0.9, 0.3)], 3),
])
def test_scripted_histories_pick_the_expected_epoch(script, expected):
    best = None
    for epoch, (clean, pgd) in enumerate(script, start=1):
        record = {**_record(clean, pgd), "epoch": epoch}
        if better(record, best, FLOOR):
            best = record
    assert (best["epoch"] if best else None) == expected


def test_select_clean_ranks_by_clean_accuracy_then_pgd():
    """An undefended model's guard (``select = "clean"``): the most accurate checkpoint wins,
    PGD only breaks ties, and the floor still applies."""
    best = _record(0.9, 0.05, step=2)
    assert better(_record(0.95, 0.0, step=4), best, FLOOR, "clean")
    assert not better(_record(0.85, 0.5, step=4), best, FLOOR, "clean")  # would win on PGD
    assert better(_record(0.85, 0.5, step=4), best, FLOOR, "pgd")
    assert better(_record(0.9, 0.1, step=4), best, FLOOR, "clean")  # as accurate, more robust
    assert not better(_record(0.9, 0.05, step=4), best, FLOOR, "clean")  # a tie keeps the earlier
    assert not better(_record(0.55, 0.55), None, FLOOR, "clean")
    with pytest.raises(ValueError, match="select"):
        better(best, None, FLOOR, "auto")


# -- the measurement ------------------------------------------------------------------------


def test_fixed_patches_are_the_first_n_in_order_as_uint8():
    x = np.arange(10 * 2 * 2 * 3, dtype="float32").reshape(10, 2, 2, 3) % 256
    y = np.arange(10, dtype="int32") % 2
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    patches = guard_lib.fixed_patches(dataset, 6)
    assert [int(images.shape[0]) for images, _ in patches] == [4, 2]
    assert all(images.dtype == tf.uint8 for images, _ in patches)
    np.testing.assert_array_equal(np.concatenate([i.numpy() for i, _ in patches]), x[:6])
    np.testing.assert_array_equal(np.concatenate([lab.numpy() for _, lab in patches]), y[:6])
    assert guard_lib.majority_share(patches) == 0.5
    assert len(guard_lib.fixed_patches(dataset, 100)) == 3  # fewer examples than asked: all


def test_measure_is_the_evaluator_and_deterministic():
    detector = tiny_detector(size=16)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 16, 16, 3)).astype("uint8")
    y = np.array([0, 1, 0, 1, 0, 1], "int32")
    patches = [(tf.constant(x[:4]), tf.constant(y[:4])), (tf.constant(x[4:]), tf.constant(y[4:]))]
    first = guard_lib.measure(detector, patches, eps=2.0, pgd_steps=3)
    assert first == guard_lib.measure(detector, patches, eps=2.0, pgd_steps=3)
    assert first["n"] == 6
    predicted = np.argmax(detector(x.astype("float32"), training=False).numpy(), -1)
    assert first["clean"] == pytest.approx(np.mean(predicted == y))
    assert first["pgd"] <= first["clean"]
    assert guard_lib.measure(detector, patches, eps=0.0, pgd_steps=3)["pgd"] == first["clean"]


# -- resume bookkeeping, without training ----------------------------------------------------


def _saved_best(best_dir, **settings):
    best = {"epoch": 2, "step": 4, "clean": 0.8, "pgd": 0.5, "n": 4, "zero_grad": 0.0,
            "checkpoint": "ckpt-4"}
    payload = {"schema_version": 1, "eps": 2.0, "patches": 512, "pgd_steps": 10,
               "best": best, "history": [{**best, "passed_floor": True},
                                         {**best, "step": 6, "epoch": 3}]}
    payload.update(settings)
    best_dir.mkdir(parents=True)
    (best_dir / BEST_JSON).write_text(json.dumps(payload))
    (best_dir / "ckpt-4.index").write_text("")


@pytest.mark.parametrize("change, kept", [
    ({}, True),
    ({"eps": 4.0}, False),  # other settings: not comparable
    ({"pgd_steps": 5}, False),
    ({"clean_floor_now": 0.9}, False),  # a raised floor excludes the saved best
    ({"select": "clean"}, False),  # ranked by another figure: another best
    ({"select_now": "clean"}, False),  # a best.json from before `select` ranked by PGD
    ({"select": "clean", "select_now": "clean"}, True),
])
def test_resume_keeps_the_best_only_when_comparable(tmp_path, change, kept):
    floor = change.pop("clean_floor_now", FLOOR)
    select = change.pop("select_now", "pgd")
    _saved_best(tmp_path / "best", **change)
    lines = []
    guard = RobustnessGuard([], tmp_path / "best", every=1, eps=2.0, pgd_steps=10,
                            clean_floor=floor, select=select, requested_patches=512,
                            resumed_from=4, log=lines.append)
    assert (guard.best is not None) is kept
    if kept:
        assert guard.best["step"] == 4
        assert [r["step"] for r in guard.records] == [4]  # records after the resumed step go
        assert guard.best_checkpoint == str(tmp_path / "best" / "ckpt-4")
    else:
        assert "starting a new best" in lines[-1]


def test_a_best_after_the_resumed_step_is_dropped_with_its_record(tmp_path):
    # Killed between the guard's save at step 4 and the rotation's: the run resumes at 2.
    _saved_best(tmp_path / "best")
    lines = []
    guard = RobustnessGuard([], tmp_path / "best", every=1, eps=2.0, pgd_steps=10,
                            clean_floor=FLOOR, requested_patches=512, resumed_from=2,
                            log=lines.append)
    assert guard.best is None
    assert guard.records == []
    assert "after the resumed step 2" in lines[-1]


def test_resume_without_the_named_checkpoint_starts_a_new_best(tmp_path):
    _saved_best(tmp_path / "best")
    (tmp_path / "best" / "ckpt-4.index").unlink()
    lines = []
    guard = RobustnessGuard([], tmp_path / "best", requested_patches=512, resumed_from=4,
                            log=lines.append)
    assert guard.best is None
    assert "is missing" in lines[-1]


# -- train() with a scripted guard ----------------------------------------------------------


def _script_measure(monkeypatch, by_step: dict):
    """Make guard.measure return ``by_step[step] = (clean, pgd)`` for the model's step.

    Returns the stand-in: its ``calls`` are the steps it measured, ``patches`` what it got.
    """

    def scripted(model, patches, *, eps, pgd_steps):
        step = int(model.optimizer.iterations.numpy())
        scripted.calls.append(step)
        scripted.patches = patches
        clean, pgd = by_step[step]
        return {"clean": clean, "pgd": pgd, "n": 4, "zero_grad": 0.0}

    scripted.calls = []
    monkeypatch.setattr(guard_lib, "measure", scripted)
    return scripted


def _config(tmp_path, steps, **guard):
    path = tmp_path / "guarded.toml"
    settings = {"every": 1, **guard}
    path.write_text(TINY_PIPELINE + "\n[guard]\n"
                    + "".join(f"{k} = {v}\n" for k, v in settings.items()))
    return cfg.override(cfg.load_pipeline(path), **{"train.steps": steps})


def _checkpoint_logits(config, prefix, images):
    """The detector's logits with the weights of the checkpoint ``prefix``."""
    from tfrecap.training import build_model, make_checkpoint, restore_checkpoint

    model = build_model(config)
    restore_checkpoint(model, make_checkpoint(model), str(prefix))
    return model.detector(images, training=False).numpy()


def _export_logits(version_dir, images):
    loaded = tf.saved_model.load(str(version_dir))
    return loaded.signatures["logits"](images=tf.constant(images))["logits"].numpy()


IMAGES = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3)).astype("float32")


def test_train_exports_the_best_validation_pgd_checkpoint_not_the_last(synthetic_dir, tmp_path,
                                                                      monkeypatch):
    """Epoch 2 of 5 is the most robust (robust overfitting after it; epoch 5 would win on clean
    accuracy alone): its weights are exported, though `checkpoints/` has rotated it out."""
    from tfrecap.export import load_guard_asset
    from tfrecap.training import train

    config = _config(tmp_path, steps=10)
    script = _script_measure(monkeypatch, {2: (0.7, 0.3), 4: (0.8, 0.6), 6: (0.85, 0.4),
                                          8: (0.5, 0.5), 10: (0.95, 0.2)})
    lines = []
    run_dir = tmp_path / "run"
    result = train(config, data_dir=synthetic_dir, run_dir=run_dir,
                   export_dir=tmp_path / "export", verbose=0, log=lines.append)
    assert script.calls == [2, 4, 6, 8, 10]
    assert result.best["step"] == 4 and result.best["pgd"] == 0.6
    assert result.guard["exported_step"] == 4
    assert result.steps_done == 10

    saved = json.loads((run_dir / "best" / BEST_JSON).read_text())
    assert (saved["step"], saved["clean"], saved["pgd"]) == (4, 0.8, 0.6)
    assert [r["step"] for r in saved["history"]] == [2, 4, 6, 8, 10]
    assert saved["patches"] == 512 and saved["clean_floor"] == 0.6
    assert sorted(p.name.split(".")[0] for p in (run_dir / "best").glob("ckpt-*")) == [
        "ckpt-4", "ckpt-4"]  # .index and .data: one checkpoint, the best
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-10")
    assert not list((run_dir / "checkpoints").glob("ckpt-4.*"))  # rotated out there

    best = _checkpoint_logits(config, run_dir / "best" / "ckpt-4", IMAGES)
    last = _checkpoint_logits(config, run_dir / "checkpoints" / "ckpt-10", IMAGES)
    assert not np.allclose(best, last, atol=1e-4)  # training moved the weights after step 4
    exported = _export_logits(result.export_path, IMAGES)
    np.testing.assert_allclose(exported, best, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.model.detector(IMAGES, training=False).numpy(), best,
                               rtol=1e-5, atol=1e-5)
    assert load_guard_asset(result.export_path)["exported_step"] == 4
    assert any("restored the best checkpoint, step 4 of 10" in line for line in lines)

    logged = json.loads((run_dir / "history.json").read_text())["epochs"]
    assert [e["val_guard_pgd_acc"] for e in logged] == [0.3, 0.6, 0.4, 0.5, 0.2]
    assert [e["val_guard_clean_acc"] for e in logged] == [0.7, 0.8, 0.85, 0.5, 0.95]


def test_an_undefended_run_selected_by_clean_accuracy_exports_its_most_accurate_epoch(
        synthetic_dir, tmp_path, monkeypatch):
    """``[guard] select = "clean"`` (demo_baseline's): where ranking by PGD would export step 4
    (PGD 0.6), it exports step 10 (clean 0.95), and its log names the figure it ranks by."""
    from tfrecap.export import load_guard_asset
    from tfrecap.training import train

    config = _config(tmp_path, steps=10, select='"clean"')
    _script_measure(monkeypatch, {2: (0.7, 0.3), 4: (0.8, 0.6), 6: (0.75, 0.4), 8: (0.5, 0.5),
                                  10: (0.95, 0.2)})
    lines = []
    result = train(config, data_dir=synthetic_dir, run_dir=tmp_path / "run",
                   export_dir=tmp_path / "export", verbose=0, log=lines.append)
    assert result.best["step"] == 10 and result.best["clean"] == 0.95
    guard = load_guard_asset(result.export_path)
    assert guard["exported_step"] == 10 and guard["select"] == "clean"
    assert any("best stays step 4 (clean 0.800)" in line for line in lines)


def test_resume_remembers_the_best_of_the_interrupted_run(synthetic_dir, tmp_path, monkeypatch):
    """The first run stops at step 6 with step 4 best; the rerun to step 10 measures better
    figures than its own epochs but not than step 4, which it still exports."""
    from tfrecap.training import train

    run_dir = tmp_path / "run"
    by_step = {2: (0.7, 0.3), 4: (0.8, 0.7), 6: (0.8, 0.4), 8: (0.8, 0.5), 10: (0.8, 0.6)}
    _script_measure(monkeypatch, by_step)
    first = train(_config(tmp_path, steps=6), data_dir=synthetic_dir, run_dir=run_dir,
                  verbose=0, log=lambda line: None)
    assert first.best["step"] == 4
    config = _config(tmp_path, steps=10)
    lines = []
    again = train(config, data_dir=synthetic_dir, run_dir=run_dir, verbose=0, log=lines.append)
    assert again.resumed_from_step == 6
    assert again.best["step"] == 4
    assert any("best so far is step 4" in line for line in lines)
    saved = json.loads((run_dir / "best" / BEST_JSON).read_text())
    assert [r["step"] for r in saved["history"]] == [2, 4, 6, 8, 10]
    np.testing.assert_allclose(again.model.detector(IMAGES, training=False).numpy(),
                               _checkpoint_logits(config, run_dir / "best" / "ckpt-4", IMAGES),
                               rtol=1e-5, atol=1e-5)


def test_no_record_above_the_floor_exports_the_last_weights_and_says_so(synthetic_dir, tmp_path,
                                                                       monkeypatch):
    from tfrecap.export import load_guard_asset
    from tfrecap.training import train

    _script_measure(monkeypatch, {2: (0.5, 0.5), 4: (0.55, 0.55)})
    lines = []
    config = _config(tmp_path, steps=4)
    result = train(config, data_dir=synthetic_dir, run_dir=tmp_path / "run",
                   export_dir=tmp_path / "export", verbose=0, log=lines.append)
    assert result.best is None
    assert "clean floor 0.6" in result.guard["warning"]
    assert result.guard["exported_step"] == 4
    assert any(line.startswith("WARNING: no guard record reached the clean floor")
               for line in lines)
    assert load_guard_asset(result.export_path)["step"] is None
    np.testing.assert_allclose(
        _export_logits(result.export_path, IMAGES),
        _checkpoint_logits(config, tmp_path / "run" / "checkpoints" / "ckpt-4", IMAGES),
        rtol=1e-5, atol=1e-5)


def test_every_n_epochs_and_always_the_last_on_the_first_validation_patches(
        synthetic_dir, tmp_path, monkeypatch):
    from tfrecap.data.pipeline import make_dataset
    from tfrecap.training import train

    script = _script_measure(monkeypatch, {4: (0.8, 0.2), 6: (0.8, 0.3)})
    config = cfg.override(_config(tmp_path, steps=6), **{"guard.every": 2, "guard.patches": 3})
    result = train(config, data_dir=synthetic_dir, run_dir=tmp_path / "run", verbose=0,
                   log=lambda line: None)
    assert script.calls == [4, 6]  # epoch 2, then epoch 3 because it is the last
    assert result.best["step"] == 6

    # The first 3 patches of the validation split in stored order (what `evaluate --limit 3`
    # judges), as uint8.
    stored = next(iter(make_dataset(synthetic_dir, "synthetic_64", "validation", 8,
                                    training=False)))
    patches = script.patches
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in patches]),
                                  stored[0].numpy()[:3].astype("uint8"))
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in patches]),
                                  stored[1].numpy()[:3])


# -- a real, unscripted run --------------------------------------------------------------------


@pytest.mark.parametrize("method", [pytest.param("zhao2018", marks=pytest.mark.slow),
                                    "fast_fgsm"])
def test_a_real_run_logs_the_guard_and_does_not_change_training(synthetic_dir, tmp_path,
                                                                method):
    """The guard only watches: the last checkpoint is the one an unguarded run writes (for
    fast FGSM too, whose random start must not be disturbed)."""
    from tfrecap.export import load_guard_asset
    from tfrecap.training import train

    config = _config(tmp_path, steps=4, clean_floor=0.0, pgd_steps=3)
    if method != "zhao2018":
        config = cfg.override(config, **{"defence.method": method, "defence.penalty_weight": 0.0,
                                         "defence.fusion_count": 0})
    guarded = train(config, data_dir=synthetic_dir, run_dir=tmp_path / "guarded",
                    export_dir=tmp_path / "export", verbose=0, log=lambda line: None)
    logged = json.loads((tmp_path / "guarded" / "history.json").read_text())["epochs"]
    assert len(logged) == 2
    for epoch in logged:
        assert 0.0 <= epoch["val_guard_pgd_acc"] <= epoch["val_guard_clean_acc"] <= 1.0
    assert guarded.guard["measured_patches"] == 4  # the tiny validation split holds 4
    # clean_floor 0 is raised above a constant predictor on the 4 imbalanced-or-not patches
    # (effective_clean_floor), so either a record passed, or the last weights are exported.
    exported = guarded.best["step"] if guarded.best is not None else config.train.steps
    assert exported in (2, 4)
    assert load_guard_asset(guarded.export_path)["exported_step"] == exported

    plain = train(cfg.override(config, **{"guard.every": 0}), data_dir=synthetic_dir,
                  run_dir=tmp_path / "plain", verbose=0, log=lambda line: None)
    assert plain.guard is None and plain.best is None
    reader = {name: tf.train.load_checkpoint(str(tmp_path / name / "checkpoints" / "ckpt-4"))
              for name in ("guarded", "plain")}
    keys = [k for k in reader["plain"].get_variable_to_shape_map()
            if k.startswith("model_variables/")]
    assert keys
    for key in keys:
        np.testing.assert_array_equal(reader["guarded"].get_tensor(key),
                                      reader["plain"].get_tensor(key), err_msg=key)


# -- under tf.distribute ----------------------------------------------------------------------

GUARD_TABLE = "\n[guard]\nevery = 1\nclean_floor = 0.0\npgd_steps = 3\n"


@pytest.mark.slow
def test_the_guard_under_a_mirrored_strategy_exports_and_resumes(synthetic_dir, tmp_path):
    """Mirrored variables: the guard measures the model outside the replica context, and its
    best checkpoint restores into the mirrored model for the export."""
    import subprocess
    import sys

    from tests.test_distribute import ENV, MIRRORED_SCRIPT, REPO
    from tests.test_distribute import TINY_PIPELINE as MIRRORED_PIPELINE
    from tfrecap.export import load_guard_asset

    pipeline = tmp_path / "mirrored.toml"
    # [train] is the pipeline's last table: the strategy line belongs to it.
    pipeline.write_text(MIRRORED_PIPELINE + GUARD_TABLE)
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    for steps in (2, 4):
        args = [sys.executable, "-c", MIRRORED_SCRIPT, pipeline, synthetic_dir, run_dir,
                export_dir, steps]
        proc = subprocess.run(list(map(str, args)), cwd=REPO, env=ENV, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        assert "strategy=mirrored (2 replicas)" in proc.stdout
        assert "Guard at step" in proc.stdout
    assert "Guard: best so far is step 2" in proc.stdout  # the resumed run remembered it
    saved = json.loads((run_dir / "best" / BEST_JSON).read_text())
    assert [r["step"] for r in saved["history"]] == [2, 4]
    assert load_guard_asset(export_dir / "2")["exported_step"] == saved["step"]


@pytest.mark.slow
def test_two_workers_agree_on_the_best_and_only_the_chief_writes_it(synthetic_dir, tmp_path):
    """Saving is collective: both workers must take the same save path at every guard pass
    (a worker that saved alone would hang). Only the chief writes run_dir/best."""
    from tests.test_distribute import _run_workers

    pipeline = tmp_path / "mw.toml"
    pipeline.write_text(TINY_PIPELINE + 'strategy = "multi_worker"\n' + GUARD_TABLE)
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    worker_tmp = tmp_path / "worker1_tmp"
    worker_tmp.mkdir()
    results = _run_workers(
        lambda i, rd: [pipeline, synthetic_dir, rd, export_dir, 4, tmp_path / f"w{i}"],
        run_dirs=[run_dir, run_dir], env={1: {"TMPDIR": str(worker_tmp)}},
    )
    for returncode, out, err in results:
        assert returncode == 0, out + err[-3000:]
    assert "Guard at step 4" in results[0][1] and "Guard at step" not in results[1][1]
    assert not any(worker_tmp.iterdir())  # the worker's best checkpoints were deleted
    chief = json.loads((tmp_path / "w0.json").read_text())
    worker = json.loads((tmp_path / "w1.json").read_text())
    for key in ("val_guard_clean_acc", "val_guard_pgd_acc"):
        assert [h[key] for h in chief["history"]] == [h[key] for h in worker["history"]]
    saved = json.loads((run_dir / "best" / BEST_JSON).read_text())
    assert saved["step"] in (2, 4)
    assert sorted(p.name for p in (run_dir / "best").iterdir()) == [
        BEST_JSON, f"ckpt-{saved['step']}.data-00000-of-00001", f"ckpt-{saved['step']}.index"]


def test_imbalanced_patches_raise_the_floor_above_a_constant_predictor():
    """With 70 % of one class a constant predictor (clean = PGD = 0.7) would pass the 0.6 floor
    and beat any honest checkpoint; the effective floor sits above its accuracy."""
    floor = guard_lib.effective_clean_floor(0.6, 0.7)
    assert floor == pytest.approx(0.75)
    constant = {"step": 1, "clean": 0.7, "pgd": 0.7}
    honest = {"step": 2, "clean": 0.85, "pgd": 0.55}
    assert better(constant, None, 0.6)  # what the configured floor alone would allow
    assert not better(constant, None, floor) and better(honest, None, floor)
    assert guard_lib.effective_clean_floor(0.6, 0.5) == 0.6  # balanced: unchanged
    patches = [(np.zeros((4, 2, 2, 3), "uint8"), tf.constant([1, 1, 1, 0]))]
    assert guard_lib.majority_share(patches) == pytest.approx(0.75)


def test_a_finished_run_under_another_guard_is_refused_not_exported_unranked(
        synthetic_dir, tmp_path, monkeypatch):
    """A run that has trained all its steps has nothing left to measure: with other guard
    settings its checkpoints could not be ranked again, so it must not export its last
    weights as if no checkpoint had passed the floor. A run with steps left may go on."""
    from tfrecap.reproduce import ReproduceError
    from tfrecap.reproduce.run import check_runs_up_front
    from tfrecap.training import RunDirError, train
    from tfrecap.training.guard import check_finished_guard

    _script_measure(monkeypatch, {2: (0.7, 0.3), 4: (0.8, 0.7), 6: (0.8, 0.4), 8: (0.8, 0.5)})
    run_dir = tmp_path / "runs" / "tiny"
    config = _config(tmp_path, steps=4)
    train(config, data_dir=synthetic_dir, run_dir=run_dir, verbose=0, log=lambda line: None)
    other = cfg.override(config, **{"guard.pgd_steps": 3})
    with pytest.raises(RunDirError, match=r"other settings \(eps=2.0, patches=512, "
                                          r"pgd_steps=10, select=pgd\), not \[guard\]'s "
                                          r".*pgd_steps=3"):
        train(other, data_dir=synthetic_dir, run_dir=run_dir, verbose=0, log=lambda line: None)
    check_finished_guard(run_dir, config, 4)  # the same guard: fine
    check_finished_guard(run_dir, cfg.override(other, **{"train.steps": 8}), 4)  # steps left
    # The reproduction checks it before it trains anything, and says how to start over.
    with pytest.raises(ReproduceError, match="delete .*runs/tiny and .*saved_models/tiny"):
        check_runs_up_front([other], [tmp_path])
    check_runs_up_front([config], [tmp_path])
