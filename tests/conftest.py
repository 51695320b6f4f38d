"""Suite-wide pytest settings: slow and GPU tests are skipped unless --runslow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="also run tests marked slow or gpu"
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--runslow"):
        skip = pytest.mark.skip(reason="slow or GPU test: run with --runslow")
        for item in items:
            if "slow" in item.keywords or "gpu" in item.keywords:
                item.add_marker(skip)
        return
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _has_gpu():
        skip_gpu = pytest.mark.skip(reason="GPU test: no GPU on this machine")
        for item in gpu_items:
            item.add_marker(skip_gpu)


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


TINY_COUNT = 20  # patches per class: 8/2/10 per class in train/validation/test
TINY_SEED = 0


@pytest.fixture(scope="session", autouse=True)
def _quiet_tfds():
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A data dir holding `synthetic_64` with 20 patches per class, seed 0. Do not modify."""
    from tfrecap.data import builder, catalog

    data_dir = tmp_path_factory.mktemp("synthetic")
    catalog.build_dataset(
        builder.synthetic_config(64, TINY_COUNT, TINY_SEED), data_dir, workers=1
    )
    return data_dir


@pytest.fixture(scope="session")
def exported(synthetic_dir, tmp_path_factory):
    """A tiny model trained a few steps on `synthetic_dir` and exported: the CLI tests' model.

    Session-scoped, so the evaluate, auto and min-norm CLI tests share one training run.
    """
    from tests.test_training import TINY_PIPELINE
    from tfrecap import config as cfg
    from tfrecap.training import train

    root = tmp_path_factory.mktemp("evaluate")
    path = root / "tiny.toml"
    path.write_text(TINY_PIPELINE)
    config = cfg.load_pipeline(path)
    train(config, data_dir=synthetic_dir, run_dir=root / "run", export_dir=root / "export",
          verbose=0, log=lambda message: None)
    return root / "export"
