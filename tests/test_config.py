"""Pipeline TOML loading: built-ins resolve, bad files give one clear error."""

import pytest

from tfrecap import config as cfg


def test_builtin_pipelines_load_with_paper_settings():
    names = cfg.builtin_pipelines()
    for size in (64, 128, 256, 512):
        assert f"yang2016_{size}" in names and f"secure_{size}" in names
    assert "demo" in names
    secure = cfg.load_pipeline("secure_64")
    assert secure.train.batch_size == 64 and secure.defence.fusion_count == 32
    assert secure.defence.fusion_weight == 0.2
    assert (secure.defence.eps_min, secure.defence.eps_max) == (1.0, 5.0)
    assert secure.train.learning_rate == 1e-4 and secure.train.lr_decay_rate == 0.9
    assert secure.train.lr_decay_steps == 10_000 and secure.train.steps == 100_000
    assert secure.defence.penalty_weight > 0
    baseline = cfg.load_pipeline("yang2016_256")
    assert baseline.is_baseline and baseline.data.patch_size == 256



def test_every_builtin_pipeline_loads_and_the_defences_carry_their_settings():
    names = cfg.builtin_pipelines()
    loaded = {name: cfg.load_pipeline(name) for name in names}  # each one validates
    demo = loaded["demo_baseline"]
    for method in ("pgd_at", "trades", "fast_fgsm"):
        c = loaded[f"demo_{method}"]
        assert c.defence.resolved_method == method and c.defence.attack_eps == 2.0
        assert (c.data, c.model, c.train) == (demo.data, demo.model, demo.train)
        assert c.guard == cfg.GuardConfig(every=1)  # the defaults, written out
        for size in (64, 128, 256, 512):
            paper, secure = loaded[f"{method}_{size}"], loaded[f"secure_{size}"]
            assert paper.defence.resolved_method == method and paper.guard.every == 5
            assert (paper.data, paper.model, paper.train) == (secure.data, secure.model,
                                                              secure.train)
    assert demo.guard == cfg.GuardConfig(every=0, select="clean")  # on only in the zoo
    assert loaded["demo_pgd_at"].defence.attack_steps == 5
    assert loaded["pgd_at_64"].defence.attack_steps == 10
    assert loaded["trades_256"].defence.trades_beta == 6.0
    assert loaded["demo_fast_fgsm"].defence.grad_align_weight == 0.1


