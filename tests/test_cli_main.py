"""The entry point: TensorFlow start-up noise is hidden; user errors end without a traceback."""

import os
import re
import subprocess
import sys

import click
import pytest

from tfrecap.cli import main as main_module
from tfrecap.cli import quiet
from tfrecap.config import ConfigError

# The entry point as a user runs it; TF_CPP_MIN_LOG_LEVEL is cleared so that the test sees what a
# user's shell would show (tests/conftest.py sets it for the test process).
_ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFRECAP_VERBOSE")}


def _run(*args):
    return subprocess.run([sys.executable, "-m", "tfrecap.cli.main", *args], capture_output=True,
                          text=True, env=_ENV, timeout=120)


def test_user_error_is_one_line_without_tensorflow_noise(tmp_path):
    result = _run("data", "info", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cudart_stub" not in result.stderr and "cpu_feature_guard" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Dataset 'synthetic_64'")


def test_verbose_shows_tensorflow_logs(tmp_path):
    result = _run("--verbose", "data", "info", "--data-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert re.search(r"^[IWE]\d{4} ", result.stderr, re.MULTILINE), result.stderr


@pytest.fixture
def failing_command():
    """A command that raises a library error, as a bug-free command meeting bad input would."""

    @click.command("fail-for-test")
    @click.argument("kind")
    def fail(kind):
        if kind == "config":
            raise ConfigError("pipeline.toml: [train] steps must be >= 1, got 0")
        raise RuntimeError("a bug")

    main_module.cli.add_command(fail)
    yield
    del main_module.cli.commands["fail-for-test"]


def test_library_user_error_is_one_line(failing_command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main_module.main(["fail-for-test", "config"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "Error: pipeline.toml: [train] steps must be >= 1, got 0\n"


def test_bugs_and_verbose_keep_their_traceback(failing_command):
    with pytest.raises(RuntimeError, match="a bug"):
        main_module.main(["fail-for-test", "bug"])
    with pytest.raises(ConfigError):
        main_module.main(["--verbose", "fail-for-test", "config"])


def test_noise_filter_keeps_real_lines():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written\n"
            "I0000 00:00:1.0  5283 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
            "E0000 something that matters\n")
    assert quiet.filter_noise(text) == "E0000 something that matters\n"


def test_tensorflow_looked_up_before_it_is_imported_is_still_quiet():
    """Libraries probe for TensorFlow (importlib.util.find_spec) before importing it; the
    import that follows must still be captured."""
    code = ("from tfrecap.cli import quiet; quiet.configure(False); import importlib.util; "
            "importlib.util.find_spec('tensorflow'); import tensorflow")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "cudart_stub" not in result.stderr and "cpu_feature_guard" not in result.stderr
