"""Importing a file of scripts/ (not a package) from a test."""

import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """The module scripts/NAME.py (NAME may hold a folder: "bench/bench_attacks"), executed
    once per call."""
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(Path(name).name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