def _write(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[train\nsteps = 3", "invalid TOML"),
        ("[train]\nstepz = 3", "unknown key 'stepz'"),
        ("[trian]\nsteps = 3", "unknown key 'trian'"),
        ("[train]\nsteps = 'many'", "steps: expected int, got str"),
        ("[train]\nbatch_size = 8\n[defence]\nfusion_count = 9", "fusion_count (k)"),
        ("[defence]\neps_min = 5.0\neps_max = 1.0", "eps_min (5.0) must not exceed eps_max"),
        ("[model]\nwidths = [8, 8]", "widths must be 5"),
        ("[train]\nprecision = 'half'", "precision must be one of"),
        ("[defence]\nattack_batchnorm = 'train'", "attack_batchnorm must be one of"),
        ("[model]\nsynchronized_batchnorm = 'yes'", "synchronized_batchnorm: expected bool"),
        ("[model]\nsync_batchnorm = true", "known keys: batchnorm, bn_momentum, "
         "synchronized_batchnorm"),
    ],
)
def test_bad_pipeline_files_give_one_clear_error(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load_pipeline(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_unknown_builtin_lists_known_names():
    with pytest.raises(cfg.ConfigError, match="secure_64"):
        cfg.load_pipeline("no_such_pipeline")


def test_override_validates_and_accepts_int_for_float():
    base = cfg.load_pipeline("demo")
    changed = cfg.override(base, **{"train.steps": 7, "defence.penalty_weight": 1})
    assert changed.train.steps == 7 and changed.defence.penalty_weight == 1.0
    assert base.train.steps != 7  # frozen original untouched
    with pytest.raises(cfg.ConfigError, match="fusion_count"):
        cfg.override(base, **{"train.batch_size": 4})


def test_synchronized_batchnorm_key_defaults_off(tmp_path):
    assert cfg.load_pipeline("demo").model.synchronized_batchnorm is False
    path = _write(tmp_path, "[model]\nsynchronized_batchnorm = true\n")
    config = cfg.load_pipeline(path)
    assert config.model.synchronized_batchnorm is True
    assert config.to_dict()["model"]["synchronized_batchnorm"] is True
    off = cfg.override(config, **{"model.synchronized_batchnorm": False})
    assert off.model.synchronized_batchnorm is False


def _config_dataclasses():
    import dataclasses

    return [obj for obj in vars(cfg).values()
            if isinstance(obj, type) and dataclasses.is_dataclass(obj)
            and obj.__module__ == cfg.__name__]


def test_every_config_field_is_read_outside_config_py():
    """Regression: [data] shuffle_buffer was loaded, validated and saved, and never used.

    A field counts as read when some module of the package other than config.py reads an
    attribute of that name (``.name`` not followed by an assignment).
    """
    import dataclasses
    import re
    from pathlib import Path

    package = Path(cfg.__file__).parent
    sources = [p.read_text(encoding="utf-8") for p in package.rglob("*.py")
               if p.resolve() != Path(cfg.__file__).resolve()]
    classes = _config_dataclasses()
    assert {c.__name__ for c in classes} >= {"DataConfig", "TrainConfig", "PipelineConfig"}
    unread = []
    for cls in classes:
        for field in dataclasses.fields(cls):
            read = re.compile(rf"\.{field.name}\b(?!\s*=[^=])")
            if not any(read.search(text) for text in sources):
                unread.append(f"{cls.__name__}.{field.name}")
    assert not unread, f"config fields that no module reads: {unread}"


def test_shuffle_buffer_must_be_positive(tmp_path):
    path = _write(tmp_path, "[data]\nshuffle_buffer = 0\n")
    with pytest.raises(cfg.ConfigError, match=r"\[data\] shuffle_buffer \(examples\) must be >= 1"):
        cfg.load_pipeline(path)


def test_a_folder_named_like_a_builtin_does_not_hide_it(tmp_path, monkeypatch):
    """`reproduce --profile demo` leaves a `demo/` folder; `--pipeline demo` still means the
    built-in pipeline when run next to it."""
    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    assert cfg.load_pipeline("demo").name == "demo"
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.load_pipeline("./missing.toml")


@pytest.mark.parametrize("method,key,value", [
    ("pgd_at", "trades_beta", 3.0), ("trades", "clean_fraction", 0.5),
    ("fast_fgsm", "attack_steps", 3), ("zhao2018", "attack_eps", 4.0),
    ("baseline", "grad_align_weight", 0.1), ("trades", "random_start", False),
    ("fast_fgsm", "early_stop_tau", 0),
])
def test_a_defence_setting_the_method_does_not_read_is_an_error(method, key, value):
    extra = {"penalty_weight": 1.0} if method == "zhao2018" else {}
    with pytest.raises(cfg.ConfigError, match=f"method {method} does not use {key}"):
        cfg.pipeline_from_dict({"defence": {"method": method, key: value, **extra}})


def test_guard_eps_must_be_positive():
    with pytest.raises(cfg.ConfigError, match="eps > 0"):
        cfg.pipeline_from_dict({"guard": {"every": 1, "eps": 0.0}})


def test_early_stop_tau_is_off_by_default_and_reaches_the_model():
    from tfrecap.training.factory import secure_model_kwargs

    assert cfg.load_pipeline("demo_pgd_at").defence.early_stop_tau == -1  # Madry's PGD
    c = cfg.pipeline_from_dict({"defence": {"method": "pgd_at", "early_stop_tau": 1}})
    assert secure_model_kwargs(c, "float32")["early_stop_tau"] == 1
    with pytest.raises(cfg.ConfigError, match="early_stop_tau must be -1"):
        cfg.pipeline_from_dict({"defence": {"method": "pgd_at", "early_stop_tau": -2}})


def test_guard_select_is_pgd_or_clean():
    assert cfg.pipeline_from_dict({"guard": {"select": "clean"}}).guard.select == "clean"
    with pytest.raises(cfg.ConfigError, match=r"\[guard\] select must be one of pgd, clean"):
        cfg.pipeline_from_dict({"guard": {"select": "auto"}})
