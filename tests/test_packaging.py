"""Packaging claims that must stay true: the Python versions setup.cfg admits."""

import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Features of the standard library the package uses, and the first Python that has them.
NEEDS = {
    r"^\s*import tomllib|^\s*from tomllib": (3, 11),
    r"datetime\.UTC\b|from datetime import .*\bUTC\b": (3, 11),
}


def _minimum_python() -> tuple[int, int]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    spec = cfg["options"]["python_requires"]
    match = re.search(r">=\s*(\d+)\.(\d+)", spec)
    assert match, f"python_requires has no lower bound: {spec!r}"
    return int(match[1]), int(match[2])


def test_python_requires_covers_the_standard_library_the_code_uses():
    minimum = _minimum_python()
    for path in (REPO / "tfrecap").rglob("*.py"):
        text = path.read_text()
        for pattern, needed in NEEDS.items():
            if re.search(pattern, text, re.MULTILINE):
                assert minimum >= needed, (
                    f"{path.relative_to(REPO)} needs Python {needed[0]}.{needed[1]} "
                    f"({pattern}), but setup.cfg admits {minimum[0]}.{minimum[1]}")


def test_readme_states_the_same_minimum():
    readme = (REPO / "README.md").read_text()
    stated = re.findall(r"Python (\d+)\.(\d+)\s*(?:[–-]|or newer|\+)", readme)
    assert stated, "the README does not say which Python versions it needs"
    assert {(int(a), int(b)) for a, b in stated} == {_minimum_python()}
